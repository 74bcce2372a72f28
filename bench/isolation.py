"""Which process runs which benchmarks: device allocation under xdist, and per-family isolation.

A ``pytest --benchmark`` process is one of four kinds:

- the only process (no ``-n``, no isolation): it runs every benchmark and writes ``parts/main/``;
- the xdist controller (``-n <gpus>``): it runs no benchmark and hands each worker a GPU no live worker
  holds (:class:`GpuAllocator`, through :class:`XdistHooks`), so ``gwN`` starts on ``cuda:N`` and a worker
  xdist restarts after a crash (``gw2`` on a 2-GPU box) takes over the GPU its dead predecessor held; no
  two benchmarks ever share a GPU. Asking for more workers than GPUs is an error
  (:func:`check_worker_count`), not a silent doubling-up;
- an xdist worker: it benchmarks on its GPU and writes ``parts/<gwN>/``;
- the isolation controller (``--isolate``, automatic on CUDA without ``-n``): it runs no benchmark and
  starts one pytest subprocess per kernel family, one after the other (:func:`run_families`), so a sticky
  CUDA error loses only that family; each child (``RIDGEBENCH_PART``) writes ``parts/<family>/``.

The controllers merge the parts when the session ends (:mod:`bench.finish`).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from roofline.model import machine
from roofline.rundir import CEILINGS, PARTS, PROVENANCE, read_json

# TRITON_INTERPRET as the user set it: this module is imported with bench.plugin by the root conftest,
# before tests/conftest.py (which sets it for the tests) is imported. A child gets this value back.
USER_TRITON_INTERPRET = os.environ.get("TRITON_INTERPRET")
# How the isolation controller tells a per-family subprocess which run and part it writes.
CHILD_ENV = ("RIDGEBENCH_RUN_DIR", "RIDGEBENCH_PART", "RIDGEBENCH_STARTED", "RIDGEBENCH_CEILINGS_FROM")
CHILD_STOP_TIMEOUT_S = 120  # after an interrupt, how long a family's subprocess gets to write its part


def worker_id() -> str | None:
    """This process's xdist worker id (``gw0``...), or None when it is not an xdist worker."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def child_part() -> str | None:
    """The part name when this process is one kernel family's subprocess of an isolated run."""
    return os.environ.get("RIDGEBENCH_PART") or None


def distributed(config: pytest.Config) -> bool:
    return getattr(config.option, "dist", "no") != "no" and bool(getattr(config.option, "numprocesses", None))


def is_controller(config: pytest.Config, isolate: bool) -> bool:
    """A process that runs no benchmark itself: the xdist controller (it schedules workers) or the
    isolation controller (``isolate``: it runs one subprocess per kernel family)."""
    if worker_id() is not None or child_part() is not None:
        return False
    return distributed(config) or isolate


def isolated(isolate: str, cuda: bool, distributed: bool) -> bool:
    """Whether each kernel family runs in its own subprocess: ``--isolate on``, or ``auto`` on a GPU
    (CUDA, or a forced GPU machine: ``RIDGEBENCH_MACHINE=sm90`` gives a CPU the GPU's layout); never
    under xdist (each worker owns a GPU already)."""
    gpu = cuda or (machine.forced_arch() is not None)
    return not distributed and (isolate == "on" or (isolate == "auto" and gpu))


def spelled_numprocesses(args: tuple[str, ...] | list[str]) -> str | None:
    """What the user wrote for ``-n`` (``auto``, ``logical``, ``4``), before xdist made it a number."""
    value = None
    args = list(args)
    for i, arg in enumerate(args):
        if arg in ("-n", "--numprocesses") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--numprocesses="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-n") and len(arg) > 2 and not arg.startswith("--"):
            value = arg[2:].lstrip("=")
    return value


def check_worker_count(numprocesses: object, device_count: int, cuda: bool,
                       spelled: str | None = None) -> str | None:
    """Why ``-n numprocesses`` cannot run here (None if it can): one worker per GPU, none on a CPU.

    ``spelled`` is what the user typed (``auto``, ``logical``) when xdist has already turned it into a
    number, so the message names both. ``RIDGEBENCH_CPU_WORKERS=1`` lets workers run on a CPU anyway:
    for testing the scale-out plumbing only, since CPU workers time each other."""
    if numprocesses in (None, 0, "0"):
        return None
    try:
        n = int(numprocesses)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"-n {numprocesses}: give the number of GPUs explicitly (one worker per GPU)"
    if n <= 0:
        return None
    asked = f"-n {spelled} ({n} workers)" if spelled not in (None, str(n)) else f"-n {n}"
    if not cuda:
        if os.environ.get("RIDGEBENCH_CPU_WORKERS") == "1":
            return None
        return (f"{asked}: parallel benchmark workers need one GPU each; on the CPU they would time each "
                "other. Run without -n.")
    if n > device_count:
        return (f"{asked}: only {device_count} CUDA device(s) visible; one worker per GPU means "
                f"-n {device_count}")
    return None


# ------------------------------------------------------------------------------------------------
# xdist: one worker per GPU
# ------------------------------------------------------------------------------------------------

class GpuAllocator:
    """The controller's map of xdist workers to GPUs: a new worker gets the lowest-numbered GPU no live
    worker holds, and a worker that goes down frees its GPU. xdist names a replacement for a crashed
    worker with a fresh id (``gw2`` on a 2-worker run), so a GPU cannot be derived from the id alone."""

    def __init__(self, device_count: int) -> None:
        if device_count < 1:
            raise ValueError(f"device_count: expected at least one GPU, got {device_count}")
        self.device_count = device_count
        self.held: dict[str, int] = {}

    def assign(self, worker_id: str) -> int:
        if worker_id in self.held:
            return self.held[worker_id]
        free = [i for i in range(self.device_count) if i not in self.held.values()]
        if not free:
            raise RuntimeError(f"xdist worker {worker_id}: all {self.device_count} GPUs are held by "
                               f"{', '.join(sorted(self.held))}; one worker per GPU")
        self.held[worker_id] = free[0]
        return free[0]

    def release(self, worker_id: str) -> None:
        self.held.pop(worker_id, None)


class XdistHooks:
    """The controller's xdist hooks: each worker's run directory, start time and GPU. Registered only
    when xdist is present (its hooks are unknown to pytest otherwise)."""

    def __init__(self, run_dir: Path, started: dt.datetime, gpus: GpuAllocator | None) -> None:
        self.run_dir, self.started, self.gpus = run_dir, started, gpus

    def pytest_configure_node(self, node) -> None:
        node.workerinput["ridgebench_run_dir"] = str(self.run_dir)
        node.workerinput["ridgebench_started"] = self.started.isoformat()
        if self.gpus is not None:
            node.workerinput["ridgebench_gpu"] = self.gpus.assign(node.gateway.id)

    def pytest_testnodedown(self, node, error) -> None:
        if self.gpus is not None:
            self.gpus.release(node.gateway.id)


# ------------------------------------------------------------------------------------------------
# Per-family isolation: one pytest subprocess per kernel family, each writing its part of the run
# ------------------------------------------------------------------------------------------------

def families_of(items: list[pytest.Item]) -> list[str]:
    """Kernel families in collection order."""
    seen: list[str] = []
    for item in items:
        kernel = getattr(getattr(item, "function", None), "KERNEL", None)
        if kernel is not None and kernel not in seen:
            seen.append(kernel)
    return seen


def child_env(run_dir: Path, started: str, family: str, ceilings_from: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CHILD_ENV}
    env.update(RIDGEBENCH_RUN_DIR=str(run_dir), RIDGEBENCH_PART=family, RIDGEBENCH_STARTED=started)
    if ceilings_from is not None:
        env["RIDGEBENCH_CEILINGS_FROM"] = str(ceilings_from)
    if USER_TRITON_INTERPRET is None:
        env.pop("TRITON_INTERPRET", None)
    else:
        env["TRITON_INTERPRET"] = USER_TRITON_INTERPRET
    return env


def run_child(cmd: list[str], env: dict, state: dict, cwd: Path | None = None) -> int:
    """Run one family's pytest; on an interrupt, ask it to stop (SIGTERM: it writes its part) and wait.
    ``state["exit_status"]`` gets the child's exit status either way (negative: killed by that signal)."""
    proc = subprocess.Popen(cmd, cwd=cwd or os.getcwd(), env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=CHILD_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise
    finally:
        state["exit_status"] = proc.returncode


def run_families(session: pytest.Session, run_dir: Path, started: dt.datetime, families: dict) -> None:
    """The isolation controller's test loop: the user's own command line once per kernel family
    (``RIDGEBENCH_PART``; a later ``--isolate`` wins), in collection order. ``families`` gets each
    family's exit status (and its ``fatal`` reason, from its part's provenance); a family that failed
    counts as a failed test, and ``-x``/``--maxfail`` stop the run after it. The first family's
    ``ceilings.json`` is handed to the rest (one ceilings pass per run)."""
    config = session.config
    ceilings_from = None
    cmd = [sys.executable, "-m", "pytest", *map(str, config.invocation_params.args), "--isolate=off"]
    for family in families_of(session.items):
        if config.option.maxfail and session.testsfailed >= config.option.maxfail:
            break  # -x / --maxfail: a failed family stops the run
        env = child_env(run_dir, started.isoformat(), family, ceilings_from)
        families[family] = {"exit_status": None}
        rc = run_child(cmd, env, families[family], cwd=config.invocation_params.dir)
        part = run_dir / PARTS / family
        doc = read_json(part / PROVENANCE)
        if isinstance(doc, dict) and doc.get("fatal"):
            families[family]["fatal"] = doc["fatal"]
        if rc not in (0, 5):  # 5: nothing collected (every case of the family deselected)
            session.testsfailed += 1
        if ceilings_from is None and (part / CEILINGS).is_file():
            ceilings_from = part / CEILINGS
