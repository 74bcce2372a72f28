"""The device-time methods of bench.timing on a simulated GPU: one stream whose kernels cannot start before
the host has queued them, events that timestamp when the stream reaches them, a profiler that reports each
kernel's device interval, and CUDA-graph capture. Each kernel family's real launcher (its suite call,
``bench.runner.KernelBench.triton_fn``) runs with every Triton launch turned into a simulated kernel, with
host work longer than the ~100 us spin before each launch and a host tail longer than the kernel after the
call. The old method (a fixed spin, events around the Python call) times that host work; every method the
suite now uses reports the kernels' device time alone."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench import timing
from bench.runner import KernelBench
from bench.timing import LAUNCH_COVER_CYCLES, DeviceRecord, TimingError
from kernels._lib import launch
from roofline.model.ops import KERNELS
from roofline.model.sweeps import sweep_points

US = 1e-6
CYCLES_PER_S = 2e9  # the simulated spin clock: LAUNCH_COVER_CYCLES is 100 us
SPIN_S = LAUNCH_COVER_CYCLES / CYCLES_PER_S
PRE_S = 150 * US  # host work before each launch: longer than the spin
TAIL_S = 30 * US  # host work after the last launch: longer than any kernel below
KERNEL_S = (4 * US, 2.5 * US)  # the first kernel a call launches, then each later one (a combine, a reduce)
LAUNCH_HOST_S = 3 * US  # host cost of one enqueue
FLUSH_S = 40 * US


class SimGpu:
    """One CUDA stream and the host that feeds it (seconds on both clocks)."""

    def __init__(self) -> None:
        self.host = 0.0
        self.free = 0.0  # when the stream has run everything queued so far
        self.trace: list[DeviceRecord] = []
        self.capturing: list[tuple[str, float]] | None = None
        self.profiling = True  # False: a profiler that sees no kernel (e.g. launches it does not trace)

    def host_work(self, seconds: float) -> None:
        self.host += seconds

    def enqueue(self, name: str, seconds: float, host_s: float = LAUNCH_HOST_S) -> None:
        if self.capturing is not None:
            self.capturing.append((name, seconds))
            return
        start = max(self.host, self.free)
        self.free = start + seconds
        self.trace.append(DeviceRecord(name, start, seconds))
        self.host += host_s

    # the backend protocol of bench.timing.measure
    def host_clock(self) -> float:
        return self.host

    def synchronize(self) -> None:
        self.host = max(self.host, self.free)

    def event(self) -> SimEvent:
        return SimEvent(self)

    def spin(self, cycles: float) -> None:
        self.enqueue("spin_kernel", cycles / CYCLES_PER_S)

    def cycles_per_s(self) -> float:
        return CYCLES_PER_S

    def mark(self) -> None:
        self.enqueue("spin_kernel", 1 / CYCLES_PER_S)

    def marker_name(self) -> str:
        return "spin_kernel"

    def profile(self, body) -> list[DeviceRecord]:
        first = len(self.trace)
        body()
        self.synchronize()
        records = self.trace[first:]
        return records if self.profiling else [r for r in records if r.name == "spin_kernel"]

    def capture(self, fn):
        self.capturing = []
        try:
            fn()
            graph = self.capturing
        finally:
            self.capturing = None

        def replay() -> None:  # one graph launch: every node queued at once, no host work between
            self.host_work(LAUNCH_HOST_S)
            for name, seconds in graph:
                self.enqueue(name, seconds, host_s=0.0)
        return replay


class SimEvent:
    def __init__(self, gpu: SimGpu) -> None:
        self.gpu, self.t = gpu, None

    def record(self) -> None:
        self.t = max(self.gpu.host, self.gpu.free)  # the stream reaches it after what is queued before
        self.gpu.free = self.t

    def synchronize(self) -> None:
        self.gpu.host = max(self.gpu.host, self.t)

    def elapsed_time(self, end: SimEvent) -> float:
        return (end.t - self.t) * 1e3


def family_call(kernel: str, gpu: SimGpu, monkeypatch) -> tuple[object, int]:
    """The suite's repeated call of ``kernel``'s launcher at its first smoke point (interpreter shape),
    each Triton launch a simulated kernel after :data:`PRE_S` of host work, :data:`TAIL_S` of host work
    after the launcher returns; and how many kernels one call launches."""
    launches = []

    def simulated_launch(kernel_fn, grid, *args, **kwargs):
        gpu.host_work(PRE_S)
        gpu.enqueue(getattr(kernel_fn, "__name__", "kernel"), KERNEL_S[0] if not launches else KERNEL_S[1])
        launches.append(kernel_fn)

    monkeypatch.setattr(launch, "run", simulated_launch)
    bench = KernelBench(kernel)
    point = next(p for p in sweep_points("smoke", "cpu") if p.kernel == kernel)
    point = dataclasses.replace(point, shape=bench.interpreter_shape(point.shape), dtype="float32")
    x = bench.build(point, torch.device("cpu"))
    call = bench.triton_fn(x, first=False)

    def fn() -> None:
        launches.clear()
        call()
        gpu.host_work(TAIL_S)

    fn()
    return fn, len(launches)


def flush_of(gpu: SimGpu):
    return lambda: gpu.enqueue("flush", FLUSH_S)


def true_device_s(n_kernels: int) -> float:
    return KERNEL_S[0] + (n_kernels - 1) * KERNEL_S[1]


@pytest.mark.parametrize("kernel", KERNELS)
def test_the_old_method_times_host_work_and_the_new_default_does_not(kernel, monkeypatch):
    gpu = SimGpu()
    fn, n = family_call(kernel, gpu, monkeypatch)
    truth = true_device_s(n)
    old = timing.measure(fn, flush=flush_of(gpu), backend=gpu, rounds=5, method="events")
    # today's bias: the device idles inside the timed interval while the host works past the spin (the
    # flush and the spin end before the first launch is queued), and the end event waits for the tail
    assert min(old.samples) > truth + 20 * US and min(old.samples) > 3 * truth
    new = timing.measure(fn, flush=flush_of(gpu), backend=gpu, rounds=5)
    assert new.method == "profiler" and new.requested == "auto" and new.not_used == []
    assert new.samples == pytest.approx([truth] * 5, rel=1e-9)
    assert new.host_s == pytest.approx(n * (PRE_S + LAUNCH_HOST_S) + TAIL_S, rel=1e-9)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("method", ["profiler", "graph", "sized-spin"])
def test_every_host_free_method_reports_the_kernels_alone(kernel, method, monkeypatch):
    gpu = SimGpu()
    fn, n = family_call(kernel, gpu, monkeypatch)
    got = timing.measure(fn, flush=flush_of(gpu), backend=gpu, rounds=4, method=method)
    assert got.method == method
    assert got.samples == pytest.approx([true_device_s(n)] * 4, rel=1e-9)


def test_the_spin_is_sized_past_the_whole_call():
    assert timing.sized_spin_cycles(1e-6, CYCLES_PER_S) == LAUNCH_COVER_CYCLES  # never below the fixed one
    host = 400 * US
    assert timing.sized_spin_cycles(host, CYCLES_PER_S) / CYCLES_PER_S == pytest.approx(
        timing.SPIN_MARGIN * host + timing.SPIN_EXTRA_S)


def test_auto_falls_back_and_says_why(monkeypatch):
    gpu = SimGpu()
    fn, n = family_call("attention", gpu, monkeypatch)
    gpu.profiling = False  # the profiler sees the markers but not the kernels
    got = timing.measure(fn, flush=flush_of(gpu), backend=gpu, rounds=3)
    assert got.method == "graph" and got.not_used[0].startswith("profiler: the profiler recorded no device")
    assert got.samples == pytest.approx([true_device_s(n)] * 3)

    def refuse(fn):
        raise TimingError("CUDA-graph capture failed: operation not permitted when stream is capturing")

    monkeypatch.setattr(gpu, "capture", refuse)
    got = timing.measure(fn, flush=flush_of(gpu), backend=gpu, rounds=3)
    assert got.method == "sized-spin" and [m.split(":")[0] for m in got.not_used] == ["profiler", "graph"]
    assert got.samples == pytest.approx([true_device_s(n)] * 3)
    with pytest.raises(TimingError, match="profiler recorded no device"):  # asked for by name: no fallback
        timing.measure(fn, flush=flush_of(gpu), backend=gpu, rounds=3, method="profiler")
    with pytest.raises(ValueError, match="method"):
        timing.measure(fn, flush=flush_of(gpu), backend=gpu, rounds=3, method="cupti")


def test_rounds_split_by_markers():
    r = DeviceRecord
    trace = [r("m", 0, 0), r("k1", 1, 2), r("k2", 5, 1), r("m", 9, 0), r("flush", 10, 5),
             r("m", 20, 0), r("k1", 21, 3), r("m", 30, 0)]
    assert timing.device_seconds_per_round(trace[::-1], "m", 2) == [3, 3]  # order by start, gaps left out
    with pytest.raises(TimingError, match="1 complete rounds, expected 2"):
        timing.device_seconds_per_round(trace[:5], "m", 2)
    with pytest.raises(TimingError, match="no device activity"):
        timing.device_seconds_per_round([r("m", 0, 0), r("m", 1, 0)], "m", 1)


def test_host_cost_bare_launch_and_launch_bound(monkeypatch):
    gpu = SimGpu()
    fn, n = family_call("softmax", gpu, monkeypatch)
    host = timing.host_seconds_per_call(fn, gpu, calls=5)
    assert host == pytest.approx(n * (PRE_S + LAUNCH_HOST_S) + TAIL_S)
    recorded = ["launch"] * n
    bare = timing.bare_launch_seconds(recorded, gpu, calls=5, launcher=lambda _: gpu.enqueue("k", 1 * US))
    assert bare == pytest.approx(n * LAUNCH_HOST_S)
    assert timing.bare_launch_seconds([], gpu) is None  # nothing recorded: not a Triton call
    fields = timing.launch_fields(true_device_s(n), host, bare)
    assert fields["launch_bound"] is True and fields["host_over_bare"] == pytest.approx(host / bare)
    assert timing.launch_fields(1.0, host, None) == {"host_launch_s": host, "bare_launch_s": None,
                                                     "host_over_bare": None, "launch_bound": False}
    assert timing.launch_fields(1.0, None, None)["launch_bound"] is None  # the CPU: not measured


def test_bare_launch_skips_the_autotuner():
    calls = []

    class Jit:
        def __getitem__(self, grid):
            return lambda *a, **k: calls.append((grid, a, k))

    class Config:
        def all_kwargs(self):
            return {"BLOCK": 64, "num_warps": 4}

    tuned = type("Autotuner", (), {"fn": Jit(), "best_config": Config()})()
    timing.bare_launch(launch.KernelLaunch(tuned, (3,), (1, 2), {"FLAG": True}))
    timing.bare_launch(launch.KernelLaunch(Jit(), (5,), (7,), {}))
    assert calls == [((3,), (1, 2), {"FLAG": True, "BLOCK": 64, "num_warps": 4}), ((5,), (7,), {})]


def test_the_run_summary_says_method_host_cost_and_launch_bound_points():
    def rec(name, method, host, bare, bound):
        return {"name": name, "extra_info": {"device_kind": "cuda", "timing": {
            "method": method, "host_launch_s": host, "bare_launch_s": bare,
            "host_over_bare": host / bare if bare else None, "launch_bound": bound}}}

    lines = timing.launch_summary([rec("a", "profiler", 20e-6, 5e-6, True),
                                   rec("b", "graph", 40e-6, 10e-6, False),
                                   rec("c", "profiler", 30e-6, None, False)])
    assert lines[0].startswith("device time by: graph 1, profiler 2 points")
    assert "median 30.0 us over 3 points" in lines[1]
    assert "4.00x (median; 4.00-4.00x) Triton's bare" in lines[1]
    assert lines[1].endswith("launch-bound (device time < host time per call): 1: a")
    cpu = {"name": "x", "extra_info": {"device_kind": "cpu", "timing": {"method": "host-wall"}}}
    assert timing.launch_summary([cpu]) == [
        "host launch cost: n/a on the CPU (the call runs on the host; timed by perf_counter)"]
    assert timing.launch_summary([]) == []
