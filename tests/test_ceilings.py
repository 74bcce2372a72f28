"""bench.ceilings on this CPU: every probe recorded, three memory kinds, before/after with the load, the
best kept, and benchmark.json re-judged against the final roofs. Budgets are tiny: these check the
bookkeeping, not the machine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from bench import ceilings
from bench.record import Roofs
from roofline.model.roof import MEMORY, assess_ceilings, point_roof
from roofline.rundir import RECORDS, append_record, read_records

CPU = torch.device("cpu")
NOT_NATIVE = {d: {"native": False, "reason": "faked: no native math"} for d in ("bfloat16", "float16")}
NATIVE = {d: {"native": True, "reason": "faked: native math"} for d in ("bfloat16", "float16")}
BUDGET = 0.02


@pytest.fixture(scope="module")
def one_pass():
    return ceilings.measure_pass(CPU, 8 * 2**20, budget_s=BUDGET)


def test_a_pass_records_every_probe_memory_kind_and_the_load(one_pass):
    probes = one_pass["probes"]
    dtypes = ("bfloat16", "float16", "float32")
    expected = {(d, layout) for d in dtypes for layout in ceilings.LAYOUTS}
    assert {(p["dtype"], p["layout"]) for p in probes} >= expected
    for p in probes:
        assert {"dtype", "class", "layout", "m", "n", "k", "best", "median", "repeats"} <= set(p)
        assert p["best"] >= p["median"] > 0 and p["repeats"] >= 2
        assert p["m"] == (ceilings.SKINNY_ROWS["cpu"] if p["layout"] == "skinny" else p["n"])
    assert set(one_pass["memory"]) == set(ceilings.MEMORY_KINDS)
    assert one_pass["memory"]["copy"]["counted"] == "read+write"
    assert one_pass["buffer_bytes"] >= 64 * 2**20
    load = one_pass["load"]
    assert len(load["loadavg"]) == 3 and load["usable_cores"] >= 1 and load["own_threads"] == 1


def test_combine_keeps_the_best_of_before_and_after(one_pass):
    after = json.loads(json.dumps(one_pass))
    after["when"] = "after"
    for p in after["probes"]:
        if p["dtype"] == "float32":
            p["best"] *= 3  # the after pass found a faster fp32 GEMM
    after["memory"]["read"]["best"] = 1e15  # and a read stream far past the others
    measured = ceilings.combine([one_pass, after], NATIVE, "cpu")
    fp32_before = max(p["best"] for p in one_pass["probes"] if p["dtype"] == "float32")
    fp32 = measured["ceilings"]["fp32"]
    assert fp32["best"] == pytest.approx(3 * fp32_before) and fp32["before"] == pytest.approx(fp32_before)
    assert fp32["after"] == pytest.approx(3 * fp32_before) and "(after)" in fp32["probe"]
    assert measured["mem_bandwidth"] == 1e15 and measured["ceilings"][MEMORY]["probe"] == "read (after)"
    assert measured["memory"]["read"]["before"] == one_pass["memory"]["read"]["best"]
    assert len(measured["probes"]) == 2 * len(one_pass["probes"])
    assert set(measured["load"]) == {"before", "after"}
    assert measured["stability"]["tolerance"]["fp32"] >= 2.0  # a 3x drift is noise the tolerance must cover
    assert any("fp32 ceiling" in r for r in measured["stability"]["reasons"])


def test_without_native_math_half_probes_are_fp32_math_and_the_class_is_floored(one_pass):
    measured = ceilings.combine([one_pass], NOT_NATIVE, "cpu")
    best = {c: max(p["best"] for p in one_pass["probes"] if p["class"] == c) for c in ("tensor16", "fp32")}
    assert measured["peak_flops"]["fp32"] == pytest.approx(max(best.values()))
    assert measured["peak_flops"]["tensor16"] == pytest.approx(max(best.values()))
    assert "floored_at_fp32" in measured["ceilings"]["tensor16"]
    native = ceilings.combine([one_pass], NATIVE, "cpu")
    assert native["peak_flops"] == pytest.approx(best)
    assert "floored_at_fp32" not in native["ceilings"]["tensor16"]


@dataclass
class StandInSession:
    device: torch.device
    device_name: str
    cache_bytes: int
    part_dir: Path
    ceilings: dict | None = None
    roofs: Roofs | None = None
    timed: int = 1


def test_after_sweep_rewrites_ceilings_and_rejudges_the_parts_records(tmp_path, monkeypatch):
    session = StandInSession(CPU, "cpu: test", 8 * 2**20, tmp_path)
    session.roofs, session.ceilings = ceilings.before_sweep(CPU, "cpu: test", 8 * 2**20, budget_s=BUDGET)
    assert session.roofs.datasheet is None and session.ceilings["datasheet"] is None
    info = {"kernel": "softmax", "dtype": "float32", "flops": 5e6, "bytes": 8e6, "median_s": 1e-3,
            "roof_fraction": -1.0}
    append_record(tmp_path, {"name": "softmax-a", "extra_info": info})
    append_record(tmp_path, {"name": "not-ours", "extra_info": {}})  # kept as it is
    real = ceilings.measure_pass

    def faster_after(*args, **kw):  # the after pass reads memory 10x faster: the roof must follow it
        out = real(*args, **kw)
        out["memory"]["copy"]["best"] *= 10
        return out

    monkeypatch.setattr(ceilings, "measure_pass", faster_after)
    ceilings.after_sweep(session, budget_s=BUDGET)
    doc = json.loads((tmp_path / "ceilings.json").read_text())
    measured = doc["measured"]
    assert set(measured["load"]) == {"before", "after"}
    assert measured["ceilings"][MEMORY]["probe"] == "copy (after)"
    assert session.roofs.measured.mem_bandwidth == measured["mem_bandwidth"]
    records, bad = read_records(tmp_path / RECORDS)
    assert not bad and [r["name"] for r in records] == ["softmax-a", "not-ours"]
    new = records[0]["extra_info"]
    expected = point_roof(session.roofs.measured, "softmax", "float32", 5e6, 8e6, 1e-3)
    assert new["roof_fraction"] == pytest.approx(expected.fraction) and new["roof_fraction"] > 0
    assert new["attainable_s"] >= 8e6 / measured["mem_bandwidth"] * (1 - 1e-9)  # the final memory roof
    assert new["above_roof_tolerance"] >= 0.05 and new["roof_ceiling"] == expected.ceiling


def test_summary_lines_name_the_ceilings_the_dtype_and_warnings(tmp_path):
    from tests.data.synth import benchmark, write_run

    p = ceilings.measure_pass(CPU, 8 * 2**20, budget_s=BUDGET)
    p["load"]["loadavg"] = [9.0, 9.0, 9.0]
    measured = ceilings.combine([p], NOT_NATIVE, "cpu")
    run = write_run(tmp_path, [benchmark("softmax", {"rows": 64, "cols": 4096}, "float32", 1.0,
                                         device="cpu: test", device_kind="cpu")],
                    measured=measured, datasheet=None, device="cpu: test")
    prov = {"sweep_dtype": {"dtype": "float32", "reason": "no native bf16 math"}}
    (run / "provenance.json").write_text(json.dumps(prov))
    from roofline.report.finish import roof_lines
    from roofline.report.results import load_results

    lines = roof_lines(load_results(run))
    assert lines[0].startswith("ceilings (best of before/after the sweep): memory")
    assert any(line.startswith("Sweep dtype float32: no native bf16 math") for line in lines)
    assert any(line.startswith("Above-roof tolerance: ") for line in lines)
    warnings = [line for line in lines if line.startswith("WARNING, CEILINGS SUSPECT: ")]
    assert len(warnings) == 1 and "loaded machine before" in warnings[0]


def _stat(cpu0: tuple[int, ...], cpu1: tuple[int, ...], cpu2: tuple[int, ...] = (0,) * 8) -> str:
    """A /proc/stat text: the aggregate line, then cpu0..cpu2 (user nice system idle iowait irq softirq
    steal)."""
    total = [sum(v) for v in zip(cpu0, cpu1, cpu2, strict=True)]
    lines = ["cpu  " + " ".join(map(str, total))]
    lines += [f"cpu{i} " + " ".join(map(str, v)) + " 0 0" for i, v in enumerate((cpu0, cpu1, cpu2))]
    return "\n".join([*lines, "intr 1 2 3", "ctxt 99"]) + "\n"


def test_cpu_jiffies_counts_the_usable_cpus_only():
    text = _stat((100, 0, 50, 800, 50, 0, 0, 0), (300, 0, 100, 600, 0, 0, 0, 0), (1000, 0, 0, 0, 0, 0, 0, 0))
    assert ceilings.cpu_jiffies(text, [0, 1]) == (150 + 400, 1000 + 1000, 2)  # cpu2 is not ours
    assert ceilings.cpu_jiffies(text, [7]) is None and ceilings.cpu_jiffies(None, [0]) is None


def _window(stats: list[str], own_cpu: list[float], seconds: float = 1.0) -> dict:
    clock, own, texts = iter([0.0, seconds]), iter(own_cpu), iter(stats)
    window = ceilings.LoadWindow(lambda: next(texts), cpus=[0, 1], clock=lambda: next(clock),
                                 own_cpu_s=lambda: next(own))
    return window.finish()


def test_busy_neighbours_are_seen_during_the_pass_and_make_the_ceilings_suspect():
    """A fake /proc/stat over a 1 s pass on 2 cores (100 jiffies per core-second): this run used 1 core;
    two busy loops beside it the other core; the load average (a minute behind) still says idle."""
    start = _stat((0,) * 8, (0,) * 8)
    loaded = _stat((100, 0, 0, 0, 0, 0, 0, 0), (95, 0, 0, 5, 0, 0, 0, 0))  # both cores ~busy
    during = _window([start, loaded], own_cpu=[10.0, 11.0])
    assert during["busy_cores"] == pytest.approx(1.95) and during["own_busy_cores"] == pytest.approx(1.0)
    assert during["other_busy_cores"] == pytest.approx(0.95)
    quiet = _window([start, _stat((100, 0, 0, 0, 0, 0, 0, 0), (2, 0, 1, 97, 0, 0, 0, 0))], own_cpu=[0.0, 1.0])
    assert quiet["other_busy_cores"] == pytest.approx(0.03)
    no_proc = _window([None, None], own_cpu=[0.0, 0.5])
    assert "other_busy_cores" not in no_proc and no_proc["own_busy_cores"] == pytest.approx(0.5)

    def check(during: dict) -> list[str]:
        load = {"loadavg": [0.2, 0.2, 0.2], "own_threads": 1, "usable_cores": 2, "device_kind": "cpu",
                "during": during}
        bw = {"best": 1e10, "median": 1e10}
        return list(assess_ceilings({"ceilings": {"memory": bw}, "load": {"before": load}}).reasons)

    (reason,) = check(during)
    assert reason.startswith("loaded machine before the sweep: 0.95 of 2 usable cores busy with other "
                             "processes during the ceilings pass (1.0 s")
    assert check(quiet) == [] and check(no_proc) == []
    cuda = {"loadavg": [0.2] * 3, "own_threads": 1, "usable_cores": 2, "device_kind": "cuda",
            "during": during}
    bw = {"best": 1e10, "median": 1e10}
    assert not assess_ceilings({"ceilings": {"memory": bw}, "load": {"before": cuda}}).suspect  # not judged


def test_a_real_pass_records_the_load_during_it(one_pass):
    during = one_pass["load"]["during"]
    assert during["window_s"] > 0 and during["own_busy_cores"] >= 0 and during["usable_cores"] >= 1
    if ceilings.read_proc_stat() is not None:  # Linux
        assert 0 <= during["other_busy_cores"] <= during["busy_cores"] <= during["usable_cores"] + 1e-6
