"""The benchmark suite's pytest plugin: its options and hooks. The root conftest loads it
(``pytest_plugins = ("bench.plugin",)``) so that its hooks run in every process whatever the arguments;
each hook does nothing without ``--benchmark``. The hooks stay short; the work is in three places:

- here, options and the run's set-up: refuse bad options (exit 4); decide interpreter-or-GPU before any
  kernel module is imported (Triton reads ``TRITON_INTERPRET`` when ``@triton.jit`` decorates): without
  CUDA set it to 1; with CUDA restore the value the user started with (``tests/conftest.py``, also loaded
  at start-up, sets it to 1); create ``results/<device-slug>/<UTC timestamp>/``; open this process's
  :class:`~bench.session.BenchSession`; parametrize each ``test_<kernel>`` of ``bench/test_ops.py`` over
  plain values,
  ``provider`` and ``case`` (the ``roofline.model.sweeps`` point id), so pytest-benchmark's
  ``--benchmark-group-by=param:...`` works. Each finished benchmark is appended to this process's
  ``parts/<part>/records.jsonl`` at once (:meth:`bench.session.BenchSession.add_record`);
- :mod:`bench.isolation`, which process runs what: one xdist worker per GPU (the controller assigns each
  a free one); on CUDA without ``-n`` each kernel family in its own pytest subprocess (``--isolate``), so
  a sticky CUDA error loses only that family;
- :mod:`bench.finish`, the session's end: SIGTERM turned into an orderly stop like Ctrl-C; half-timed
  records dropped; each part closed with its end state; the parts merged into the run's files; the run
  handed to the report side (plots, claims, report.html, step report); the summary printed last.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import os
import shutil
import sys
from pathlib import Path

import pytest

from bench import finish, isolation, provenance, step_options, timing
from bench import providers as provider_registry
from bench.runner import finished
from bench.session import BenchSession, cpu_device_name, open_session
from roofline.model import machine
from roofline.model.ops import KERNELS, OPS
from roofline.model.sweeps import SweepPoint, sweep_dtype, sweep_points
from roofline.rundir import PROVENANCE, new_run_dir, write_json

SESSION = pytest.StashKey[BenchSession]()
RUN_DIR = pytest.StashKey[Path]()
USER_JSON = pytest.StashKey[object]()
REPORT = pytest.StashKey[list]()
POINTS = pytest.StashKey[dict]()
ISOLATE = pytest.StashKey[bool]()
FAMILIES = pytest.StashKey[dict]()
STARTED = pytest.StashKey[dt.datetime]()
ROOT = Path(__file__).resolve().parent.parent
SIGNALS = finish.SIGNALS


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ridgebench", "ridgebench benchmark suite (with --benchmark)")
    group.addoption("--sweep", default="quick", choices=("smoke", "quick", "full"),
                    help="sweep preset from roofline/model/sweeps.py (default: quick)")
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
    user_interpret = isolation.USER_TRITON_INTERPRET
    force_interpreter = user_interpret not in (None, "", "0")
    if not cuda:
        os.environ["TRITON_INTERPRET"] = "1"  # before any kernels.* import, a user provider's included
    elif user_interpret is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = user_interpret
    check_options(config)  # imports --provider-module: after the interpreter decision above
    worker, child = isolation.worker_id(), isolation.child_part()
    gpu_index = None
    if worker is None and child is None:
        problem = isolation.check_worker_count(getattr(config.option, "numprocesses", None),
                                               torch.cuda.device_count() if cuda else 0, cuda,
                                               isolation.spelled_numprocesses(config.invocation_params.args))
        if problem:
            raise pytest.UsageError(problem)
        config.stash[ISOLATE] = isolation.isolated(config.getoption("--isolate"), cuda,
                                                   isolation.distributed(config))
        started = dt.datetime.now(dt.timezone.utc)
        name = torch.cuda.get_device_name(0) if cuda else cpu_device_name()
        step_options.configure(config, cuda)  # a bad --model/--batch fails before a run dir exists
        run_dir = new_run_dir(Path(config.getoption("--results-root")), name, started)
        step_options.save_request(config, run_dir)
        if config.pluginmanager.hasplugin("xdist"):
            gpus = isolation.GpuAllocator(torch.cuda.device_count()) if cuda else None
            config.pluginmanager.register(isolation.XdistHooks(run_dir, started, gpus), "ridgebench-xdist")
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
    if isolation.is_controller(config, config.stash.get(ISOLATE, False)):
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
    write_json(session.part_dir / PROVENANCE, doc)


def pytest_unconfigure(config: pytest.Config) -> None:
    SIGNALS.restore()


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if not config.getoption("--benchmark"):
        return
    # pytest-benchmark disables itself under xdist because workers would share one machine; here each
    # worker owns one GPU (bench.isolation.GpuAllocator), so benchmarks stay on in the workers. No
    # pytest-benchmark JSON in parts/ either (it named a file merged away a moment later).
    disabled = None
    if isolation.worker_id() is not None:
        disabled = bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")
    timing.keep_benchmarks_on(config, disabled=disabled)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Only the suite's own benchmarks (they declare KERNEL); a test elsewhere may have a `case` fixture too.
    if "case" not in metafunc.fixturenames or not hasattr(metafunc.function, "KERNEL"):
        return
    import torch

    config = metafunc.config
    kernel = metafunc.function.KERNEL
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
    return request.config.stash[POINTS][(request.function.KERNEL, case)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On CUDA, give each benchmark its own device clock as pytest-benchmark's timer; ``--kernels``
    (and, in a per-family subprocess, its family): deselect the other kernels' benchmarks (like
    ``-k``)."""
    if not config.getoption("--benchmark"):
        return
    session = config.stash.get(SESSION, None)
    if session is not None and session.device_kind == "cuda":
        for item in items:  # pytest-benchmark records device time (bench.timing.DeviceClock)
            if getattr(getattr(item, "function", None), "KERNEL", None) is not None:
                timing.use_device_clock(item)
    kernels = _csv(config, "--kernels", KERNELS)
    if isolation.child_part() is not None:
        kernels = tuple(k for k in kernels if k == isolation.child_part())
    elif config.getoption("--kernels") is None:
        return
    keep, drop = [], []
    for item in items:
        kernel = getattr(getattr(item, "function", None), "KERNEL", None)
        (drop if kernel not in (None, *kernels) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def bench_session(request: pytest.FixtureRequest) -> BenchSession:
    """This process's session; its ceilings are measured by the first timed case (bench.runner), where
    running out of memory is a recorded skip rather than an error of every benchmark."""
    return request.config.stash[SESSION]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """The isolation controller runs one pytest subprocess per kernel family instead of the tests."""
    config = session.config
    if (not config.getoption("--benchmark") or not config.stash.get(ISOLATE, False)
            or isolation.child_part() is not None or config.option.collectonly):
        return None
    if session.testsfailed and config.option.continue_on_collection_errors is False:
        return None  # pytest reports the collection errors
    config.stash[FAMILIES] = {}
    isolation.run_families(session, config.stash[RUN_DIR], config.stash[STARTED], config.stash[FAMILIES])
    return True


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """Before pytest-benchmark's own session end: drop records a stop left half-timed (no rounds, or no
    ridgebench extra_info), which would otherwise be saved and displayed (and crash its table). The
    run's files are written by :func:`pytest_sessionfinish_write_run`, an ordinary implementation of
    this hook, which runs before the terminal summary does."""
    if session.config.getoption("--benchmark"):
        timing.drop_benchmarks(session.config, keep=finished)
    yield
    if SIGNALS.received is not None:  # a signal after the last case (in the end-of-run steps) is still
        session.exitstatus = pytest.ExitCode.INTERRUPTED  # a stop: the caller sees 2, not a clean 0


@pytest.hookimpl(specname="pytest_sessionfinish")
def pytest_sessionfinish_write_run(session: pytest.Session, exitstatus: int) -> None:
    """Each benchmarking process closes its part; the run's owner merges the parts and keeps the summary
    (:mod:`bench.finish`); a ``--collect-only`` run leaves no directory."""
    config = session.config
    if not config.getoption("--benchmark") or RUN_DIR not in config.stash:
        return
    bsession = config.stash.get(SESSION, None)
    if bsession is not None:
        finish.close_part(config, bsession, int(exitstatus))
    if isolation.worker_id() is not None or isolation.child_part() is not None:
        return  # the controller merges
    run_dir = config.stash[RUN_DIR]
    if config.option.collectonly:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    config.stash[REPORT] = finish.write_run(config, run_dir, int(exitstatus), config.stash.get(FAMILIES, {}),
                                            config.stash[USER_JSON])


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Last, after pytest-benchmark's tables, so it does not scroll off."""
    lines = config.stash.get(REPORT, None)
    if not lines:
        return
    terminalreporter.section("ridgebench")
    for line in lines:
        terminalreporter.write_line(line)
