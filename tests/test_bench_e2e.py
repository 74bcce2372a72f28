"""The main job end to end on this CPU: ``pytest --benchmark --sweep smoke`` in a subprocess writes a
results directory whose files hold every contract field (torch timed on the CPU; Triton checked under
the interpreter, not timed, and recorded as such)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.record import EXTRA_INFO_FIELDS
from roofline.model.cost import CONVENTIONS
from roofline.model.ops import KERNELS, kernel_cost
from roofline.model.sweeps import sweep_points

ROOT = Path(__file__).resolve().parent.parent
NULLABLE = {"config", "audit"}  # null for the torch provider (no Triton config, nothing audited)
SMOKE = sweep_points("smoke", "cpu")
TRITON_POINTS = [p for p in SMOKE if p.kernel in KERNELS]  # the torch-only ops have no Triton benchmark


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-e2e")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT")) and k != "TRITON_INTERPRET"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU run, also on a GPU machine (the assertions expect one)
    cmd = [sys.executable, "-m", "pytest", "--benchmark", "--sweep", "smoke", f"--results-root={out}",
           "--benchmark-max-time=0.02", "--ceilings-budget=0.05", f"--benchmark-json={out / 'user.json'}",
           "--benchmark-group-by=param:case", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    runs = [p for p in out.glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0], proc.stdout, out


def _load(run, name):
    return json.loads((run / name).read_text())


def test_results_directory_layout(smoke_run):
    run, stdout, out = smoke_run
    assert run.parent.name.startswith("cpu-") and run.name.endswith("Z")
    for name in ("benchmark.json", "ceilings.json", "provenance.json", "skipped.json"):
        assert (run / name).is_file(), name
    assert not (run / "parts").exists()
    assert _load(run, "benchmark.json") == json.loads((out / "user.json").read_text())  # --benchmark-json
    assert f"results: {run}" in stdout
    checked = len(TRITON_POINTS)
    assert f"NO GPU: {checked} Triton benchmarks were checked under the Triton interpreter" in stdout


def test_the_run_directory_has_its_report_page(smoke_run):
    run, stdout, _ = smoke_run
    page = run / "report.html"
    assert page.is_file() and f"roofline.report.page.write_page: {page}" in stdout
    html = page.read_text()
    assert all(b["name"] in html for b in _load(run, "benchmark.json")["benchmarks"])


def test_the_summary_comes_last_with_the_roof_and_claims_tallies(smoke_run):
    run, stdout, out = smoke_run
    summary = stdout.rindex(" ridgebench ")
    assert summary > stdout.rindex("Legend:")  # after pytest-benchmark's tables, not scrolled off above them
    tail = stdout[summary:]
    flagged = sum(bool(b["extra_info"].get("above_roof")) for b in _load(run, "benchmark.json")["benchmarks"])
    assert f"above the roof (past the ceilings' noise tolerance; a counting error or a ceiling measured " \
           f"wrong): {flagged}" in tail
    assert "claims: measured: " in tail and "; model: " in tail
    assert f"benchmark data: {run / 'benchmark.json'} (copied to {out / 'user.json'})" in tail
    assert "Wrote benchmark data in" not in stdout  # pytest-benchmark named a file in parts/, since deleted
    prov = _load(run, "provenance.json")
    assert (prov["exit_status"], prov["interrupted"], prov["signal"]) == (0, False, None)


def test_parameters_are_plain_values_so_group_by_param_works(smoke_run):
    run, stdout, _ = smoke_run
    points = {p.id for p in SMOKE}
    for b in _load(run, "benchmark.json")["benchmarks"]:
        assert b["params"] == {"provider": "torch", "case": b["params"]["case"]}
        assert b["params"]["case"] in points and b["name"].endswith(f"[torch-{b['params']['case']}]")
        assert f"benchmark 'case={b['params']['case']}': 1 tests" in stdout  # --benchmark-group-by


def test_every_timed_benchmark_holds_every_field(smoke_run):
    run, _, _ = smoke_run
    doc = _load(run, "benchmark.json")
    points = {(p.kernel, p.sweep, p.label): p for p in SMOKE}
    benches = doc["benchmarks"]
    assert len(benches) == len(points) == len(SMOKE)  # one torch benchmark per point, no two points alike
    seen = set()
    for b in benches:
        info = b["extra_info"]
        missing = [f for f in EXTRA_INFO_FIELDS if f not in info or (info[f] is None and f not in NULLABLE)]
        assert not missing, (b["name"], missing)
        point = points[(info["kernel"], info["sweep"], info["label"])]
        seen.add((info["kernel"], info["sweep"], info["label"]))
        assert info["provider"] == "torch" and info["device_kind"] == "cpu" and info["shape"] == point.shape
        assert info["dtype"] == point.dtype and info["device"].startswith("cpu: ")
        cost = kernel_cost(info["kernel"], info["shape"], info["dtype"])
        assert (info["flops"], info["bytes"]) == (cost.flops, cost.bytes)
        assert info["p20_s"] <= info["median_s"] <= info["p80_s"]
        assert info["median_s"] == pytest.approx(b["stats"]["median"])  # the timer pytest-benchmark used
        assert info["achieved_bytes_per_s"] == pytest.approx(cost.bytes / info["median_s"])
        assert info["roof_fraction"] == pytest.approx(info["attainable_s"] / info["median_s"])
        assert info["roof_source"] == "measured" and info["bound"] in ("memory", "compute")
        assert info["max_error"] <= info["tolerance"][0] + info["tolerance"][1] * 10
        assert info["conventions"] == CONVENTIONS and "perf_counter" in info["timing_method"]
        assert b["options"]["timer"] == "perf_counter" and len(b["stats"]["data"]) == info["rounds"] >= 5
    assert seen == set(points)


def test_triton_is_checked_not_timed_and_skips_say_why(smoke_run):
    run, _, _ = smoke_run
    skipped = _load(run, "skipped.json")
    assert len(skipped) == len(TRITON_POINTS)
    for s in skipped:
        assert s["provider"] == "triton" and s["category"] == "not-timed"
        assert "interpreter" in s["reason"] and s["max_error"] <= s["tolerance"][0] + s["tolerance"][1] * 10
        assert s["variant"] and s["config"]  # what the launcher ran, from kernels._lib.launch.last_launch
    assert {s["kernel"] for s in skipped} == set(KERNELS)  # the smoke sweep runs every Triton op


def test_ceilings_and_provenance(smoke_run):
    run, _, _ = smoke_run
    ceilings = _load(run, "ceilings.json")
    assert ceilings["datasheet"] is None and ceilings["device"].startswith("cpu: ")
    measured = ceilings["measured"]
    assert measured["mem_bandwidth"] > 0 and set(measured["peak_flops"]) == {"tensor16", "fp32"}
    assert "copies" in measured["method"] and measured["bandwidth"]["buffer_bytes"] >= 64 * 2**20
    prov = _load(run, "provenance.json")
    assert len(prov["git"].get("commit", "")) == 40
    assert "--benchmark" in prov["command_line"] and prov["sweep"] == "smoke"
    assert prov["versions"]["torch"] and prov["versions"]["triton"] and prov["cpu"]["logical_cores"] >= 1
    assert prov["timestamp_utc"].endswith("Z") and prov["device_kind"] == "cpu"


def test_xdist_workers_merge_into_one_run(tmp_path):
    """``-n 2``: each worker writes its part (own device, ceilings, provenance); the controller merges
    them into one run directory. On this CPU the refusal of CPU workers is lifted for the test only."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT")) and k != "TRITON_INTERPRET"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU run, also on a GPU machine (the assertions expect one)
    env["RIDGEBENCH_CPU_WORKERS"] = "1"
    cmd = [sys.executable, "-m", "pytest", "--benchmark", "--sweep", "smoke", "--kernels", "gelu,softmax",
           "--providers", "torch", "-n", "2", f"--results-root={tmp_path}", "--benchmark-max-time=0.02",
           "--ceilings-budget=0.05", "--no-report", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (run,) = [p for p in tmp_path.glob("*/*") if p.is_dir()]
    assert not (run / "parts").exists()
    bench = _load(run, "benchmark.json")
    assert sorted(b["extra_info"]["kernel"] for b in bench["benchmarks"]) == ["gelu", "softmax"]
    assert all(set(EXTRA_INFO_FIELDS) <= set(b["extra_info"]) for b in bench["benchmarks"])
    assert sorted(_load(run, "ceilings.json")["per_worker"]) == ["gw0", "gw1"]
    prov = _load(run, "provenance.json")
    assert sorted(prov["per_worker"]) == ["gw0", "gw1"] and "-n" in prov["command_line"]
    assert {w["env"]["PYTEST_XDIST_WORKER"] for w in prov["per_worker"].values()} == {"gw0", "gw1"}
    assert _load(run, "skipped.json") == []
