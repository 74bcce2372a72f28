"""The ``pytest --benchmark`` command line: selection by kernel and provider, what plain ``pytest`` and
``--collect-only`` leave behind, and the refusals (unknown kernel, parallel workers on a CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from bench.session import BenchSession, open_session
from roofline.sweeps import sweep_points

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
