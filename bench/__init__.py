"""ridgebench's benchmark suite: ``pytest --benchmark`` runs ``bench/test_ops.py`` (one ``test_<kernel>``
per op of the table, each driven by ``kernels/<kernel>/spec.py``) over the sweeps of
:mod:`roofline.model.sweeps`
and writes ``results/<device-slug>/<UTC timestamp>/``.

Modules: :mod:`bench.plugin` (the pytest hooks and options, loaded by the root conftest),
:mod:`bench.isolation` (which process runs what: one xdist worker per GPU, one subprocess per kernel
family), :mod:`bench.finish` (the session's end: signals, parts closed and merged, the run handed to
:func:`roofline.report.finish.finish` for the reports, the summary), :mod:`bench.timing` (device-time timer,
cache flush, statistics), :mod:`bench.ceilings` (measured bandwidth and matmul peaks),
:mod:`bench.provenance` (what ran where), :mod:`roofline.rundir` (results directories, per-worker parts and
their merge), :mod:`bench.record` (the ``extra_info`` of one benchmark), :mod:`bench.session`
(per-process state and device pinning), :mod:`bench.runner` (one benchmark: check, time, record). No
module here imports a kernel at import time: Triton decides interpreter-or-compiler when a kernel module
is imported.
"""

import importlib.util as _importlib_util
import sys as _sys
from pathlib import Path as _Path

from roofline.model import sweeps as _sweeps


def _check_kernels_is_ours() -> None:
    """The bench runs ridgebench's ``kernels``; another package of that name (Hugging Face's kernel hub,
    ``pip install kernels``) imported first, or earlier on ``sys.path``, would be picked up instead and
    fail later with a puzzling ``No module named 'kernels.qkv'``. Found without importing anything."""
    ours = _Path(__file__).resolve().parent.parent / "kernels"
    try:
        spec = _importlib_util.find_spec("kernels")
    except (ImportError, ValueError):  # an imported module without a spec: judged by its file below
        spec = None
    module = _sys.modules.get("kernels")
    if spec is None and module is None:
        return  # nothing else named kernels either: ours gets imported (or fails) normally
    locations = list(spec.submodule_search_locations or []) if spec else list(getattr(module, "__path__", []))
    if any(_Path(p).resolve() == ours for p in locations):
        return
    where = (spec.origin if spec else getattr(module, "__file__", None)) or locations or "?"
    raise ImportError(
        f"ridgebench: the package `kernels` is {where}, not ridgebench's {ours}: another package named "
        f"kernels (Hugging Face's kernel hub is one: pip install kernels) was imported first or comes first "
        f"on sys.path. Run ridgebench from its checkout (pytest, python -m ..., ./scripts/*.sh), or put "
        f"{ours.parent} first on PYTHONPATH (or sys.path) before importing kernels."
    )


_check_kernels_is_ours()


def _this_cpu_features() -> dict:
    from bench.provenance import this_cpu_features  # torch-side detection, only when a CPU sweep asks

    return this_cpu_features()


# The sweeps learn this CPU's features from the bench (roofline never imports bench).
_sweeps.cpu_features_source = _this_cpu_features
