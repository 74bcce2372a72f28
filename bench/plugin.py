"""The benchmark suite's pytest plugin, loaded by the root conftest (``pytest_plugins``) so that its hooks
run in every process whatever the arguments; each hook does nothing without ``--benchmark``.

- configure: decide interpreter-or-GPU before any kernel module is imported (Triton reads
  ``TRITON_INTERPRET`` when ``@triton.jit`` decorates): without CUDA set it to 1; with CUDA restore
  the value the user started with (``tests/conftest.py``, also loaded at start-up, sets it to 1);
  create ``results/<device-slug>/<UTC timestamp>/``; pin this process to its GPU (xdist worker
  ``gwN`` -> ``cuda:N``); point pytest-benchmark's JSON at this process's part of the run directory;
- collection: parametrize each ``bench/test_<kernel>.py`` over providers x ``roofline.sweeps`` points;
- session finish: merge the parts into the run's four files, draw the roofline and write the claims
  (when ``roofline.plot`` / ``roofline.claims`` are importable), and print where everything is.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from bench import provenance, step_options
from bench.results import merge_parts, new_run_dir, write_json
from bench.session import BenchSession, check_worker_count, cpu_device_name, open_session
from roofline.sweeps import KERNELS, sweep_points

PROVIDERS = ("triton", "torch")
SESSION = pytest.StashKey[BenchSession]()
RUN_DIR = pytest.StashKey[Path]()
USER_JSON = pytest.StashKey[object]()
REPORT = pytest.StashKey[list]()
ROOT = Path(__file__).resolve().parent.parent
# TRITON_INTERPRET as the user set it: this module is imported by the root conftest, before
# tests/conftest.py (which sets it for the tests) is imported.
USER_TRITON_INTERPRET = os.environ.get("TRITON_INTERPRET")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ridgebench", "ridgebench benchmark suite (with --benchmark)")
    group.addoption("--sweep", default="quick", choices=("smoke", "quick", "full"),
                    help="sweep preset from roofline/sweeps.py (default: quick)")
    group.addoption("--kernels", default=None, metavar="K1,K2",
                    help="only these kernels (comma-separated: qkv, gemv, attention, softmax, gelu)")
    group.addoption("--providers", default="triton,torch", metavar="P1,P2",
                    help="providers to run: triton, torch (default: both)")
    group.addoption("--results-root", default=str(ROOT / "results"), metavar="DIR",
                    help="where <device-slug>/<UTC timestamp>/ is created (default: ./results); "
                         "write --results-root=DIR so pytest does not take DIR for a test path")
    group.addoption("--ceilings-budget", default=0.5, type=float, metavar="SECONDS",
                    help="time budget per measured ceiling (bandwidth, each matmul dtype); default 0.5")
    group.addoption("--no-report", action="store_true", default=False,
                    help="do not draw the roofline plots and claims report at the end of the run")
    step_options.add_options(group)


def _worker_id() -> str | None:
    return os.environ.get("PYTEST_XDIST_WORKER")


def _is_controller(config: pytest.Config) -> bool:
    """The xdist controller: it schedules workers and runs no benchmark itself."""
    return _worker_id() is None and getattr(config.option, "dist", "no") != "no" and bool(
        getattr(config.option, "numprocesses", None))


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


class _XdistHooks:
    """Registered only when xdist is present (its hooks are unknown to pytest otherwise)."""

    def __init__(self, run_dir: Path, started: dt.datetime) -> None:
        self.run_dir, self.started = run_dir, started

    def pytest_configure_node(self, node) -> None:
        node.workerinput["ridgebench_run_dir"] = str(self.run_dir)
        node.workerinput["ridgebench_started"] = self.started.isoformat()


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("--benchmark"):
        return
    import torch  # after the decision above; torch does not import Triton kernels

    cuda = torch.cuda.is_available()
    force_interpreter = USER_TRITON_INTERPRET not in (None, "", "0")
    if not cuda:
        os.environ["TRITON_INTERPRET"] = "1"  # before any kernels.* import
    elif USER_TRITON_INTERPRET is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = USER_TRITON_INTERPRET
    _csv(config, "--kernels", KERNELS)
    _csv(config, "--providers", PROVIDERS)
    worker = _worker_id()
    if worker is None:
        problem = check_worker_count(getattr(config.option, "numprocesses", None),
                                     torch.cuda.device_count() if cuda else 0, cuda)
        if problem:
            raise pytest.UsageError(problem)
        started = dt.datetime.now(dt.timezone.utc)
        name = torch.cuda.get_device_name(0) if cuda else cpu_device_name()
        step_options.configure(config, cuda)  # a bad --model/--batch fails before a run dir exists
        run_dir = new_run_dir(Path(config.getoption("--results-root")), name, started)
        step_options.save_request(config, run_dir)
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(_XdistHooks(run_dir, started), "ridgebench-xdist")
    else:
        run_dir = Path(config.workerinput["ridgebench_run_dir"])  # type: ignore[attr-defined]
        started = dt.datetime.fromisoformat(config.workerinput["ridgebench_started"])  # type: ignore[attr-defined]
        step_options.configure(config, cuda)
    config.stash[RUN_DIR] = run_dir
    config.stash[USER_JSON] = config.option.benchmark_json
    if _is_controller(config):
        return
    try:
        session = open_session(run_dir=run_dir, worker_id=worker, sweep=step_options.sweep_name(config),
                               started=started, force_interpreter=force_interpreter)
    except RuntimeError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SESSION] = session
    config.option.benchmark_json = session.part_dir / "benchmark.json"
    argv = getattr(config, "workerinput", {}).get("mainargv", sys.argv)  # an xdist worker: the user's
    doc = provenance.collect(root=ROOT, device=session.device, device_name=session.device_name,
                             command_line=list(argv), sweep=session.sweep, started=started)
    write_json(session.part_dir / "provenance.json", doc)


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    bs = getattr(config, "_benchmarksession", None)
    if not config.getoption("--benchmark") or bs is None:
        return
    # pytest-benchmark disables itself under xdist because workers would share one machine; here each
    # worker owns one GPU (bench.session.pinned_device_index), so benchmarks stay on in the workers.
    bs.xdist_warning = False
    if SESSION in config.stash:  # pytest-benchmark may have read --benchmark-json before our configure
        bs.json = config.option.benchmark_json
    if _worker_id() is not None:
        bs.disabled = bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Only the suite's own modules (they declare KERNEL); a test elsewhere may have a `case` fixture too.
    if "case" not in metafunc.fixturenames or not hasattr(metafunc.module, "KERNEL"):
        return
    import torch

    config = metafunc.config
    kernel = metafunc.module.KERNEL
    providers = _csv(config, "--providers", PROVIDERS)
    device_kind = "cuda" if torch.cuda.is_available() else "cpu"
    step = step_options.points(config)  # --model: one model step's shapes instead of the sweep preset
    all_points = step if step is not None else sweep_points(config.getoption("--sweep"), device_kind)
    points = [p for p in all_points if p.kernel == kernel]
    cases = [(prov, p) for p in points for prov in providers]
    metafunc.parametrize("case", cases, ids=[f"{prov}-{p.id}" for prov, p in cases])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--kernels``: deselect the other kernels' benchmarks (like ``-k``)."""
    if not config.getoption("--benchmark") or config.getoption("--kernels") is None:
        return
    kernels = _csv(config, "--kernels", KERNELS)
    keep, drop = [], []
    for item in items:
        module = getattr(item, "module", None)
        (drop if getattr(module, "KERNEL", None) not in (None, *kernels) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def bench_session(request: pytest.FixtureRequest) -> BenchSession:
    session = request.config.stash[SESSION]
    session.ensure_ceilings(budget_s=request.config.getoption("--ceilings-budget"))
    return session


def _report(run_dir: Path) -> list[str]:
    """Draw the roofline plots and write the claims report, when those modules exist."""
    lines = []
    for module_name, func_name, kwargs in (("roofline.plot", "plot_results", {}),
                                           ("roofline.claims", "write_report", {"hardware": None})):
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
    return lines


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not config.getoption("--benchmark") or RUN_DIR not in config.stash:
        return
    bsession = config.stash.get(SESSION, None)
    if bsession is not None and bsession.device_kind == "cuda":
        doc_path = bsession.part_dir / "provenance.json"
        if doc_path.is_file():
            doc = json.loads(doc_path.read_text())
            doc["nvml_end"] = provenance.nvml_info(doc.get("device", {}).get("uuid"))
            write_json(doc_path, doc)
    if _worker_id() is not None:
        return  # the controller merges
    run_dir = config.stash[RUN_DIR]
    written = merge_parts(run_dir) if run_dir.is_dir() else {}
    lines: list[str] = []
    has_bench = "benchmark.json" in written
    skipped_path = run_dir / "skipped.json"
    skipped = json.loads(skipped_path.read_text()) if skipped_path.is_file() else []
    if not has_bench and not skipped:
        shutil.rmtree(run_dir, ignore_errors=True)
        config.stash[REPORT] = ["no benchmark ran; no results directory kept"]
        return
    user_json = config.stash[USER_JSON]
    if has_bench and user_json:
        shutil.copyfile(written["benchmark.json"], user_json)
    timed = len(json.loads(written["benchmark.json"].read_text())["benchmarks"]) if has_bench else 0
    by_cat: dict[str, int] = {}
    for s in skipped:
        by_cat[s["category"]] = by_cat.get(s["category"], 0) + 1
    lines.append(f"results: {run_dir}")
    lines.append(f"timed benchmarks: {timed}; skipped: "
                 + (", ".join(f"{n} {c}" for c, n in sorted(by_cat.items())) or "none") + " (skipped.json)")
    if by_cat.get("not-timed"):
        lines.append(f"NO GPU: {by_cat['not-timed']} Triton benchmarks were checked under the Triton "
                     "interpreter (TRITON_INTERPRET=1) on the CPU and NOT timed; only the torch provider "
                     "was timed, on the CPU")
    if has_bench and not config.getoption("--no-report"):
        lines += _report(run_dir)
        lines += step_options.report(config, run_dir)
    config.stash[REPORT] = lines


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(REPORT, None)
    if not lines:
        return
    terminalreporter.section("ridgebench")
    for line in lines:
        terminalreporter.write_line(line)
