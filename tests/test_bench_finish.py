"""The end of a benchmark run: the run directory is loaded once and handed to every report
(:func:`roofline.finish.finish`), and bench reaches roofline's report side through that one entry point
only, whatever the import's form (module level, inside a function, ``importlib``, ``__import__``)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import types
from pathlib import Path

from roofline.finish import finish

ROOT = Path(__file__).resolve().parent.parent
# roofline's report side (reading runs, claims, plots, the page, comparisons, the CLI) and the one module
# of it bench may import. When the report side moves (roofline/report/), these names move with it.
REPORT_SIDE = ("roofline.results", "roofline.claims", "roofline.plot", "roofline.page", "roofline.compare",
               "roofline.speedup", "roofline.step_report", "roofline.cli", "roofline.report",
               "roofline.__main__")
ENTRY = "roofline.finish"


def imports_of(source: str, where: str = "<source>") -> list[tuple[int, str]]:
    """``(line, module)`` for every import in ``source``, wherever it is: ``import a.b``, ``from a import
    b`` (``a`` and ``a.b``), ``importlib.import_module("a")`` / ``import_module(f"a.{x}")`` and
    ``__import__("a")`` (a literal name, or an f-string's literal start; a name computed otherwise
    cannot be read statically, so it is reported as ``?``)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.append((node.lineno, node.module or ""))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in ("import_module", "__import__") or not node.args:
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((node.lineno, arg.value))
            elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                found.append((node.lineno, str(arg.values[0].value)))
            else:
                found.append((node.lineno, "?"))
    return found


def on_report_side(module: str) -> bool:
    return any(module == side or module.startswith(side + ".") for side in REPORT_SIDE)


def test_the_scan_sees_every_form_of_import():
    source = ("import roofline.plot\n"
              "from roofline import claims\n"
              "def f(kernel):\n"
              "    from roofline.results import load_results\n"
              "    import importlib\n"
              "    importlib.import_module('roofline.page')\n"
              "    importlib.import_module(f'roofline.step_report{kernel}')\n"
              "    __import__('roofline.compare', fromlist=['x'])\n"
              "    from roofline.finish import finish\n"
              "    from roofline.sweeps import sweep_points\n")
    flagged = [m for _, m in imports_of(source) if on_report_side(m)]
    assert flagged == ["roofline.plot", "roofline.claims", "roofline.results",
                       "roofline.results.load_results", "roofline.page", "roofline.step_report",
                       "roofline.compare"]
    assert not on_report_side(ENTRY) and not on_report_side("roofline.sweeps")


def test_bench_reaches_the_report_side_only_through_finish():
    offending, entry = [], []
    for path in sorted((ROOT / "bench").rglob("*.py")):
        for line, module in imports_of(path.read_text(), str(path)):
            where = f"{path.relative_to(ROOT)}:{line}: {module}"
            if on_report_side(module):
                offending.append(where)
            elif module == ENTRY or module.startswith(ENTRY + "."):
                entry.append(where)
    assert not offending, "bench imports roofline's report side directly:\n" + "\n".join(offending)
    assert {w.split(":")[0] for w in entry} == {"bench/finish.py"}, entry  # the one way in, in one module


def test_a_run_that_cannot_be_loaded_fails_each_report_with_the_reason(tmp_path):
    (tmp_path / "benchmark.json").write_text("{not json")
    done = finish(tmp_path, step=True)
    assert done.results is None and "not valid JSON" in done.error and done.benchmarks == []
    assert done.roof == [f"ceilings: not judged ({done.error})"]
    reason = f"UsageError: {done.error}"
    assert done.reports == [f"roofline.plot.plot_results FAILED: {reason}",
                            f"roofline.claims.write_report FAILED: {reason}",
                            f"roofline.page.write_page FAILED: {reason}",
                            f"claims tally unavailable: {reason}",
                            f"roofline.step_report FAILED: {reason}"]


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
# run (roofline.results.load_results) and every read of a benchmark.json, by the path it was given.
COUNTING_RUN = """
import json, pathlib, sys
import roofline.results as results

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
    assert "claims: measured: " in proc.stdout and "roofline.page.write_page: " in proc.stdout
    assert doc["loads"] == [str(run)]  # the plots, claims, page, tally and summary share one load
    assert doc["reads"] == [str(run / "benchmark.json")]
