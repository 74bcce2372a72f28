"""Each Triton launcher's own host work per repeated call, on the CPU, with the kernel launch stubbed out.

A benchmark, not a test: for every point of the quick sweep (``roofline.model.sweeps``, the GPU's or the
CPU's list)
the launcher is called the way the suite times it (``bench.runner.KernelBench``'s ``triton_fn(...,
first=False)``) on the inputs ``kernels/<kernel>/spec.py`` builds at the point's full shape, with Triton's
launch replaced by a no-op (``InterpretedFunction.run``, under ``TRITON_INTERPRET=1``), so what is timed is
the launcher's Python: validation, the launch plan, output allocation and the call into Triton, nothing else.
Inputs are ``torch.empty`` (never touched, so a 4 GiB cache costs address space, not memory); outputs come
from a per-shape cache standing in for the GPU's caching allocator. Printed per point: the median host
microseconds per call over ``--calls`` calls, and per launcher the ratio of its largest to its smallest point
(a launch plan that grows with the shape shows here).

    python scripts/launch_cost.py [--device-sweep cuda|cpu] [--calls N] [--kernels K1,K2] [--json FILE]

On a GPU this is not the number to quote: the suite measures each point's real host cost per call
(``extra_info.timing.host_launch_s``) beside Triton's bare launch of the same compiled kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["TRITON_INTERPRET"] = "1"  # before any kernels.* import: CPU tensors pass the device rule


def _stub_triton_launch() -> None:
    """Make every ``kernel[grid](...)`` under the interpreter return at once (nothing runs)."""
    from triton.runtime.interpreter import InterpretedFunction

    InterpretedFunction.run = lambda self, *args, **kwargs: None


def _cached_outputs() -> None:
    """Outputs from a per-(shape, dtype) cache, as torch's CUDA caching allocator hands a repeated call
    the same block; the CPU allocator would mmap/munmap every large output and time the kernel of the OS."""
    import torch

    from kernels._lib import launch

    cache: dict = {}

    def empty(shape, dtype, device):
        key = (tuple(shape), dtype, str(device))
        if key not in cache:
            cache[key] = torch.empty(shape, dtype=dtype, device=device)
        return cache[key]

    launch.empty = empty


def _empty_randn(gen, *shape, dtype, device, scale=1.0):
    import torch

    return torch.empty(shape, dtype=dtype, device=device)


REPEATS = 5  # the least of this many medians: the machine's other load only ever adds time


def host_us_per_call(fn, calls: int) -> float:
    """Host microseconds per call of ``fn``: the least over :data:`REPEATS` of the median of ``calls``
    calls (after 20 untimed ones)."""
    for _ in range(20):
        fn()
    medians = []
    for _ in range(REPEATS):
        samples = []
        for _ in range(calls):
            t0 = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - t0)
        medians.append(statistics.median(samples))
    return min(medians) / 1e3


def measure(device_sweep: str, calls: int, kernels: tuple[str, ...] | None) -> list[dict]:
    import importlib

    import torch

    from bench.runner import KernelBench
    from roofline.model.sweeps import sweep_points

    _stub_triton_launch()
    _cached_outputs()
    rows = []
    for point in sweep_points("quick", device_sweep):
        if kernels and point.kernel not in kernels:
            continue
        importlib.import_module(f"kernels.{point.kernel}.spec").randn = _empty_randn  # untouched memory
        bench = KernelBench(point.kernel)
        x = bench.build(point, torch.device("cpu"))
        fn = bench.triton_fn(x, first=False)
        rows.append({"kernel": point.kernel, "sweep": point.sweep, "label": point.label,
                     "shape": point.shape, "dtype": point.dtype, "host_us": host_us_per_call(fn, calls)})
        del x, fn
    return rows


def report(rows: list[dict]) -> list[str]:
    lines = [f"{'point':56s} {'host us/call':>12s}"]
    for r in rows:
        lines.append(f"{r['kernel'] + ' ' + r['sweep'].split('/', 1)[1] + ' ' + r['label']:56s} "
                     f"{r['host_us']:12.1f}")
    lines.append("per launcher: min / median / max us per call, max/min")
    for kernel in dict.fromkeys(r["kernel"] for r in rows):
        us = [r["host_us"] for r in rows if r["kernel"] == kernel]
        lines.append(f"  {kernel:10s} {min(us):8.1f} {statistics.median(us):8.1f} {max(us):8.1f}   "
                     f"x{max(us) / min(us):.2f}")
    by_label = {(r["sweep"], r["label"]): r["host_us"] for r in rows if r["kernel"] == "attention"}
    for sweep in dict.fromkeys(s for s, _ in by_label):
        if (sweep, "L1k") in by_label and (sweep, "L128k") in by_label:
            lines.append(f"  attention {sweep.split('/', 1)[1]}: 128k cache / 1k cache = "
                         f"x{by_label[(sweep, 'L128k')] / by_label[(sweep, 'L1k')]:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device-sweep", default="cuda", choices=("cuda", "cpu"),
                        help="whose quick sweep to walk (default: the GPU's, whose shapes are timed there)")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per repeat (default 200)")
    parser.add_argument("--kernels", default=None, help="only these launchers, comma-separated")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error(f"--calls {args.calls}: expected a positive number of calls")
    kernels = tuple(k for k in args.kernels.split(",") if k) if args.kernels else None
    rows = measure(args.device_sweep, args.calls, kernels)
    print("\n".join(report(rows)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
