"""The ``pytest --benchmark`` command line: selection by kernel and provider, what plain ``pytest`` and
``--collect-only`` leave behind, and the refusals (unknown kernel, parallel workers on a CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.session import BenchSession, open_session
from roofline.model.sweeps import sweep_points

ROOT = Path(__file__).resolve().parent.parent


def _pytest(*args: str, results: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT")) and k != "TRITON_INTERPRET"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU run, also on a GPU machine (the assertions expect one)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--results-root={results}", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_collect_selects_kernels_and_providers_and_keeps_no_empty_run(tmp_path):
    proc = _pytest("--benchmark", "--sweep", "smoke", "--kernels", "gelu,softmax", "--providers", "torch",
                   "--collect-only", "-q", results=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    expected = [p for p in sweep_points("smoke", "cpu") if p.kernel in ("gelu", "softmax")]
    assert len(ids) == len(expected) == 2
    assert all("[torch-" in i and i.startswith("bench/test_") for i in ids)
    assert not any(p.is_dir() for p in tmp_path.glob("*/*"))  # nothing ran: no results directory


def test_bad_selections_and_cpu_workers_are_refused(tmp_path):
    proc = _pytest("--benchmark", "--kernels", "gemm", results=tmp_path)
    assert proc.returncode == 4 and "--kernels gemm" in proc.stderr
    proc = _pytest("--benchmark", "--sweep", "smoke", "-n", "2", results=tmp_path)
    assert proc.returncode == 4 and "one GPU each" in proc.stderr
    assert not list(tmp_path.iterdir())


def test_cpu_session_checks_triton_but_never_times_it(tmp_path):
    import datetime as dt

    session = open_session(run_dir=tmp_path, worker_id=None, sweep="smoke",
                           started=dt.datetime.now(dt.timezone.utc), force_interpreter=False)
    assert isinstance(session, BenchSession)
    if torch.cuda.is_available():  # pragma: no cover - this project's machines have no GPU
        assert session.device_kind == "cuda" and session.triton_timed
    else:
        assert session.device == torch.device("cpu") and not session.triton_timed
        assert session.part == "main" and session.device_name.startswith("cpu: ")
        assert session.cache_name == "last-level cache" and session.flush_nbytes >= 8 * 2**20
        assert session.part_dir == tmp_path / "parts" / "main" and session.part_dir.is_dir()


def test_usage_errors_exit_4_and_say_what_was_wrong(tmp_path):
    proc = _pytest("--benchmark", "--ceilings-budget=-1", results=tmp_path)
    assert proc.returncode == 4 and "--ceilings-budget -1.0: expected a positive number" in proc.stderr
    proc = _pytest("--benchmark", "-n", "auto", results=tmp_path)
    assert proc.returncode == 4 and "-n auto (" in proc.stderr and "one GPU each" in proc.stderr
    assert not list(tmp_path.iterdir())


def test_histogram_without_pygal_is_refused_up_front(tmp_path):
    import importlib.util

    if importlib.util.find_spec("pygal") and importlib.util.find_spec("pygaljs"):  # pragma: no cover
        pytest.skip("pygal is installed here: --benchmark-histogram works")
    proc = _pytest("--benchmark", "--sweep", "smoke", "--benchmark-histogram", results=tmp_path)
    assert proc.returncode == 4 and "--benchmark-histogram needs pygal" in proc.stderr
    assert "pytest-benchmark[histogram]" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())


def test_benchmark_max_time_and_min_rounds_set_the_recorded_rounds(tmp_path):
    """pytest-benchmark's own options reach the round choice (bench.timing.rounds_for): with no time
    budget every case runs exactly --benchmark-min-rounds rounds (the defaults, 1 s and 5, would give
    5 to 100), and the record says so."""
    proc = _pytest("--benchmark", "--sweep", "smoke", "--kernels", "gelu,softmax", "--providers", "torch",
                   "--benchmark-max-time=0", "--benchmark-min-rounds=3", "--ceilings-budget=0.05",
                   "--no-report", "-q", results=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = [p for p in tmp_path.glob("*/*") if p.is_dir()]
    records = json.loads((run / "benchmark.json").read_text())["benchmarks"]
    assert len(records) == 2
    for record in records:
        assert len(record["stats"]["data"]) == record["extra_info"]["rounds"] == 3
        assert (record["options"]["max_time"], record["options"]["min_rounds"]) == (0, 3)
        assert record["options"]["timer"] == "perf_counter"


def test_benchmark_disable_checks_every_case_and_keeps_no_results(tmp_path):
    proc = _pytest("--benchmark", "--sweep", "smoke", "--kernels", "gelu", "--benchmark-disable",
                   "--ceilings-budget=0.05", results=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "--benchmark-disable: every case ran once and was checked; nothing was timed" in proc.stdout
    assert "timed, on the CPU" not in proc.stdout and "timed benchmarks" not in proc.stdout
    assert not any(p.is_dir() for p in tmp_path.glob("*/*"))


def test_each_family_in_its_own_process_and_a_crash_loses_only_its_family(tmp_path):
    """``--isolate=on`` (automatic on CUDA) on this CPU: one pytest subprocess per kernel family, merged
    into one run. A sitecustomize makes F.gelu abort the process, like a hard CUDA fault would: the gelu
    family is lost, softmax still runs, and the run says so."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os\nimport torch.nn.functional as F\n"
        "def crash(*a, **k):\n    os.abort()\nF.gelu = crash\n")
    results = tmp_path / "results"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT")) and k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--results-root={results}",
           "--benchmark", "--sweep", "smoke", "--kernels", "gelu,softmax", "--providers", "torch",
           "--isolate=on", "--benchmark-max-time=0.02", "--ceilings-budget=0.05", "--no-report"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = [p for p in results.glob("*/*") if p.is_dir()]
    bench = json.loads((run / "benchmark.json").read_text())
    assert [b["extra_info"]["kernel"] for b in bench["benchmarks"]] == ["softmax"]
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["families"]["gelu"]["exit_status"] < 0 and prov["families"]["softmax"]["exit_status"] == 0
    assert sorted(prov["per_worker"]) == ["gelu", "softmax"] and prov["interrupted"] is False
    assert prov["per_worker"]["softmax"]["env"]["PYTEST_XDIST_WORKER"] is None
    ceilings = json.loads((run / "ceilings.json").read_text())  # measured once, by the first family
    assert ceilings["per_worker"]["softmax"]["measured"] == ceilings["per_worker"]["gelu"]["measured"]
    assert f"kernel family gelu: its pytest exited {prov['families']['gelu']['exit_status']}" in proc.stdout
    assert "kernel families, one pytest process each: gelu FAILED, softmax ok" in proc.stdout
    assert proc.stdout.rindex(" ridgebench ") > proc.stdout.rindex("test_softmax")


def test_an_interrupted_controller_asks_its_family_process_to_stop_and_waits(tmp_path):
    """SIGTERM to the isolation controller (a KeyboardInterrupt there) is passed on to the running family
    as SIGTERM, which that process turns into an orderly stop; the controller waits for it."""
    import signal

    from bench.isolation import run_child

    marker = tmp_path / "stopped"
    script = ("import signal, sys, time, pathlib\n"
              "def stop(*a):\n"
              f"    pathlib.Path({str(marker)!r}).write_text('orderly')\n"
              "    sys.exit(2)\n"
              "signal.signal(signal.SIGTERM, stop)\n"
              "print('ready', flush=True)\n"
              "time.sleep(60)\n")

    def interrupt(*args):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.5)
    state: dict = {}
    try:
        with pytest.raises(KeyboardInterrupt):
            run_child([sys.executable, "-c", script], dict(os.environ), state)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert marker.read_text() == "orderly"
    assert state == {"exit_status": 2}  # the family's own exit status is kept for the summary
