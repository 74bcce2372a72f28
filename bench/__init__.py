"""ridgebench's benchmark suite: ``pytest --benchmark`` runs ``bench/test_<kernel>.py`` over the sweeps of
:mod:`roofline.sweeps` and writes ``results/<device-slug>/<UTC timestamp>/``.

Modules: :mod:`bench.plugin` (the pytest hooks and options, loaded by the root conftest),
:mod:`bench.timing` (device-time timer, cache flush, statistics), :mod:`bench.ceilings`
(measured bandwidth and matmul peaks), :mod:`bench.provenance` (what ran where),
:mod:`bench.results` (results directories, per-worker parts and their merge), :mod:`bench.record`
(the ``extra_info`` of one benchmark), :mod:`bench.session` (per-process state and device pinning),
:mod:`bench.runner` (one benchmark: check, time, record). No module here imports a kernel at import
time: Triton decides interpreter-or-compiler when a kernel module is imported.
"""

from roofline import sweeps as _sweeps


def _this_cpu_features() -> dict:
    from bench.provenance import this_cpu_features  # torch-side detection, only when a CPU sweep asks

    return this_cpu_features()


# The sweeps learn this CPU's features from the bench (roofline never imports bench).
_sweeps.cpu_features_source = _this_cpu_features
