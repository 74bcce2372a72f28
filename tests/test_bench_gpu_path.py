"""The GPU branch of bench.runner.run_case, run on this CPU with the CUDA pieces stood in for: a session
that calls itself ``cuda`` (no device sync, no spin kernel), events reading ``perf_counter``, a timing
backend without a profiler or CUDA graphs, and compute capability 9.0. What it checks is the plumbing a
real GPU run goes through and nothing here can otherwise reach: the device clock given to
pytest-benchmark as its timer (the plugin's collection hook, through the ``benchmark`` marker), the
rounds measured by ``--timing auto`` (here its last resort, the sized spin, with the reasons it passed
over the others) replayed through that clock, the host launch cost beside Triton's bare launch, the
datasheet roof chosen for a known GPU name, the Triton launch record and the audit lookup in
``extra_info``. (The methods themselves, on a simulated GPU: tests/test_timing_methods.py.)"""

from __future__ import annotations

import datetime as dt
import time
import types

import pytest
import torch

import bench.runner as runner
from bench import plugin
from bench.record import EXTRA_INFO_FIELDS, Roofs
from bench.session import BenchSession
from bench.timing import DeviceClock, TimingError, use_device_clock
from roofline.model.hardware import PRESETS, from_measured
from roofline.model.sweeps import SweepPoint

H100 = "NVIDIA H100 80GB HBM3"


class HostBackend:
    """bench.timing's backend on host clocks: no profiler, no graphs, spins that do nothing."""

    host_clock = staticmethod(time.perf_counter)

    def synchronize(self) -> None:
        pass

    def event(self) -> HostEvent:
        return HostEvent()

    def spin(self, cycles: float) -> None:
        pass

    def cycles_per_s(self) -> float:
        return 1e9

    def marker_name(self) -> str:
        raise TimingError("no profiler on the stand-in")

    def capture(self, fn):
        raise TimingError("no CUDA graphs on the stand-in")


class StandInCudaSession(BenchSession):
    @property
    def device_kind(self) -> str:
        return "cuda"

    @property
    def timing_backend(self) -> HostBackend:
        return HostBackend()

    def synchronize(self) -> None:
        pass

    def flush(self) -> None:
        if self._flush_buffer is None:
            self._flush_buffer = torch.empty(self.flush_nbytes, dtype=torch.uint8)
        self._flush_buffer.zero_()


class HostEvent:
    def record(self) -> None:
        self.t = time.perf_counter()

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, end: HostEvent) -> float:
        return (end.t - self.t) * 1e3


@pytest.fixture
def host_clock(request: pytest.FixtureRequest) -> DeviceClock:
    """The device clock the plugin gives each suite benchmark on CUDA (:func:`bench.timing.use_device_clock`,
    the ``benchmark`` marker's ``timer=``), on host events; set up before ``benchmark``, which reads it."""
    return use_device_clock(request.node, HostEvent)


@pytest.mark.benchmark(max_time=0.05)
@pytest.mark.parametrize("provider", ["torch", "triton"])
def test_gpu_branch_records_device_clock_datasheet_roof_and_launch(provider, host_clock, benchmark, request,
                                                                   tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    session = StandInCudaSession(device=torch.device("cpu"), device_name=H100, run_dir=tmp_path, part="gw0",
                                 sweep="smoke", triton_timed=True, cache_bytes=2**20,
                                 started=dt.datetime.now(dt.timezone.utc))
    measured = from_measured(H100, 3.0e12, {"tensor16": 800e12, "tf32": 400e12, "fp32": 50e12},
                             base=PRESETS["H100-SXM5"])
    session.roofs = Roofs(measured, PRESETS["H100-SXM5"])
    point = SweepPoint("softmax", "softmax/cols.r3", {"rows": 3, "cols": 176}, "float16", "C176")

    runner.run_case(runner.KernelBench("softmax"), (provider, point), benchmark, session, request)

    info = benchmark.extra_info
    assert set(EXTRA_INFO_FIELDS) <= set(info)
    # pytest-benchmark recorded through the marker's clock: its name in the record, a replayed pair per round
    assert benchmark.stats.as_dict()["options"]["timer"] == "cuda_event_device_time"
    assert host_clock.intervals == benchmark.stats.stats.rounds
    assert benchmark.stats.stats.data and info["median_s"] == pytest.approx(benchmark.stats.stats.median)
    assert info["device_kind"] == "cuda" and "CUDA events" in info["timing_method"]
    assert "'sized-spin'" in info["timing_method"]
    assert "8 MiB" in info["timing_method"] and "L2" in info["timing_method"]
    how = info["timing"]
    assert (how["method"], how["requested"]) == ("sized-spin", "auto")
    assert [m.split(":")[0] for m in how["not_used"]] == ["profiler", "graph"]
    assert how["host_launch_s"] > 0 and how["launch_bound"] == (info["median_s"] < how["host_launch_s"])
    if provider == "triton":  # the launcher's kernels, relaunched bare by Triton
        assert how["kernel_launches"] == 1 and how["bare_launch_s"] > 0
        assert how["host_over_bare"] == pytest.approx(how["host_launch_s"] / how["bare_launch_s"])
    else:
        assert how["kernel_launches"] == 0 and how["bare_launch_s"] is None
    # measured roof first (roofline.model.roof), the datasheet's fraction beside it
    assert info["roof_source"] == "measured" and info["hardware"] == H100
    assert info["roofs"]["datasheet"]["hardware"] == "H100-SXM5" and info["datasheet_roof_fraction"] > 0
    assert info["max_error"] <= 1e-3 and session.timed == 1
    if provider == "triton":
        launch = runner.kmod_last_launch("softmax")
        assert (info["variant"], info["config"]) == (launch.variant, launch.config) and info["config"]
        assert info["audit"] is None or isinstance(info["audit"], dict)
    else:
        assert (info["variant"], info["config"], info["audit"]) == ("torch.softmax", None, None)
        assert info["accuracy"]["ratio"] == 1.0  # the baseline is the plain PyTorch run itself
    acc = info["accuracy"]  # one gate for every provider: the bound is the tolerance recorded
    assert info["tolerance"] == [acc["bound"], 0.0] and acc["max_error"] == info["max_error"] <= acc["bound"]


class CollectedItem:
    """What the plugin's collection hook uses of a pytest item: its function and its markers."""

    def __init__(self, kernel: str | None) -> None:
        self.function = types.SimpleNamespace(KERNEL=kernel) if kernel else types.SimpleNamespace()
        self.own_markers: list[pytest.Mark] = []

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        return next((m for m in self.own_markers if m.name == name), None)

    def add_marker(self, marker: pytest.MarkDecorator, append: bool = True) -> None:
        self.own_markers.insert(len(self.own_markers) if append else 0, marker.mark)


@pytest.mark.parametrize("device_kind", ["cuda", "cpu"])
def test_on_cuda_the_plugin_gives_each_benchmark_its_own_device_clock(device_kind, tmp_path):
    session_class = StandInCudaSession if device_kind == "cuda" else BenchSession
    session = session_class(device=torch.device("cpu"), device_name=H100, run_dir=tmp_path, part="main",
                            sweep="smoke", triton_timed=True, cache_bytes=2**20,
                            started=dt.datetime.now(dt.timezone.utc))
    options = {"--benchmark": True, "--kernels": None}
    config = types.SimpleNamespace(getoption=lambda name, default=None: options.get(name, default),
                                   stash={plugin.SESSION: session})
    gelu, softmax, other = CollectedItem("gelu"), CollectedItem("softmax"), CollectedItem(None)
    gelu.add_marker(pytest.mark.benchmark(max_time=0.5, group="mine"))
    plugin.pytest_collection_modifyitems(config, [gelu, softmax, other])
    timers = [item.get_closest_marker("benchmark") for item in (gelu, softmax, other)]
    if device_kind == "cpu":  # pytest-benchmark's own perf_counter timer
        assert [t.kwargs if t else None for t in timers] == [{"max_time": 0.5, "group": "mine"}, None, None]
        return
    assert all(isinstance(t.kwargs["timer"], DeviceClock) for t in timers[:2])
    assert timers[0].kwargs["timer"] is not timers[1].kwargs["timer"] and timers[2] is None
    assert {k: v for k, v in timers[0].kwargs.items() if k != "timer"} == {"max_time": 0.5, "group": "mine"}
