"""scripts/timing_crosscheck.py finds each op's benchmark and example GPU points from the table of ops,
and says when an op has none (instead of silently leaving it out)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from roofline.model.ops import KERNELS
from roofline.model.sweeps import sweep_points

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "timing_crosscheck.py"


@pytest.fixture(scope="module")
def crosscheck():
    spec = importlib.util.spec_from_file_location("timing_crosscheck", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("op", KERNELS)
def test_each_op_has_its_benchmark(crosscheck, op):
    bench = crosscheck._benches()[op]
    assert bench.kernel == op and bench.spec.kernel == op and bench.spec.gpu_cases


def test_every_op_has_an_example_point_of_the_quick_gpu_sweep(crosscheck):
    points, notes = crosscheck.gpu_points(sweep_points("quick", "cuda"))
    assert notes == []
    assert {p.kernel for p in points} == set(KERNELS)


def test_a_missing_op_or_stale_case_is_said(crosscheck):
    quick = sweep_points("quick", "cuda")
    cases = [c for c in crosscheck.gpu_cases() if c[0] != "gelu"] + [("softmax", "softmax/cols.r4k", "C999")]
    points, notes = crosscheck.gpu_points(quick, cases)
    assert all(p.kernel != "gelu" for p in points)
    assert any(n.startswith("gelu: no example case") for n in notes)
    assert any("C999" in n and "not a point of the quick sweep" in n for n in notes)


def crosscheck_methods() -> tuple[str, ...]:
    return ("suite", "events", "no-spin", "no-flush", "sized-spin", "graph", "profiler", "do_bench", "host",
            "bare")


def _case(kernel, label, **seconds):
    s = dict.fromkeys(crosscheck_methods())
    s.update({k.replace("_", "-") if k != "do_bench" else k: v * 1e-6 for k, v in seconds.items()})
    return {"kernel": kernel, "sweep": f"{kernel}/x", "label": label, "check_ok": True, "seconds": s,
            "spread": dict.fromkeys(s, 0.02), "notes": {"suite": "profiler"}}


def test_the_report_flags_host_time_in_an_event_clock_and_compares_launch_costs(crosscheck):
    assert crosscheck.METHODS == crosscheck_methods()
    biased = _case("gelu", "T4k", suite=6, events=25, no_spin=26, do_bench=6.1, graph=6.2, profiler=6.0,
                   host=14, bare=4)
    clean = _case("gemv", "B256", suite=100, events=104, no_spin=103, do_bench=101, graph=101, profiler=100,
                  host=20, bare=5)
    doc = {"device": "NVIDIA H100", "dry_run": False, "cases": [biased, clean], "not_covered": [],
           "bandwidth": {"buffer_bytes": 2**30, "read_GB_per_s": 3000, "write_GB_per_s": 3000,
                         "copy_GB_per_s": 2900}}
    lines = crosscheck.report(doc)
    flags = [line for line in lines if line.startswith("HOST TIME IN EVENTS")]
    assert len(flags) == 2 and all("gelu x T4k" in f for f in flags)  # events and no-spin, not do_bench
    assert "events 25.00 us vs profiler 6.00 us (4.17x, noise 10%)" in flags[0]
    assert ("LAUNCH: gelu x T4k: host 14.00 us per call vs Triton's bare launch 4.00 us (3.50x); "
            "device time 6.00 us (LAUNCH-BOUND)") in lines
    assert any(line.startswith("LAUNCH: gemv x B256") and "LAUNCH-BOUND" not in line for line in lines)
    assert "gelu x T4k: suite = profiler" in lines
    assert lines[2].split()[-1] == "3.50x"  # the host/bare column
    clean_only = crosscheck.report({**doc, "cases": [clean]})
    assert not any(line.startswith("HOST TIME") for line in clean_only)
    assert any(line.startswith("event clocks agree with the host-free ones") for line in clean_only)


def test_the_budget_stops_starting_cases_and_still_writes(crosscheck, tmp_path, capsys):
    assert crosscheck.main(["--out", str(tmp_path), "--dry-run", "--budget", "0"]) == 0
    doc = json.loads((tmp_path / "crosscheck.json").read_text())
    assert doc["cases"] == [] and doc["budget_s"] == 0
    assert doc["not_covered"] and all("not started, the --budget of 0 s" in n for n in doc["not_covered"])
    assert "NOT COVERED" in (tmp_path / "crosscheck.txt").read_text()
    with pytest.raises(SystemExit):
        crosscheck.main(["--out", str(tmp_path), "--budget", "-1"])
