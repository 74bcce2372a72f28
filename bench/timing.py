"""How a benchmark is timed, all in one place: the cache flush, the device clock, warm-up, round
selection, the ``benchmark.pedantic`` call and the median/p20/p80 summary.

On CUDA pytest-benchmark's own timer (a host clock around an asynchronous launch) would record launch
overhead, so each suite benchmark gets a :class:`DeviceClock` through the ``benchmark`` marker's
``timer=`` (:func:`use_device_clock`): pytest-benchmark calls it like ``time.perf_counter`` and it
advances only by device time, measured with CUDA events. The flush runs as ``pedantic``'s ``setup``,
outside the timed pair. Rounds: as many as fit ``--benchmark-max-time`` (or the marker's ``max_time=``)
at the measured cost of one round, at least ``--benchmark-min-rounds``, at most :data:`MAX_ROUNDS`.
The ceiling probes time single calls with the same clock (:func:`call_timer`). pytest-benchmark's
public API covers all of this; its session object, which the plugin also needs, is reached only
through the adapter at the end of this module.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

MiB = 1024 * 1024
DEFAULT_FLUSH_BYTES = 256 * MiB  # what triton.testing.do_bench zeroes when the cache size is unknown
MIN_FLUSH_BYTES = 8 * MiB
MAX_ROUNDS = {"cuda": 1000, "cpu": 100}
WARMUP_CALLS = 2  # after the checked first call, which already compiled and autotuned
COST_ROUNDS = 3  # flushed rounds timed on the host to decide how many rounds fit the budget
PEDANTIC_WARMUP_ROUNDS = 1
# Every call before the timed rounds: the checked call (bench.runner), warm-up, cost rounds, pedantic's.
CALLS_BEFORE_TIMING = 1 + WARMUP_CALLS + COST_ROUNDS + PEDANTIC_WARMUP_ROUNDS


# ------------------------------------------------------------------------------------ cache flush

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


# ------------------------------------------------------------------------------------- statistics

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


# ---------------------------------------------------------------------------------------- clocks

class DeviceClock:
    """A pytest-benchmark timer that returns accumulated device seconds.

    Calls alternate: the first of a pair records a start event and returns the accumulated total; the
    second records an end event, waits for it, adds ``start.elapsed_time(end)`` (milliseconds) to the
    total and returns it. ``end - start`` as pytest-benchmark computes it is then the device time of what
    ran between the two calls (NVIDIA/Fuser's ``benchmarks/python/core.py`` does the same).
    ``event_factory`` makes events with ``record()``, ``synchronize()`` and ``elapsed_time(other)``
    (:func:`cuda_event` on a GPU, the events of the current device; a fake in tests).
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


def cuda_event() -> object:
    """A timing CUDA event on the current device's current stream."""
    import torch

    return torch.cuda.Event(enable_timing=True)


def call_timer(device: object, event_factory: Callable[[], object] | None = None
               ) -> Callable[[Callable[[], object]], float]:
    """Seconds one call of ``fn`` takes on ``device`` (a ``torch.device``): a :class:`DeviceClock`
    around it on a GPU (``event_factory``, default :func:`cuda_event`), ``perf_counter`` on a CPU."""
    clock = DeviceClock(event_factory or cuda_event) if device.type == "cuda" else time.perf_counter

    def timed(fn: Callable[[], object]) -> float:
        start = clock()
        fn()
        return clock() - start
    return timed


def use_device_clock(item: pytest.Item, event_factory: Callable[[], object] = cuda_event) -> DeviceClock:
    """Make a fresh :class:`DeviceClock` the pytest-benchmark timer of ``item``, through the ``benchmark``
    marker's ``timer=`` (read when the item's ``benchmark`` fixture is built; the keywords of a benchmark
    marker already on the item are kept). One clock per item: a case that fails inside a timed pair
    leaves its clock half-open, and no other case reads it."""
    clock = DeviceClock(event_factory)
    marker = item.get_closest_marker("benchmark")
    item.add_marker(pytest.mark.benchmark(**{**(marker.kwargs if marker else {}), "timer": clock}),
                    append=False)  # first, so it is the closest
    return clock


# ---------------------------------------------------------------------------------- one benchmark

def warm_up(fn: Callable[[], object], *, flush: Callable[[], None], synchronize: Callable[[], None]) -> float:
    """:data:`WARMUP_CALLS` calls, then :data:`COST_ROUNDS` rounds of flush + call timed on the host:
    the seconds one round costs, which :func:`rounds_for` fits into the budget."""
    for _ in range(WARMUP_CALLS):
        fn()
    synchronize()
    t0 = time.perf_counter()
    for _ in range(COST_ROUNDS):
        flush()
        fn()
        synchronize()
    return (time.perf_counter() - t0) / COST_ROUNDS


def choose_rounds(seconds_per_call: float, *, budget_s: float, min_rounds: int, max_rounds: int) -> int:
    """How many timed rounds fit ``budget_s`` at ``seconds_per_call``, within [min_rounds, max_rounds]."""
    if min_rounds < 1 or max_rounds < min_rounds:
        raise ValueError(f"rounds: need 1 <= min_rounds <= max_rounds, got {min_rounds}, {max_rounds}")
    if seconds_per_call <= 0:
        return max_rounds
    fit = int(budget_s / seconds_per_call * (1 + 1e-9))  # 1.0 / 0.01 is 100 rounds, not 99
    return min(max_rounds, max(min_rounds, fit))


def rounds_for(seconds_per_round: float, request: pytest.FixtureRequest, device_kind: str) -> int:
    """:func:`choose_rounds` within this benchmark's pytest-benchmark budget: ``--benchmark-max-time``
    and ``--benchmark-min-rounds``, or the ``benchmark`` marker's ``max_time=`` / ``min_rounds=`` (the
    marker wins, as in pytest-benchmark's fixture); at most ``MAX_ROUNDS[device_kind]``."""
    budget = {"max_time": request.config.getoption("benchmark_max_time", 1.0),
              "min_rounds": request.config.getoption("benchmark_min_rounds", 5)}
    marker = request.node.get_closest_marker("benchmark")
    if marker is not None:
        budget.update((k, v) for k, v in marker.kwargs.items() if k in budget)
    return choose_rounds(seconds_per_round, budget_s=float(budget["max_time"]),
                         min_rounds=int(budget["min_rounds"]), max_rounds=MAX_ROUNDS[device_kind])


def time_rounds(benchmark: object, fn: Callable[[], object], *, flush: Callable[[], None],
                rounds: int) -> Summary | None:
    """``benchmark.pedantic``: ``flush`` as its ``setup`` (outside the timer's two calls, never timed),
    :data:`PEDANTIC_WARMUP_ROUNDS` warm-up round, then ``rounds`` rounds of one call each. The summary of
    the rounds, or None under ``--benchmark-disable`` (``fn`` ran once, untimed)."""
    benchmark.pedantic(fn, setup=flush, rounds=rounds, warmup_rounds=PEDANTIC_WARMUP_ROUNDS, iterations=1)
    if benchmark.disabled or benchmark.stats is None:
        return None
    return summarize(list(benchmark.stats.stats.data))


def timing_method(device_kind: str, *, flush_nbytes: int, cache_name: str, rounds: int,
                  warmup_calls: int = CALLS_BEFORE_TIMING, threads: int | None = None) -> str:
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


# ------------------------------------------------------------------------------------------------
# Adapter: pytest-benchmark's session object. Its public API (the fixture, the marker, the options,
# the hooks) has no way to do three things the plugin needs at session level: keep benchmarks on in
# an xdist worker (pytest-benchmark disables them there, as workers would share one machine; here each
# worker owns a GPU), keep it from writing its own JSON into a part (ridgebench writes benchmark.json
# itself), and drop a record a stop left half-timed before pytest-benchmark saves and displays it.
# The session object it registers as the plugin "pytest-benchmark" (and keeps as the private
# config._benchmarksession) is the only handle; nothing else in bench/ touches it.
# ------------------------------------------------------------------------------------------------

def _benchmark_session(config: pytest.Config) -> object | None:
    return config.pluginmanager.get_plugin("pytest-benchmark")


def keep_benchmarks_on(config: pytest.Config, *, disabled: bool | None = None) -> None:
    """Undo pytest-benchmark's xdist switch-off and its JSON file; ``disabled``: whether this process's
    benchmarks are disabled (None: leave it as pytest-benchmark decided)."""
    session = _benchmark_session(config)
    if session is None:
        return
    session.xdist_warning = False
    session.json = None
    if disabled is not None:
        session.disabled = disabled


def drop_benchmarks(config: pytest.Config, keep: Callable[[object], bool]) -> None:
    """Remove from pytest-benchmark's list every record (a ``Metadata``) for which ``keep`` is false."""
    session = _benchmark_session(config)
    if session is not None:
        session.benchmarks[:] = [b for b in session.benchmarks if keep(b)]
