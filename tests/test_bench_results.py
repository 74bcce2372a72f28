"""roofline.rundir: run-directory naming, never overwriting a run, per-worker parts and their merge."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from roofline.rundir import device_slug, merge_benchmark_json, merge_parts, new_run_dir, part_dir, utc_stamp

WHEN = dt.datetime(2026, 11, 22, 5, 10, 7, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("name, slug", [
    ("NVIDIA H100 80GB HBM3", "nvidia-h100-80gb-hbm3"),
    ("NVIDIA A100-SXM4-80GB", "nvidia-a100-sxm4-80gb"),
    ("cpu: AMD EPYC 7763 64-Core Processor", "cpu-amd-epyc-7763-64-core-processor"),
    ("  ", "unknown-device"),
])
def test_device_slug(name, slug):
    assert device_slug(name) == slug


def test_utc_stamp_converts_to_utc_and_needs_a_timezone():
    assert utc_stamp(WHEN) == "20261122T051007Z"
    plus2 = dt.datetime(2026, 11, 22, 7, 10, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert utc_stamp(plus2) == "20261122T051007Z"
    with pytest.raises(ValueError, match="when"):
        utc_stamp(dt.datetime(2026, 11, 22))


def test_run_dirs_are_named_by_device_and_time_and_never_reused(tmp_path):
    first = new_run_dir(tmp_path, "NVIDIA H100 80GB HBM3", WHEN)
    assert first == tmp_path / "nvidia-h100-80gb-hbm3" / "20261122T051007Z" and first.is_dir()
    (first / "benchmark.json").write_text("{}")
    second = new_run_dir(tmp_path, "NVIDIA H100 80GB HBM3", WHEN)
    third = new_run_dir(tmp_path, "NVIDIA H100 80GB HBM3", WHEN)
    assert (second.name, third.name) == ("20261122T051007Z-2", "20261122T051007Z-3")
    assert (first / "benchmark.json").read_text() == "{}"  # the earlier run is untouched
    later = new_run_dir(tmp_path, "NVIDIA H100 80GB HBM3", WHEN + dt.timedelta(seconds=1))
    assert later.name == "20261122T051008Z"


def test_part_names_are_checked(tmp_path):
    assert part_dir(tmp_path, "gw3") == tmp_path / "parts" / "gw3"
    with pytest.raises(ValueError, match="part"):
        part_dir(tmp_path, "../escape")


def _bench_doc(*names):
    return {"machine_info": {"node": "x"}, "commit_info": {"id": "abc"}, "version": "5.3",
            "benchmarks": [{"name": n, "extra_info": {"kernel": "gemv"}} for n in names]}


def _write_part(run, part, names, skipped, device):
    d = part_dir(run, part)
    (d / "benchmark.json").write_text(json.dumps(_bench_doc(*names)))
    (d / "skipped.json").write_text(json.dumps(skipped))
    (d / "ceilings.json").write_text(json.dumps({"device": device, "measured": {"mem_bandwidth": 1.0},
                                                 "datasheet": None}))
    (d / "provenance.json").write_text(json.dumps({"device_name": device, "git": {"commit": "abc"}}))


def test_merge_of_xdist_workers_concatenates_and_keeps_each_device(tmp_path):
    run = tmp_path / "run"
    for i, (names, skips) in enumerate([(["a", "b"], [{"category": "out-of-memory"}]), (["c"], []),
                                        (["d"], [{"category": "unsupported"}])]):
        _write_part(run, f"gw{i}", names, skips, f"GPU {i}")
    _write_part(run, "gw10", ["e"], [], "GPU 10")
    written = merge_parts(run)
    assert set(written) == {"benchmark.json", "skipped.json", "ceilings.json", "provenance.json"}
    bench = json.loads((run / "benchmark.json").read_text())
    assert [b["name"] for b in bench["benchmarks"]] == ["a", "b", "c", "d", "e"]  # gw10 after gw2
    assert bench["commit_info"] == {"id": "abc"} and bench["machine_info"]["ridgebench_parts"] == 4
    skipped = json.loads((run / "skipped.json").read_text())
    assert skipped == [{"category": "out-of-memory", "worker": "gw0"},
                       {"category": "unsupported", "worker": "gw2"}]
    ceilings = json.loads((run / "ceilings.json").read_text())
    assert ceilings["device"] == "GPU 0" and sorted(ceilings["per_worker"]) == ["gw0", "gw1", "gw10", "gw2"]
    assert ceilings["per_worker"]["gw2"]["device"] == "GPU 2"
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["per_worker"]["gw1"]["device_name"] == "GPU 1"
    assert not (run / "parts").exists()


def test_merge_of_one_process_copies_its_files(tmp_path):
    run = tmp_path / "run"
    _write_part(run, "main", ["only"], [{"category": "not-timed"}], "cpu: X")
    merge_parts(run)
    assert json.loads((run / "benchmark.json").read_text()) == _bench_doc("only")
    assert json.loads((run / "skipped.json").read_text()) == [{"category": "not-timed"}]
    assert "per_worker" not in json.loads((run / "ceilings.json").read_text())
    assert merge_parts(run) == {}  # nothing left to merge


def test_merge_without_benchmarks_still_writes_the_skips(tmp_path):
    run = tmp_path / "run"
    d = part_dir(run, "main")
    (d / "skipped.json").write_text(json.dumps([{"category": "not-timed"}]))
    written = merge_parts(run)
    assert "benchmark.json" not in written and json.loads((run / "skipped.json").read_text())
    assert merge_benchmark_json([]) is None


def test_the_run_directory_format_is_spelled_once():
    """The names of a run's files and the parts layout live in roofline/rundir.py only: the writer
    (bench), the readers (roofline.report) and the scripts use its constants, so a renamed file cannot
    leave one side reading the old name."""
    import ast
    from pathlib import Path

    from roofline import rundir

    names = {rundir.BENCHMARK, rundir.CEILINGS, rundir.PROVENANCE, rundir.SKIPPED, rundir.RECORDS,
             rundir.HEADER, rundir.PARTS}
    root = Path(__file__).resolve().parents[1]
    found = []
    for path in [p for d in ("bench", "roofline", "kernels", "scripts") for p in (root / d).rglob("*.py")]:
        if path == root / "roofline" / "rundir.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value!r}")
    assert not found, "spell these with roofline.rundir's constants: " + "; ".join(found)
