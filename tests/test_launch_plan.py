"""Launch plans are computed once per shape (a repeated call redoes only the tensor checks and the
launch), and every launcher launches through the one seam, ``kernels._lib.launch.run``, which a benchmark
can record to time Triton's bare launch of the same kernel. Host-time targets are measured by
``scripts/launch_cost.py`` (a benchmark), never asserted here."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import kernels.attention.configs as attn_configs
from bench.runner import KernelBench
from kernels._lib import launch
from kernels.attention import attention
from roofline.model.ops import KERNELS
from roofline.model.sweeps import sweep_points


@pytest.fixture
def no_kernel_runs(monkeypatch):
    """Launches are recorded, never run (the plan is what is tested here)."""
    launched = []
    monkeypatch.setattr(launch, "run", lambda kernel, grid, *a, **k: launched.append((kernel, grid)))
    return launched


def _decode_inputs(capacity: int, batch: int = 1) -> tuple:
    q = torch.randn(batch, 8, 1, 64)
    k = torch.randn(batch, 2, capacity, 64)
    return q, k, k.clone(), torch.full((batch,), capacity - 1, dtype=torch.int32)


def test_a_repeated_attention_call_does_not_rerun_select_num_splits(monkeypatch, no_kernel_runs):
    calls = []
    real = attn_configs.select_num_splits
    monkeypatch.setattr(attn_configs, "select_num_splits", lambda *a, **k: calls.append(a) or real(*a, **k))
    attn_configs.splitkv_plan.cache_clear()
    q, k, v, lens = _decode_inputs(4096)
    for _ in range(5):
        attention(q, k, v, lens, check_cache_len=False)
    assert len(calls) == 1
    assert len(no_kernel_runs) == 5 * 2  # split-KV + combine every call: the launch itself is redone
    attention(*_decode_inputs(8192), check_cache_len=False)  # a new shape is a new key
    assert len(calls) == 2
    q2, k2, v2, lens2 = _decode_inputs(4096)  # new tensors, same shapes: the cached plan
    attention(q2, k2, v2, lens2, check_cache_len=False)
    assert len(calls) == 2


@pytest.mark.parametrize("capacity,batch,n_sms",
                         [(64, 1, 132), (4096, 1, 108), (131072, 8, 132), (1024, 64, 132)])
def test_the_cached_plan_is_the_heuristic(capacity, batch, n_sms):
    plan = attn_configs.splitkv_plan(batch, 64, 8, 1, 128, capacity, 2, 90, n_sms)
    block_m = attn_configs.decode_block_m(8, 1)
    assert (plan.block_m, plan.m_blocks) == (block_m, 1)
    assert plan.config is attn_configs.decode_config(128, 2, 90, block_m)
    assert plan.num_splits == attn_configs.select_num_splits(
        batch, 8, capacity, m_blocks=1, n_sms=n_sms, block_n=plan.config.kwargs["BLOCK_N"])
    assert attn_configs.splitkv_plan(batch, 64, 8, 1, 128, capacity, 2, 90, n_sms, 3).num_splits == 3


def test_an_explicit_config_splits_by_its_own_tile(no_kernel_runs):
    from kernels.attention.decode import launch_splitkv

    q, k, v, lens = _decode_inputs(4096)
    o = torch.empty_like(q)
    cfg = attn_configs.triton.Config({"BLOCK_N": 16}, num_warps=4, num_stages=2)
    splits = launch_splitkv(q, k, v, lens, o, None, 0.125, None, config=cfg)
    assert splits == attn_configs.select_num_splits(1, 2, 4096, m_blocks=1, block_n=16)
    assert splits != attn_configs.splitkv_plan(1, 8, 2, 1, 64, 4096, 4, 80, 132).num_splits


def test_recording_keeps_each_launch_and_nests():
    seen = []

    class Kernel:
        def __getitem__(self, grid):
            return lambda *a, **k: seen.append((grid, a, k))

    kernel = Kernel()
    with launch.recording() as outer:
        launch.run(kernel, (1,), 1, x=2)
        with launch.recording() as inner:
            launch.run(kernel, (3, 4), 5)
    launch.run(kernel, (9,))  # outside: launched, not recorded
    assert seen == [((1,), (1,), {"x": 2}), ((3, 4), (5,), {}), ((9,), (), {})]
    assert [(r.grid, r.args, r.kwargs) for r in outer] == [((1,), (1,), {"x": 2})]
    assert [(r.grid, r.args) for r in inner] == [((3, 4), (5,))] and inner[0].kernel is kernel


@pytest.mark.parametrize("kernel", KERNELS)
def test_every_launcher_launches_through_the_seam(kernel, monkeypatch):
    """Each family's suite call (bench/test_ops.py, kernels/<kernel>/spec.py) at a smoke point: every
    kernel it starts goes through ``launch.run``, with the grid and arguments Triton gets."""
    bench = KernelBench(kernel)
    point = next(p for p in sweep_points("smoke", "cpu") if p.kernel == kernel)
    point = dataclasses.replace(point, shape=bench.interpreter_shape(point.shape), dtype="float32")
    x = bench.build(point, torch.device("cpu"))
    with launch.recording() as launches:
        bench.triton_fn(x, first=False)()
    assert launches and all(hasattr(r.kernel, "__getitem__") and r.args for r in launches)
