"""roofline.report.claims: each claim's verdict on the model for real presets and on crafted hardware and
crafted
measurements built to support it and to refute it; the report and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roofline.model.cost import gemv_cost, qkv_cost
from roofline.model.hardware import PRESETS, HardwareSpec
from roofline.model.verdict import CannotJudge, overhead_label
from roofline.report.claims import BY_ID, CLAIMS, evaluate, markdown_report, terminal_table, write_report
from roofline.report.claims.accounting import (
    attention_share_model,
    kv_bs_d_model,
    kv_decode_compute_bound_model,
    kv_outgrows_model,
    two_n_linear_model,
    two_n_s_model,
)
from roofline.report.claims.kernels import (
    crossover,
    decode_attention_measured,
    decode_attention_model,
    elementwise_measured,
    elementwise_model,
    gemv_crossover_measured,
    gemv_crossover_model,
    gqa_measured,
    kv_projection_model,
    matmuls_always_measured,
    matmuls_always_model,
    prefill_measured,
    prefill_model,
    qkv_crossover_measured,
)
from roofline.report.claims.registry import Claim
from roofline.report.claims.roof import above_roof_measured
from roofline.report.cli import main
from roofline.report.results import load_results
from tests.data.synth import MEASURED_A100, a100_run, benchmark, roofline_time, write_run

A100 = PRESETS["A100-SXM4-80GB"]
BF16 = "bfloat16"
DATA = Path(__file__).parent / "data"


def spec(ridge: float, bw: float = 1e12, name: str = "crafted") -> HardwareSpec:
    """A device whose every compute roof sits at ``ridge`` FLOP/byte."""
    return HardwareSpec(name, {"tensor16": ridge * bw, "tf32": ridge * bw, "fp32": ridge * bw}, bw)


MEASURED = HardwareSpec("m", MEASURED_A100["peak_flops"], MEASURED_A100["mem_bandwidth"], source="measured")


def run_of(tmp_path, rows, measured=MEASURED_A100):
    return load_results(write_run(tmp_path, rows, measured=measured))


def test_registry_is_well_formed():
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids)) >= 14
    for c in CLAIMS:
        assert c.statement and (c.model_check or c.measured_check)
        for src in c.source.split("; "):
            assert src == "ridgebench" or re.fullmatch(r"00[0-4]_[0-9a-f]{16}\.txt", src), src
    required = {"elementwise-memory-bound", "gemv-decode-crossover", "kv-projection-208",
                "prefill-projections-compute-bound", "matmuls-always-compute-bound",
                "decode-attention-memory-bound", "gqa-raises-intensity", "flops-per-token-2NS",
                "flops-per-token-2N-plus-linear", "gpt2xl-attention-share-16k", "kv-outgrows-weights",
                "no-point-above-roof"}
    assert required <= set(BY_ID)


EXPECTED_ON_GPUS = {
    "elementwise-memory-bound": "supported", "gemv-decode-crossover": "supported",
    "kv-projection-208": "supported", "prefill-projections-compute-bound": "supported",
    "matmuls-always-compute-bound": "refuted", "decode-attention-memory-bound": "supported",
    "gqa-raises-intensity": "supported", "seed003-kv-decode-compute-bound": "refuted",
    "flops-per-token-2NS": "refuted", "flops-per-token-2N-plus-linear": "supported",
    "gpt2xl-attention-share-16k": "supported", "kv-outgrows-weights": "supported",
    "seed003-kv-exceeds-weights-at-BS-D": "refuted",
}


@pytest.mark.parametrize("preset", ["A100-SXM4-80GB", "A100-SEED-1.5TB", "H100-SXM5", "H100-PCIE", "B200",
                                    "MI300X", "MI355X", "RTX-PRO-6000-BLACKWELL"])
def test_model_verdicts_on_gpu_presets(preset):
    rows = {r.claim.id: r for r in evaluate(hardware=PRESETS[preset])}
    assert {k: rows[k].model.status for k in EXPECTED_ON_GPUS} == EXPECTED_ON_GPUS
    assert rows["no-point-above-roof"].model is None and all(r.measured is None for r in rows.values())


def test_model_numbers_reproduce_the_seeds():
    kv = kv_projection_model(PRESETS["A100-SEED-1.5TB"], BF16).numbers
    # Seed 004's 208 counts weight bytes only: ridge x bytes/2 = 312e12 / 1.5e12 x 2 / 2, exactly.
    assert kv["rule"] == 208.0 and kv["seed_rule"] == 208.0
    # Counting the activations' bytes as well (labelled so in the text) the breakeven comes a little later.
    assert 208 <= kv["tokens"] <= 220 and kv["seed_tokens"] == kv["tokens"]
    assert kv["seed_ms"] == pytest.approx(11.45, abs=0.1)
    text = kv_projection_model(PRESETS["A100-SEED-1.5TB"], BF16).summary
    assert "weight bytes only" in text and "activation-inclusive" in text
    share = attention_share_model(A100, BF16).numbers
    assert 0.55 <= share["dense_share"] <= 0.65 and share["causal_share"] < 0.5
    # Seed 002's own model (SwiGLU, untied) reproduces its ~7% -> ~55%.
    assert share["seed_dense_share"] == pytest.approx(0.552, abs=0.002)
    assert share["seed_short_share"] == pytest.approx(0.071, abs=0.002)
    assert share["seed_causal_share"] < 0.5
    gemv = gemv_crossover_model(PRESETS["A100-SEED-2.0TB"], BF16).numbers
    assert gemv["rule"] == pytest.approx(156) and 156 <= gemv["llama2-70b mlp_up"] <= 165


def test_crossover_helper_is_the_first_compute_bound_batch():
    ridge = 153.0
    b = crossover(lambda m: gemv_cost(m, 4096, 4096, BF16), ridge)
    assert gemv_cost(b, 4096, 4096, BF16).intensity >= ridge > gemv_cost(b - 1, 4096, 4096, BF16).intensity
    assert crossover(lambda m: gemv_cost(m, 64, 64, BF16), ridge) is None  # saturates at 32 FLOP/B


@pytest.mark.parametrize("check, supporting, refuting", [
    (elementwise_model, spec(100.0), spec(1.0)),  # GELU tanh bf16 is 2.25 FLOP/B
    (prefill_model, spec(153.0), spec(5000.0)),
    (matmuls_always_model, spec(0.5), spec(153.0)),  # refuting spec makes decode memory-bound
    (decode_attention_model, spec(153.0), spec(0.5)),
    (kv_decode_compute_bound_model, spec(0.01), A100),
    (gemv_crossover_model, A100, spec(1e5)),  # a ridge no GEMV can reach
    (kv_projection_model, A100, spec(0.2)),
])
def test_model_checks_flip_with_the_hardware(check, supporting, refuting):
    assert check(supporting, BF16).status == "supported"
    assert check(refuting, BF16).status == "refuted"


def _gemv_rows(times: dict[int, float], n=8192, k=8192, provider="triton"):
    return [benchmark("gemv", {"batch": b, "n": n, "k": k, "bias": False}, "float16", t, provider=provider)
            for b, t in times.items()]


def test_measured_gemv_crossover(tmp_path):
    # memory-bound until the predicted crossover, then linear: max(a, b*B) with a/b at the prediction
    predicted = crossover(lambda m: gemv_cost(m, 8192, 8192, "float16"), MEASURED.ridge("tensor16"))
    a = 2 * 8192 * 8192 / MEASURED.mem_bandwidth
    agree = {b: max(a, a * b / predicted) for b in (1, 8, 64, 512, 4096)}
    verdict = gemv_crossover_measured(run_of(tmp_path / "a", _gemv_rows(agree)), MEASURED)
    assert verdict.status == "supported"
    (measured, pred), = verdict.numbers["crossovers"].values()
    assert measured == pytest.approx(predicted, rel=0.01) and pred == predicted
    late = {b: max(a, a * b / (20 * predicted)) for b in (1, 8, 64, 512, 4096, 32768)}
    assert gemv_crossover_measured(run_of(tmp_path / "b", _gemv_rows(late)), MEASURED).status == "refuted"
    flat = dict.fromkeys((1, 8, 64, 512, 4096), a)  # never turns compute-bound although predicted to
    assert gemv_crossover_measured(run_of(tmp_path / "c", _gemv_rows(flat)), MEASURED).status == "refuted"
    short = {b: a for b in (1, 8, 64)}  # ends before the predicted crossover: cannot decide
    verdict = gemv_crossover_measured(run_of(tmp_path / "d", _gemv_rows(short)), MEASURED)
    assert verdict.status == "inconclusive"
    overhead = {b: max(50 * a, a * b / predicted) for b in (1, 8, 64, 512, 4096)}  # 2% of the bandwidth
    verdict = gemv_crossover_measured(run_of(tmp_path / "f", _gemv_rows(overhead)), MEASURED)
    assert verdict.status == "inconclusive" and "overhead" in verdict.summary
    two = {1: a, 4096: 30 * a}  # fewer than 3 batch sizes
    verdict = gemv_crossover_measured(run_of(tmp_path / "e", _gemv_rows(two)), MEASURED)
    assert verdict.status == "inconclusive"


def test_measured_qkv_crossover(tmp_path):
    shape = dict(d_model=2048, n_heads=16, n_kv_heads=4, head_dim=128, bias=False)
    predicted = crossover(lambda m: qkv_cost(m=m, **shape, dtype="float16"), MEASURED.ridge("tensor16"))
    a = qkv_cost(m=1, **shape, dtype="float16").bytes / MEASURED.mem_bandwidth

    def rows(crossover_at):
        return [benchmark("qkv", {"m": m, **shape}, "float16", max(a, a * m / crossover_at))
                for m in (1, 16, 256, 2048)]

    assert qkv_crossover_measured(run_of(tmp_path / "a", rows(predicted)), MEASURED).status == "supported"
    early = qkv_crossover_measured(run_of(tmp_path / "b", rows(predicted / 5)), MEASURED)
    assert early.status == "refuted" and f"predicted {predicted}" in early.summary


def _roof_rows(kernel, shapes, dtype="float16", efficiency=0.7, roof=MEASURED, **kw):
    return [benchmark(kernel, s, dtype, roofline_time(kernel, s, dtype, roof, efficiency), **kw)
            for s in shapes]


def test_measured_bound_claims_follow_the_measured_ridge(tmp_path):
    soft = _roof_rows("softmax", [{"rows": 64, "cols": c} for c in (256, 4096)])
    attn = _roof_rows("attention", [dict(batch=b, n_heads=8, n_kv_heads=8, head_dim=64, q_len=1,
                                         cache_len=512) for b in (1, 4)])
    big_qkv = _roof_rows("qkv", [dict(m=4096, d_model=1024, n_heads=16, n_kv_heads=16, head_dim=64,
                                      bias=False)])
    res = run_of(tmp_path / "gpu", soft + attn + big_qkv)
    assert elementwise_measured(res, MEASURED).status == "supported"
    assert decode_attention_measured(res, MEASURED).status == "supported"
    assert prefill_measured(res, MEASURED).status == "supported"
    assert matmuls_always_measured(res, MEASURED).status == "refuted"  # decode attention is below the ridge
    tiny_ridge = spec(0.1, MEASURED.mem_bandwidth)  # a roof where everything is compute-bound
    assert elementwise_measured(res, tiny_ridge).status == "refuted"
    assert decode_attention_measured(res, tiny_ridge).status == "refuted"
    assert matmuls_always_measured(res, tiny_ridge).status == "supported"
    assert prefill_measured(res, spec(1e5, MEASURED.mem_bandwidth)).status == "refuted"
    only_soft = run_of(tmp_path / "soft", soft)
    for check in (decode_attention_measured, prefill_measured, matmuls_always_measured, gqa_measured,
                  gemv_crossover_measured, qkv_crossover_measured):
        assert check(only_soft, MEASURED).status == "inconclusive"


def test_measured_gqa(tmp_path):
    def rows(gqa_speedup: float, efficiency: float = 0.7):
        out = []
        for cache in (1024, 4096):
            mha = dict(batch=1, n_heads=32, n_kv_heads=32, head_dim=128, q_len=1, cache_len=cache)
            t = roofline_time("attention", mha, "float16", MEASURED, efficiency)
            out.append(benchmark("attention", mha, "float16", t))
            out.append(benchmark("attention", {**mha, "n_kv_heads": 4}, "float16", t / gqa_speedup))
        return out

    good = gqa_measured(run_of(tmp_path / "a", rows(7.5)), MEASURED)  # bytes ~8x fewer, same bandwidth
    assert good.status == "supported" and len(good.details) == 2
    assert gqa_measured(run_of(tmp_path / "b", rows(1.0)), MEASURED).status == "refuted"
    # far below the memory roof the FLOP/s ratio is overhead, not intensity: abstain
    assert gqa_measured(run_of(tmp_path / "c", rows(1.0, 0.02)), MEASURED).status == "inconclusive"


def test_above_roof_and_miscounted_points(tmp_path):
    shape = {"rows": 256, "cols": 4096}
    ok = benchmark("softmax", shape, "float16", roofline_time("softmax", shape, "float16", MEASURED, 0.8))
    res = run_of(tmp_path / "ok", [ok])
    assert above_roof_measured(res, MEASURED).status == "supported"
    fast = benchmark("softmax", {"rows": 8, "cols": 4096}, "float16",
                     roofline_time("softmax", {"rows": 8, "cols": 4096}, "float16", MEASURED, 2.5))
    miscounted = benchmark("softmax", shape, "float16", 1.0)
    miscounted["extra_info"]["bytes"] *= 0.5
    verdict = above_roof_measured(run_of(tmp_path / "bad", [ok, fast, miscounted]), MEASURED)
    assert verdict.status == "refuted"
    assert fast["name"] in verdict.details[0] and "2.50x" in verdict.details[0]
    assert any("the cost model says" in d for d in verdict.details)


def test_accounting_claims_numbers():
    v = two_n_s_model(A100, BF16)
    assert v.status == "refuted" and "x over" in v.details[0]
    v = two_n_linear_model(A100, BF16)
    assert v.status == "supported" and len(v.details) == 9
    v = kv_outgrows_model(A100, BF16)
    assert v.status == "supported" and "gpt2-xl" in v.details[0]
    v = kv_bs_d_model(A100, BF16)
    assert v.status == "refuted" and "6.3 x D" in v.details[0]


def test_a_check_that_cannot_judge_is_inconclusive_with_its_reason():
    def unjudgeable(spec, dtype):
        raise CannotJudge("no tf32 peak on this spec")

    [row] = evaluate(hardware=A100, claims=(Claim("c", "s", "ridgebench", model_check=unjudgeable),))
    assert row.model.status == "inconclusive" and "no tf32 peak" in row.model.summary


def test_a_check_that_raises_anything_else_fails_the_claims_run(monkeypatch, capsys):
    def broken(spec, dtype):
        raise KeyError("tf32")

    with pytest.raises(KeyError, match="tf32"):
        evaluate(hardware=A100, claims=(Claim("c", "s", "ridgebench", model_check=broken),))
    monkeypatch.setattr(BY_ID["gqa-raises-intensity"], "model_check", broken)
    with pytest.raises(KeyError, match="tf32"):
        main(["claims", "--hardware", "A100-SXM4-80GB"])


def test_report_on_a_synthetic_gpu_run(tmp_path):
    run = a100_run(tmp_path / "run")
    path = write_report(run)
    text = path.read_text()
    assert path == run / "claims.md"
    for c in CLAIMS:
        assert f"`{c.id}`" in text
    assert "Measured verdicts: 27 benchmarks" in text and "This run is on a CPU" not in text
    rows = evaluate(load_results(run))
    statuses = {r.claim.id: r.measured.status for r in rows if r.measured}
    assert statuses["gemv-decode-crossover"] == "supported" and statuses["no-point-above-roof"] == "supported"
    table = terminal_table(rows, "A100-SXM4-80GB")
    assert all(len(line) <= 110 for line in table.splitlines())


def test_cpu_run_report_says_so(tmp_path):
    cpu = {"mem_bandwidth": 2e10, "peak_flops": {"fp32": 2e11}, "method": "synthetic"}
    rows = [benchmark("softmax", {"rows": 8, "cols": 1024}, "float32", 1e-4, device="cpu", device_kind="cpu")]
    res = load_results(write_run(tmp_path, rows, measured=cpu, datasheet=None, device="cpu"))
    text = markdown_report(evaluate(res), A100, res, BF16)
    assert "This run is on a CPU" in text and "measured ceilings (20.0 GB/s" in text
    assert "Host launch cost: n/a on the CPU" in text


def _with_host_launch(row: dict, host_launch_s: float) -> dict:
    row["extra_info"]["timing"] = {"method": "profiler", "host_launch_s": host_launch_s}
    return row


def test_launch_bound_points_are_labelled(tmp_path):
    """A point whose device time is below its measured host launch time is launch-bound (in the verdict
    that abstains on it and in the report); on a CPU, where no launch cost is measured apart, a point that
    moves little of the bandwidth gets the same word; a GPU point that launches faster than it runs but
    moves little is overhead-bound."""
    assert overhead_label(5e-6, 20e-6, 0.9).startswith("launch-bound: 5 us on the device < 20 us of host")
    assert overhead_label(5e-6, None, 0.02).startswith("launch-bound: it moves only 2.0%")
    assert overhead_label(50e-6, 20e-6, 0.02).startswith("overhead-bound: it moves only 2.0%")
    assert overhead_label(50e-6, 20e-6, 0.9) is None and overhead_label(5e-6, None, 0.9) is None
    a = 2 * 8192 * 8192 / MEASURED.mem_bandwidth
    flat = {b: 50 * a for b in (1, 8, 64, 512)}  # 2% of the bandwidth, and launched slower than it runs
    rows = [_with_host_launch(r, 100 * a) for r in _gemv_rows(flat)]
    res = run_of(tmp_path / "g", rows)
    assert all(r.launch_bound and r.host_launch_s == pytest.approx(100 * a) for r in res.records)
    verdict = gemv_crossover_measured(res, MEASURED)
    assert verdict.status == "inconclusive" and "launch-bound" in verdict.summary
    text = markdown_report(evaluate(res), A100, res, BF16)
    assert "Launch-bound points (device time below the host's launch time per call" in text
    assert "4 of 4" in text
    old = run_of(tmp_path / "o", _gemv_rows(flat))  # a run from before host launch times were recorded
    assert not any(r.launch_bound for r in old.records) and "Launch-bound points" not in markdown_report(
        evaluate(old), A100, old, BF16)


def test_cli(tmp_path, capsys):
    assert main(["claims", "--hardware", "H100-SXM5"]) == 0
    out = capsys.readouterr().out
    assert "gemv-decode-crossover" in out and "H100-SXM5" in out
    run = a100_run(tmp_path / "run")
    assert main(["claims", str(run)]) == 0 and (run / "claims.md").is_file()
    capsys.readouterr()
    assert main(["claims", str(run), "--hardware", "TPU"]) == 2
    assert main(["claims", "--dtype", "int3"]) == 2
    (tmp_path / "bad.json").write_text("{")
    assert main(["claims", str(tmp_path / "bad.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 3


def test_real_cpu_run_gets_a_verdict_on_every_measured_claim(tmp_path):
    res = load_results(DATA / "cpu-quick")
    rows = {r.claim.id: r for r in evaluate(res)}
    for claim in CLAIMS:
        if claim.measured_check is not None:
            assert rows[claim.id].measured is not None, claim.id
    # On the idle CPU run the largest point reaches ~56% of its roof; the QKV sweep stops at m=64, so no
    # prefill-sized projection; the GEMV batch sweep (1..64, 3072x768 weights) bends where the measured
    # CPU ridge predicts, and the report gives the measured crossover beside the predicted one.
    assert rows["no-point-above-roof"].measured.status == "supported"
    assert rows["prefill-projections-compute-bound"].measured.status == "inconclusive"
    gemv = rows["gemv-decode-crossover"].measured
    assert gemv.status == "supported"
    assert "measured crossover batch" in gemv.summary and "predicted" in gemv.summary
    path = write_report(DATA / "cpu-quick", out=tmp_path / "claims.md")
    text = path.read_text()
    assert "This run is on a CPU" in text and f"{len(res.records)} benchmarks" in text


def test_the_rule_is_ridge_times_bytes_over_two():
    """A GEMV's intensity is 2B/bytes FLOP per weight byte, so it meets the ridge at B = ridge x bytes/2:
    fp32 doubles the bf16 crossover (the text once said 'ridge x 2/bytes', right only for 2-byte dtypes)."""
    texts = " ".join(c.statement for c in CLAIMS)
    assert "2/bytes" not in texts and texts.count("ridge x bytes/2") == 2
    spec = PRESETS["A100-SXM4-80GB"]
    bf16 = gemv_crossover_model(spec, BF16).numbers["rule"]
    fp32 = gemv_crossover_model(spec, "float32").numbers["rule"]
    assert bf16 == pytest.approx(spec.ridge("tensor16"))
    assert fp32 == pytest.approx(spec.ridge("tf32") * 4 / 2)
    assert "ridge x bytes/2" in gemv_crossover_model(spec, BF16).summary


def test_claims_on_b200_show_its_ridge_beside_the_seeds(capsys):
    """`claims --hardware B200`: the seed's "208 tokens" (its A100 ridge) becomes B200's ~281, and the
    verdict quotes both (issue 23)."""
    kv = kv_projection_model(PRESETS["B200"], BF16)
    assert kv.numbers["rule"] == pytest.approx(281.25) and kv.numbers["seed_rule"] == 208.0
    assert "on B200" in kv.summary and "= 281 tokens" in kv.summary and "seed: 208" in kv.summary
    gemv = gemv_crossover_model(PRESETS["B200"], BF16).numbers
    assert gemv["rule"] == pytest.approx(281.25)
    assert main(["claims", "--hardware", "B200"]) == 0
    assert "model on B200" in capsys.readouterr().out
