"""roofline.report.results: loading a run directory or a bare pytest-benchmark JSON, and rejecting everything
else
with a one-line UsageError (exit code 2 from the CLI)."""

from __future__ import annotations

import json

import pytest

from roofline.errors import UsageError
from roofline.model.hardware import PRESETS, HardwareSpec
from roofline.report.cli import main
from roofline.report.plot.scene import slug
from roofline.report.results import (
    attainable_flops_per_s,
    load_results,
    peak_for,
    ridge_for,
    size_label,
)
from tests.data.synth import A100, MEASURED_A100, a100_run, benchmark, write_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return a100_run(tmp_path_factory.mktemp("run"))


def test_loads_every_benchmark_with_its_roofs(run_dir):
    doc = json.loads((run_dir / "benchmark.json").read_text())
    res = load_results(run_dir)
    assert [r.name for r in res.records] == [b["name"] for b in doc["benchmarks"]]
    assert res.directory == run_dir and res.source == run_dir / "benchmark.json"
    roof = res.roof
    assert roof.source == "measured" and roof.mem_bandwidth == pytest.approx(MEASURED_A100["mem_bandwidth"])
    assert res.ceilings.datasheet is PRESETS["A100-SXM4-80GB"]
    assert res.device == "NVIDIA A100-SXM4-80GB" and res.device_kind == "cuda"
    assert res.provenance["synthetic"] is True and res.skipped == []


def test_record_numbers(run_dir):
    r = next(r for r in load_results(run_dir).records if r.kernel == "gemv")
    extra = r.extra
    assert r.intensity == pytest.approx(extra["flops"] / extra["bytes"])
    assert r.achieved_flops_per_s == pytest.approx(extra["flops"] / extra["median_s"])
    lo, hi = r.flops_per_s_band
    assert lo < r.achieved_flops_per_s < hi
    assert lo == pytest.approx(r.flops / r.p80_s) and hi == pytest.approx(r.flops / r.p20_s)
    cost = r.cost()
    assert (cost.flops, cost.bytes) == (r.flops, r.bytes)
    assert r.size_label(["batch"]) == "batch=1"


def test_bare_json_file_reads_ceilings_beside_it(run_dir):
    res = load_results(run_dir / "benchmark.json")
    assert res.ceilings is not None and len(res.records) > 20


def test_json_without_ceilings_falls_back_to_the_records_hardware(tmp_path):
    b = benchmark("softmax", {"rows": 8, "cols": 1024}, "float16", 1e-5)
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": [b]}))
    res = load_results(path)
    assert res.ceilings is None and res.roof is PRESETS["A100-SXM4-80GB"]


def test_missing_stats_fall_back(tmp_path):
    b = benchmark("gelu", {"n": 4096, "approximate": "none", "bias_len": 0}, "float32", 2e-6)
    for key in ("median_s", "p20_s", "p80_s", "flops", "bytes", "dtype_class"):
        del b["extra_info"][key]
    write_run(tmp_path, [b])
    r = load_results(tmp_path).records[0]
    assert r.median_s == 2e-6 and r.p20_s == r.p80_s == 2e-6
    assert r.flops == 5 * 4096 and r.bytes == 2 * 4 * 4096 and r.dtype_class == "fp32"


def _write(tmp_path, text: str, name: str = "benchmark.json"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _bench_doc(**extra_changes) -> str:
    b = benchmark("softmax", {"rows": 8, "cols": 1024}, "float16", 1e-5)
    b["extra_info"].update(extra_changes)
    return json.dumps({"benchmarks": [b]})


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2, 3]", "not a pytest-benchmark JSON"),
    ('{"results": []}', "not a pytest-benchmark JSON"),
    ('{"benchmarks": [42]}', "not a pytest-benchmark JSON"),
    ('{"benchmarks": [{"name": "test_x", "stats": {"median": 1.0}, "extra_info": {}}]}',
     "not a ridgebench run"),
    ('{"benchmarks": []}', "no benchmarks"),
    (_bench_doc(dtype="int4"), "dtype"),
    (_bench_doc(median_s=-1.0), "median_s"),
    (_bench_doc(median_s="fast"), "median_s"),
    (_bench_doc(bytes=0), "bytes"),
    (_bench_doc(flops=0.0), "flops"),
    (_bench_doc(flops=float("nan")), "flops"),
    (_bench_doc(shape=[8, 1024]), "shape"),
])
def test_corrupt_or_foreign_json_is_a_one_line_usage_error(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(UsageError, match=message) as info:
        load_results(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_binary_file_is_rejected(tmp_path):
    path = tmp_path / "benchmark.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_results(path)


@pytest.mark.parametrize("ceilings, message", [
    ("[]", "not a ridgebench ceilings.json"),
    ('{"device": "x", "measured": {"mem_bandwidth": 1e9, "peak_flops": {"int8": 1e12}}, "datasheet": null}',
     "dtype classes"),
    ('{"device": "x", "measured": {"mem_bandwidth": -1, "peak_flops": {"fp32": 1e12}}, "datasheet": null}',
     "mem_bandwidth"),
    ('{"device": "x", "measured": null, "datasheet": {"name": "weird"}}', "malformed hardware spec"),
])
def test_bad_ceilings_are_rejected(tmp_path, ceilings, message):
    _write(tmp_path, _bench_doc())
    _write(tmp_path, ceilings, "ceilings.json")
    with pytest.raises(UsageError, match=message):
        load_results(tmp_path)


def test_missing_paths(tmp_path):
    with pytest.raises(UsageError, match="no such results"):
        load_results(tmp_path / "nope")
    with pytest.raises(UsageError, match="no benchmark.json"):
        load_results(tmp_path)


@pytest.mark.parametrize("command", ["plot", "claims"])
def test_cli_exit_code_2_and_one_line(tmp_path, capsys, command):
    path = _write(tmp_path, '{"benchmarks": "nope"}')
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("python -m roofline")
    assert "not a pytest-benchmark JSON" in err


def test_peak_fallback_for_a_device_without_tensor_cores():
    cpu = HardwareSpec("cpu", {"fp32": 1e11}, 2e10, source="measured")
    assert peak_for(cpu, "tensor16") == (1e11, "fp32")
    assert ridge_for(cpu, "tf32") == pytest.approx(5.0)
    assert attainable_flops_per_s(cpu, "fp32", 1.0) == 2e10
    assert attainable_flops_per_s(cpu, "fp32", 100.0) == 1e11
    assert peak_for(A100, "tf32") == (156e12, "tf32")


def test_labels_and_slugs():
    assert slug("NVIDIA A100-SXM4-80GB") == "nvidia-a100-sxm4-80gb"
    assert slug("Intel(R) Xeon(R) CPU @ 2.20GHz") == "intel-r-xeon-r-cpu-2.20ghz"
    assert size_label({"batch": 4096, "n": 11008, "bias": False}) == "batch=4k, n=11008, bias=false"


def test_a_roof_without_the_class_a_record_needs_is_a_one_line_usage_error(tmp_path):
    """Ceilings that measured only tensor16 cannot bound an fp32-class op: the run still loads (a comparison
    reads its times), and judging it, as the plots and claims do, names the missing class."""
    shape = {"rows": 4096, "cols": 4096}
    write_run(tmp_path, [benchmark("softmax", shape, "float16", 1e-3)], datasheet=None,
              measured={"mem_bandwidth": 1.5e12, "peak_flops": {"tensor16": 2.5e14}, "method": "synthetic"})
    res = load_results(tmp_path)
    assert res.records[0].dtype_class == "fp32"
    with pytest.raises(UsageError, match=r"cannot judge this run: .*no 'fp32' peak.*\(it has: tensor16\)"):
        _ = res.judged
    from roofline.report.plot import plot_results

    with pytest.raises(UsageError, match="cannot judge this run"):
        plot_results(res, tmp_path / "out")
