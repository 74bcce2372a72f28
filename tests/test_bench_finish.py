"""The end of a benchmark run: the run directory is loaded once and handed to every report
(:func:`roofline.report.finish.finish`), and bench reaches roofline's report side through that one entry point
only, whatever the import's form (module level, inside a function, ``importlib``, ``__import__``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

from roofline.report.finish import finish

ROOT = Path(__file__).resolve().parent.parent


def test_a_run_that_cannot_be_loaded_fails_each_report_with_the_reason(tmp_path):
    (tmp_path / "benchmark.json").write_text("{not json")
    done = finish(tmp_path, step=True)
    assert done.results is None and "not valid JSON" in done.error and done.benchmarks == []
    assert done.roof == [f"ceilings: not judged ({done.error})"]
    reason = f"UsageError: {done.error}"
    assert done.reports == [f"roofline.report.plot.plot_results FAILED: {reason}",
                            f"roofline.report.claims.write_report FAILED: {reason}",
                            f"roofline.report.page.write_page FAILED: {reason}",
                            f"claims tally unavailable: {reason}",
                            f"roofline.report.step_report FAILED: {reason}"]


def _summary(run: Path, **options) -> list[str]:
    from bench.finish import summary_lines

    opts = {"benchmark_disable": False, "benchmark_enable": False, "--no-report": False, **options}
    config = types.SimpleNamespace(getoption=lambda name, default=None: opts.get(name, default), stash={})
    return summary_lines(config, run, {"benchmark.json": run / "benchmark.json"},
                         {"exit_status": 0, "interrupted": False, "signal": None})


def test_the_summary_counts_from_the_loaded_run_and_says_when_it_could_not_load_it(tmp_path):
    from tests.data.synth import A100, benchmark, write_run

    t = 2 * 4096 * 4096 * 2 / A100.mem_bandwidth
    above = benchmark("gemv", {"batch": 1, "n": 4096, "k": 4096, "bias": False}, "float16", t / 2)
    above["extra_info"]["above_roof"] = True
    run = write_run(tmp_path / "run", [above, benchmark("gemv", {"batch": 2, "n": 4096, "k": 4096,
                                                                 "bias": False}, "float16", t)])
    lines = _summary(run, **{"--no-report": True})
    assert "timed benchmarks: 2; skipped: none (skipped.json)" in lines
    assert any(line.endswith(f"measured wrong): 1: {above['name']}") for line in lines)
    assert not any(".write_report" in line for line in lines)  # --no-report: nothing drawn
    (run / "ceilings.json").write_text('{"measured": 1, "datasheet": null}')
    lines = _summary(run)
    assert "timed benchmarks: ? (the run could not be loaded); skipped: none (skipped.json)" in lines
    assert any(line.startswith("ceilings: not judged (") for line in lines)
    assert sum("FAILED: UsageError: " in line for line in lines) == 3 and lines[-1].startswith(
        "claims tally unavailable: UsageError: ")


# A real run of one benchmark, in a subprocess whose loader and file reads are counted: every load of a
# run (roofline.report.results.load_results) and every read of a benchmark.json, by the path it was given.
COUNTING_RUN = """
import json, pathlib, sys
import roofline.report.results as results

loads, reads = [], []
load_results, read_text = results.load_results, pathlib.Path.read_text

def counting_load(path):
    loads.append(str(path))
    return load_results(path)

def counting_read(self, *args, **kwargs):
    if self.name == "benchmark.json":
        reads.append(str(self))
    return read_text(self, *args, **kwargs)

results.load_results = counting_load  # before bench and the reports import it
pathlib.Path.read_text = counting_read
import pytest

code = pytest.main(sys.argv[2:])
pathlib.Path(sys.argv[1]).write_text(json.dumps({"code": int(code), "loads": loads, "reads": reads}))
"""


def test_the_end_of_a_run_loads_the_run_directory_once(tmp_path):
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT")) and k != "TRITON_INTERPRET"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    counts = tmp_path / "counts.json"
    cmd = [sys.executable, "-c", COUNTING_RUN, str(counts), "--benchmark", "--sweep", "smoke", "--kernels",
           "gelu", "--providers", "torch", f"--results-root={out}", "--benchmark-max-time=0.01",
           "--ceilings-budget=0.05", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    doc = json.loads(counts.read_text()) if counts.is_file() else {}
    assert proc.returncode == 0 and doc.get("code") == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (run,) = [p for p in out.glob("*/*") if p.is_dir()]
    for name in ("claims.md", "report.html"):
        assert (run / name).is_file(), name
    assert any(p.name.startswith("roofline-") and p.suffix == ".png" for p in run.iterdir())
    assert "claims: measured: " in proc.stdout and "roofline.report.page.write_page: " in proc.stdout
    assert doc["loads"] == [str(run)]  # the plots, claims, page, tally and summary share one load
    assert doc["reads"] == [str(run / "benchmark.json")]
