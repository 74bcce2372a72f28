"""bench.timing: flush sizing from the cache size, the median/p20/p80 statistics, round counts, and the
CUDA-event device clock driven by a fake device timeline (through pytest-benchmark's real fixture)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.timing import (
    DEFAULT_FLUSH_BYTES,
    MIN_FLUSH_BYTES,
    DeviceClock,
    MiB,
    choose_rounds,
    cpu_llc_bytes,
    flush_bytes,
    percentile,
    summarize,
    time_device_call,
    timing_method,
)
from roofline.hardware import PRESETS


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
    assert clock.pending
    dev.run(3.0)
    end = clock()
    assert not clock.pending and end - start == pytest.approx(3e-3)
    dev.run(100.0)  # device work outside a timed pair (the L2 flush) is never counted
    start = clock()
    dev.run(0.25)
    assert clock() - start == pytest.approx(0.25e-3)
    assert clock.total_s == pytest.approx(3.25e-3) and clock.intervals == 2 and dev.syncs == 2
    assert time_device_call(lambda: dev.run(2.0), clock, calls=4) == pytest.approx(2e-3)


def test_pytest_benchmark_records_the_device_time(benchmark):
    """The real pytest-benchmark fixture, timed by the DeviceClock over a fake device: the recorded
    per-round times are the fake kernel durations, not host time, and the flush in setup is excluded."""
    dev = FakeDevice()
    durations = iter([9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # ms; the first is the warm-up round
    benchmark._timer = DeviceClock(dev.event)
    benchmark.group = "ridgebench self-test: fake device clock"
    benchmark.pedantic(lambda: dev.run(next(durations)), setup=lambda: dev.run(50.0), rounds=6,
                       warmup_rounds=1, iterations=1)
    assert benchmark.stats.stats.data == pytest.approx([1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3])
    assert benchmark.stats.stats.median == pytest.approx(3.5e-3)
    assert summarize(benchmark.stats.stats.data).p80_s == pytest.approx(5e-3)


def test_timing_method_says_how():
    gpu = timing_method("cuda", flush_nbytes=100 * MiB, cache_name="L2", warmup_calls=7, rounds=200)
    assert "CUDA events" in gpu and "100 MiB" in gpu and "L2" in gpu and "200 rounds" in gpu
    cpu = timing_method("cpu", flush_nbytes=64 * MiB, cache_name="last-level cache", warmup_calls=7,
                        rounds=12, threads=2)
    assert "perf_counter" in cpu and "2 torch threads" in cpu and "64 MiB" in cpu
