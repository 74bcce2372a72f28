"""The benchmark of every Triton op of the table (:data:`roofline.model.ops.KERNELS`): one ``test_<op>`` each,
parametrized by the plugin over ``provider`` and ``case`` (the sweep's points), all driven by the op's
declaration in ``kernels/<op>/spec.py`` through :class:`bench.runner.KernelBench`. Nothing here is
per op: a new op in the table and its spec are all it takes."""

from __future__ import annotations

from bench.runner import KernelBench, run_case
from roofline.model.ops import KERNELS


def _benchmark(kernel: str):
    def test(provider, point, benchmark, bench_session, request):
        run_case(KernelBench(kernel), (provider, point), benchmark, bench_session, request)

    test.__name__ = test.__qualname__ = f"test_{kernel}"
    test.KERNEL = kernel  # the plugin parametrizes, selects and isolates by it
    return test


# sorted by name: the order the suite ran in when each op had its own module
globals().update({f"test_{kernel}": _benchmark(kernel) for kernel in sorted(KERNELS)})
