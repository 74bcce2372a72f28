"""bench.timing: flush sizing from the cache size, the median/p20/p80 statistics, warm-up and round counts
within pytest-benchmark's budget, the CUDA-event device clock driven by a fake device timeline (through
pytest-benchmark's real fixture, given as the ``benchmark`` marker's timer), and the one adapter that
reaches pytest-benchmark's private session."""

from __future__ import annotations

import re
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.timing import (
    CALLS_BEFORE_TIMING,
    COST_ROUNDS,
    DEFAULT_FLUSH_BYTES,
    MAX_ROUNDS,
    MIN_FLUSH_BYTES,
    WARMUP_CALLS,
    DeviceClock,
    MiB,
    call_timer,
    choose_rounds,
    cpu_llc_bytes,
    flush_bytes,
    item_clock,
    percentile,
    record_rounds,
    rounds_for,
    summarize,
    time_rounds,
    timing_method,
    use_device_clock,
    warm_up,
)
from roofline.model.hardware import PRESETS


@pytest.mark.parametrize("name", ["A100-SXM4-80GB", "H100-SXM5", "V100-SXM2"])
def test_flush_is_twice_the_l2_of_each_gpu_preset(name):
    l2 = PRESETS[name].l2_bytes
    assert flush_bytes(l2) == 2 * l2  # 40/50/6 MiB are whole MiB
    assert flush_bytes(l2) > l2


def test_flush_rounds_up_to_a_mib_and_has_a_floor_and_a_default():
    assert flush_bytes(50_000_000) == 96 * MiB  # 100e6 B -> 95.37 MiB -> 96 MiB
    assert flush_bytes(50_000_000) >= 2 * 50_000_000
    assert flush_bytes(1 * MiB) == MIN_FLUSH_BYTES
    assert flush_bytes(None) == DEFAULT_FLUSH_BYTES == 256 * MiB
    assert flush_bytes(0) == DEFAULT_FLUSH_BYTES


def test_cpu_llc_reads_the_largest_sysfs_cache(tmp_path):
    for index, size in enumerate(["32K", "1024K", "32768K", "ignored"]):
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "size").write_text(size + "\n")
    assert cpu_llc_bytes(tmp_path) == 32 * MiB
    assert cpu_llc_bytes(tmp_path / "missing") is None


@pytest.mark.parametrize("n", [1, 2, 5, 10, 101])
def test_percentiles_match_numpy_linear(n):
    samples = np.random.default_rng(n).lognormal(size=n).tolist()
    for q in (0, 20, 50, 80, 100):
        assert percentile(samples, q) == pytest.approx(np.percentile(samples, q), rel=1e-12)
    s = summarize(samples)
    assert (s.p20_s, s.median_s, s.p80_s, s.rounds) == pytest.approx(
        (np.percentile(samples, 20), np.median(samples), np.percentile(samples, 80), n))
    assert s.p20_s <= s.median_s <= s.p80_s


def test_summary_of_known_samples_and_bad_input():
    s = summarize([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (s.median_s, s.p20_s, s.p80_s) == (3.0, 1.8, 4.2)
    with pytest.raises(ValueError, match="samples"):
        summarize([])
    with pytest.raises(ValueError, match="q"):
        percentile([1.0], 101)


def test_choose_rounds_fits_the_budget_within_bounds():
    assert choose_rounds(0.01, budget_s=1.0, min_rounds=5, max_rounds=1000) == 100
    assert choose_rounds(0.5, budget_s=1.0, min_rounds=5, max_rounds=1000) == 5  # floor
    assert choose_rounds(1e-7, budget_s=1.0, min_rounds=5, max_rounds=1000) == 1000  # cap
    assert choose_rounds(0.0, budget_s=1.0, min_rounds=5, max_rounds=64) == 64
    with pytest.raises(ValueError, match="rounds"):
        choose_rounds(0.01, budget_s=1.0, min_rounds=10, max_rounds=5)


class FakeDevice:
    """A device timeline: kernels advance it; events read it when recorded (like CUDA events, which
    timestamp when the stream reaches them). Host time never moves it."""

    def __init__(self) -> None:
        self.now_ms = 0.0
        self.syncs = 0

    def run(self, ms: float) -> None:
        self.now_ms += ms

    def event(self) -> FakeEvent:
        return FakeEvent(self)


class FakeEvent:
    def __init__(self, device: FakeDevice) -> None:
        self.device, self.t = device, None

    def record(self) -> None:
        self.t = self.device.now_ms

    def synchronize(self) -> None:
        self.device.syncs += 1

    def elapsed_time(self, end: FakeEvent) -> float:
        return end.t - self.t


def test_device_clock_counts_only_device_time_between_pairs():
    dev = FakeDevice()
    clock = DeviceClock(dev.event)
    start = clock()
    assert clock.intervals == 0 and dev.syncs == 0  # open: nothing measured or waited for yet
    dev.run(3.0)
    end = clock()
    assert clock.intervals == 1 and end - start == pytest.approx(3e-3)
    dev.run(100.0)  # device work outside a timed pair (the L2 flush) is never counted
    start = clock()
    dev.run(0.25)
    assert clock() - start == pytest.approx(0.25e-3)
    assert clock.total_s == pytest.approx(3.25e-3) and clock.intervals == 2 and dev.syncs == 2


def test_call_timer_times_one_call_on_the_device_clock_or_the_host_clock():
    dev = FakeDevice()
    timed = call_timer(types.SimpleNamespace(type="cuda"), dev.event)
    dev.run(100.0)  # before the call: not counted
    assert timed(lambda: dev.run(2.0)) == pytest.approx(2e-3) and dev.syncs == 1
    assert timed(lambda: dev.run(0.5)) == pytest.approx(0.5e-3)
    assert 0 <= call_timer(torch.device("cpu"))(lambda: dev.run(1.0)) < 1.0  # host time, not the fake's


@pytest.fixture
def fake_device() -> FakeDevice:
    return FakeDevice()


@pytest.fixture
def fake_clock(request: pytest.FixtureRequest, fake_device: FakeDevice) -> DeviceClock:
    """What the plugin does for each suite benchmark on CUDA, over the fake device; set up before
    ``benchmark``, which reads its timer from the marker."""
    return use_device_clock(request.node, fake_device.event)


@pytest.mark.benchmark(group="ridgebench self-test: fake device clock")
def test_pytest_benchmark_records_the_device_time(fake_device, fake_clock, benchmark):
    """The real pytest-benchmark fixture, timed by the DeviceClock given as the marker's ``timer=`` over a
    fake device: the recorded per-round times are the fake kernel durations, not host time, and the
    flush in setup is excluded. The marker's other keywords are kept."""
    durations = iter([9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # ms; the first is the warm-up round
    summary = time_rounds(benchmark, lambda: fake_device.run(next(durations)),
                          flush=lambda: fake_device.run(50.0), rounds=6)
    assert benchmark.stats.stats.data == pytest.approx([1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3])
    assert benchmark.stats.stats.median == pytest.approx(3.5e-3)
    assert summary.rounds == 6 and summary.median_s == pytest.approx(3.5e-3)
    assert summary.p80_s == pytest.approx(5e-3)
    record = benchmark.stats.as_dict()
    assert record["options"]["timer"] == "cuda_event_device_time" and fake_clock.intervals == 7
    assert record["group"] == "ridgebench self-test: fake device clock"


def test_warm_up_calls_then_times_flushed_rounds_on_the_host():
    calls = []
    seconds = warm_up(lambda: calls.append("call"), flush=lambda: calls.append("flush"),
                      synchronize=lambda: calls.append("sync"))
    assert calls == ["call"] * WARMUP_CALLS + ["sync"] + ["flush", "call", "sync"] * COST_ROUNDS
    assert seconds >= 0 and CALLS_BEFORE_TIMING == 1 + WARMUP_CALLS + COST_ROUNDS + 1


def _request(options: dict, marker: pytest.MarkDecorator | None = None) -> types.SimpleNamespace:
    config = types.SimpleNamespace(getoption=lambda name, default=None: options.get(name, default))
    node = types.SimpleNamespace(get_closest_marker=lambda name: marker.mark if marker else None)
    return types.SimpleNamespace(config=config, node=node)


def test_rounds_come_from_the_benchmark_options_and_the_marker_wins():
    # --benchmark-max-time arrives as pytest-benchmark parses it: a decimal string
    options = {"benchmark_max_time": "0.5", "benchmark_min_rounds": 3}
    assert rounds_for(0.01, _request(options), "cpu") == 50
    assert rounds_for(1.0, _request(options), "cpu") == 3
    assert rounds_for(1e-6, _request(options), "cpu") == MAX_ROUNDS["cpu"]
    assert rounds_for(1e-6, _request(options), "cuda") == MAX_ROUNDS["cuda"]
    assert rounds_for(0.01, _request({}), "cpu") == 100  # pytest-benchmark's defaults: 1 s, 5 rounds
    marked = pytest.mark.benchmark(max_time=0.1, min_rounds=7, group="g")
    assert rounds_for(0.01, _request(options, marked), "cpu") == 10
    assert rounds_for(1.0, _request(options, marked), "cpu") == 7
    assert rounds_for(0.01, _request(options, pytest.mark.benchmark(min_rounds=20)), "cpu") == 50


ROOT = Path(__file__).resolve().parent.parent
ADAPTER = "# Adapter: pytest-benchmark's session object."
PRIVATE = re.compile(r"_benchmarksession|get_plugin\(\"pytest-benchmark\"\)|\bbenchmark\._[a-z]"
                     r"|\._(max_time|min_rounds|min_time|timer|warmup|disable_gc|calibration_precision|mode)\b")


def test_no_private_pytest_benchmark_access_outside_the_one_adapter():
    """The suite and its scripts use pytest-benchmark's public API (the fixture, ``pedantic``, the
    ``benchmark`` marker, its options and hooks); its session object is reached in one place only,
    the adapter at the end of bench/timing.py. (The behaviour is tested by the tests above and by
    tests/test_bench_cli.py, where --benchmark-max-time and --benchmark-min-rounds set the rounds.)"""
    found = []
    for path in sorted([*(ROOT / "bench").glob("*.py"), *(ROOT / "scripts").glob("*.py")]):
        text = path.read_text()
        if path.name == "timing.py":
            assert text.count(ADAPTER) == 1
            text = text[:text.index(ADAPTER)]
        found += [f"{path.name}: {m.group(0)}" for m in PRIVATE.finditer(text)]
    assert found == []
    adapter = (ROOT / "bench" / "timing.py").read_text().split(ADAPTER)[1]
    assert len(PRIVATE.findall(adapter)) == 2  # the session, named by its plugin name and in the comment


def test_timing_method_says_how():
    gpu = timing_method("cuda", flush_nbytes=100 * MiB, cache_name="L2", warmup_calls=7, rounds=200)
    assert "CUDA events" in gpu and "100 MiB" in gpu and "L2" in gpu and "200 rounds" in gpu
    cpu = timing_method("cpu", flush_nbytes=64 * MiB, cache_name="last-level cache", warmup_calls=7,
                        rounds=12, threads=2)
    assert "perf_counter" in cpu and "2 torch threads" in cpu and "64 MiB" in cpu


@pytest.mark.benchmark(group="ridgebench self-test: replayed rounds")
def test_measured_rounds_are_replayed_into_pytest_benchmark(fake_device, fake_clock, request, benchmark):
    """Rounds measured beforehand (bench.timing.measure) reach pytest-benchmark's record through the
    item's clock, in order and unchanged; the clock then times by events again."""
    assert item_clock(request.node) is fake_clock
    summary = record_rounds(benchmark, fake_clock, [3e-6, 1e-6, 2e-6])
    assert benchmark.stats.stats.data == pytest.approx([3e-6, 1e-6, 2e-6])
    assert summary.median_s == pytest.approx(2e-6)
    assert summary.rounds == 3 and fake_clock.intervals == 3 and fake_device.syncs == 0  # no event used
    start = fake_clock()
    fake_device.run(0.5)
    assert fake_clock() - start == pytest.approx(0.5e-3) and fake_device.syncs == 1


def test_item_clock_is_none_without_a_device_clock(request):
    assert item_clock(request.node) is None  # the CPU: pytest-benchmark's own timer
