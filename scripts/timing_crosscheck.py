"""Timing-method cross-check for scripts/gpu-check.sh: the same kernels timed several ways, and the
device's read / write / copy bandwidth on 1 GiB.

For ~6 representative benchmark cases (points of the quick sweep, built by the suite's own builders in
bench/test_<kernel>.py), the median per call by:
- ``suite``: the suite's own clock (bench.timing.DeviceClock, CUDA events) after the cache flush and the
  launch-covering spin, exactly as bench/runner.py times a benchmark;
- ``no-spin``: the same without the spin (launch latency may be timed);
- ``no-flush``: the same without the flush (a warm L2);
- ``do_bench``: ``triton.testing.do_bench`` (its own flush, its own event timing);
- ``graph``: CUDA-graph replay of 20 calls, per call (no launch cost at all, warm L2 after the first);
- ``host``: host wall time of one launch, not synchronised (what the CPU pays per call).
Large disagreements between ``suite``, ``no-spin`` and ``do_bench`` mean a timing problem, and the
report says so. Nothing here is predicted: every number is measured on this machine.

The ops are the table's Triton ops (``roofline.ops.KERNELS``), each timed through the one ``KernelBench``
subclass of its ``bench/test_<op>.py``. The GPU cases are data (:data:`GPU_CASES`); an op without one,
or a case the quick sweep no longer has, is reported as NOT COVERED rather than dropped in silence.

``--dry-run`` runs the plumbing on a CPU: the smoke sweep's tiny cases, Triton under the interpreter,
host wall time in place of events, 16 MiB buffers, the CUDA-only methods marked "n/a (no GPU)".

    python scripts/timing_crosscheck.py --out DIR [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (kernel, sweep, label) of the quick sweep on a GPU: memory- and compute-bound, each kernel family
GPU_CASES = [
    ("gemv", "gemv/decode.llama2-7b.mlp_up", "B1"),
    ("gemv", "gemv/decode.llama2-7b.mlp_up", "B256"),
    ("qkv", "qkv/decode.llama2-7b", "M16"),
    ("attention", "attention/prefill.llama2-7b", "S2k"),
    ("attention", "attention/decode.llama2-70b.b8", "L16k"),
    ("softmax", "softmax/cols.r4k", "C4k"),
    ("gelu", "gelu/mlp.gpt2-xl.tanh", "T4k"),
]
METHODS = ("suite", "no-spin", "no-flush", "do_bench", "graph", "host")
GIB = 2**30
DISAGREE = 0.25  # |no-spin / suite - 1| or |do_bench / suite - 1| above this is reported


def bench_class(kernel: str) -> type:
    """The one ``KernelBench`` subclass of ``bench/test_<kernel>.py`` (:func:`bench.runner.bench_class`)."""
    from bench.runner import bench_class as find

    return find(kernel)


def _benches() -> dict[str, type]:
    """Each Triton op of the table (roofline.ops.KERNELS) with its benchmark class."""
    from roofline.ops import KERNELS

    return {kernel: bench_class(kernel) for kernel in KERNELS}


def gpu_points(quick: list) -> tuple[list, list[str]]:
    """The quick-sweep points named in :data:`GPU_CASES`, and a note per Triton op without one (or per
    case that is no longer a point of the quick sweep), so a new op or a renamed sweep is said, not
    silently left out."""
    from roofline.ops import KERNELS

    by_key = {(p.kernel, p.sweep, p.label): p for p in quick}
    notes = [f"{kernel}: no example case (add its quick-sweep points to GPU_CASES in "
             f"scripts/timing_crosscheck.py)" for kernel in KERNELS if all(c[0] != kernel for c in GPU_CASES)]
    notes += [f"{kernel} {sweep} {label}: not a point of the quick sweep (skipped)"
              for kernel, sweep, label in GPU_CASES if (kernel, sweep, label) not in by_key]
    return [by_key[c] for c in GPU_CASES if c in by_key], notes


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def time_methods(fn: Callable[[], object], session, *, reps: int, cuda: bool) -> dict[str, float | None]:
    """Seconds per call of ``fn`` by each method in :data:`METHODS` (None where it cannot run here)."""
    import torch

    from bench.session import LAUNCH_COVER_CYCLES
    from bench.timing import call_timer

    out: dict[str, float | None] = dict.fromkeys(METHODS)
    if cuda:
        time_call = call_timer(session.device)  # the suite's clock: CUDA events around the call
        flush_buf = torch.empty(session.flush_nbytes, dtype=torch.uint8, device=session.device)

        def timed(flush: bool, spin: bool) -> float:
            samples = []
            for _ in range(reps):
                if flush:
                    flush_buf.zero_()
                if spin:
                    torch.cuda._sleep(LAUNCH_COVER_CYCLES)
                samples.append(time_call(fn))
            return _median(samples)

        out["suite"] = timed(True, True)
        out["no-spin"] = timed(True, False)
        out["no-flush"] = timed(False, True)
        import triton.testing

        out["do_bench"] = triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median") / 1e3
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                fn()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for _ in range(20):
                    fn()
            graph.replay()
            torch.cuda.synchronize()
            out["graph"] = _median([time_call(graph.replay) for _ in range(reps)]) / 20
        except Exception as exc:  # noqa: BLE001 - a launcher that cannot be captured: say so
            out["graph"] = None
            out["graph_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        host = []
        for _ in range(reps):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            host.append(time.perf_counter() - t0)
        torch.cuda.synchronize()
        out["host"] = _median(host)
    else:  # the plumbing only: host wall time stands in for the device clock
        samples = []
        for _ in range(reps):
            session.flush()
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        out["suite"] = out["host"] = _median(samples)
    return out


def bandwidth(device, nbytes: int, reps: int, cuda: bool) -> dict[str, float]:
    """Measured GB/s (1e9 B/s) of reading (a sum), writing (a fill) and copying ``nbytes``."""
    import torch

    x = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    y = torch.empty_like(x)
    ops = {"read": (lambda: x.sum(), nbytes), "write": (lambda: y.fill_(1.0), nbytes),
           "copy": (lambda: y.copy_(x), 2 * nbytes)}
    out = {}
    for name, (op, moved) in ops.items():
        op()
        samples = []
        for _ in range(reps):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                op()
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                op()
                samples.append(time.perf_counter() - t0)
        out[f"{name}_GB_per_s"] = moved / _median(samples) / 1e9
    out["buffer_bytes"] = nbytes
    return out


def run(out_dir: Path, dry_run: bool) -> dict:
    if dry_run:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before any kernels.* import
    import datetime as dt

    import torch

    from bench.runner import import_kernel
    from bench.session import open_session
    from roofline.sweeps import sweep_points

    cuda = torch.cuda.is_available() and not dry_run
    session = open_session(run_dir=out_dir / "session", worker_id=None,
                           sweep="smoke" if dry_run else "quick",
                           started=dt.datetime.now(dt.timezone.utc), force_interpreter=dry_run)
    benches = _benches()
    if dry_run:
        points, notes = sweep_points("smoke", "cpu"), []
    else:
        points, notes = gpu_points(sweep_points("quick", "cuda"))
    points = [p for p in points if p.kernel in benches]  # a torch-only op has no Triton launcher to time
    reps = 2 if dry_run else 30
    cases = []
    for point in points:
        bench = benches[point.kernel]()
        kmod = import_kernel(point.kernel)
        if dry_run:
            point = type(point)(point.kernel, point.sweep, bench.interpreter_shape(point.shape), "float16",
                                point.label)
        x = bench.build(point, session.device)
        fn = bench.triton_fn(kmod, x, first=True)
        fn()  # compile, autotune, check once
        chk = bench.check(kmod, x, fn(), kmod.TOLERANCES[_dtype(point.dtype)])
        fn = bench.triton_fn(kmod, x, first=False)
        times = time_methods(fn, session, reps=reps, cuda=cuda)
        cases.append({"kernel": point.kernel, "sweep": point.sweep, "label": point.label,
                      "dtype": point.dtype, "shape": point.shape, "check_ok": chk.ok,
                      "max_error": chk.max_error, "seconds": times})
        del x, fn
        if cuda:
            torch.cuda.empty_cache()
    bw = bandwidth(session.device, 16 * 2**20 if dry_run else GIB, 3 if dry_run else 20, cuda)
    return {"device": session.device_name, "device_kind": "cuda" if cuda else "cpu", "dry_run": dry_run,
            "methods": METHODS, "cases": cases, "not_covered": notes, "bandwidth": bw,
            "note": "measured on this machine"
                    + ("; dry run: interpreter, host wall time" if dry_run else "")}


def _dtype(name: str):
    import torch

    return {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[name]


def report(doc: dict) -> list[str]:
    """The table and the disagreements, one line each."""
    head = f"{'case':48s} " + " ".join(f"{m:>10s}" for m in METHODS) + "   (us per call)"
    lines = [f"timing cross-check on {doc['device']}" + (" (DRY RUN)" if doc["dry_run"] else ""), head]
    flags = []
    for c in doc["cases"]:
        s = c["seconds"]
        cells = " ".join(f"{s[m] * 1e6:10.2f}" if s.get(m) is not None else f"{'n/a':>10s}" for m in METHODS)
        name = f"{c['kernel']} {c['sweep'].split('/', 1)[1]} {c['label']}"
        lines.append(f"{name[:48]:48s} {cells}" + ("" if c["check_ok"] else "   WRONG RESULT"))
        for other in ("no-spin", "do_bench"):
            if s.get(other) and s.get("suite") and abs(s[other] / s["suite"] - 1) > DISAGREE:
                flags.append(f"{name}: {other} {s[other] * 1e6:.2f} us vs suite {s['suite'] * 1e6:.2f} us "
                             f"({s[other] / s['suite']:.2f}x)")
    bw = doc["bandwidth"]
    lines.append(f"bandwidth on {bw['buffer_bytes'] / GIB:.3g} GiB: read {bw['read_GB_per_s']:.1f} GB/s, "
                 f"write {bw['write_GB_per_s']:.1f} GB/s, copy {bw['copy_GB_per_s']:.1f} GB/s (measured)")
    lines += [f"NOT COVERED: {note}" for note in doc.get("not_covered", [])]
    if doc["dry_run"]:
        lines.append("dry run: the CUDA-only methods were not run")
    else:
        agree = f"methods agree within {DISAGREE:.0%} (suite vs no-spin, do_bench)"
        lines += [f"DISAGREE >{DISAGREE:.0%}: {f}" for f in flags] or [agree]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for crosscheck.json")
    parser.add_argument("--dry-run", action="store_true", help="CPU plumbing check (interpreter, tiny)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    doc = run(args.out, args.dry_run)
    (args.out / "crosscheck.json").write_text(json.dumps(doc, indent=2, default=str))
    lines = report(doc)
    (args.out / "crosscheck.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(c["check_ok"] for c in doc["cases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
