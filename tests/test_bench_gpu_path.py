"""The GPU branch of bench.runner.run_case, run on this CPU with the CUDA pieces stood in for: a session
that calls itself ``cuda`` (no device sync, no spin kernel), an event clock reading ``perf_counter``,
and compute capability 9.0. What it checks is the plumbing a real GPU run goes through and nothing
here can otherwise reach: the device clock installed as pytest-benchmark's timer, the datasheet roof
chosen for a known GPU name, the Triton launch record and the audit lookup in ``extra_info``."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import torch

import bench.runner as runner
from bench.record import EXTRA_INFO_FIELDS, Roofs
from bench.session import BenchSession
from bench.test_softmax import SoftmaxBench
from bench.timing import DeviceClock
from roofline.hardware import PRESETS, from_measured
from roofline.sweeps import SweepPoint

H100 = "NVIDIA H100 80GB HBM3"


class StandInCudaSession(BenchSession):
    @property
    def device_kind(self) -> str:
        return "cuda"

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


@pytest.mark.parametrize("provider", ["torch", "triton"])
def test_gpu_branch_records_device_clock_datasheet_roof_and_launch(provider, benchmark, request, tmp_path,
                                                                   monkeypatch):
    clocks = []

    def clock(device):
        clocks.append(DeviceClock(HostEvent))
        return clocks[-1]

    monkeypatch.setattr(runner, "cuda_clock", clock)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    session = StandInCudaSession(device=torch.device("cpu"), device_name=H100, run_dir=tmp_path, part="gw0",
                                 sweep="smoke", triton_timed=True, cache_bytes=2**20,
                                 started=dt.datetime.now(dt.timezone.utc))
    measured = from_measured(H100, 3.0e12, {"tensor16": 800e12, "tf32": 400e12, "fp32": 50e12},
                             base=PRESETS["H100-SXM5"])
    session.roofs = Roofs(measured, PRESETS["H100-SXM5"])
    benchmark._max_time = 0.05
    point = SweepPoint("softmax", "softmax/cols.r3", {"rows": 3, "cols": 176}, "float16", "C176")

    runner.run_case(SoftmaxBench(), (provider, point), benchmark, session, request)

    info = benchmark.extra_info
    assert set(EXTRA_INFO_FIELDS) <= set(info)
    assert benchmark._timer is clocks[-1] and clocks[-1].intervals == benchmark.stats.stats.rounds + 1
    assert benchmark.stats.stats.data and info["median_s"] == pytest.approx(benchmark.stats.stats.median)
    assert info["device_kind"] == "cuda" and "CUDA events" in info["timing_method"]
    assert "8 MiB" in info["timing_method"] and "L2" in info["timing_method"]
    # measured roof first (roofline.roof), the datasheet's fraction beside it
    assert info["roof_source"] == "measured" and info["hardware"] == H100
    assert info["roofs"]["datasheet"]["hardware"] == "H100-SXM5" and info["datasheet_roof_fraction"] > 0
    assert info["max_error"] <= 1e-3 and session.timed == 1
    if provider == "triton":
        launch = runner.kmod_last_launch("softmax")
        assert (info["variant"], info["config"]) == (launch.variant, launch.config) and info["config"]
        assert info["audit"] is None or isinstance(info["audit"], dict)
    else:
        assert (info["variant"], info["config"], info["audit"]) == ("torch.softmax", None, None)
        assert info["tolerance"][1] == pytest.approx(runner.BASELINE_TOLERANCE_FACTOR * 2e-3)
