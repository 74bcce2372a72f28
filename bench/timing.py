"""How a benchmark is timed, all in one place: the cache flush, the device clock, warm-up, round
selection, the device-time methods, the host launch cost, the ``benchmark.pedantic`` call and the
median/p20/p80 summary.

On CUDA pytest-benchmark's own timer (a host clock around an asynchronous launch) would record launch
overhead, so each suite benchmark gets a :class:`DeviceClock` through the ``benchmark`` marker's
``timer=`` (:func:`use_device_clock`). Each point's rounds are measured by one of :data:`METHODS`
(:func:`measure`; ``--timing``, default ``auto``: the device's own kernel records from ``torch.profiler``,
else CUDA-graph replay, else a spin sized to the call's measured host time), none of which counts host
time, and then handed to pytest-benchmark through that clock (:func:`record_rounds`), which replays them
as its rounds. Beside each point's device time sits its host launch cost (:func:`host_seconds_per_call`)
and Triton's bare launch of the same kernels (:func:`bare_launch_seconds`). On the CPU the call runs on
the host: pytest-benchmark's ``perf_counter`` times it, flushed in ``pedantic``'s ``setup``
(:func:`time_rounds`). Rounds: as many as fit ``--benchmark-max-time`` (or the marker's ``max_time=``)
at the measured cost of one round, at least ``--benchmark-min-rounds``, at most :data:`MAX_ROUNDS`.
The ceiling probes time single calls with the event clock (:func:`call_timer`). pytest-benchmark's
public API covers all of this; its session object, which the plugin also needs, is reached only
through the adapter at the end of this module.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
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
# GPU cycles of busy-wait queued after the flush: ~100-150 us at A100/H100 clocks. The "events" method's
# only cover for the host's work before the launch (nvbench's "blocking kernel" idea); the graph method's
# cover for the graph launch.
LAUNCH_COVER_CYCLES = 200_000


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
        self._replay: list[float] = []
        self._replaying = False
        self.total_s = 0.0
        self.intervals = 0

    def replay(self, samples: Sequence[float]) -> None:
        """Make the next ``len(samples)`` pairs advance by these device seconds, measured beforehand by
        :func:`measure`, instead of by events (:func:`record_rounds`)."""
        self._replay = list(samples)[::-1]

    def __call__(self) -> float:
        if self._replay or self._replaying:  # a pair of a replayed round: no event
            self._replaying = not self._replaying
            if not self._replaying:
                self.total_s += self._replay.pop()
                self.intervals += 1
            return self.total_s
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


def item_clock(item: pytest.Item) -> DeviceClock | None:
    """The :class:`DeviceClock` :func:`use_device_clock` gave ``item`` (its ``benchmark`` marker's
    ``timer=``), or None (the CPU: pytest-benchmark's own timer)."""
    marker = item.get_closest_marker("benchmark")
    timer = marker.kwargs.get("timer") if marker else None
    return timer if isinstance(timer, DeviceClock) else None


# ------------------------------------------------------------------------ device time, free of host time
# Every method below times the same rounds (flush, then one call) on a GPU; they differ in what else can
# land inside the number. The device is reached through a backend (:class:`CudaBackend`; a simulated GPU
# in tests): host_clock(), synchronize(), event(), spin(cycles), cycles_per_s(), mark() (a marker kernel),
# marker_name(), profile(body) -> [DeviceRecord] and capture(fn) -> replay.

METHODS = ("auto", "profiler", "graph", "sized-spin", "events")
AUTO_ORDER = ("profiler", "graph", "sized-spin")  # "auto": the first that works for the point
METHOD_TEXT = {
    "profiler": "the summed device durations of the call's kernels and copies, from torch.profiler's CUDA "
                "activity records (CUPTI): host gaps are never counted",
    "graph": "CUDA events around a CUDA-graph replay of one call (no Python inside the timed interval), "
             "after the flush and a ~100 us spin that covers the graph launch",
    "sized-spin": "CUDA events around the Python call, after a spin sized to {margin:g}x the measured host "
                  "time per call + {extra_us:g} us, so the whole call is queued before the spin ends",
    "events": "CUDA events around the Python call after a fixed ~100 us spin (the pre-issue-22 method: "
              "host work past the spin, and a host tail past the kernel, are timed)",
}
SPIN_MARGIN = 2.0
SPIN_EXTRA_S = 20e-6
HOST_CALLS = 30  # calls timed on the host for the launch cost, each after a device sync


class TimingError(RuntimeError):
    """A method cannot time this call here (no profiler records, a call that cannot be captured, ...)."""


@dataclass(frozen=True)
class DeviceRecord:
    """One device activity (kernel, copy, fill) from a profiler trace: name, start and duration, seconds."""

    name: str
    start_s: float
    duration_s: float


def device_seconds_per_round(records: Sequence[DeviceRecord], marker: str, rounds: int) -> list[float]:
    """Per round, the summed durations of the device activities between its two marker kernels (queued
    right before and right after the call), in device order. Gaps between them are never counted.
    :class:`TimingError` when the markers do not pair up into ``rounds`` rounds or a round saw nothing."""
    samples: list[float] = []
    inside, total, seen = False, 0.0, 0
    for record in sorted(records, key=lambda r: r.start_s):
        if record.name == marker:
            if inside:
                if seen == 0:
                    raise TimingError("the profiler recorded no device activity between a round's markers "
                                      "(kernels launched outside what it traces?)")
                samples.append(total)
            inside, total, seen = not inside, 0.0, 0
        elif inside:
            total += record.duration_s
            seen += 1
    if inside or len(samples) != rounds:
        raise TimingError(f"the profiler trace has {len(samples)} complete rounds, expected {rounds}")
    return samples


def event_rounds(fn: Callable[[], object], *, flush: Callable[[], None], backend: object, rounds: int,
                  spin_cycles: float) -> list[float]:
    samples = []
    for _ in range(rounds):
        flush()
        if spin_cycles:
            backend.spin(spin_cycles)
        start, end = backend.event(), backend.event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / 1e3)
    return samples


def measure_events(fn: Callable[[], object], *, flush: Callable[[], None], backend: object, rounds: int,
                   host_s: float) -> list[float]:
    """``events``: a fixed :data:`LAUNCH_COVER_CYCLES` spin, then CUDA events around the Python call."""
    return event_rounds(fn, flush=flush, backend=backend, rounds=rounds, spin_cycles=LAUNCH_COVER_CYCLES)


def sized_spin_cycles(host_s: float, cycles_per_s: float) -> float:
    """Spin cycles covering :data:`SPIN_MARGIN` x ``host_s`` + :data:`SPIN_EXTRA_S`, at least
    :data:`LAUNCH_COVER_CYCLES`."""
    return max(float(LAUNCH_COVER_CYCLES), (SPIN_MARGIN * host_s + SPIN_EXTRA_S) * cycles_per_s)


def measure_sized_spin(fn: Callable[[], object], *, flush: Callable[[], None], backend: object, rounds: int,
                       host_s: float) -> list[float]:
    """``sized-spin``: the spin outlasts the whole call's host work (:func:`sized_spin_cycles`), so the
    call's kernels and the end event are queued before the device reaches the start event."""
    return event_rounds(fn, flush=flush, backend=backend, rounds=rounds,
                         spin_cycles=sized_spin_cycles(host_s, backend.cycles_per_s()))


def measure_graph(fn: Callable[[], object], *, flush: Callable[[], None], backend: object, rounds: int,
                  host_s: float) -> list[float]:
    """``graph``: one call captured in a CUDA graph; each round flushes, spins, and times a replay with
    events (the replay's launch is covered by the spin)."""
    replay = backend.capture(fn)
    return event_rounds(replay, flush=flush, backend=backend, rounds=rounds, spin_cycles=LAUNCH_COVER_CYCLES)


def measure_profiler(fn: Callable[[], object], *, flush: Callable[[], None], backend: object, rounds: int,
                     host_s: float) -> list[float]:
    """``profiler``: all rounds under the profiler, each call between two marker kernels; per round the
    summed device durations between them (:func:`device_seconds_per_round`)."""
    marker = backend.marker_name()

    def body() -> None:
        for _ in range(rounds):
            flush()
            backend.mark()
            fn()
            backend.mark()

    return device_seconds_per_round(backend.profile(body), marker, rounds)


MEASURE = {"profiler": measure_profiler, "graph": measure_graph, "sized-spin": measure_sized_spin,
           "events": measure_events}


def host_seconds_per_call(fn: Callable[[], object], backend: object, calls: int = HOST_CALLS) -> float:
    """Median host seconds of one call, launcher entry to return (kernel enqueue included), each call
    started on an idle device (synchronised first)."""
    samples = []
    for _ in range(calls):
        backend.synchronize()
        t0 = backend.host_clock()
        fn()
        samples.append(backend.host_clock() - t0)
    backend.synchronize()
    return statistics.median(samples)


def bare_launch(launch: object) -> None:
    """Triton's own launch of one recorded :class:`kernels._lib.launch.KernelLaunch`:
    ``kernel[grid](*args, **kwargs)``; an autotuned kernel launches its jitted function with the tuned
    config, so no autotuner lookup is counted."""
    kernel, kwargs = launch.kernel, dict(launch.kwargs)
    best = getattr(kernel, "best_config", None)
    if best is not None and hasattr(kernel, "fn"):
        kernel, kwargs = kernel.fn, {**kwargs, **best.all_kwargs()}
    kernel[launch.grid](*launch.args, **kwargs)


def bare_launch_seconds(launches: Sequence[object], backend: object, calls: int = HOST_CALLS,
                        launcher: Callable[[object], None] = bare_launch) -> float | None:
    """Median host seconds of Triton's bare launches of the kernels one call launched (``launches``,
    recorded by :func:`kernels._lib.launch.recording`), same arguments; None when nothing was recorded
    (a provider other than Triton)."""
    if not launches:
        return None
    return host_seconds_per_call(lambda: [launcher(x) for x in launches], backend, calls)


@dataclass
class Measured:
    """One point's timed rounds (device seconds) and how they were taken."""

    samples: list[float]
    method: str
    requested: str
    host_s: float
    not_used: list[str] = field(default_factory=list)  # "method: why" for each method auto passed over


def measure(fn: Callable[[], object], *, flush: Callable[[], None], backend: object, rounds: int,
            method: str = "auto", host_s: float | None = None) -> Measured:
    """Time ``rounds`` flushed calls of ``fn`` by ``method`` (one of :data:`METHODS`; ``auto`` tries
    :data:`AUTO_ORDER` and keeps the first that works). ``host_s``: the call's host seconds
    (default: measured here, :func:`host_seconds_per_call`)."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    if host_s is None:
        host_s = host_seconds_per_call(fn, backend)
    not_used = []
    for name in AUTO_ORDER if method == "auto" else (method,):
        try:
            samples = MEASURE[name](fn, flush=flush, backend=backend, rounds=rounds, host_s=host_s)
        except TimingError as exc:
            if method != "auto":
                raise
            not_used.append(f"{name}: {exc}")
            continue
        return Measured(samples, name, method, host_s, not_used)
    raise TimingError("no timing method worked: " + "; ".join(not_used))


def record_rounds(benchmark: object, clock: DeviceClock, samples: Sequence[float]) -> Summary | None:
    """Hand measured rounds to pytest-benchmark: ``clock`` (this item's timer) replays ``samples`` as
    the time of ``pedantic``'s rounds, whose target does nothing (the calls were made by
    :func:`measure`). The summary, or None under ``--benchmark-disable``."""
    clock.replay(samples)
    benchmark.pedantic(lambda: None, rounds=len(samples), warmup_rounds=0, iterations=1)
    if benchmark.disabled or benchmark.stats is None:
        return None
    return summarize(list(benchmark.stats.stats.data))


def launch_fields(device_s: float, host_s: float | None, bare_s: float | None) -> dict:
    """The launch-cost part of a point's ``extra_info["timing"]``: host seconds per call, Triton's bare
    launch of the same kernels, their ratio, and ``launch_bound`` (the device time is below the host
    time: a loop that launches it without CUDA graphs waits on the host, not the kernel)."""
    return {"host_launch_s": host_s, "bare_launch_s": bare_s,
            "host_over_bare": host_s / bare_s if host_s and bare_s else None,
            "launch_bound": None if host_s is None else device_s < host_s}


def launch_summary(records: Sequence[dict]) -> list[str]:
    """The run summary's lines on timing (``records``: benchmark.json's benchmarks): which method timed
    the points, the host launch cost per call, its ratio to Triton's bare launch, the launch-bound points."""
    infos = [(r.get("name", "?"), r.get("extra_info") or {}) for r in records]
    if not infos:
        return []
    if all(e.get("device_kind") == "cpu" for _, e in infos):
        return ["host launch cost: n/a on the CPU (the call runs on the host; timed by perf_counter)"]
    timed = [(n, e["timing"]) for n, e in infos if (e.get("timing") or {}).get("host_launch_s")]
    if not timed:
        return []
    methods: dict[str, int] = {}
    for _, t in timed:
        methods[t.get("method", "?")] = methods.get(t.get("method", "?"), 0) + 1
    ratios = [t["host_over_bare"] for _, t in timed if t.get("host_over_bare")]
    bound = [n for n, t in timed if t.get("launch_bound")]
    host_us = statistics.median(t["host_launch_s"] for _, t in timed) * 1e6
    versus = (f"; Triton's launchers {statistics.median(ratios):.2f}x (median; {min(ratios):.2f}-"
              f"{max(ratios):.2f}x) Triton's bare launch of the same kernels" if ratios else "")
    return [f"device time by: {', '.join(f'{m} {k}' for m, k in sorted(methods.items()))} points "
            "(extra_info.timing.method; --timing)",
            f"host launch cost per call: median {host_us:.1f} us over {len(timed)} points{versus}"
            + f"; launch-bound (device time < host time per call): {len(bound)}"
            + (": " + ", ".join(bound[:5]) + (" ..." if len(bound) > 5 else "") if bound else "")]


class CudaBackend:
    """The GPU behind the methods: CUDA events, ``torch.cuda._sleep`` spins and markers, torch.profiler's
    CUDA activity records, CUDA-graph capture. Built once per session (``BenchSession.timing_backend``)."""

    def __init__(self, device: object) -> None:
        self.device = device
        self._marker: str | None = None
        self._cycles_per_s: float | None = None

    def host_clock(self) -> float:
        return time.perf_counter()

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize(self.device)

    def event(self) -> object:
        return cuda_event()

    def spin(self, cycles: float) -> None:
        import torch

        torch.cuda._sleep(int(cycles))

    def mark(self) -> None:
        import torch

        torch.cuda._sleep(1)

    def cycles_per_s(self) -> float:
        """The spin's clock rate, measured once: :data:`LAUNCH_COVER_CYCLES` timed with events."""
        if self._cycles_per_s is None:
            self.spin(LAUNCH_COVER_CYCLES)  # warm
            start, end = self.event(), self.event()
            start.record()
            self.spin(LAUNCH_COVER_CYCLES)
            end.record()
            end.synchronize()
            self._cycles_per_s = LAUNCH_COVER_CYCLES / (start.elapsed_time(end) / 1e3)
        return self._cycles_per_s

    def profile(self, body: Callable[[], None]) -> list[DeviceRecord]:
        import torch
        from torch.profiler import ProfilerActivity, profile

        try:
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                body()
                torch.cuda.synchronize(self.device)
            events = prof.events()
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower():
                raise
            raise TimingError(f"torch.profiler failed: {type(exc).__name__}: {exc}") from None
        cuda = torch.autograd.DeviceType.CUDA
        return [DeviceRecord(e.name, e.time_range.start / 1e6, (e.time_range.end - e.time_range.start) / 1e6)
                for e in events if e.device_type == cuda]

    def marker_name(self) -> str:
        """The name the profiler gives :meth:`mark`'s kernel, read from a trace of it alone."""
        if self._marker is None:
            names = {r.name for r in self.profile(self.mark)}
            if len(names) != 1:
                raise TimingError(f"the profiler saw {sorted(names) or 'no kernel'} for one marker kernel")
            self._marker = names.pop()
        return self._marker

    def capture(self, fn: Callable[[], object]) -> Callable[[], object]:
        import torch

        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                fn()
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                fn()
            graph.replay()
            torch.cuda.synchronize(self.device)
        except Exception as exc:  # noqa: BLE001 - a call that cannot be captured: say why, try another method
            if "out of memory" in str(exc).lower():
                raise
            raise TimingError(f"CUDA-graph capture failed: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        return graph.replay


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
                  warmup_calls: int = CALLS_BEFORE_TIMING, threads: int | None = None,
                  method: str = "events") -> str:
    """One line recorded with each benchmark saying how it was timed (``method``: on CUDA, the one of
    :data:`METHODS` that measured it)."""
    flush = f"{cache_name} flushed before every timed call by zeroing a {flush_nbytes / MiB:.0f} MiB buffer"
    if device_kind == "cuda" and method in METHOD_TEXT:
        how = METHOD_TEXT[method].format(margin=SPIN_MARGIN, extra_us=SPIN_EXTRA_S * 1e6)
        return (f"device time, method {method!r}: {how} (pytest-benchmark's timer replays these rounds); "
                f"{flush}; {warmup_calls} warm-up calls first (JIT compile, autotune); median of {rounds} "
                "rounds, 1 call each")
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
