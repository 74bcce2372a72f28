"""The benchmark suite's pytest plugin, loaded by the root conftest (``pytest_plugins``) so that its hooks
run in every process whatever the arguments; each hook does nothing without ``--benchmark``.

- configure: refuse bad options (exit 4); decide interpreter-or-GPU before any kernel module is
  imported (Triton reads ``TRITON_INTERPRET`` when ``@triton.jit`` decorates): without CUDA set it to
  1; with CUDA restore the value the user started with (``tests/conftest.py``, also loaded at start-up,
  sets it to 1); create ``results/<device-slug>/<UTC timestamp>/``; pin this process to its GPU (the
  xdist controller assigns each worker a free one); turn SIGTERM into an orderly stop like Ctrl-C;
- collection: parametrize each ``bench/test_<kernel>.py`` over plain values, ``provider`` and ``case``
  (the ``roofline.sweeps`` point id), so pytest-benchmark's ``--benchmark-group-by=param:...`` works;
- the run: each finished benchmark is appended to this process's ``parts/<part>/records.jsonl`` at
  once (:meth:`bench.session.BenchSession.add_record`). On CUDA, without ``-n``, each kernel family
  runs in its own pytest subprocess (``--isolate``), so a sticky CUDA error loses only that family;
- session finish: drop half-timed records, note the exit status and whether the run was interrupted in
  ``provenance.json``, merge the parts into the run's four files, draw the roofline and write the claims
  (when ``roofline.plot`` / ``roofline.claims`` are importable), and print the summary last.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench import ceilings as ceilings_mod
from bench import provenance, step_options, timing
from bench import providers as provider_registry
from bench.results import HEADER, merge_parts, new_run_dir, write_json
from bench.runner import finished
from bench.session import BenchSession, GpuAllocator, check_worker_count, cpu_device_name, open_session
from roofline import machine
from roofline.ops import KERNELS, OPS
from roofline.sweeps import SweepPoint, sweep_dtype, sweep_points

SESSION = pytest.StashKey[BenchSession]()
RUN_DIR = pytest.StashKey[Path]()
USER_JSON = pytest.StashKey[object]()
REPORT = pytest.StashKey[list]()
POINTS = pytest.StashKey[dict]()
ISOLATE = pytest.StashKey[bool]()
FAMILIES = pytest.StashKey[dict]()
STARTED = pytest.StashKey[dt.datetime]()
ROOT = Path(__file__).resolve().parent.parent
# TRITON_INTERPRET as the user set it: this module is imported by the root conftest, before
# tests/conftest.py (which sets it for the tests) is imported.
USER_TRITON_INTERPRET = os.environ.get("TRITON_INTERPRET")
# How the isolation controller tells a per-family subprocess which run and part it writes.
CHILD_ENV = ("RIDGEBENCH_RUN_DIR", "RIDGEBENCH_PART", "RIDGEBENCH_STARTED", "RIDGEBENCH_CEILINGS_FROM")
CHILD_STOP_TIMEOUT_S = 120  # after an interrupt, how long a family's subprocess gets to write its part


class _Signals:
    """SIGTERM (and SIGINT) raise KeyboardInterrupt once, so pytest stops in order: the current case is
    abandoned, session finish still runs and the run directory is written. Later signals while that
    happens are noted, not raised, so they cannot cut the writing short."""

    def __init__(self) -> None:
        self.received: str | None = None
        self.previous: dict[int, object] = {}

    def handler(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name
            raise KeyboardInterrupt(self.received)
        sys.stderr.write(f"\nridgebench: {signal.Signals(signum).name} again; still writing the results\n")

    def install(self) -> None:
        if self.previous or _in_worker_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler):
                self.previous[sig] = signal.signal(sig, self.handler)

    def restore(self) -> None:
        for sig, old in self.previous.items():
            signal.signal(sig, old)
        self.previous.clear()


def _in_worker_thread() -> bool:
    import threading

    return threading.current_thread() is not threading.main_thread()


SIGNALS = _Signals()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ridgebench", "ridgebench benchmark suite (with --benchmark)")
    group.addoption("--sweep", default="quick", choices=("smoke", "quick", "full"),
                    help="sweep preset from roofline/sweeps.py (default: quick)")
    group.addoption("--kernels", default=None, metavar="K1,K2",
                    help="only these kernels, comma-separated: "
                         + "; ".join(f"{name}: {OPS[name].summary}" for name in KERNELS))
    group.addoption("--providers", default="triton,torch", metavar="P1,P2",
                    help="providers to run (default: triton,torch): triton, torch, inductor, sdpa-flash, "
                         "sdpa-efficient, sdpa-cudnn, sdpa-math, flash-attn, flashinfer, liger, those of "
                         "--provider-module; 'all' = every provider that can run here")
    group.addoption("--provider-module", action="append", default=[], metavar="MODULE",
                    help="import MODULE (repeatable) defining PROVIDERS = {name: {kernel: callable}}: your "
                         "own providers, checked, timed and plotted like ours (bench/providers.py)")
    group.addoption("--results-root", default=str(ROOT / "results"), metavar="DIR",
                    help="where <device-slug>/<UTC timestamp>/ is created (default: ./results); "
                         "write --results-root=DIR so pytest does not take DIR for a test path")
    group.addoption("--ceilings-budget", default=0.5, type=float, metavar="SECONDS",
                    help="ceilings budget, before and after the sweep: 0.3x per memory kind, 0.1x per "
                         "GEMM probe (bench/ceilings.py); default 0.5")
    group.addoption("--dtype", default=None, choices=("bfloat16", "float16", "float32"),
                    help="dtype of every sweep point (default: bf16 on a GPU; on a CPU bf16 where it has "
                         "native bf16 math, else fp32)")
    group.addoption("--isolate", default="auto", choices=("auto", "on", "off"),
                    help="run each kernel family in its own pytest subprocess, so a sticky CUDA error "
                         "loses only that family (auto: on with CUDA and no -n, off on a CPU)")
    group.addoption("--timing", default="auto", choices=timing.METHODS,
                    help="how a GPU point's device time is measured (default auto: torch.profiler's kernel "
                         "records, else CUDA-graph replay, else a spin sized to the host time; events: "
                         "the old fixed-spin event clock); docs/timing.md")
    group.addoption("--no-report", action="store_true", default=False,
                    help="do not draw the roofline plots and claims report at the end of the run")
    step_options.add_options(group)


def _worker_id() -> str | None:
    return os.environ.get("PYTEST_XDIST_WORKER")


def _child_part() -> str | None:
    """The part name when this process is one kernel family's subprocess of an isolated run."""
    return os.environ.get("RIDGEBENCH_PART") or None


def _distributed(config: pytest.Config) -> bool:
    return getattr(config.option, "dist", "no") != "no" and bool(getattr(config.option, "numprocesses", None))


def _is_controller(config: pytest.Config) -> bool:
    """A process that runs no benchmark itself: the xdist controller (it schedules workers) or the
    isolation controller (it runs one subprocess per kernel family)."""
    if _worker_id() is not None or _child_part() is not None:
        return False
    return _distributed(config) or config.stash.get(ISOLATE, False)


def _csv(config: pytest.Config, option: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    value = config.getoption(option)
    if value is None:
        return allowed
    chosen = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [v for v in chosen if v not in allowed]
    if unknown or not chosen:
        raise pytest.UsageError(f"{option} {value}: expected a comma-separated subset of "
                                f"{', '.join(allowed)}")
    return chosen


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


def check_options(config: pytest.Config) -> None:
    """Refuse option values that cannot work, before anything is created (pytest exits 4)."""
    try:
        machine.forced()
    except machine.MachineError as exc:
        raise pytest.UsageError(str(exc)) from None
    budget = config.getoption("--ceilings-budget")
    if not (math.isfinite(budget) and budget > 0):
        raise pytest.UsageError(f"--ceilings-budget {budget}: expected a positive number of seconds")
    if getattr(config.option, "benchmark_histogram", None):
        missing = [m for m in ("pygal", "pygaljs") if importlib.util.find_spec(m) is None]
        if missing:
            raise pytest.UsageError(
                f"--benchmark-histogram needs {' and '.join(missing)}, not installed here: "
                "pip install 'pytest-benchmark[histogram]' (or run without --benchmark-histogram)")
    _csv(config, "--kernels", KERNELS)
    try:
        provider_registry.load_user_providers(config.getoption("--provider-module"))
    except provider_registry.ProviderError as exc:
        raise pytest.UsageError(str(exc)) from None
    chosen_providers(config, "cpu")  # validates the names; the device matters only for "all"
    for why in provider_registry.broken_entry_points().values():  # not asked for: a warning, not a stop
        print(f"ridgebench: warning: {why} (its providers are left out)", file=sys.stderr)


def chosen_providers(config: pytest.Config, device_kind: str) -> tuple[str, ...]:
    """``--providers``: the names given (each known), or ``all``: every provider that can run here."""
    value = (config.getoption("--providers") or "").strip()
    if value == "all":
        return provider_registry.runnable_here(device_kind)
    known = provider_registry.names()
    unknown = [v.strip() for v in value.split(",") if v.strip() and v.strip() not in known]
    if unknown:  # names the entry points that failed to load, one of which may define it
        raise pytest.UsageError(provider_registry.unknown_providers_error("--providers", value, unknown))
    return _csv(config, "--providers", provider_registry.names())


def isolated(isolate: str, cuda: bool, distributed: bool) -> bool:
    """Whether each kernel family runs in its own subprocess: ``--isolate on``, or ``auto`` on a GPU
    (CUDA, or a forced GPU machine: ``RIDGEBENCH_MACHINE=sm90`` gives a CPU the GPU's layout); never
    under xdist (each worker owns a GPU already)."""
    gpu = cuda or (machine.forced_arch() is not None)
    return not distributed and (isolate == "on" or (isolate == "auto" and gpu))


class _XdistHooks:
    """Registered only when xdist is present (its hooks are unknown to pytest otherwise)."""

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


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` with ``--benchmark`` on CUDA: one worker per visible GPU (not one per CPU core)."""
    if not config.getoption("--benchmark", default=False):
        return None
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else None


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("--benchmark"):
        return
    import torch  # torch does not import Triton kernels

    cuda = torch.cuda.is_available()
    force_interpreter = USER_TRITON_INTERPRET not in (None, "", "0")
    if not cuda:
        os.environ["TRITON_INTERPRET"] = "1"  # before any kernels.* import, a user provider's included
    elif USER_TRITON_INTERPRET is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = USER_TRITON_INTERPRET
    check_options(config)  # imports --provider-module: after the interpreter decision above
    worker, child = _worker_id(), _child_part()
    gpu_index = None
    if worker is None and child is None:
        problem = check_worker_count(getattr(config.option, "numprocesses", None),
                                     torch.cuda.device_count() if cuda else 0, cuda,
                                     spelled_numprocesses(config.invocation_params.args))
        if problem:
            raise pytest.UsageError(problem)
        config.stash[ISOLATE] = isolated(config.getoption("--isolate"), cuda, _distributed(config))
        started = dt.datetime.now(dt.timezone.utc)
        name = torch.cuda.get_device_name(0) if cuda else cpu_device_name()
        step_options.configure(config, cuda)  # a bad --model/--batch fails before a run dir exists
        run_dir = new_run_dir(Path(config.getoption("--results-root")), name, started)
        step_options.save_request(config, run_dir)
        if config.pluginmanager.hasplugin("xdist"):
            gpus = GpuAllocator(torch.cuda.device_count()) if cuda else None
            config.pluginmanager.register(_XdistHooks(run_dir, started, gpus), "ridgebench-xdist")
    elif child is not None:
        run_dir = Path(os.environ["RIDGEBENCH_RUN_DIR"])
        started = dt.datetime.fromisoformat(os.environ["RIDGEBENCH_STARTED"])
        step_options.configure(config, cuda)
    else:
        run_dir = Path(config.workerinput["ridgebench_run_dir"])  # type: ignore[attr-defined]
        started = dt.datetime.fromisoformat(config.workerinput["ridgebench_started"])  # type: ignore[attr-defined]
        gpu_index = config.workerinput.get("ridgebench_gpu")  # type: ignore[attr-defined]
        step_options.configure(config, cuda)
    config.stash[RUN_DIR], config.stash[STARTED] = run_dir, started
    config.stash[USER_JSON] = config.option.benchmark_json
    config.option.benchmark_json = None  # ridgebench writes benchmark.json itself (records as they finish)
    SIGNALS.install()
    if _is_controller(config):
        return
    try:
        session = open_session(run_dir=run_dir, worker_id=worker, sweep=step_options.sweep_name(config),
                               started=started, force_interpreter=force_interpreter, gpu_index=gpu_index,
                               part=child)
    except RuntimeError as exc:
        raise pytest.UsageError(str(exc)) from None
    session.ceilings_budget_s = config.getoption("--ceilings-budget")
    if os.environ.get("RIDGEBENCH_CEILINGS_FROM"):
        session.ceilings_from = Path(os.environ["RIDGEBENCH_CEILINGS_FROM"])
    config.stash[SESSION] = session
    argv = getattr(config, "workerinput", {}).get("mainargv", sys.argv)  # an xdist worker: the user's
    dtype, why = sweep_dtype(session.device_kind, config.getoption("--dtype"))
    doc = provenance.collect(root=ROOT, device=session.device, device_name=session.device_name,
                             command_line=list(argv), sweep=session.sweep, started=started,
                             sweep_dtype={"dtype": dtype, "reason": why})
    write_json(session.part_dir / "provenance.json", doc)


def pytest_unconfigure(config: pytest.Config) -> None:
    SIGNALS.restore()


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if not config.getoption("--benchmark"):
        return
    # pytest-benchmark disables itself under xdist because workers would share one machine; here each
    # worker owns one GPU (bench.session.GpuAllocator), so benchmarks stay on in the workers. No
    # pytest-benchmark JSON in parts/ either (it named a file merged away a moment later).
    disabled = None
    if _worker_id() is not None:
        disabled = bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")
    timing.keep_benchmarks_on(config, disabled=disabled)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Only the suite's own modules (they declare KERNEL); a test elsewhere may have a `case` fixture too.
    if "case" not in metafunc.fixturenames or not hasattr(metafunc.module, "KERNEL"):
        return
    import torch

    config = metafunc.config
    kernel = metafunc.module.KERNEL
    device_kind = "cuda" if torch.cuda.is_available() else "cpu"
    # a provider without this kernel is not a case of it (an unavailable one is: a recorded skip)
    providers = [p for p in chosen_providers(config, device_kind) if provider_registry.has_kernel(p, kernel)]
    step = step_options.points(config)  # --model: one model step's shapes instead of the sweep preset
    all_points = step if step is not None else sweep_points(config.getoption("--sweep"), device_kind,
                                                            config.getoption("--dtype"))
    points = [p for p in all_points if p.kernel == kernel]
    known = config.stash.setdefault(POINTS, {})
    known.update(((kernel, p.id), p) for p in points)  # ids are unique within a kernel only
    cases = [(prov, p.id) for p in points for prov in providers]
    metafunc.parametrize(("provider", "case"), cases, ids=[f"{prov}-{pid}" for prov, pid in cases])


@pytest.fixture
def point(case: str, request: pytest.FixtureRequest) -> SweepPoint:
    """The sweep point a benchmark's ``case`` (its id, a plain string parameter) names."""
    return request.config.stash[POINTS][(request.module.KERNEL, case)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On CUDA, give each benchmark its own device clock as pytest-benchmark's timer; ``--kernels``
    (and, in a per-family subprocess, its family): deselect the other kernels' benchmarks (like
    ``-k``)."""
    if not config.getoption("--benchmark"):
        return
    session = config.stash.get(SESSION, None)
    if session is not None and session.device_kind == "cuda":
        for item in items:  # pytest-benchmark records device time (bench.timing.DeviceClock)
            if getattr(getattr(item, "module", None), "KERNEL", None) is not None:
                timing.use_device_clock(item)
    kernels = _csv(config, "--kernels", KERNELS)
    if _child_part() is not None:
        kernels = tuple(k for k in kernels if k == _child_part())
    elif config.getoption("--kernels") is None:
        return
    keep, drop = [], []
    for item in items:
        module = getattr(item, "module", None)
        (drop if getattr(module, "KERNEL", None) not in (None, *kernels) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def bench_session(request: pytest.FixtureRequest) -> BenchSession:
    """This process's session; its ceilings are measured by the first timed case (bench.runner), where
    running out of memory is a recorded skip rather than an error of every benchmark."""
    return request.config.stash[SESSION]


# ------------------------------------------------------------------------------------------------
# Per-family isolation: one pytest subprocess per kernel family, each writing its part of the run
# ------------------------------------------------------------------------------------------------

def families_of(items: list[pytest.Item]) -> list[str]:
    """Kernel families in collection order."""
    seen: list[str] = []
    for item in items:
        kernel = getattr(getattr(item, "module", None), "KERNEL", None)
        if kernel is not None and kernel not in seen:
            seen.append(kernel)
    return seen


def _child_env(run_dir: Path, started: str, family: str, ceilings_from: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CHILD_ENV}
    env.update(RIDGEBENCH_RUN_DIR=str(run_dir), RIDGEBENCH_PART=family, RIDGEBENCH_STARTED=started)
    if ceilings_from is not None:
        env["RIDGEBENCH_CEILINGS_FROM"] = str(ceilings_from)
    if USER_TRITON_INTERPRET is None:
        env.pop("TRITON_INTERPRET", None)
    else:
        env["TRITON_INTERPRET"] = USER_TRITON_INTERPRET
    return env


def _run_child(cmd: list[str], env: dict, state: dict, cwd: Path | None = None) -> int:
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


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    config = session.config
    if (not config.getoption("--benchmark") or not config.stash.get(ISOLATE, False)
            or _child_part() is not None or config.option.collectonly):
        return None
    if session.testsfailed and config.option.continue_on_collection_errors is False:
        return None  # pytest reports the collection errors
    run_dir, started = config.stash[RUN_DIR], config.stash[STARTED]
    results: dict[str, dict] = {}
    config.stash[FAMILIES] = results
    ceilings_from = None
    # The user's own command line, for one family (RIDGEBENCH_PART); a later --isolate wins.
    cmd = [sys.executable, "-m", "pytest", *map(str, config.invocation_params.args), "--isolate=off"]
    for family in families_of(session.items):
        if config.option.maxfail and session.testsfailed >= config.option.maxfail:
            break  # -x / --maxfail: a failed family stops the run
        env = _child_env(run_dir, started.isoformat(), family, ceilings_from)
        results[family] = {"exit_status": None}
        rc = _run_child(cmd, env, results[family], cwd=config.invocation_params.dir)
        part = run_dir / "parts" / family
        doc = _load_json(part / "provenance.json")
        if isinstance(doc, dict) and doc.get("fatal"):
            results[family]["fatal"] = doc["fatal"]
        if rc not in (0, 5):  # 5: nothing collected (every case of the family deselected)
            session.testsfailed += 1
        if ceilings_from is None and (part / "ceilings.json").is_file():
            ceilings_from = part / "ceilings.json"
    return True


# ------------------------------------------------------------------------------------------------
# Session end
# ------------------------------------------------------------------------------------------------

def _load_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """Before pytest-benchmark's own session end: drop records a stop left half-timed (no rounds, or no
    ridgebench extra_info), which would otherwise be saved and displayed (and crash its table). The
    run's files are written by :func:`_finish`, an ordinary implementation of this hook, which runs
    before the terminal summary does."""
    if session.config.getoption("--benchmark"):
        timing.drop_benchmarks(session.config, keep=finished)
    yield
    if SIGNALS.received is not None:  # a signal after the last case (in the end-of-run steps) is still
        session.exitstatus = pytest.ExitCode.INTERRUPTED  # a stop: the caller sees 2, not a clean 0


@pytest.hookimpl(specname="pytest_sessionfinish")
def pytest_sessionfinish_write_run(session: pytest.Session, exitstatus: int) -> None:
    _finish(session, int(exitstatus))


def _interrupted(exitstatus: int) -> bool:
    return exitstatus == pytest.ExitCode.INTERRUPTED or SIGNALS.received is not None


def _end_state(exitstatus: int) -> dict:
    if SIGNALS.received is not None:
        exitstatus = int(pytest.ExitCode.INTERRUPTED)  # what pytest_sessionfinish makes pytest exit with
    return {"exit_status": exitstatus, "interrupted": _interrupted(exitstatus),
            "signal": SIGNALS.received, "finished_utc": dt.datetime.now(dt.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ")}


def _close_part(config: pytest.Config, bsession: BenchSession, exitstatus: int) -> None:
    """This process's last words in its part: the ceilings again (after the sweep: the best of both
    passes kept and this part's records re-judged against them), the pytest-benchmark header and the
    end state."""
    after_error = None
    if not _interrupted(exitstatus) and bsession.fatal is None:
        try:
            ceilings_mod.after_sweep(bsession, budget_s=config.getoption("--ceilings-budget"))
        except KeyboardInterrupt:  # a signal during the second pass: keep the first, write the part
            after_error = f"interrupted ({SIGNALS.received or 'KeyboardInterrupt'}); the first pass is kept"
        except Exception as exc:  # noqa: BLE001 - the records and the first pass are already on disk
            after_error = f"{type(exc).__name__}: {exc}"
    try:
        machine_info = config.hook.pytest_benchmark_generate_machine_info(config=config)
        config.hook.pytest_benchmark_update_machine_info(config=config, machine_info=machine_info)
        header = config.hook.pytest_benchmark_generate_json(
            config=config, benchmarks=[], include_data=True, machine_info=machine_info,
            commit_info=config.hook.pytest_benchmark_generate_commit_info(config=config))
    except Exception as exc:  # noqa: BLE001 - the header is descriptive; the records are what matter
        header = {"machine_info": {"error": f"{type(exc).__name__}: {exc}"}, "commit_info": {}}
    header.pop("benchmarks", None)
    write_json(bsession.part_dir / HEADER, header)
    doc_path = bsession.part_dir / "provenance.json"
    doc = _load_json(doc_path)
    if isinstance(doc, dict):
        if bsession.device_kind == "cuda":
            doc["nvml_end"] = provenance.nvml_info(doc.get("device", {}).get("uuid"))
        doc.update(_end_state(exitstatus), timed=bsession.timed, fatal=bsession.fatal)
        if after_error:
            doc["ceilings_after_sweep_error"] = after_error
        write_json(doc_path, doc)


def _finish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not config.getoption("--benchmark") or RUN_DIR not in config.stash:
        return
    bsession = config.stash.get(SESSION, None)
    if bsession is not None:
        _close_part(config, bsession, exitstatus)
    if _worker_id() is not None or _child_part() is not None:
        return  # the controller merges
    run_dir = config.stash[RUN_DIR]
    if config.option.collectonly:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    families = config.stash.get(FAMILIES, {})
    run_info = _end_state(exitstatus)
    if families:
        run_info["families"] = families
    written = merge_parts(run_dir, run_info) if run_dir.is_dir() else {}
    config.stash[REPORT] = summary_lines(config, run_dir, written, run_info)


def summary_lines(config: pytest.Config, run_dir: Path, written: dict, run_info: dict) -> list[str]:
    """What the ridgebench section at the very end of the output says (and removes an empty run)."""
    has_bench = "benchmark.json" in written
    skipped = _load_json(run_dir / "skipped.json")
    skipped = skipped if isinstance(skipped, list) else []
    disabled = bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")
    if disabled or (not has_bench and not skipped):
        shutil.rmtree(run_dir, ignore_errors=True)
        if disabled:
            return ["--benchmark-disable: every case ran once and was checked; nothing was timed, so no "
                    "results directory was kept"]
        if run_info["interrupted"]:
            return [f"INTERRUPTED ({run_info['signal'] or 'KeyboardInterrupt'}) before any benchmark "
                    "finished; no results directory kept"]
        return ["no benchmark ran; no results directory kept"]
    lines: list[str] = []
    user_json = config.stash[USER_JSON]
    if has_bench and user_json:
        shutil.copyfile(written["benchmark.json"], user_json)
    records = _load_json(written["benchmark.json"])["benchmarks"] if has_bench else []
    by_cat: dict[str, int] = {}
    for s in skipped:
        category = s.get("category", "?") if isinstance(s, dict) else "?"
        by_cat[category] = by_cat.get(category, 0) + 1
    lines.append(f"results: {run_dir}")
    if has_bench:
        lines.append(f"benchmark data: {written['benchmark.json']}"
                     + (f" (copied to {user_json})" if user_json else ""))
    lines.append(f"timed benchmarks: {len(records)}; skipped: "
                 + (", ".join(f"{n} {c}" for c, n in sorted(by_cat.items())) or "none") + " (skipped.json)")
    above = [r for r in records if (r.get("extra_info") or {}).get("above_roof")]
    if has_bench:
        lines.append(f"above the roof (past the ceilings' noise tolerance; a counting error or a ceiling "
                     f"measured wrong): {len(above)}"
                     + (": " + ", ".join(r.get("name", "?") for r in above[:5]) if above else ""))
        lines += ceilings_mod.summary_lines(run_dir)
        lines += timing.launch_summary(records)
    if by_cat.get("not-timed"):
        lines.append(f"NO GPU: {by_cat['not-timed']} Triton benchmarks were checked under the Triton "
                     "interpreter (TRITON_INTERPRET=1) on the CPU and NOT timed; only the torch provider "
                     "was timed, on the CPU")
    families = run_info.get("families", {})
    if families:
        lines.append("kernel families, one pytest process each: " + ", ".join(
            f"{f} {'ok' if st.get('exit_status') in (0, 5) else 'FAILED'}" for f, st in families.items())
            + " (each printed its own pass/fail counts above; this controlling process ran no test itself)")
    for family, state in families.items():
        if state.get("exit_status") not in (0, 5):
            lines.append(f"kernel family {family}: its pytest exited {state.get('exit_status')}"
                         + (f" ({state['fatal']}; the rest of the family did not run)" if state.get("fatal")
                            else ""))
    if run_info["interrupted"]:
        lines.append(f"INTERRUPTED ({run_info['signal'] or 'KeyboardInterrupt'}): the {len(records)} "
                     "finished benchmarks are kept (a case stopped part-way is dropped; cases not reached did not "
                     "run); provenance.json says "
                     '"interrupted": true')
    if has_bench and not config.getoption("--no-report"):
        if run_info["interrupted"]:
            lines.append("reports not drawn (interrupted): " + "; ".join([
                f"python -m roofline plot {run_dir}", f"python -m roofline claims {run_dir}",
                f"python -m roofline report {run_dir}", *step_options.report_commands(config, run_dir)]))
        else:
            lines += draw_reports(run_dir)
            lines += step_options.report(config, run_dir)
    return lines


def draw_reports(run_dir: Path) -> list[str]:
    """Draw the roofline plots, write the claims report and the HTML page (report.html), when those
    modules exist; tally the verdicts. One line per output, or per failure (``... FAILED: ...``); also
    scripts/gpu-check.sh's report step, for a run made with --no-report (or cut short)."""
    lines = []
    for module_name, func_name, kwargs in (("roofline.plot", "plot_results", {}),
                                           ("roofline.claims", "write_report", {"hardware": None}),
                                           ("roofline.page", "write_page", {})):
        try:
            module = __import__(module_name, fromlist=[func_name])
            func = getattr(module, func_name)
        except (ImportError, AttributeError) as exc:
            lines.append(f"{module_name}.{func_name} not available ({exc}); skipped")
            continue
        try:
            out = func(run_dir, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the measurements are saved; say what failed
            lines.append(f"{module_name}.{func_name} FAILED: {type(exc).__name__}: {exc}")
            continue
        paths = out if isinstance(out, (list, tuple)) else [out]
        lines += [f"{module_name}.{func_name}: {p}" for p in paths]
    try:
        lines.append("claims: " + verdict_tally(run_dir))
    except Exception as exc:  # noqa: BLE001 - the tally is a summary of claims.md, which is written
        lines.append(f"claims tally unavailable: {type(exc).__name__}: {exc}")
    return lines


def verdict_tally(run_dir: Path) -> str:
    """``"measured: 3 supported, 1 inconclusive; model: ..."`` for the run's claims."""
    from roofline.claims import evaluate
    from roofline.results import load_results

    rows = evaluate(load_results(run_dir))
    parts = []
    for column in ("measured", "model"):
        counts: dict[str, int] = {}
        for row in rows:
            verdict = getattr(row, column)
            if verdict is not None:
                counts[verdict.status] = counts.get(verdict.status, 0) + 1
        parts.append(f"{column}: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"))
    return "; ".join(parts) + " (claims.md)"


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Last, after pytest-benchmark's tables, so it does not scroll off."""
    lines = config.stash.get(REPORT, None)
    if not lines:
        return
    terminalreporter.section("ridgebench")
    for line in lines:
        terminalreporter.write_line(line)
