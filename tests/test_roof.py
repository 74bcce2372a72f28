"""roofline.model.roof: one roof decision, tested as other machines would see it.

Each machine is faked at the measurement boundary: its CPU flags and torch report
(:func:`bench.provenance.cpu_features`) and its probe results (one pass of
:func:`bench.ceilings.measure_pass`'s shape). Everything after that is the real pipeline:
:func:`bench.ceilings.combine` -> ``ceilings.json`` -> :func:`roofline.report.results.load_results` ->
:func:`roofline.model.roof.judge_run` -> claims and plots.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.ceilings import ceilings_document, combine, datasheet_for
from bench.provenance import cpu_features, parse_cpuinfo
from bench.record import Roofs, extra_info
from bench.timing import Summary
from roofline.model.hardware import MIG_NOTE, PRESETS, UnknownHardwareError, from_measured, lookup_device
from roofline.model.ops import kernel_cost
from roofline.model.roof import TOLERANCE_FLOOR, assess_ceilings, point_roof
from roofline.model.sweeps import SweepPoint, sweep_dtype
from roofline.model.transformer import PRESETS as MODELS
from roofline.report.claims import evaluate, markdown_report, write_report
from roofline.report.plot import measured_points
from roofline.report.results import load_results
from roofline.rundir import measured_spec
from tests.data.synth import benchmark, write_run

MiB = 2**20
EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx avx2 fma bmi2

processor\t: 1
flags\t\t: fpu avx2
"""
SPR = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile
"""
NO_NATIVE_TORCH = {"capability": "AVX2", "mkldnn_available": True, "mkldnn_bf16": False, "mkldnn_fp16": False}
NATIVE_TORCH = {"capability": "AVX512", "mkldnn_available": True, "mkldnn_bf16": True, "mkldnn_fp16": True}
SMALL = MODELS["gpt2-small"]


def probe(dtype: str, cls: str, layout: str, n: int, best: float, spread: float = 1.03) -> dict:
    m = 64 if layout == "skinny" else n
    return {"dtype": dtype, "class": cls, "layout": layout, "m": m, "n": n, "k": n, "best": best,
            "median": best / spread, "repeats": 5}


def a_pass(when: str, *, memory: dict[str, float], probes: list[dict], load: float = 0.2, cores: int = 2,
           spread: float = 1.03) -> dict:
    return {"when": when,
            "load": {"loadavg": [load, load, load], "usable_cores": cores, "torch_threads": cores,
                     "own_threads": 1 if when == "before" else cores},
            "memory": {k: {"best": v, "median": v / spread, "repeats": 5, "buffer_bytes": 256 * MiB,
                           "counted": k} for k, v in memory.items()},
            "probes": probes, "buffer_bytes": 256 * MiB, "cache_bytes": 32 * MiB}


def cpu_passes(*, bf16: float = 1.35e9, fp32: float = 130e9, bw: float = 20e9, load: float = 0.2,
               spread: float = 1.03) -> list[dict]:
    """An AVX2 EPYC as issue 12 measured it: bf16 GEMM on torch's slow fallback, fp32 GEMM fast."""
    def probes(scale: float) -> list[dict]:
        return [probe("bfloat16", "tensor16", "square", 512, bf16 * scale, spread),
                probe("bfloat16", "tensor16", "linear", 512, 0.9 * bf16 * scale, spread),
                probe("float16", "tensor16", "square", 256, 0.5 * bf16 * scale, spread),
                probe("float32", "fp32", "linear", 1024, fp32 * scale, spread),
                probe("float32", "fp32", "skinny", 1024, 0.3 * fp32 * scale, spread)]
    mem = {"copy": bw, "read": 0.9 * bw, "write": 0.7 * bw}
    return [a_pass("before", memory=mem, probes=probes(1.0), load=load, spread=spread),
            a_pass("after", memory={k: 0.98 * v for k, v in mem.items()}, probes=probes(0.98), load=load,
                   spread=spread)]


def at_rate(kernel: str, shape: dict, dtype: str, flops_per_s: float, **kw) -> dict:
    """A synthetic benchmark that reached ``flops_per_s``."""
    cost = kernel_cost(kernel, shape, dtype)
    return benchmark(kernel, shape, dtype, cost.flops / flops_per_s, **kw)


def at_bandwidth(kernel: str, shape: dict, dtype: str, bytes_per_s: float, **kw) -> dict:
    cost = kernel_cost(kernel, shape, dtype)
    return benchmark(kernel, shape, dtype, cost.bytes / bytes_per_s, **kw)


CPU = dict(device="cpu: AMD EPYC 7B13", device_kind="cpu", provider="torch", hardware="cpu: AMD EPYC 7B13")


def epyc_records() -> list[dict]:
    """bf16 points at the rates issue 12 measured on the AVX2 EPYC (2 threads)."""
    gemv = dict(n=SMALL.d_ff, k=SMALL.d_model, bias=True)
    qkv = dict(m=1024, d_model=768, n_heads=12, n_kv_heads=12, head_dim=64, bias=True)
    return [
        at_rate("gemv", dict(batch=1, **gemv), "bfloat16", 1.5e9, **CPU),  # memory-bound decode
        at_rate("gemv", dict(batch=16, **gemv), "bfloat16", 12e9, **CPU),  # F.linear bf16: 8-18 GFLOP/s
        at_rate("attention", dict(batch=8, n_heads=12, n_kv_heads=12, head_dim=64, q_len=128, cache_len=0),
                "bfloat16", 66e9, **CPU),  # SDPA prefill
        at_rate("qkv", qkv, "bfloat16", 124e9, **CPU),  # bf16 upcast + fp32 GEMM
        at_bandwidth("attention", dict(batch=1, n_heads=12, n_kv_heads=12, head_dim=64, q_len=1,
                                       cache_len=4096), "bfloat16", 10e9, **CPU),
        at_bandwidth("softmax", dict(rows=256, cols=4096), "bfloat16", 12e9, **CPU),
    ]


def cpu_run(tmp_path, features: dict, **passes) -> tuple:
    measured = combine(cpu_passes(**passes), features["native"], "cpu")
    path = write_run(tmp_path, epyc_records(), measured=measured, datasheet=None, device=CPU["device"])
    return measured, load_results(path)


def measured_status(rows, claim_id: str) -> str:
    return next(r.measured.status for r in rows if r.claim.id == claim_id)


# ---------------------------------------------------------------------------------------------- CPUs

def test_cpu_without_native_bf16_gets_a_class_roof_at_least_fp32(tmp_path):
    features = cpu_features(EPYC_AVX2, NO_NATIVE_TORCH)
    assert features["flags"] == ["avx2"] and features["family"] == 25 and features["model"] == 1
    bf16 = features["native"]["bfloat16"]
    assert not bf16["native"] and "avx512_bf16" in bf16["reason"]
    assert sweep_dtype("cpu", features=features)[0] == "float32"
    measured, res = cpu_run(tmp_path, features)
    assert measured["ceilings"]["tensor16"]["best"] >= measured["ceilings"]["fp32"]["best"] == 130e9
    assert "floored_at_fp32" in measured["ceilings"]["tensor16"]
    run = res.judged
    assert run.spec.peak_flops["tensor16"] >= run.spec.peak_flops["fp32"]
    assert not run.suspect and run.above == ()
    rows = evaluate(res)
    assert measured_status(rows, "no-point-above-roof") == "supported"
    assert measured_status(rows, "matmuls-always-compute-bound") == "refuted"  # decode GEMV is memory-bound
    assert measured_status(rows, "decode-attention-memory-bound") == "supported"


def test_the_same_cpu_judged_on_its_slow_bf16_probe_would_flag_points(tmp_path):
    """The counterfactual: had the class roof been the bf16 probe (issue 12's bug), the same points sit
    above it. Guards the test above against passing vacuously."""
    fake_native = {d: {"native": True, "reason": "faked"} for d in ("bfloat16", "float16")}
    measured = combine(cpu_passes(), fake_native, "cpu")
    assert measured["ceilings"]["tensor16"]["best"] == pytest.approx(1.35e9)
    res = load_results(write_run(tmp_path, epyc_records(), measured=measured, datasheet=None,
                                 device=CPU["device"]))
    run = res.judged
    assert len(run.above) >= 3 and run.suspect_ceilings == ("tensor16",)
    assert measured_status(evaluate(res), "no-point-above-roof") == "refuted"


def test_cpu_with_native_bf16_keeps_its_measured_bf16_roof(tmp_path):
    features = cpu_features(SPR, NATIVE_TORCH)
    assert set(features["flags"]) >= {"avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile"}
    assert features["native"]["bfloat16"]["native"] and features["native"]["float16"]["native"]
    dtype, reason = sweep_dtype("cpu", features=features)
    assert dtype == "bfloat16" and "amx_bf16" in reason
    measured = combine(cpu_passes(bf16=400e9, fp32=100e9), features["native"], "cpu")
    assert measured["ceilings"]["tensor16"]["best"] == pytest.approx(400e9)
    assert "floored_at_fp32" not in measured["ceilings"]["tensor16"]


def test_flags_without_torch_support_are_not_native():
    features = cpu_features(SPR, {**NATIVE_TORCH, "mkldnn_bf16": False})
    assert not features["native"]["bfloat16"]["native"] and "torch does not use" in \
        features["native"]["bfloat16"]["reason"]
    assert sweep_dtype("cpu", "bf16", features=features) == ("bfloat16", "--dtype bfloat16 (given on the "
                                                                          "command line)")


def test_parse_cpuinfo_reads_the_first_processor():
    info = parse_cpuinfo(EPYC_AVX2)
    assert info["model_name"] == "AMD EPYC 7B13" and info["vendor"] == "AuthenticAMD"
    assert "bmi2" in info["flags"] and info["family"] == 25


# --------------------------------------------------------------------------------------------- a GPU

def gpu_passes(read: float, copy: float = 1.6e12) -> list[dict]:
    probes = [probe("bfloat16", "tensor16", "linear", 8192, 250e12),
              probe("float16", "tensor16", "square", 8192, 260e12),
              probe("float32+tf32", "tf32", "square", 8192, 130e12),
              probe("float32", "fp32", "square", 8192, 18e12)]
    mem = {"copy": copy, "read": read, "write": 1.5e12}
    return [a_pass("before", memory=mem, probes=probes, cores=16), a_pass("after", memory=mem, probes=probes,
                                                                          cores=16)]


def test_a_gpu_whose_read_stream_beats_its_copy_gets_the_read_roof(tmp_path):
    name = "NVIDIA A100-SXM4-80GB"
    l7 = MODELS["llama2-7b"]
    records = [at_bandwidth("gemv", dict(batch=1, n=l7.d_ff, k=l7.d_model, bias=False), "bfloat16", 1.85e12),
               at_bandwidth("attention", dict(batch=1, n_heads=32, n_kv_heads=32, head_dim=128, q_len=1,
                                              cache_len=32768), "bfloat16", 1.8e12)]
    measured = combine(gpu_passes(read=1.95e12), None, "cuda")
    assert measured["mem_bandwidth"] == 1.95e12 and measured["ceilings"]["memory"]["probe"].startswith("read")
    assert {k: v["best"] for k, v in measured["memory"].items()} == {"copy": 1.6e12, "read": 1.95e12,
                                                                     "write": 1.5e12}
    datasheet = datasheet_for(name, "cuda")
    res = load_results(write_run(tmp_path / "read", records, measured=measured, datasheet=datasheet,
                                 device=name))
    run = res.judged
    assert run.above == () and not run.suspect
    assert [p.ceiling for p in run.points] == ["memory", "memory"]
    assert all(p is not None and p.hardware == "A100-SXM4-80GB" for p in run.datasheet_points)
    # The copy alone as the memory roof (the old method): both points beat it, the report names it.
    copy_only = combine(gpu_passes(read=1.0e12), None, "cuda")
    res = load_results(write_run(tmp_path / "copy", records, measured=copy_only, datasheet=datasheet,
                                 device=name))
    run = res.judged
    assert len(run.above) == 2 and run.suspect_ceilings == ("memory",)
    text = run.above[0].describe(run.spec)
    assert "memory ceiling (1,600.0 GB/s) by 16%" in text and "5% tolerance" in text
    rows = evaluate(res)
    assert measured_status(rows, "no-point-above-roof") == "refuted"
    decode = next(r.measured for r in rows if r.claim.id == "decode-attention-memory-bound")
    assert decode.status == "inconclusive" and decode.numbers["ceilings_suspect"]


# ------------------------------------------------------------------------------------- a loaded machine

def test_a_loaded_machine_with_a_wide_spread_withholds_every_roof_verdict(tmp_path):
    features = cpu_features(EPYC_AVX2, NO_NATIVE_TORCH)
    measured, res = cpu_run(tmp_path, features, load=6.0, spread=2.0)
    check = assess_ceilings(measured)
    assert check.suspect
    assert any("loaded machine before" in r for r in check.reasons)
    assert any("wide spread" in r for r in check.reasons)
    assert check.tolerance_for("fp32") == pytest.approx(1.0)  # the spread, not the 5% floor
    assert measured["stability"]["suspect"] is True
    rows = evaluate(res)
    for r in rows:
        if r.measured is not None and r.claim.roof_dependent:
            assert r.measured.status == "inconclusive", r.claim.id
    report = markdown_report(rows, PRESETS["A100-SXM4-80GB"], res, "bfloat16")
    assert "WARNING, CEILINGS SUSPECT" in report and "inconclusive (ceilings suspect)" in report
    assert "unjudged reading: supported" in report  # what it would have said stays visible
    assert next(r.model.status for r in rows if r.claim.id == "elementwise-memory-bound") == "supported"


def test_drift_between_before_and_after_is_a_spread_too():
    passes = cpu_passes()
    passes[1]["probes"] = [dict(p, best=p["best"] / 2, median=p["median"] / 2) for p in passes[1]["probes"]]
    check = assess_ceilings(combine(passes, cpu_features(EPYC_AVX2, NO_NATIVE_TORCH)["native"], "cpu"))
    want = "fp32 ceiling: 1.3e+11 before the sweep vs 6.37e+10 after (2.04x apart"
    assert any(want in r for r in check.reasons)
    assert check.tolerance_for("fp32") == pytest.approx(1 / 0.49 - 1)


def test_an_older_ceilings_file_gets_the_floor_and_a_note():
    check = assess_ceilings({"mem_bandwidth": 1e9, "peak_flops": {"fp32": 1e10}})
    assert not check.suspect and check.tolerance_for("memory") == TOLERANCE_FLOOR
    assert "older ceilings.json" in check.notes[0]


# ------------------------------------------------------------------------------------------------ MIG

def test_a_mig_slice_gets_no_datasheet(tmp_path):
    name = "NVIDIA A100-SXM4-80GB MIG 1g.10gb"
    with pytest.raises(UnknownHardwareError, match="MIG slice"):
        lookup_device(name)
    assert datasheet_for(name, "cuda", l2_bytes=5 * MiB) is None
    measured = combine(gpu_passes(read=0.25e12, copy=0.2e12), None, "cuda")
    doc = ceilings_document(name, measured, None)
    assert doc["datasheet"] is None and doc["datasheet_note"] == MIG_NOTE
    spec = measured_spec(name, measured, None)
    assert spec.source == "measured" and spec.mem_bandwidth == measured["mem_bandwidth"]
    records = [at_bandwidth("softmax", dict(rows=4096, cols=4096), "bfloat16", 0.2e12, device=name)]
    path = write_run(tmp_path, records, measured=measured, datasheet=None, device=name)
    res = load_results(path)
    assert res.judged.datasheet is None and MIG_NOTE in res.judged.notes
    assert "MIG slice" in write_report(path).read_text()


def test_device_reported_l2_wins_over_the_preset():
    assert PRESETS["H200"].l2_bytes == 60 * MiB
    spec = datasheet_for("NVIDIA H100 80GB HBM3", "cuda", l2_bytes=52 * MiB)
    assert spec.name == "H100-SXM5" and spec.l2_bytes == 52 * MiB
    assert datasheet_for("NVIDIA H200", "cuda").l2_bytes == 60 * MiB


# ------------------------------------------------------------------------------- one roof, every file

def test_benchmark_json_plots_and_claims_agree_on_every_point(tmp_path):
    """benchmark.json (bench.record), the plots (measured_points) and the claims (judge_run) place every
    point under the same roof with the same fraction and the same above-roof flag."""
    features = cpu_features(EPYC_AVX2, NO_NATIVE_TORCH)
    measured = combine(cpu_passes(), features["native"], "cpu")
    roofs = Roofs(measured_spec(CPU["device"], measured, None), None)
    check = assess_ceilings(measured)
    rows = []
    for i, b in enumerate(epyc_records()):
        info = b["extra_info"]
        point = SweepPoint(info["kernel"], info["sweep"], info["shape"], info["dtype"], f"p{i}")
        s = info["median_s"]
        b["extra_info"] = {**info, **extra_info(
            point=point, provider="torch", variant=None, config=None, device_name=CPU["device"],
            device_kind="cpu", summary=Summary(s, s, s, 5), roofs=roofs, max_error=0.0,
            tolerance=(1e-2, 1e-2), timing_method="synthetic", check=check)}
        rows.append(b)
    # one deliberately miscounted point, 1.5x its roof
    fast = json.loads(json.dumps(rows[-1]))
    fast["name"] += "-fast"
    for key in ("median_s",):
        fast["extra_info"][key] /= 60
    fast["stats"]["median"] = fast["extra_info"]["median_s"]
    rows.append(fast)
    res = load_results(write_run(tmp_path, rows, measured=measured, datasheet=None, device=CPU["device"]))
    run = res.judged
    points = measured_points(res.records, res.roof, run)
    for rec, pr, pt in zip(res.records, run.points, points, strict=True):
        if rec.name.endswith("-fast"):
            continue
        assert rec.extra["roof_fraction"] == pytest.approx(pr.fraction) == pytest.approx(pt.roof_fraction)
        assert rec.extra["dtype_class"] == pr.dtype_class == pt.dtype_class
        assert rec.extra["attainable_s"] == pytest.approx(pr.attainable_s)
        assert rec.extra["above_roof"] is pt.above_roof is run.is_above(res.records.index(rec)) is False
    assert [a.name for a in run.above] == [fast["name"]] and points[-1].above_roof
    for i, (rec, pt) in enumerate(zip(res.records, points, strict=True)):  # one function places each point
        where = run.placements[i]
        assert where.roof == run.points[i] and where.predicted_intensity == rec.cost().intensity
        assert (pt.predicted_x, pt.predicted_y, pt.roof_y, pt.tolerance) == (
            where.predicted_intensity, where.predicted_flops_per_s, where.roof.attainable_flops_per_s,
            where.tolerance)


def test_point_roof_rejects_nonsense():
    spec = from_measured("x", 1e9, {"fp32": 1e10})
    with pytest.raises(ValueError, match="flops, nbytes, seconds"):
        point_roof(spec, "gelu", "float32", 0.0, 1.0, 1.0)
    p = point_roof(spec, "qkv", "float32", 1e10, 1e8, 2.0)  # intensity 100 > ridge 10
    assert (p.dtype_class, p.bound, p.ceiling) == ("fp32", "compute", "fp32")
    assert p.fraction == pytest.approx(0.5) and p.ridge == pytest.approx(10.0)


def test_host_load_is_recorded_but_not_judged_for_a_gpu():
    passes = gpu_passes(read=1.9e12)
    for p in passes:
        p["load"].update(loadavg=[40.0, 40.0, 40.0], device_kind="cuda")
    check = assess_ceilings(combine(passes, None, "cuda"))
    assert not check.suspect
    passes = cpu_passes(load=40.0)
    for p in passes:
        p["load"]["device_kind"] = "cpu"
    assert assess_ceilings(combine(passes, None, "cpu")).suspect


def test_plot_titles_carry_the_suspicion_and_the_mig_note(tmp_path):
    from roofline.report.plot import run_charts

    def titles(run_dir: Path) -> list[str]:
        return [c.title for c in run_charts(load_results(run_dir)) if c.name.startswith("roofline-")]

    features = cpu_features(EPYC_AVX2, NO_NATIVE_TORCH)
    measured = combine(cpu_passes(load=6.0), features["native"], "cpu")
    cpu = titles(write_run(tmp_path / "cpu", epyc_records(), measured=measured, datasheet=None,
                           device=CPU["device"]))
    assert cpu and all("CEILINGS SUSPECT" in t and "ABOVE" not in t and "a CPU run" in t for t in cpu)
    name = "NVIDIA A100-SXM4-80GB MIG 1g.10gb"
    records = [at_bandwidth("softmax", dict(rows=4096, cols=4096), "bfloat16", 0.2e12, device=name)]
    mig = combine(gpu_passes(read=0.25e12, copy=0.2e12), None, "cuda")
    (title,) = titles(write_run(tmp_path / "mig", records, measured=mig, datasheet=None, device=name))
    assert "MIG slice: no datasheet applies" in title and "SUSPECT" not in title and "CPU" not in title


def test_kernel_class_follows_the_table_of_ops():
    from roofline.model.ops import OPS
    from roofline.model.roof import kernel_class

    for name, op in OPS.items():
        assert kernel_class(name, "bfloat16") == ("tensor16" if op.matmul else "fp32"), name
        assert kernel_class(name, "torch.float32") == ("tf32" if op.matmul else "fp32"), name
    assert kernel_class("a-user-kernel", "float16") == "fp32"  # not in the table: not a matmul
    with pytest.raises(ValueError, match="dtype"):
        kernel_class("gemv", "int8")


def test_only_kernel_class_decides_which_kernels_are_matmuls():
    """dtype_class(..., matmul=<a kernel test>) is written once, in roofline.model.roof.kernel_class."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = [f"{path.relative_to(root)}:{n}" for pkg in ("roofline", "bench", "kernels", "scripts")
             for path in sorted((root / pkg).rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"dtype_class\([^)]*matmul=(?!True\b)", line)]
    assert [f.split(":")[0] for f in found] == ["roofline/model/roof.py"], found


def test_a_predicted_point_is_placed_by_the_run():
    """RunRoofs.predict: the cost model's intensity at the roof's height, the class from kernel_class."""
    from roofline.model.roof import judge_run

    spec = PRESETS["H100-SXM5"]
    run = judge_run([], spec)
    gemv = run.predict("gemv", {"batch": 1, "n": 4096, "k": 4096}, "bfloat16")
    cost = kernel_cost("gemv", {"batch": 1, "n": 4096, "k": 4096}, "bfloat16")
    assert (gemv.dtype_class, gemv.intensity, gemv.flops) == ("tensor16", cost.intensity, cost.flops)
    assert gemv.attainable_flops_per_s == pytest.approx(cost.intensity * spec.mem_bandwidth)  # memory-bound
    big = run.predict("gemv", {"batch": 4096, "n": 8192, "k": 8192}, "float32")
    assert big.dtype_class == "tf32"
    assert big.attainable_flops_per_s == min(spec.peak_flops["tf32"], big.intensity * spec.mem_bandwidth)
    soft = run.predict("softmax", {"rows": 64, "cols": 1024}, "float16")
    assert soft.dtype_class == "fp32"
