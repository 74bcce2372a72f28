"""Interrupted runs keep what finished (issue 14 item 4): records written as each benchmark finishes,
half-timed ones dropped, the exit status and an ``interrupted`` flag in provenance.json, and loaders
that skip an unusable record or a corrupt optional file with a warning instead of rejecting the run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roofline.errors import UsageError
from roofline.report.cli import main as roofline_main
from roofline.report.results import ResultsWarning, load_results
from roofline.rundir import HEADER, RECORDS, append_record, merge_parts, part_dir, read_records

ROOT = Path(__file__).resolve().parent.parent
REAL_RUN = ROOT / "tests" / "data" / "cpu-quick" / "benchmark.json"


def _real_benchmarks() -> dict:
    return json.loads(REAL_RUN.read_text())


def _half_timed(name: str = "test_gelu[torch-half]") -> dict:
    """What pytest-benchmark saved for a case stopped inside its timed loop: rounds, no extra_info."""
    return {"name": name, "fullname": f"bench/test_gelu.py::{name}", "params": {}, "extra_info": {},
            "stats": {"data": [0.1, 0.2], "median": 0.15}, "options": {}}


# ------------------------------------------------------------------------------------------------
# Writer: roofline.rundir
# ------------------------------------------------------------------------------------------------

def test_records_are_appended_one_per_line_and_a_cut_line_is_reported(tmp_path):
    part = part_dir(tmp_path, "main")
    append_record(part, {"name": "a"})
    append_record(part, {"name": "b"})
    with open(part / RECORDS, "a") as fh:
        fh.write('{"name": "c", "stats": {"da')  # the process was killed mid-write
    records, bad = read_records(part / RECORDS)
    assert [r["name"] for r in records] == ["a", "b"] and len(bad) == 1 and ":3:" in bad[0]


def test_merge_assembles_benchmark_json_from_records_and_notes_the_end_state(tmp_path):
    run = tmp_path / "run"
    for name, records in (("qkv", ["q1", "q2"]), ("gelu", ["g1"])):
        part = part_dir(run, name)
        for r in records:
            append_record(part, {"name": r, "extra_info": {"kernel": name}})
        (part / HEADER).write_text(json.dumps({"machine_info": {"node": name}, "commit_info": {"id": "c"},
                                               "version": "5.2.3"}))
        (part / "provenance.json").write_text(json.dumps({"device_name": "cpu: x", "exit_status": 0}))
    written = merge_parts(run, {"exit_status": 2, "interrupted": True, "signal": "SIGTERM"})
    bench = json.loads(written["benchmark.json"].read_text())
    assert [b["name"] for b in bench["benchmarks"]] == ["q1", "q2", "g1"]  # (length, name): gw2 < gw10
    assert bench["machine_info"]["ridgebench_parts"] == 2 and bench["version"] == "5.2.3"
    prov = json.loads(written["provenance.json"].read_text())
    assert (prov["exit_status"], prov["interrupted"], prov["signal"]) == (2, True, "SIGTERM")
    assert sorted(prov["per_worker"]) == ["gelu", "qkv"] and not (run / "parts").exists()


def test_a_part_with_no_finished_record_writes_no_benchmark_json(tmp_path):
    run = tmp_path / "run"
    (part_dir(run, "main") / RECORDS).write_text("")
    written = merge_parts(run, {"exit_status": 2, "interrupted": True})
    assert "benchmark.json" not in written and json.loads(written["provenance.json"].read_text())[
        "interrupted"] is True


# ------------------------------------------------------------------------------------------------
# Loaders: roofline.report.results and the roofline CLI
# ------------------------------------------------------------------------------------------------

def test_a_half_timed_record_is_skipped_with_a_warning_not_the_whole_run(tmp_path):
    doc = _real_benchmarks()
    good = len(doc["benchmarks"])
    doc["benchmarks"].insert(3, _half_timed())
    (tmp_path / "benchmark.json").write_text(json.dumps(doc))
    with pytest.warns(ResultsWarning, match=r"test_gelu\[torch-half\].*no ridgebench extra_info"):
        res = load_results(tmp_path)
    assert len(res.records) == good and len(res.warnings) == 1


def test_a_run_of_only_foreign_records_is_still_rejected(tmp_path):
    (tmp_path / "benchmark.json").write_text(json.dumps({"benchmarks": [_half_timed(), _half_timed("b")]}))
    with pytest.raises(UsageError, match="not a ridgebench run"):
        load_results(tmp_path)


@pytest.mark.parametrize("name, text", [("skipped.json", "{not json"), ("provenance.json", "[1, 2"),
                                        ("skipped.json", '"a string"'), ("provenance.json", "[]")])
def test_a_corrupt_optional_file_degrades_the_report(tmp_path, name, text):
    shutil.copyfile(REAL_RUN, tmp_path / "benchmark.json")
    (tmp_path / name).write_text(text)
    with pytest.warns(ResultsWarning, match=f"{name}.*ignored"):
        res = load_results(tmp_path)
    assert len(res.records) == len(_real_benchmarks()["benchmarks"])
    assert res.skipped == [] and res.provenance == {}


def _unfinished_run(tmp_path: Path) -> Path:
    """A run killed before its end: parts/ with records.jsonl (its last line cut short), no benchmark.json."""
    run = tmp_path / "run"
    benches = _real_benchmarks()["benchmarks"]
    for part, chunk in (("gw0", benches[:4]), ("gw1", benches[4:7])):
        d = part_dir(run, part)
        for b in chunk:
            append_record(d, b)
        (d / "skipped.json").write_text(json.dumps([{"category": "not-timed", "kernel": part}]))
    with open(run / "parts" / "gw1" / RECORDS, "a") as fh:
        fh.write('{"name": "cut')
    (run / "parts" / "gw0" / "provenance.json").write_text(json.dumps({"device_name": "cpu: x"}))
    return run


def test_a_run_that_never_finished_is_read_from_its_parts(tmp_path):
    run = _unfinished_run(tmp_path)
    with pytest.warns(ResultsWarning) as caught:
        res = load_results(run)
    assert len(res.records) == 7 and res.directory == run
    assert [s["kernel"] for s in res.skipped] == ["gw0", "gw1"]
    assert res.provenance == {"device_name": "cpu: x"}
    messages = [str(w.message) for w in caught]
    assert any("did not finish" in m and "7 records" in m for m in messages)
    assert any("gw1/records.jsonl:4" in m and "cut short" in m for m in messages)


@pytest.mark.parametrize("command", ["claims", "plot"])
def test_the_cli_warns_and_goes_on(tmp_path, capsys, command):
    doc = _real_benchmarks()
    doc["benchmarks"].append(_half_timed())
    (tmp_path / "benchmark.json").write_text(json.dumps(doc))
    (tmp_path / "skipped.json").write_text("{corrupt")
    (tmp_path / "ceilings.json").write_text(json.dumps(
        {"device": "cpu: x", "datasheet": None,
         "measured": {"mem_bandwidth": 2e10, "peak_flops": {"fp32": 1e11, "tensor16": 1e11}}}))
    assert roofline_main([command, str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert f"python -m roofline {command}: warning: " in err and "record skipped" in err
    assert "skipped.json" in err and "error" not in err


def test_claims_refuses_a_dtype_the_kernels_do_not_have(capsys):
    assert roofline_main(["claims", "--dtype", "int8"]) == 2
    assert "--dtype int8: expected one of float16, bfloat16, float32" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# The real thing: pytest --benchmark stopped by SIGTERM / SIGINT
# ------------------------------------------------------------------------------------------------

def _env() -> dict:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT")) and k != "TRITON_INTERPRET"}


@pytest.mark.parametrize("isolate", ["off", "on"], ids=["one-process", "per-family"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_after_the_first_record_keeps_every_finished_benchmark(tmp_path, sig, isolate):
    """Seventeen torch benchmarks (the quick sweep's gelu, softmax and gemv: 4 + 7 + 6); the signal
    arrives as soon as the first record is on disk, so on any CPU, however fast, some cases have not
    run (a fast one finished a case in under 0.15 s, so a fixed sleep is no guarantee). In both layouts:
    one process writing ``parts/main`` (a CPU's default) and one pytest process per kernel family
    writing ``parts/<family>`` (a GPU's default, ``--isolate=on`` here)."""
    cmd = [sys.executable, "-m", "pytest", "--benchmark", "--sweep", "quick", "--kernels",
           "gelu,softmax,gemv", "--providers", "torch", f"--results-root={tmp_path}",
           "--benchmark-max-time=1.5", "--ceilings-budget=0.05", "-p", "no:cacheprovider",
           f"--isolate={isolate}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + 240
    records = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(tmp_path.glob(f"*/*/parts/*/{RECORDS}"))
        if found and found[0].read_text().count("\n") >= 1:
            records = found[0]
            break
        time.sleep(0.05)
    assert records is not None, "no record was written while the run went on"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 2, out[-3000:]  # pytest's "interrupted"
    (run,) = [p for p in tmp_path.glob("*/*") if p.is_dir()]
    assert not (run / "parts").exists()
    bench = json.loads((run / "benchmark.json").read_text())
    kept = bench["benchmarks"]
    assert 1 <= len(kept) < 17 and all(b["extra_info"].get("median_s") for b in kept)
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["interrupted"] is True and prov["exit_status"] == 2 and prov["signal"] == sig.name
    assert "min() arg is an empty sequence" not in out and "Traceback" not in out
    assert f"INTERRUPTED ({sig.name}): the {len(kept)} finished benchmarks are kept" in out
    assert len(load_results(run).records) == len(kept)
    if isolate == "on":  # the controller names the families it started, gelu first
        families = prov["families"]
        assert list(families)[0] == "gelu" and families["gelu"]["exit_status"] in (0, 2)
        assert set(families) <= {"gelu", "softmax", "gemv"}


def test_a_signal_after_the_last_case_still_exits_interrupted(monkeypatch):
    """A signal that lands in the end-of-run steps (the ceilings' second pass), after every case has
    finished: the run is still a stop, so pytest exits 2 and provenance says so, not a clean 0 beside
    "interrupted": true (what a fast CPU showed when its three cases finished before the signal)."""
    from bench import finish, plugin

    monkeypatch.setattr(plugin.SIGNALS, "received", "SIGTERM")
    state = finish.end_state(0)
    assert state["exit_status"] == 2 and state["interrupted"] is True and state["signal"] == "SIGTERM"

    class _Config:
        def getoption(self, name):
            assert name == "--benchmark"
            return False

    class _Session:
        config = _Config()
        exitstatus = pytest.ExitCode.OK

    session = _Session()
    wrapper = plugin.pytest_sessionfinish(session, 0)
    next(wrapper)
    with pytest.raises(StopIteration):
        wrapper.send(None)
    assert session.exitstatus == pytest.ExitCode.INTERRUPTED
    monkeypatch.setattr(plugin.SIGNALS, "received", None)
    session.exitstatus = pytest.ExitCode.OK
    wrapper = plugin.pytest_sessionfinish(session, 0)
    next(wrapper)
    with pytest.raises(StopIteration):
        wrapper.send(None)
    assert session.exitstatus == pytest.ExitCode.OK and finish.end_state(0)["exit_status"] == 0
