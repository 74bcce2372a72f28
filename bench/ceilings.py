"""This device's ceilings, measured once per session before the sweep: copy bandwidth and matmul peaks.

- Bandwidth: ``dst.copy_(src)`` on buffers far larger than the last-level cache (GPU: 16x L2 and at
  least 1 GiB; CPU: 8x the LLC and at least 64 MiB), counting read + write (``2 * nbytes``) per copy.
- Matmul peak per dtype class: square ``A @ B`` in each dtype of the class (``tensor16``: bf16 and fp16;
  ``tf32``: fp32 with TF32 allowed, GPU only; ``fp32``: fp32 with TF32 off), cuBLAS on a GPU and
  torch's CPU GEMM otherwise. On the CPU the size doubles from 256 until one call takes a tenth of
  the budget (cap 2048), so that a dtype without a fast path (fp16 on most CPUs) costs little time.

Each ceiling is the best repeat (a roof is what the device can do, not what it usually does); the
median is kept beside it. GPU repeats are timed with CUDA events, CPU repeats with ``perf_counter``.
The CPU roofline is built from these alone (:func:`roofline.hardware.from_measured`); a GPU keeps them
beside its datasheet preset.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from bench.timing import MiB, percentile, tf32_matmul
from roofline.hardware import HardwareSpec, UnknownHardwareError, from_measured, lookup_device

GiB = 1024 * MiB
CLASS_DTYPES: dict[str, tuple[torch.dtype, ...]] = {
    "tensor16": (torch.bfloat16, torch.float16),
    "tf32": (torch.float32,),
    "fp32": (torch.float32,),
}


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """Seconds one call of ``fn`` takes on ``device`` (CUDA events on a GPU)."""
    if device.type == "cuda":
        def run(fn: Callable[[], object]) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        return run

    def run_cpu(fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    return run_cpu


def _repeat(fn: Callable[[], object], timer, *, budget_s: float, min_reps: int = 3,
            max_reps: int = 50) -> list[float]:
    fn()  # warm-up: allocation, library initialisation, CPU thread pool
    times: list[float] = []
    spent = 0.0
    while len(times) < max_reps and (len(times) < min_reps or spent < budget_s):
        t = timer(fn)
        times.append(t)
        spent += t
    return times


def copy_bandwidth(device: torch.device, nbytes: int, *, budget_s: float = 0.5) -> dict:
    """Read+write bandwidth of ``dst.copy_(src)`` over ``nbytes``-byte buffers: best and median, B/s."""
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    times = _repeat(lambda: dst.copy_(src), _timer(device), budget_s=budget_s)
    return {"best": 2 * nbytes / min(times), "median": 2 * nbytes / percentile(times, 50),
            "buffer_bytes": nbytes, "repeats": len(times)}


def matmul_peak(device: torch.device, dtype: torch.dtype, *, allow_tf32: bool = False,
                budget_s: float = 0.3, max_n: int | None = None) -> dict:
    """FLOP/s of a square ``A @ B`` in ``dtype``: best and median over repeats at size ``n``."""
    timer = _timer(device)
    if device.type == "cuda":
        n = max_n or 8192
    else:  # double n from 256 until one call (best of 2) costs a tenth of the budget
        n = 256
        while n < (max_n or 2048):
            probe = torch.randn(n, n, dtype=dtype, device=device)
            if min(timer(lambda p=probe: p @ p) for _ in range(2)) * 10 > budget_s:
                break
            n *= 2
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    with tf32_matmul(allow_tf32):  # the current torch API (the legacy flag raises once it is used)
        times = _repeat(lambda: a @ b, timer, budget_s=budget_s)
    flops = 2.0 * n ** 3
    return {"best": flops / min(times), "median": flops / percentile(times, 50), "n": n,
            "repeats": len(times)}


def measure(device: torch.device, cache_bytes: int | None, *, budget_s: float = 0.5) -> dict:
    """The ``measured`` block of ``ceilings.json``: ``mem_bandwidth`` (B/s), ``peak_flops``
    ({dtype class: FLOP/s}), ``method``, and the per-dtype details."""
    cuda = device.type == "cuda"
    cache = cache_bytes or 32 * MiB
    nbytes = max(16 * cache, GiB) if cuda else max(8 * cache, 64 * MiB)
    bandwidth = copy_bandwidth(device, nbytes, budget_s=budget_s)
    by_dtype: dict[str, dict] = {}
    peaks: dict[str, float] = {}
    classes = ("tensor16", "tf32", "fp32") if cuda else ("tensor16", "fp32")
    for cls in classes:
        for dtype in CLASS_DTYPES[cls]:
            key = f"{str(dtype).replace('torch.', '')}{'+tf32' if cls == 'tf32' else ''}"
            by_dtype[key] = matmul_peak(device, dtype, allow_tf32=cls == "tf32", budget_s=budget_s * 0.6)
            peaks[cls] = max(peaks.get(cls, 0.0), by_dtype[key]["best"])
    library = "cuBLAS via torch.matmul" if cuda else f"torch CPU GEMM ({torch.get_num_threads()} threads)"
    clock = "CUDA events" if cuda else "perf_counter"
    method = (f"bandwidth: best of {bandwidth['repeats']} copies of a {nbytes / MiB:.0f} MiB buffer "
              f"(read+write counted, {nbytes / cache:.0f}x the {'L2' if cuda else 'last-level cache'}); "
              f"matmul: best repeat of square A@B per dtype ({library}), class peak = best dtype of the "
              f"class; timed with {clock}")
    return {"mem_bandwidth": bandwidth["best"], "peak_flops": peaks, "method": method,
            "bandwidth": bandwidth, "matmul": by_dtype}


def datasheet_for(device_name: str, device_kind: str) -> HardwareSpec | None:
    """The datasheet preset matching a GPU's name; None for a CPU or a GPU ridgebench has no figures for."""
    if device_kind != "cuda":
        return None
    try:
        return lookup_device(device_name)
    except UnknownHardwareError:
        return None


def measured_spec(device_name: str, measured: dict, datasheet: HardwareSpec | None) -> HardwareSpec:
    """The spec built from measured ceilings (caches and SMs from the datasheet preset, if any)."""
    return from_measured(device_name, measured["mem_bandwidth"], measured["peak_flops"], base=datasheet,
                         notes=(measured["method"],))


def ceilings_document(device_name: str, measured: dict, datasheet: HardwareSpec | None) -> dict:
    """``ceilings.json``: ``{"device", "measured", "datasheet"}`` (the results contract)."""
    return {"device": device_name, "measured": measured,
            "datasheet": datasheet.to_dict() if datasheet is not None else None}
