"""A benchmark run that survives faults (issue 13 item 4), on this CPU with the faults injected: running
out of memory at any step of a case is a recorded skip; a case's inputs are freed when it ends, however
it ends; a sticky CUDA error stops only its own process; a restarted xdist worker gets the GPU its dead
predecessor held; TF32 is toggled through the current torch API and restored."""

from __future__ import annotations

import datetime as dt
import gc
import json
import types
import weakref

import pytest
import torch

import bench.runner as runner
from bench.isolation import GpuAllocator, check_worker_count
from bench.runner import KernelBench
from bench.session import BenchSession
from bench.timing import tf32_matmul
from roofline.model.sweeps import SweepPoint
from roofline.rundir import RECORDS

pytestmark = pytest.mark.filterwarnings("ignore:Benchmark fixture was not used")
POINT = SweepPoint("gelu", "gelu/mlp.t", {"n": 2 * 176, "approximate": "tanh", "bias_len": 176}, "float32",
                   "T2")


def _session(tmp_path, cls=BenchSession) -> BenchSession:
    session = cls(device=torch.device("cpu"), device_name="cpu: test", run_dir=tmp_path, part="main",
                  sweep="smoke", triton_timed=False, cache_bytes=2**20,
                  started=dt.datetime.now(dt.timezone.utc))
    session.ceilings_budget_s = 0.02
    return session


def _request(request: pytest.FixtureRequest) -> types.SimpleNamespace:
    """Stands in for pytest's request: a benchmark's node id, this test's ``benchmark`` marker and
    options (the round budget), and a session whose ``shouldfail`` a sticky error sets (the real one
    would stop this test run)."""
    node = types.SimpleNamespace(nodeid="bench/test_gelu.py::test_gelu[x]",
                                 get_closest_marker=request.node.get_closest_marker)
    return types.SimpleNamespace(node=node, config=request.config,
                                 session=types.SimpleNamespace(shouldfail=False))


class FaultyGelu(KernelBench):
    """GELU whose provider call raises ``fault`` on call number ``fail_at`` (1 = the checked call), and
    which keeps weak references to every input it builds."""

    def __init__(self, fail_at: int | None = None, fault: BaseException | None = None) -> None:
        super().__init__("gelu")
        self.fail_at, self.fault, self.made, self.refs = fail_at, fault, 0, []

    def build(self, point, device):
        x = super().build(point, device)
        self.refs += [weakref.ref(t) for t in x.values() if isinstance(t, torch.Tensor)]
        return x

    def provider_fn(self, impl, x):
        inner = super().provider_fn(impl, x)

        def call():
            self.made += 1
            if self.made == self.fail_at:
                raise self.fault
            return inner()
        return call

    def alive(self, collect: bool = True) -> int:
        if collect:
            gc.collect()
        return sum(r() is not None for r in self.refs)


def _records(session: BenchSession) -> list:
    path = session.part_dir / RECORDS
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _skips(session: BenchSession) -> list:
    return json.loads((session.part_dir / "skipped.json").read_text())


@pytest.mark.benchmark(max_time=0.01)
def test_a_finished_case_is_recorded_at_once_and_its_inputs_freed(benchmark, tmp_path, request):
    bench = FaultyGelu()
    alive_at_release = []

    class WatchedSession(BenchSession):
        def release_memory(self) -> None:  # where a GPU run calls torch.cuda.empty_cache()
            alive_at_release.append(bench.alive(collect=False))  # freed by reference count alone

    session = _session(tmp_path, WatchedSession)
    runner.run_case(bench, ("torch", POINT), benchmark, session, _request(request))
    (record,) = _records(session)
    assert record["extra_info"]["kernel"] == "gelu" and record["stats"]["data"]
    assert record["extra_info"]["median_s"] == pytest.approx(benchmark.stats.stats.median)
    # Freed before the cache is emptied, while run_case's frames (and the launch closures) still exist.
    assert len(bench.refs) == 2 and alive_at_release == [0] and bench.alive() == 0
    assert session.timed == 1


@pytest.mark.benchmark(max_time=0.01)
@pytest.mark.parametrize("fail_at, step", [(1, "the first (checked) call"), (2, "warm-up"), (9, "timing")])
def test_out_of_memory_at_any_step_is_a_recorded_skip(benchmark, tmp_path, fail_at, step, request):
    bench, session = FaultyGelu(fail_at, torch.cuda.OutOfMemoryError("CUDA out of memory. Tried 2 GiB")), \
        _session(tmp_path)
    with pytest.raises(pytest.skip.Exception, match="out-of-memory") as info:
        runner.run_case(bench, ("torch", POINT), benchmark, session, _request(request))
    (skip,) = _skips(session)
    assert skip["category"] == "out-of-memory" and f"in {step}" in skip["reason"]
    assert _records(session) == []  # a half-timed case leaves no record ...
    if fail_at == 9:  # ... and pytest-benchmark's half-filled stats are dropped at session end
        assert benchmark.stats is not None and not runner.finished(benchmark.stats)
    assert bench.alive() == 0, "the skip's traceback must not keep the inputs alive"
    del info


def test_out_of_memory_while_measuring_the_ceilings_is_a_recorded_skip(benchmark, tmp_path, monkeypatch,
                                                                       request):
    session = _session(tmp_path)

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr("bench.ceilings.measure", oom)
    with pytest.raises(pytest.skip.Exception):
        runner.run_case(FaultyGelu(), ("torch", POINT), benchmark, session, _request(request))
    assert "in measuring the ceilings" in _skips(session)[0]["reason"] and session.roofs is None


def test_a_sticky_cuda_error_fails_the_case_and_stops_this_process(benchmark, tmp_path, request):
    class CudaSession(BenchSession):
        device_kind = "cuda"  # as a GPU session; nothing here touches a device

        def synchronize(self) -> None:
            pass

    session, stand_in = _session(tmp_path, CudaSession), _request(request)
    session.roofs = _session(tmp_path).ensure_ceilings()
    error = RuntimeError("CUDA error: an illegal memory access was encountered")
    with pytest.raises(RuntimeError, match="illegal memory access"):
        runner.run_case(FaultyGelu(1, error), ("torch", POINT), benchmark, session, stand_in)
    assert stand_in.session.shouldfail and "sticky CUDA error in bench/test_gelu.py" in session.fatal
    assert not (session.part_dir / "skipped.json").exists()  # a failure, not a skip
    assert runner.classify(error, "torch") is None
    assert runner.classify(torch.cuda.OutOfMemoryError("CUDA out of memory"), "torch") == "out-of-memory"
    assert not runner.is_sticky_cuda_error(RuntimeError("CUDA out of memory; illegal memory access"))


def test_finished_means_timed_rounds_and_ridgebench_extra_info():
    def stats(data, extra):
        return types.SimpleNamespace(stats=types.SimpleNamespace(data=data), extra_info=extra)

    assert runner.finished(stats([1.0], {"median_s": 1.0}))
    assert not runner.finished(stats([], {"median_s": 1.0}))  # stopped before the first round
    assert not runner.finished(stats([1.0, 2.0], {}))  # stopped inside the timed loop


def test_a_restarted_worker_takes_the_gpu_its_dead_predecessor_held():
    gpus = GpuAllocator(2)
    assert (gpus.assign("gw0"), gpus.assign("gw1")) == (0, 1)
    gpus.release("gw1")  # gw1 crashed; xdist starts gw2 in its place
    assert gpus.assign("gw2") == 1 and gpus.assign("gw2") == 1
    gpus.release("gw0")
    assert gpus.assign("gw3") == 0
    with pytest.raises(RuntimeError, match="all 2 GPUs are held by gw2, gw3"):
        gpus.assign("gw4")
    with pytest.raises(ValueError, match="device_count"):
        GpuAllocator(0)


def test_the_controller_hands_each_xdist_worker_a_free_gpu(tmp_path):
    from bench.isolation import XdistHooks

    hooks = XdistHooks(tmp_path, dt.datetime.now(dt.timezone.utc), GpuAllocator(2))

    def node(worker_id):
        return types.SimpleNamespace(gateway=types.SimpleNamespace(id=worker_id), workerinput={})

    gw0, gw1, gw2 = node("gw0"), node("gw1"), node("gw2")
    for n in (gw0, gw1):
        hooks.pytest_configure_node(n)
    hooks.pytest_testnodedown(gw1, error="crashed")  # xdist reports the crash, then starts gw2
    hooks.pytest_configure_node(gw2)
    assert [n.workerinput["ridgebench_gpu"] for n in (gw0, gw1, gw2)] == [0, 1, 1]
    assert gw2.workerinput["ridgebench_run_dir"] == str(tmp_path)


def test_worker_count_messages_name_what_the_user_typed(monkeypatch):
    monkeypatch.delenv("RIDGEBENCH_CPU_WORKERS", raising=False)
    assert check_worker_count(2, 0, False, "auto").startswith("-n auto (2 workers): parallel benchmark")
    assert check_worker_count(16, 8, True, "auto").startswith("-n auto (16 workers): only 8 CUDA")
    assert check_worker_count(2, 0, False, "2").startswith("-n 2: parallel")
    assert check_worker_count(None, 0, False, None) is None
    from bench.isolation import spelled_numprocesses

    assert [spelled_numprocesses(a) for a in (["-n", "auto"], ["-nauto"], ["--numprocesses=logical"],
                                              ["-n4", "-x"], ["--benchmark"])] == ["auto", "auto", "logical",
                                                                                   "4", None]


def test_tf32_is_set_through_fp32_precision_and_restored():
    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):  # pragma: no cover - torch < 2.9
        pytest.skip("this torch has only the legacy allow_tf32 flag")
    before = matmul.fp32_precision
    try:
        matmul.fp32_precision = "ieee"  # after this, reading the legacy allow_tf32 raises on torch 2.13
        with tf32_matmul(True):
            assert matmul.fp32_precision == "tf32"
        assert matmul.fp32_precision == "ieee"
        with pytest.raises(ZeroDivisionError), tf32_matmul(False):
            assert matmul.fp32_precision == "ieee"
            1 / 0  # noqa: B018 - restored on the way out of an error too
        assert matmul.fp32_precision == "ieee"
    finally:
        matmul.fp32_precision = before


def test_tf32_uses_the_legacy_flag_only_on_a_torch_without_fp32_precision():
    legacy = types.SimpleNamespace(allow_tf32=False)
    with tf32_matmul(True, backend=legacy):
        assert legacy.allow_tf32 is True
    assert legacy.allow_tf32 is False
