"""A whole predicted generation (roofline/model/generation.py), its figure, and the ``roofline model`` options
of issue 27 (bit-widths, capacity, generation, attention)."""

from __future__ import annotations

import json

import pytest

from roofline.errors import UsageError
from roofline.model import latency
from roofline.model.generation import generation, sweep
from roofline.model.hardware import PRESETS as HW
from roofline.model.precision import Precision
from roofline.model.transformer import PRESETS
from roofline.report.cli import main

LLAMA7, M52 = PRESETS["llama2-7b"], PRESETS["anthropic-52b"]
PRESETS_27 = ("A100-SXM4-80GB", "H100-SXM5", "H200")


@pytest.mark.parametrize("hw", PRESETS_27)
def test_generation_adds_up_its_steps(hw):
    """128 prompt + 128 output tokens: TTFT is the prefill, then 127 decode steps at contexts 128..254."""
    spec = HW[hw]
    for g in sweep(LLAMA7, spec, "bfloat16", (1, 8, 64), 128, 128):
        pre = latency.prefill_latency(LLAMA7, g.batch, 128, spec, "bfloat16")
        steps = [latency.decode_step_latency(LLAMA7, g.batch, c, spec, "bfloat16").seconds
                 for c in range(128, 255)]
        assert g.ttft_s == pre.seconds and g.decode_s == pytest.approx(sum(steps))
        assert g.tpot_s == pytest.approx(sum(steps) / 127)
        assert g.tpot_first_s == steps[0] and g.tpot_last_s == steps[-1] and g.tpot_last_s > g.tpot_first_s
        assert g.e2e_s == g.ttft_s + g.decode_s
        assert g.tokens_per_s_per_gpu == pytest.approx(g.batch * 128 / g.e2e_s)
        split = g.split_s
        assert split["compute"] + split["memory"] + split["communication"] == pytest.approx(g.e2e_s)
        assert g.to_dict()["predicted"] is True


def test_generation_throughput_grows_with_batch_and_hardware():
    rates = {hw: [g.tokens_per_s_per_gpu for g in sweep(LLAMA7, HW[hw], "bf16", (1, 8, 64), 128, 128)]
             for hw in PRESETS_27}
    for r in rates.values():
        assert r[0] < r[1] < r[2]
    assert rates["A100-SXM4-80GB"][0] < rates["H100-SXM5"][0] < rates["H200"][0]  # batch 1: bandwidth
    # batch 1 decodes at the bandwidth roof: ~ bandwidth / bytes per token
    g = generation(LLAMA7, HW["H200"], "bf16", 1, 128, 128)
    assert g.split_s["compute"] == 0 and g.decode_bound == "memory"


def test_generation_with_tensor_parallel_counts_communication():
    g = generation(M52, HW["A100-SXM4-80GB"], "bf16", 8, 128, 16, tp=4)
    transfers = 64 * 4  # seed 004: 4 per layer, 10 us each + the tokens' activations over 300 GB/s
    prefill = transfers * (10e-6 + 8 * 128 * 8192 * 2 / 300e9)
    decode = 15 * transfers * (10e-6 + 8 * 8192 * 2 / 300e9)
    assert g.split_s["communication"] == pytest.approx(prefill + decode)
    assert g.tokens_per_s_per_gpu == pytest.approx(g.tokens_per_s / 4)


def test_one_output_token_is_the_prefill():
    g = generation(LLAMA7, HW["H100-SXM5"], "bf16", 2, 64, 1)
    assert g.tpot_s is None and g.decode_s == 0 and g.e2e_s == g.ttft_s
    assert g.decode_tokens_per_s_per_gpu is None


def test_generation_errors_are_named():
    with pytest.raises(UsageError, match="output"):
        generation(LLAMA7, HW["H100-SXM5"], "bf16", 1, 64, 0)


def run_cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_model_cli_generation_table_json_and_figure(capsys, tmp_path):
    """Done-when of issue 27: 128 + 128 tokens at batch 1, 8, 64 on A100-80GB, H100 and H200 in the table,
    the JSON and a figure."""
    args = ("model", "llama2-7b", "--output-tokens", "128", "--prompt", "128", "--batches", "1,8,64",
            "--generate-on", ",".join(PRESETS_27))
    rc, out, err = run_cli(capsys, *args, "--json")
    assert rc == 0 and err == ""
    gens = json.loads(out)["generation"]
    assert [(g["hardware"], g["batch"]) for g in gens] == [(h, b) for h in PRESETS_27 for b in (1, 8, 64)]
    want = generation(LLAMA7, HW["H200"], Precision(), 64, 128, 128)
    assert gens[-1]["e2e_s"] == want.e2e_s and gens[-1]["tokens_per_s_per_gpu"] == want.tokens_per_s_per_gpu
    rc, out, _ = run_cli(capsys, *args, "--figure", str(tmp_path / "gen.png"))
    assert rc == 0 and "PREDICTED generation: 128 prompt + 128 output tokens" in out
    assert out.count("H100-SXM5 ") == 3 and "TTFT" in out and "TPOT" in out
    assert (tmp_path / "gen.png").stat().st_size > 10_000 and (tmp_path / "gen.svg").exists()


def test_model_cli_precision_options(capsys):
    rc, out, _ = run_cli(capsys, "model", "llama2-7b", "--seq", "128", "--weights", "int4", "--kv", "fp8",
                         "--hardware", "H100-SXM5", "--json")
    r = json.loads(out)
    p = Precision("int4", "bfloat16", "fp8")
    assert rc == 0 and r["precision"]["weights"] == "int4" and r["precision"]["kv"] == "fp8"
    assert r["kv_cache_bytes_per_token"] == 2 * 32 * 32 * 128
    assert r["decode_step_seconds_lower_bound"] == latency.decode_step_latency(
        LLAMA7, 1, 128, HW["H100-SXM5"], p).seconds
    rc, out, _ = run_cli(capsys, "model", "llama2-7b", "--seq", "128", "--dtype", "fp8", "--hardware",
                         "H100-SXM5", "--json")
    r = json.loads(out)
    assert r["inputs"]["dtype_class"] == "fp8" and r["prefill"]["flops_by_class"]["fp8"] > 0
    rc, out, _ = run_cli(capsys, "model", "llama2-7b", "--seq", "4096", "--attention", "unfused", "--json")
    r = json.loads(out)
    assert r["inputs"]["attention"] == "unfused"
    assert r["prefill"]["bytes"] > 9 * json.loads(run_cli(capsys, "model", "llama2-7b", "--seq", "4096",
                                                           "--json")[1])["prefill"]["bytes"]


def test_model_cli_capacity(capsys):
    rc, out, _ = run_cli(capsys, "model", "anthropic-52b", "--hardware", "A100-SXM4-40GB", "--capacity",
                         "--seq", "2048", "--json")
    caps = {c["gpus"]: c for c in json.loads(out)["capacity"]}
    assert rc == 0 and set(caps) == {1, 2, 4, 8}
    assert not caps[2]["fits"] and caps[4]["fits"] and caps[4]["kv_tokens"] == 26_110
    rc, out, _ = run_cli(capsys, "model", "anthropic-52b", "--hardware", "A100-SXM4-40GB", "--capacity")
    assert "PREDICTED memory capacity" in out and "DOES NOT FIT" in out and "26,110 tokens" in out


@pytest.mark.parametrize("argv, match", [
    (["--weights", "int3"], "--weights: unsupported 'int3'"),
    (["--activations", "int4"], "activations: unsupported 'int4'"),
    (["--kv", "nf4"], "--kv: unsupported 'nf4'"),
    (["--group-size", "0"], "--group-size: expected an integer >= 1"),
    (["--figure", "x.png"], "--figure: draws the generation"),
    (["--output-tokens", "0"], "--output-tokens: expected an integer >= 1"),
    (["--output-tokens", "4", "--batches", "1,x"], "--batches: expected an integer"),
    (["--capacity", "--hardware", "V100-SXM2"], "--capacity: ridgebench has no memory capacity"),
])
def test_model_cli_errors(capsys, argv, match):
    rc, out, err = run_cli(capsys, "model", "gpt2-small", *argv)
    assert rc == 2 and out == "" and match in err and len(err.splitlines()) == 1


def test_model_json_exports_the_precision_conventions(capsys):
    from roofline.model.cost import CONVENTIONS, MODEL_CONVENTIONS
    from roofline.model.precision import PRECISION_CONVENTIONS

    rc, out, _ = run_cli(capsys, "model", "gpt2-small", "--seq", "64", "--json")
    conv = json.loads(out)["conventions"]
    assert rc == 0 and conv == {**CONVENTIONS, **MODEL_CONVENTIONS, **PRECISION_CONVENTIONS}
    assert len(conv) == len(CONVENTIONS) + len(MODEL_CONVENTIONS) + len(PRECISION_CONVENTIONS)  # no key lost
