"""Timing that records what the device did: a CUDA-event clock for pytest-benchmark, cache flushing,
round counts and the median/p20/p80 summary.

On CUDA, pytest-benchmark's own timer is a host clock around an asynchronous launch: it would record
launch overhead. :class:`DeviceClock` is a timer pytest-benchmark calls like ``time.perf_counter``
(``start = timer(); fn(); end = timer()``) but which advances only by the device time between those
two calls, measured with CUDA events (NVIDIA/Fuser's ``benchmarks/python/core.py`` does the same). The
flush that empties L2 runs in ``benchmark.pedantic(setup=...)``, outside the two timer calls, so it is
never counted; the start event is queued behind it, so it has finished before the clock starts.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
DEFAULT_FLUSH_BYTES = 256 * MiB  # what triton.testing.do_bench zeroes when the cache size is unknown
MIN_FLUSH_BYTES = 8 * MiB


def flush_bytes(cache_bytes: int | None) -> int:
    """Size of the buffer to zero before each timed call so nothing of the last call stays cached.

    Twice the cache (``cache_bytes``: the GPU's L2, the CPU's last-level cache), rounded up to a MiB and
    at least 8 MiB; 256 MiB when the cache size is unknown. Writing 2x the cache evicts every line under
    any replacement policy that keeps at most the cache's capacity of the newest writes.
    """
    if cache_bytes is None or cache_bytes <= 0:
        return DEFAULT_FLUSH_BYTES
    return max(MIN_FLUSH_BYTES, math.ceil(2 * cache_bytes / MiB) * MiB)


def cpu_llc_bytes(sysfs: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int | None:
    """The largest cache of CPU 0 per Linux sysfs (``index*/size`` like ``32768K``), or None."""
    best = None
    for size_file in sorted(sysfs.glob("index*/size")):
        text = size_file.read_text().strip().upper()
        scale = {"K": 1024, "M": MiB, "G": 1024 * MiB}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            value = int(digits) * scale
            best = value if best is None else max(best, value)
    return best


@dataclass(frozen=True)
class Summary:
    """Seconds per call: median and the 20th/80th percentiles over the timed rounds."""

    median_s: float
    p20_s: float
    p80_s: float
    rounds: int


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between order statistics (numpy's
    default method)."""
    if not samples:
        raise ValueError("samples: expected at least one timing")
    if not 0 <= q <= 100:
        raise ValueError(f"q: expected a percentile in [0, 100], got {q}")
    xs = sorted(samples)
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(samples: Sequence[float]) -> Summary:
    """Median, p20 and p80 of per-call times (seconds)."""
    return Summary(percentile(samples, 50), percentile(samples, 20), percentile(samples, 80), len(samples))


def choose_rounds(seconds_per_call: float, *, budget_s: float, min_rounds: int, max_rounds: int) -> int:
    """How many timed rounds fit ``budget_s`` at ``seconds_per_call``, within [min_rounds, max_rounds]."""
    if min_rounds < 1 or max_rounds < min_rounds:
        raise ValueError(f"rounds: need 1 <= min_rounds <= max_rounds, got {min_rounds}, {max_rounds}")
    if seconds_per_call <= 0:
        return max_rounds
    fit = int(budget_s / seconds_per_call * (1 + 1e-9))  # 1.0 / 0.01 is 100 rounds, not 99
    return min(max_rounds, max(min_rounds, fit))


class DeviceClock:
    """A pytest-benchmark timer that returns accumulated device seconds.

    Calls alternate: the first of a pair records a start event and returns the accumulated total; the
    second records an end event, waits for it, adds ``start.elapsed_time(end)`` (milliseconds) to the
    total and returns it. ``end - start`` as pytest-benchmark computes it is then the device time of what
    ran between the two calls. ``event_factory`` makes events with ``record()``, ``synchronize()`` and
    ``elapsed_time(other)`` (``torch.cuda.Event(enable_timing=True)`` on a GPU; a fake in tests).
    """

    __name__ = "cuda_event_device_time"  # pytest-benchmark stores the timer's name in its JSON

    def __init__(self, event_factory: Callable[[], object]) -> None:
        self._event_factory = event_factory
        self._start: object | None = None
        self.total_s = 0.0
        self.intervals = 0

    def __call__(self) -> float:
        if self._start is None:
            self._start = self._event_factory()
            self._start.record()
            return self.total_s
        end = self._event_factory()
        end.record()
        end.synchronize()
        self.total_s += self._start.elapsed_time(end) / 1e3
        self._start = None
        self.intervals += 1
        return self.total_s

    @property
    def pending(self) -> bool:
        """True between a start and its end call (a timing interval is open)."""
        return self._start is not None


def cuda_clock(device: object) -> DeviceClock:
    """A :class:`DeviceClock` on the current stream of CUDA ``device``."""
    import torch

    def factory() -> object:
        return torch.cuda.Event(enable_timing=True)

    with torch.cuda.device(device):
        return DeviceClock(factory)


def time_device_call(fn: Callable[[], object], clock: DeviceClock, calls: int = 1) -> float:
    """Device seconds per call of ``fn`` over ``calls`` back-to-back calls, on ``clock``."""
    start = clock()
    for _ in range(calls):
        fn()
    return (clock() - start) / calls


def timing_method(device_kind: str, *, flush_nbytes: int, cache_name: str, warmup_calls: int,
                  rounds: int, threads: int | None = None) -> str:
    """One line recorded with each benchmark saying how it was timed."""
    flush = f"{cache_name} flushed before every timed call by zeroing a {flush_nbytes / MiB:.0f} MiB buffer"
    if device_kind == "cuda":
        return (f"device time from CUDA events (pytest-benchmark timer = accumulated event time); {flush}, "
                f"then a ~100 us GPU spin so the host's launch latency is not timed; {warmup_calls} warm-up "
                f"calls first (JIT compile, autotune); median of {rounds} rounds, 1 call each")
    return (f"host wall time (pytest-benchmark's perf_counter timer) on the CPU"
            f"{f' with {threads} torch threads' if threads else ''}; {flush}; {warmup_calls} warm-up "
            f"calls first; median of {rounds} rounds, 1 call each")


@contextlib.contextmanager
def tf32_matmul(enabled: bool, backend: object = None) -> Iterator[None]:
    """Let fp32 matmuls use TF32 tensor cores (``enabled``) or not, restoring the previous setting after.

    torch >= 2.9 has ``torch.backends.cuda.matmul.fp32_precision`` (``"tf32"`` / ``"ieee"``); once
    that has been set, reading the legacy ``allow_tf32`` raises (torch refuses to mix the two APIs), so
    the legacy flag is used only on a torch without the new one. ``backend``: the object holding the
    setting (default ``torch.backends.cuda.matmul``; a stand-in in tests).
    """
    if backend is None:
        import torch

        backend = torch.backends.cuda.matmul
    if hasattr(backend, "fp32_precision"):
        name, value = "fp32_precision", "tf32" if enabled else "ieee"
    else:
        name, value = "allow_tf32", bool(enabled)
    previous = getattr(backend, name)
    setattr(backend, name, value)
    try:
        yield
    finally:
        setattr(backend, name, previous)
