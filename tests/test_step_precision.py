"""The model step beyond its measured dtype (issue 27): ``--weights/--activations/--kv/--group-size`` on
``pytest --benchmark --model`` and ``python -m roofline step`` (recorded, validated with the parser of
``python -m roofline model``, and PREDICTED in the step report, never measured), and a whole generation
anchored on a run's measured steps (:func:`roofline.model.generation.anchored`) beside the predicted one.
Synthetic step runs (times chosen by the test) as in tests/test_step.py, plus the usage errors of a real
``pytest --benchmark`` (exit 4, one line, no directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from roofline.errors import UsageError
from roofline.model.generation import anchored, generation
from roofline.model.hardware import PRESETS as HW
from roofline.model.latency import decode_compute_bound_batch, decode_step_latency, prefill_latency
from roofline.model.precision import Precision, parse_precision
from roofline.model.step import StepRequest, make_request, read_request, write_request
from roofline.model.transformer import PRESETS
from roofline.report.cli import main
from roofline.report.results import load_results
from roofline.report.step_report import build_report, write_step_report
from tests.test_step import MEASURED, ROOT, on_roof, synthetic_step_run

GPT2 = PRESETS["gpt2-small"]
LLAMA = PRESETS["llama2-7b"]
BF16 = "bfloat16"
INT8_WEIGHTS = Precision("int8", BF16, BF16)


# ------------------------------------------------------------------------------------- the one parser

def test_parse_precision_defaults_each_format_to_the_dtype():
    assert parse_precision(BF16) == Precision.uniform(BF16)
    assert parse_precision("float32", weights="int4") == Precision("int4", "float32", "float32")
    p = parse_precision("fp16", weights="int4", kv="e4m3", group_size="64")
    assert (p.weights, p.activations, p.kv, p.group_size) == ("int4", "float16", "fp8", 64)
    assert parse_precision(BF16, activations="fp8", weights="fp8").matmul_math == "fp8"


@pytest.mark.parametrize("kwargs,message", [
    (dict(weights="int3"), "--weights: unsupported 'int3'"),
    (dict(activations="int4"), "--activations: unsupported 'int4'"),
    (dict(kv="nf4"), "--kv: unsupported 'nf4'"),
    (dict(group_size="0"), "--group-size: expected an integer >= 1, got 0"),
    (dict(group_size="x"), "--group-size: expected an integer, got 'x'"),
    (dict(group_size=True), "--group-size: expected an integer, got True"),
    (dict(weights="float64"), "--weights: dtype: unsupported 'float64'"),  # no roof for its math
    (dict(kv="fp64"), "--kv: dtype: unsupported 'float64'"),
])
def test_parse_precision_names_the_option(kwargs, message):
    with pytest.raises(UsageError) as exc:
        parse_precision(BF16, **kwargs)
    assert str(exc.value).startswith(message)


def test_a_dtype_that_cannot_be_activations_needs_activations():
    with pytest.raises(UsageError, match="--dtype: dtype: unsupported 'int4' for the activations"):
        parse_precision("int4")
    assert parse_precision("int4", activations=BF16) == Precision("int4", BF16, "int4")
    with pytest.raises(UsageError, match="--dtype: dtype: unsupported 'float64'"):
        parse_precision("float64")


# --------------------------------------------------------------------------------------- the request

def test_the_request_records_the_precision_and_reads_it_back(tmp_path):
    assert make_request("gpt2-small", "1,4", "64").precision is None  # none asked: nothing predicted
    req = make_request("gpt2-small", "1,4", "64", dtype="float32", weights="int4", group_size="32")
    assert req.precision == Precision("int4", "float32", "float32", 32)
    assert req.dtype == "float32"  # the kernels still run the run's dtype
    path = write_request(tmp_path, req)
    assert json.loads(path.read_text())["precision"]["weights"] == "int4"
    assert read_request(tmp_path) == req
    older = {k: v for k, v in req.to_dict().items() if k != "precision"}  # a request from before
    path.write_text(json.dumps(older))
    assert read_request(tmp_path).precision is None
    path.write_text(json.dumps({**older, "precision": {**req.precision.to_dict(), "kv": "int3"}}))
    with pytest.raises(UsageError, match=r"step-request\.json: kv: unsupported 'int3'"):
        read_request(tmp_path)


def test_make_request_refuses_a_bad_format_naming_the_option():
    with pytest.raises(UsageError, match="--kv: unsupported 'nf4'"):
        make_request("gpt2-small", "1", "64", kv="nf4")


# ---------------------------------------------------------------------------------- the step report

def test_the_step_is_predicted_in_the_requested_precision_on_the_measured_ceilings(tmp_path):
    req = StepRequest(GPT2, (1, 16), 256, prefill=True, precision=INT8_WEIGHTS)
    run = synthetic_step_run(tmp_path, req, on_roof, providers=("triton", "torch"))
    report = build_report(load_results(run), req)
    for row in report.rows:
        in_bf16, in_int8 = ((decode_step_latency(GPT2, row.batch, 256, MEASURED, p) if row.phase == "decode"
                             else prefill_latency(GPT2, 1, 256, MEASURED, p)).seconds
                            for p in (BF16, INT8_WEIGHTS))
        assert row.analytic_s == in_bf16 and row.precision_s == in_int8
        assert row.precision_ratio == pytest.approx(in_int8 / in_bf16)
        assert row.precision_projected_s == pytest.approx(row.measured_total_s * in_int8 / in_bf16)
        if row.phase == "decode" and row.batch == 1:
            # weight reads dominate: the blocks' 85M parameters halve, the tied 38.6M-parameter LM head
            # stays 16-bit, so (85 / 2 + 38.6) / (85 + 38.6) = 0.66
            assert 0.62 < row.precision_ratio < 0.7
    prefill = next(r for r in report.rows if r.phase == "prefill")
    decode1 = next(r for r in report.rows if r.phase == "decode" and r.batch == 1)
    assert decode1.precision_ratio < prefill.precision_ratio
    assert report.ridge_batch_precision == decode_compute_bound_batch(GPT2, MEASURED, INT8_WEIGHTS, 256)

    write_step_report(run)
    md = (run / "step.md").read_text()
    section = md.split("## Requested precision: weights int8, activations bfloat16, KV bfloat16")[1]
    assert section.startswith(" (PREDICTED: quantized kernels were not measured)")
    assert "The kernels ran bfloat16 only" in section and "measured x ratio (predicted)" in section
    assert "| decode B=1 | torch | " in section
    doc = json.loads((run / "step.json").read_text())
    assert doc["request"]["precision"]["weights"] == "int8"
    assert doc["precision"]["measured"] is False and doc["precision"]["matmul_math_used"] == "tensor16"
    for step in doc["steps"]:
        assert step["precision_lower_bound_s"] < step["analytic_lower_bound_s"] * 1.0001


def test_low_precision_math_without_a_measured_ceiling_falls_back_and_says_so(tmp_path):
    """W8A8 asks for int8 tensor cores; the measured ceilings have no int8 peak (the suite measures none),
    so the step is predicted on the measured tensor16 roof, and the report says so."""
    w8a8 = Precision("int8", "int8", BF16)
    req = StepRequest(GPT2, (1, 64), 64, precision=w8a8)
    run = synthetic_step_run(tmp_path, req, on_roof)
    report = build_report(load_results(run), req)
    for row in report.rows:
        assert row.precision_s == decode_step_latency(GPT2, row.batch, 64, MEASURED, w8a8).seconds
    assert HW["A100-SXM4-80GB"].int8_peak_ops  # the datasheet has one; the measured ceilings do not
    write_step_report(run)
    assert ("int8 math asked for, but no int8 ceiling was measured: predicted on the measured tensor16 roof"
            in (run / "step.md").read_text())
    assert json.loads((run / "step.json").read_text())["precision"]["matmul_math_used"] == "tensor16"


def test_a_run_without_a_precision_has_no_precision_section(tmp_path):
    req = StepRequest(GPT2, (1,), 64)
    run = synthetic_step_run(tmp_path, req, on_roof)
    write_step_report(run)
    assert "Requested precision" not in (run / "step.md").read_text()
    doc = json.loads((run / "step.json").read_text())
    assert "precision" not in doc and doc["steps"][0]["precision_lower_bound_s"] is None


def test_cli_step_predicts_another_precision_and_refuses_bad_ones(tmp_path, capsys):
    req = StepRequest(GPT2, (1, 4), 64)
    run = synthetic_step_run(tmp_path, req, on_roof)
    assert main(["step", str(run), "--weights", "int4", "--kv", "fp8", "--output-tokens", "16"]) == 0
    out = capsys.readouterr().out
    assert "## Requested precision: weights int4(g128), activations bfloat16, KV fp8 (PREDICTED" in out
    assert "## A whole generation: 64 prompt + 16 output tokens per sequence" in out
    doc = json.loads((run / "step.json").read_text())
    assert doc["precision"]["kv"] == "fp8" and doc["generation"]["output_tokens"] == 16
    assert read_request(run).precision is None  # the run's own request is left as it was
    for args, message in ((["--weights", "int3"], "--weights: unsupported 'int3'"),
                          (["--group-size", "0"], "--group-size: expected an integer >= 1"),
                          (["--output-tokens", "x"], "--output-tokens: expected a positive integer"),
                          (["--output-tokens", "0"], "--output-tokens: expected a positive integer")):
        assert main(["step", str(run), *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


# -------------------------------------------------------------------------------- a whole generation

def test_anchored_generation_takes_the_level_from_the_measurement_and_the_growth_from_the_model():
    spec = HW["A100-SXM4-80GB"]
    pred = generation(LLAMA, spec, BF16, 8, 128, 64)
    step_at_128 = decode_step_latency(LLAMA, 8, 128, spec, BF16).seconds
    same = anchored(pred, LLAMA, spec, BF16, decode_s=step_at_128, decode_context=128)
    assert same.tpot_s == pytest.approx(pred.tpot_s) and same.ttft_s == pred.ttft_s  # TTFT predicted
    assert same.measured == ("tpot",) and same.split_s is None
    slow = anchored(pred, LLAMA, spec, BF16, decode_s=3 * step_at_128, decode_context=128,
                    prefill_s=2e-3, prefill_batch=1, prefill_prompt=128)
    assert slow.measured == ("ttft", "tpot")
    assert slow.tpot_s == pytest.approx(3 * pred.tpot_s)
    assert slow.tpot_first_s == pytest.approx(3 * step_at_128)
    assert slow.tpot_last_s > slow.tpot_first_s  # the cache grows: the model's growth, measured level
    assert slow.decode_s == pytest.approx(63 * slow.tpot_s)
    # TTFT: one measured prompt, scaled to batch 8 by the predicted prefill
    one_prompt = prefill_latency(LLAMA, 1, 128, spec, BF16).seconds
    assert slow.ttft_s == pytest.approx(2e-3 * pred.ttft_s / one_prompt)
    assert slow.e2e_s == pytest.approx(slow.ttft_s + slow.decode_s)
    assert slow.tokens_per_s_per_gpu == pytest.approx(8 * 64 / slow.e2e_s)
    d = slow.to_dict()
    assert d["predicted"] is False and d["measured_parts"] == ["ttft", "tpot"]
    assert pred.to_dict()["predicted"] is True and pred.to_dict()["measured_parts"] == []
    with pytest.raises(UsageError, match="decode_s: expected measured seconds > 0"):
        anchored(pred, LLAMA, spec, BF16, decode_s=0.0, decode_context=128)


def test_step_report_generation_on_the_measured_steps(tmp_path):
    req = StepRequest(GPT2, (1, 4, 16), 128, prefill=True, precision=INT8_WEIGHTS)
    run = synthetic_step_run(tmp_path, req, on_roof, providers=("triton", "torch"), drop=())
    report = build_report(load_results(run), req, output_tokens=2)  # one decode step: at the context
    rows = {(r.phase, r.batch, r.provider): r for r in report.rows}
    assert len(report.generations) == 2 * 3
    for g in report.generations:
        a, b = g.anchored, g.anchored.batch
        # with 2 output tokens the only decode step is at the measured context: TPOT is the measurement
        assert a.tpot_s == pytest.approx(rows[("decode", b, g.provider)].measured_total_s)
        prefill = rows[("prefill", 1, g.provider)].measured_total_s
        ratio = (prefill_latency(GPT2, b, 128, MEASURED, BF16).seconds
                 / prefill_latency(GPT2, 1, 128, MEASURED, BF16).seconds)
        assert a.ttft_s == pytest.approx(prefill * ratio)
        if b == 1:
            assert a.ttft_s == pytest.approx(prefill)
        assert a.tokens_per_s_per_gpu == pytest.approx(b * 2 / (a.ttft_s + a.tpot_s))
        spec = report.analytic_spec  # the measured ceilings
        assert (spec.mem_bandwidth, spec.peak_flops) == (MEASURED.mem_bandwidth, MEASURED.peak_flops)
        assert g.predicted == generation(GPT2, spec, BF16, b, 128, 2)
        assert g.in_precision == generation(GPT2, spec, INT8_WEIGHTS, b, 128, 2)
        # on_roof: every kernel at half its floor, so the measured generation takes about twice as long
        assert 0.4 < g.predicted.e2e_s / a.e2e_s < 0.6

    write_step_report(run)  # default: 128 output tokens
    md = (run / "step.md").read_text()
    section = md.split("## A whole generation: 128 prompt + 128 output tokens per sequence")[1]
    assert "TTFT: the measured prefill of one 128-token prompt" in section
    assert "measured at one context, the growth with the context taken from the model (predicted)" in section
    assert "| torch | 16 |" in section and "PREDICTED in weights int8" in section
    doc = json.loads((run / "step.json").read_text())["generation"]
    assert doc["prompt"] == 128 and doc["output_tokens"] == 128 and len(doc["rows"]) == 6
    for r in doc["rows"]:
        assert r["on_measured_steps"]["measured_parts"] == ["ttft", "tpot"]
        assert r["predicted"]["predicted"] is True and r["predicted_in_precision"]["predicted"] is True


def test_without_a_measured_prefill_ttft_is_predicted_and_incomplete_steps_are_left_out(tmp_path):
    req = StepRequest(GPT2, (1, 4), 64)
    run = synthetic_step_run(tmp_path, req, on_roof)
    report = build_report(load_results(run), req, output_tokens=8)
    for g in report.generations:
        assert g.anchored.measured == ("tpot",) and g.anchored.ttft_s == g.predicted.ttft_s
    write_step_report(run, output_tokens=8)
    md = (run / "step.md").read_text()
    assert "TTFT: PREDICTED (this run has no --prefill)" in md and " (predicted) |" in md
    assert "past gpt2-small's" not in md
    write_step_report(run, output_tokens=1000)  # 64 + 999 > 1024 positions: said so
    assert "1063 tokens is past gpt2-small's 1024 positions" in (run / "step.md").read_text()

    run2 = synthetic_step_run(tmp_path / "b", req, on_roof, drop=("attention",))  # no complete decode step
    report = build_report(load_results(run2), req)
    assert report.generations == []
    write_step_report(run2)
    assert "No complete decode step in this run: no generation." in (run2 / "step.md").read_text()
    with pytest.raises(UsageError, match="--output-tokens: expected a positive integer"):
        build_report(load_results(run), req, output_tokens=0)


def test_the_generation_keeps_the_request_unchanged_by_a_precision(tmp_path):
    """The measured-step generation is in the run's dtype whatever precision was asked for."""
    base = StepRequest(GPT2, (1,), 64, prefill=True)
    run = synthetic_step_run(tmp_path, base, on_roof)
    plain = build_report(load_results(run), base, output_tokens=4).generations
    quant = build_report(load_results(run), replace(base, precision=INT8_WEIGHTS),
                         output_tokens=4).generations
    assert [g.anchored for g in plain] == [g.anchored for g in quant]
    assert all(g.in_precision is None for g in plain)
    assert all(g.in_precision.e2e_s < g.predicted.e2e_s for g in quant)


# ------------------------------------------------------------------------- pytest --benchmark --model

def _pytest(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--benchmark", *args, f"--results-root={out}",
                           "-q", "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    return proc, out


@pytest.mark.parametrize("args,message", [
    (["--model", "gpt2-small", "--batch", "1", "--context", "64", "--weights", "int3"],
     "--weights: unsupported 'int3'"),
    (["--model", "gpt2-small", "--batch", "1", "--context", "64", "--group-size", "-4"],
     "--group-size: expected an integer >= 1, got -4"),
    (["--weights", "int8"], "--weights: only with --model"),
])
def test_a_bad_precision_option_is_one_line_exit_4_and_no_directory(tmp_path, args, message):
    proc, out = _pytest(tmp_path, *args)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert not out.exists() or not any(out.iterdir())
