"""roofline.model.step and roofline.report.step_report: a model step's benchmark points at the model's real
shapes, the
report's sums and floors on synthetic runs (times chosen by the test), the flat-then-linear claim, bad
input, and one tiny end-to-end ``pytest --benchmark --model`` run on this CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from roofline.errors import UsageError
from roofline.model.hardware import PRESETS as HW
from roofline.model.hardware import HardwareSpec, dtype_class
from roofline.model.latency import decode_compute_bound_batch, decode_step_latency
from roofline.model.ops import MATMUL_KERNELS, kernel_cost
from roofline.model.step import (
    StepRequest,
    all_components,
    check_fits_cpu,
    check_fits_memory,
    largest_case,
    make_request,
    parse_batches,
    step_components,
    step_points,
    write_request,
)
from roofline.model.sweeps import SMOKE_MODEL
from roofline.model.transformer import PRESETS, ModelConfig
from roofline.report.claims import BY_ID
from roofline.report.claims.decode_step import decode_knee_model
from roofline.report.cli import main
from roofline.report.results import load_results
from roofline.report.step_report import (
    build_report,
    decode_knee_from_report,
    floor_seconds,
    measured_knee,
    write_step_report,
)
from tests.data.synth import MEASURED_A100, benchmark, write_run

ROOT = Path(__file__).resolve().parent.parent
GPT2 = PRESETS["gpt2-small"]
BF16 = "bfloat16"
MEASURED = HardwareSpec("m", MEASURED_A100["peak_flops"], MEASURED_A100["mem_bandwidth"], source="measured")


# ------------------------------------------------------------------------------------------ the points

def by_name(comps):
    return {c.name: c for c in comps}


def test_decode_points_are_the_models_real_shapes():
    req = StepRequest(GPT2, (1, 8), 256)
    c = by_name(step_components(req, "decode", 8))
    d, f, v = GPT2.d_model, GPT2.d_ff, GPT2.vocab_size
    assert c["qkv"].point.shape == dict(m=8, d_model=d, n_heads=12, n_kv_heads=12, head_dim=64, bias=True)
    assert c["qkv"].point.sweep.split("/", 1)[1].startswith("decode")  # QKV bench: 8 sequences of 1 token
    assert c["attention"].point.shape == dict(batch=8, n_heads=12, n_kv_heads=12, head_dim=64, q_len=1,
                                              cache_len=256)
    assert c["attn_out"].point.shape == dict(batch=8, n=d, k=d, bias=True)
    assert c["mlp_up"].point.shape == dict(batch=8, n=f, k=d, bias=True)
    assert c["mlp_down"].point.shape == dict(batch=8, n=d, k=f, bias=True)
    assert c["mlp_act"].point.shape == dict(n=8 * f, approximate="tanh", bias_len=0)
    assert c["lm_head"].point.shape == dict(batch=8, n=v, k=d, bias=False)
    assert c["softmax_vocab"].point.shape == dict(rows=8, cols=v)
    assert {n: c[n].count for n in c} == {
        "qkv": 12, "attention": 12, "attn_out": 12, "mlp_up": 12, "mlp_act": 12, "mlp_down": 12,
        "lm_head": 1, "softmax_vocab": 1, "norms": 25, "residual_adds": 24}
    assert not c["norms"].measured and not c["residual_adds"].measured
    assert c["norms"].unmeasured_bytes > 0 and "no kernel" in c["norms"].note
    pts = step_points(req)
    assert len(pts) == 2 * 8 and len({(p.sweep, p.label) for p in pts}) == len(pts)
    assert {p.label for p in pts} == {"B1", "B8"}


def test_the_decode_step_flops_match_the_accounting():
    """The measured components cover every FLOP the accounting counts for a decode step (plus GELU and
    the softmax, which it does not count)."""
    from roofline.model.accounting import decode_flops_breakdown

    req = StepRequest(GPT2, (4,), 300)
    comps = step_components(req, "decode", 4)
    covered = sum(c.count * kernel_cost(c.point.kernel, c.point.shape, BF16).flops for c in comps
                  if c.measured and c.point.kernel not in ("gelu", "softmax"))
    assert covered == pytest.approx(decode_flops_breakdown(GPT2, 4, 300).total, rel=1e-9)


def test_swiglu_gqa_model_lists_what_it_cannot_measure():
    req = StepRequest(PRESETS["llama2-70b"], (2,), 128, prefill=True)
    c = by_name(step_components(req, "decode", 2))
    assert c["mlp_gate"].point is c["mlp_up"].point and c["mlp_gate"].count == 80
    assert not c["mlp_act"].measured and "silu" in c["mlp_act"].note
    assert not c["rotary"].measured
    assert c["attention"].point.shape["n_kv_heads"] == 8
    assert c["qkv"].point.shape["bias"] is False
    # gate and up share one benchmark; the prefill adds its own points
    decode_pts = [p for p in step_points(req) if p.sweep.split("/", 1)[1].startswith("decode")]
    assert len(decode_pts) == 7


def test_prefill_components():
    req = StepRequest(GPT2, (1,), 512, prefill=True)
    c = by_name(step_components(req, "prefill", 99))
    assert c["attention"].point.shape == dict(batch=1, n_heads=12, n_kv_heads=12, head_dim=64, q_len=512,
                                              cache_len=0)
    assert c["qkv"].point.shape["m"] == 512 and c["qkv"].point.sweep.startswith("qkv/prefill.")
    assert c["mlp_up"].point.shape["batch"] == 512
    assert c["lm_head"].point.shape["batch"] == 1  # the last position only
    assert all(x.batch == 1 and x.point is None or x.point.label == "S512" for x in c.values())
    assert {x.phase for x in all_components(req)} == {"decode", "prefill"}


@pytest.mark.parametrize("text, expected", [("1,8,64", (1, 8, 64)), ("64, 1", (1, 64))])
def test_parse_batches(text, expected):
    assert parse_batches(text) == expected


@pytest.mark.parametrize("text", ["", "a,b", "0,4", "-1", "1,,x"])
def test_parse_batches_rejects(text):
    with pytest.raises(UsageError, match="--batch"):
        parse_batches(text)


def test_request_validation():
    with pytest.raises(UsageError, match="--batch"):
        StepRequest(GPT2, (1, 1), 16)
    with pytest.raises(UsageError, match="--context"):
        make_request("gpt2-small", "1", "many")
    with pytest.raises(UsageError, match="--context"):
        StepRequest(GPT2, (1,), 0)
    with pytest.raises(UsageError, match="unknown model preset"):
        make_request("gpt-9", "1", 16)
    with pytest.raises(UsageError, match="too large for a CPU"):
        check_fits_cpu(make_request("llama2-70b", "1", 256))
    with pytest.raises(UsageError, match="too large for a CPU"):
        check_fits_cpu(make_request("gpt2-small", "1", 1 << 20, allow_long_context=True))
    check_fits_cpu(make_request("gpt2-small", "1,4,16", 256))


def test_model_config_json(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(SMOKE_MODEL.to_dict()))
    req = make_request(str(path), "1,2", "64")
    assert req.model == SMOKE_MODEL
    assert StepRequest.from_dict(json.loads(json.dumps(req.to_dict()))) == req


# ------------------------------------------------------------------------------------------ the report

def test_floor_is_the_cost_models_roofline_time():
    spec = HardwareSpec("crafted", {"tensor16": 100e12, "fp32": 10e12}, 1e12)
    for kernel, shape in (("gemv", dict(batch=1, n=3072, k=768, bias=True)),
                          ("gemv", dict(batch=4096, n=3072, k=768, bias=True)),
                          ("softmax", dict(rows=4, cols=50257))):
        cost = kernel_cost(kernel, shape, BF16)
        peak = spec.peak_flops[dtype_class(BF16, matmul=kernel in MATMUL_KERNELS)]
        floor, bound = floor_seconds(kernel, shape, BF16, spec)
        assert floor == max(cost.flops / peak, cost.bytes / spec.mem_bandwidth)
        assert bound == ("compute" if cost.flops / peak >= cost.bytes / spec.mem_bandwidth else "memory")
    assert floor_seconds("gemv", dict(batch=4096, n=3072, k=768, bias=True), BF16, spec)[1] == "compute"
    assert floor_seconds("gemv", dict(batch=1, n=3072, k=768, bias=True), BF16, spec)[1] == "memory"


def synthetic_step_run(tmp_path: Path, request: StepRequest, seconds, *, providers=("triton",),
                       drop: tuple[str, ...] = (), measured: dict = MEASURED_A100) -> Path:
    """A run whose every step point takes ``seconds(point)``; ``drop``: component sweeps left out."""
    rows = []
    for p in step_points(request):
        if any(p.sweep.endswith("." + d) for d in drop):
            continue
        for prov in providers:
            b = benchmark(p.kernel, p.shape, p.dtype, seconds(p), provider=prov, sweep=p.sweep)
            b["extra_info"]["label"] = p.label
            b["name"] = f"test_{p.kernel}[{prov}-{p.id}]"
            rows.append(b)
    run = write_run(tmp_path / "run", rows, measured=measured)
    write_request(run, request)
    return run


def on_roof(p, efficiency=0.5):
    return floor_seconds(p.kernel, p.shape, p.dtype, MEASURED)[0] / efficiency


def test_report_sums_components_and_uses_the_cost_model(tmp_path):
    req = StepRequest(GPT2, (1, 16), 256, prefill=True)
    run = synthetic_step_run(tmp_path, req, on_roof, providers=("triton", "torch"))
    report = build_report(load_results(run), req)
    assert report.spec.mem_bandwidth == MEASURED.mem_bandwidth  # the measured ceilings, not the datasheet
    assert len(report.rows) == 2 * 3
    for row in report.rows:
        assert row.complete
        measured = [c for c in row.components if c.kernel]
        assert row.measured_total_s == pytest.approx(sum(c.measured_s for c in measured))
        assert row.fraction == pytest.approx(0.5)
        for comp, c in zip(row.components, step_components(req, row.phase, row.batch), strict=True):
            if c.point is None:
                assert comp.measured_s is None and comp.floor_s == pytest.approx(
                    c.count * c.unmeasured_bytes / MEASURED.mem_bandwidth)
                continue
            cost = kernel_cost(c.point.kernel, c.point.shape, BF16)
            peak = MEASURED.peak_flops[dtype_class(BF16, matmul=c.point.kernel in MATMUL_KERNELS)]
            assert comp.floor_s == pytest.approx(c.count * max(cost.flops / peak,
                                                               cost.bytes / MEASURED.mem_bandwidth))
            assert comp.measured_s == pytest.approx(2 * comp.floor_s)
        if row.phase == "decode":
            assert row.analytic_s == decode_step_latency(GPT2, row.batch, 256, MEASURED, BF16).seconds
            # the analytic bound counts every byte of the step; the measured parts' floor is close to it
            assert 0.9 < row.floor_total_s / row.analytic_s < 1.1

    paths = write_step_report(run)
    names = {p.name for p in paths}
    assert {"step.md", "step.json", "step.png", "step.svg"} <= names
    doc = json.loads((run / "step.json").read_text())
    for step in doc["steps"]:
        assert step["measured_total_s"] == pytest.approx(
            sum(c["measured_s"] for c in step["components"] if c["measured_s"] is not None))
        assert step["analytic_predicted"] is True
    md = (run / "step.md").read_text()
    assert "| decode B=16 | torch |" in md and "prefill 256" in md and "not measured: layernorm" in md


def test_missing_component_is_reported_not_summed_silently(tmp_path):
    req = StepRequest(GPT2, (1,), 64)
    run = synthetic_step_run(tmp_path, req, on_roof, drop=("attention",))
    (row,) = build_report(load_results(run), req).rows
    assert not row.complete and row.missing == ["attention"]
    assert "missing: attention" in (write_step_report(run)[0]).read_text()


def test_fp32_step_on_a_device_without_a_tf32_peak(tmp_path):
    """A CPU measures no tf32 peak: the floors and the analytic bound fall back to fp32, as
    roofline.report.results.peak_for does, and the report shows only what was measured."""
    cpu = {"mem_bandwidth": 20e9, "peak_flops": {"fp32": 100e9}, "method": "synthetic CPU"}
    spec = HardwareSpec("cpu", cpu["peak_flops"], cpu["mem_bandwidth"], source="measured")
    req = StepRequest(GPT2, (1, 4), 64, dtype="float32")
    run = synthetic_step_run(tmp_path, req, lambda p: 2 * floor_seconds(p.kernel, p.shape, p.dtype, spec)[0],
                             measured=cpu)
    report = build_report(load_results(run), req)
    assert set(report.spec.peak_flops) == {"fp32"}
    for row in report.rows:
        assert row.fraction == pytest.approx(0.5)
        tf32_as_fp32 = HardwareSpec("cpu", {"fp32": 100e9, "tf32": 100e9}, 20e9)
        assert row.analytic_s == decode_step_latency(GPT2, row.batch, 64, tf32_as_fp32, "float32").seconds
    assert "tf32" not in write_step_report(run)[0].read_text().split("## Steps")[0]


def flat_then_linear(knee: float):
    """Each call takes twice its batch-1 floor up to ``knee``, then grows linearly with the batch (and never
    less than its own floor at this batch)."""
    def seconds(p):
        key = next(k for k in ("batch", "m", "rows", "n") if k in p.shape)
        per = GPT2.d_ff if p.kernel == "gelu" else 1
        one = dict(p.shape, **{key: per})
        shaped = 2 * floor_seconds(p.kernel, one, p.dtype, MEASURED)[0] * max(1.0, p.shape[key] / per / knee)
        return max(shaped, 1.25 * floor_seconds(p.kernel, p.shape, p.dtype, MEASURED)[0])  # never below floor
    return seconds


def test_knee_supported_when_measured_near_the_predicted_ridge(tmp_path):
    req = StepRequest(GPT2, (1, 16, 64, 256, 1024), 16)
    predicted = decode_compute_bound_batch(GPT2, MEASURED, BF16, 16)
    assert predicted is not None and 50 < predicted < 500
    run = synthetic_step_run(tmp_path, req, flat_then_linear(predicted))
    report = build_report(load_results(run), req)
    assert report.ridge_batch == predicted
    v = decode_knee_from_report(report)
    assert v.status == "supported", v
    (knee, pred), = v.numbers["knees"].values()
    assert 0.5 < knee / predicted < 2 and pred == predicted
    # the claim's measured check reads the same run through the registry
    assert BY_ID["decode-flat-until-ridge-batch"].measured_check(load_results(run), MEASURED).status == \
        "supported"


def test_knee_refuted_when_far_from_the_prediction(tmp_path):
    req = StepRequest(GPT2, (1, 16, 64, 256, 1024), 16)
    run = synthetic_step_run(tmp_path, req, flat_then_linear(4.0))
    v = decode_knee_from_report(build_report(load_results(run), req))
    assert v.status == "refuted" and "measured knee at batch" in v.summary
    (knee, pred), = v.numbers["knees"].values()
    assert knee < pred / 2


def test_knee_inconclusive_when_a_step_beats_its_floor(tmp_path):
    req = StepRequest(GPT2, (1, 16, 64, 256, 1024), 16)
    fast = flat_then_linear(4.0)
    run = synthetic_step_run(tmp_path, req, lambda p: fast(p) / 10)  # 5x faster than the floor at B=1
    v = decode_knee_from_report(build_report(load_results(run), req))
    assert v.status == "inconclusive" and "beats its roofline floor" in v.summary
    assert "**Warning**" in write_step_report(run)[0].read_text()


def test_knee_inconclusive_without_enough_batches_or_a_step_run(tmp_path):
    req = StepRequest(GPT2, (1, 16), 16)
    run = synthetic_step_run(tmp_path, req, on_roof)
    assert decode_knee_from_report(build_report(load_results(run), req)).status == "inconclusive"
    plain = write_run(tmp_path / "plain", [benchmark("softmax", dict(rows=4, cols=1024), BF16, 1e-5)],
                      measured=MEASURED_A100)
    assert BY_ID["decode-flat-until-ridge-batch"].measured_check(load_results(plain), MEASURED).status == \
        "inconclusive"


def test_measured_knee():
    assert measured_knee([(1, 1.0), (64, 1.0), (128, 2.0), (256, 4.0)]) == pytest.approx(64)
    assert measured_knee([(1, 1.0), (2, 1.0), (4, 1.0)]) is None


def test_model_check_on_the_seed_hardware():
    v = decode_knee_model(HW["A100-SXM4-80GB"], BF16)
    assert v.status == "supported"
    assert 100 < v.numbers["ridge_batch"] < 250 and v.numbers["flat_ratio"] < 1.1


def test_cli_step(tmp_path, capsys):
    req = StepRequest(GPT2, (1, 4), 64)
    run = synthetic_step_run(tmp_path, req, on_roof)
    assert main(["step", str(run), "--out", str(tmp_path / "out")]) == 0
    assert "# Model step: gpt2-small, context 64" in capsys.readouterr().out
    assert (tmp_path / "out" / "step.png").is_file()
    (run / "step-request.json").unlink()
    assert main(["step", str(run)]) == 2
    assert "not made with --model" in capsys.readouterr().err
    (run / "step-request.json").write_text("{broken")
    assert main(["step", str(run)]) == 2


# ------------------------------------------------------------------------------------------ end to end

def test_model_run_end_to_end_on_this_cpu(tmp_path):
    """A tiny model (the smoke model, 2 layers) through the whole pipeline with the torch provider (the
    interpreter checks of the Triton kernels are the sweeps' end-to-end test's); step.md/json and the
    figure written; components sum to the total; ``--weights int8 --kv fp8`` recorded and predicted, and
    the generation on the measured steps."""
    cfg = ModelConfig(**{**SMOKE_MODEL.to_dict(), "n_layers": 2, "name": "smoke-step"})
    config = tmp_path / "smoke.json"
    config.write_text(json.dumps(cfg.to_dict()))
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT")) and k != "TRITON_INTERPRET"}
    cmd = [sys.executable, "-m", "pytest", "--benchmark", f"--model={config}", "--batch", "1,2,4",
           "--context", "64", "--prefill", "--weights", "int8", "--kv", "fp8", "--providers=torch",
           f"--results-root={out}",
           "--benchmark-max-time=0.01", "--benchmark-min-rounds=3", "--ceilings-budget=0.05", "-q", "-p",
           "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (run,) = [p for p in out.glob("*/*") if p.is_dir()]
    for name in ("step.md", "step.json", "step.png", "step-request.json", "claims.md"):
        assert (run / name).is_file(), name
    assert "roofline.report.step_report:" in proc.stdout
    doc = json.loads((run / "step.json").read_text())
    assert {(s["phase"], s["batch"]) for s in doc["steps"]} == {("decode", 1), ("decode", 2), ("decode", 4),
                                                               ("prefill", 1)}
    bench = json.loads((run / "benchmark.json").read_text())["benchmarks"]
    medians = {(b["extra_info"]["sweep"], b["extra_info"]["label"]): b["extra_info"]["median_s"]
               for b in bench if b["extra_info"]["provider"] == "torch"}
    for step in doc["steps"]:
        assert step["provider"] == "torch" and step["complete"]
        assert step["measured_total_s"] == pytest.approx(
            sum(c["measured_s"] for c in step["components"] if c["measured_s"] is not None))
        comps = {c.name: c for c in step_components(StepRequest(cfg, (1, 2, 4), 64), step["phase"],
                                                    step["batch"])}
        for c in step["components"]:
            point = comps[c["name"]].point
            if point is not None:
                assert c["measured_s"] == pytest.approx(c["count"] * medians[(point.sweep, point.label)])
    assert "decode-flat-until-ridge-batch" in (run / "claims.md").read_text()
    assert json.loads((run / "provenance.json").read_text())["sweep"] == "model:smoke-step"
    request = json.loads((run / "step-request.json").read_text())
    assert (request["precision"]["weights"], request["precision"]["kv"]) == ("int8", "fp8")
    assert request["precision"]["activations"] == request["dtype"]  # the run's dtype, what the kernels ran
    assert doc["precision"]["measured"] is False
    # fewer bytes, the same bf16 math: never slower (equal where the tiny model's step is compute-bound on
    # the ceilings this busy CPU measured; the exact values are tests/test_step_precision.py's)
    assert all(s["precision_lower_bound_s"] <= s["analytic_lower_bound_s"] for s in doc["steps"])
    gen = doc["generation"]["rows"]
    assert [g["batch"] for g in gen] == [1, 2, 4]
    prefill = next(s for s in doc["steps"] if s["phase"] == "prefill")["measured_total_s"]
    assert gen[0]["on_measured_steps"]["ttft_s"] == pytest.approx(prefill)  # batch 1: the measured prefill
    step_md = (run / "step.md").read_text()
    assert "quantized kernels were not measured" in step_md and "## A whole generation: 64 prompt" in step_md
    # per-round times stay in benchmark.json (what `python -m roofline compare` reads)
    for b in bench:
        assert len(b["stats"]["data"]) == b["extra_info"]["rounds"] >= 3
    assert main(["compare", str(run), str(run), "--no-figure", "--out", str(tmp_path / "cmp")]) == 0


@pytest.mark.parametrize("key", ["bias", "tied_embeddings", "parallel_block"])
@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_config_json_booleans_must_be_json_booleans(tmp_path, key, value):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({**SMOKE_MODEL.to_dict(), key: value}))
    with pytest.raises(UsageError, match=f"{key} must be a JSON boolean \\(true or false\\), got {value!r}"):
        make_request(str(path), "1", "64")
    path.write_text(json.dumps({**SMOKE_MODEL.to_dict(), key: False}))
    assert getattr(make_request(str(path), "1", "64").model, key) is False


def test_context_past_the_models_positions_needs_allow_long_context():
    with pytest.raises(UsageError, match=r"--context 4096: gpt2-small has 1024 positions"):
        make_request("gpt2-small", "1", "4096")
    assert make_request("gpt2-small", "1", "4096", allow_long_context=True).context == 4096
    assert make_request("gpt2-small", "1", "1024").context == 1024  # every position, not one past
    assert make_request("gpt2-small", "1", None).context == 1024  # the default, capped at the model's
    assert make_request("llama2-7b", "1", None).context == 4096


def test_a_batch_that_cannot_fit_the_devices_memory_is_refused_with_the_estimate():
    request = make_request("gpt2-small", "1,1000000", "64")
    nbytes, point = largest_case(request)
    # decode attention at a million sequences: q, the caches and the output, ~200 GB in bf16
    assert point.kernel == "attention" and point.shape["batch"] == 1_000_000
    assert nbytes == kernel_cost("attention", point.shape, BF16).bytes > 1e6 * 2 * 12 * 65 * 64 * 2
    expected = (r"--batch 1,1000000 --context 64: the largest case \(attention/decode\.step\.gpt2-small"
                r"\.attention B1000000\) needs about 406 GB \(estimated: 2 x its 203 GB .* "
                r"than the 80 GB of GPU")
    with pytest.raises(UsageError, match=expected):
        check_fits_memory(request, 80e9, "GPU")
    check_fits_memory(make_request("gpt2-small", "1,64", "64"), 80e9, "GPU")  # fits: no error


def test_host_memory_is_memavailable(tmp_path):
    from bench.step_options import host_available_bytes

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:  1000 kB\nMemAvailable:   20000000 kB\n")
    assert host_available_bytes(str(meminfo)) == 20000000 * 1024
    assert host_available_bytes(str(tmp_path / "none")) > 0  # no /proc: the physical memory


@pytest.mark.parametrize("case", ["bool", "context", "batch"])
def test_bad_model_inputs_are_one_line_exit_4_and_no_directory(tmp_path, case):
    config = tmp_path / "m.json"
    config.write_text(json.dumps({**SMOKE_MODEL.to_dict(), "bias": "no"}))
    args, message = {
        "bool": ([f"--model={config}", "--batch", "1"], "bias must be a JSON boolean"),
        "context": (["--model", "gpt2-small", "--batch", "1", "--context", "4096"],
                    "--context 4096: gpt2-small has 1024 positions"),
        "batch": (["--model", "gpt2-small", "--batch", "1000000", "--context", "64"],
                  "--batch 1000000 --context 64: the largest case (attention/decode"),
    }[case]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--benchmark", *args, f"--results-root={out}",
                           "-q", "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert not out.exists() or not any(out.iterdir())  # nothing measured, no directory


def test_bad_model_option_is_a_usage_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--benchmark", "--model", "gpt-9",
                           f"--results-root={tmp_path}", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "unknown model preset 'gpt-9'" in proc.stderr
    assert not any(tmp_path.iterdir())  # no run directory left behind


@pytest.mark.parametrize("knee,suspect,label", [
    ("predicted", False, "supported"), (4.0, False, "refuted"), ("predicted", True,
                                                                "inconclusive (ceilings suspect)"),
    (4.0, True, "inconclusive (ceilings suspect)")])
def test_step_md_and_claims_md_give_the_same_verdict(tmp_path, knee, suspect, label):
    from roofline.report.claims.report import write_report

    req = StepRequest(GPT2, (1, 16, 64, 256, 1024), 16)
    predicted = decode_compute_bound_batch(GPT2, MEASURED, BF16, 16)
    measured = dict(MEASURED_A100)
    if suspect:  # a wide best/median spread of the memory ceiling: suspect
        bw = MEASURED_A100["mem_bandwidth"]
        measured["ceilings"] = {"memory": {"best": bw, "median": bw / 2}}
    run = synthetic_step_run(tmp_path, req, flat_then_linear(predicted if knee == "predicted" else knee),
                             measured=measured)
    write_step_report(run)
    claims = write_report(run).read_text()
    row = next(line for line in claims.splitlines() if "`decode-flat-until-ridge-batch`" in line)
    assert f"| {label} " in row, row
    step_md = (run / "step.md").read_text()
    assert f"**{label}**:" in step_md
    claim = json.loads((run / "step.json").read_text())["claim"]
    assert claim["label"] == label and (("ceilings suspect (" in claim["summary"]) is suspect)


def test_an_interrupted_model_run_names_the_step_report_among_those_not_drawn(tmp_path):
    from types import SimpleNamespace

    from bench import step_options

    config = SimpleNamespace(stash=pytest.Stash())
    assert step_options.report_commands(config, tmp_path) == []  # a sweep run: plot and claims only
    config.stash[step_options.REQUEST] = StepRequest(GPT2, (1,), 64)
    assert step_options.report_commands(config, tmp_path) == [f"python -m roofline step {tmp_path}"]
