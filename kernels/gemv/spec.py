"""Decode GEMV ``y[B, N] = x[B, K] @ W^T (+ bias)`` across batch 1 -> 512: Triton split-K/tiled vs
``F.linear`` (cuBLAS on a GPU). What the benchmark, the providers and the tests need to know about it
(:class:`kernels._lib.spec.OpSpec`)."""

from __future__ import annotations

import os
from unittest import mock

import torch

from kernels._lib.launch import last_launch, triton_config_id
from kernels._lib.spec import DTYPES, Baseline, OpSpec, Shipped, assert_close, generator, randn, seeded
from kernels.gemv import TOLERANCES, gemv, gemv_ref
from kernels.gemv import configs as gemv_configs


def build(point, device):
    s, dtype = point.shape, DTYPES[point.dtype]
    g = generator(device)
    x = randn(g, s["batch"], s["k"], dtype=dtype, device=device)
    w = randn(g, s["n"], s["k"], dtype=dtype, device=device, scale=s["k"] ** -0.5)
    b = randn(g, s["n"], dtype=dtype, device=device) if s["bias"] else None
    return {"x": x, "w": w, "b": b, "layout": "x [B, K]; weight [N, K] (nn.Linear); bias [N]"}


def torch_gemv(x, weight, bias):
    return torch.nn.functional.linear(x, weight, bias)


def shipped_configs(arch: int) -> list[Shipped]:
    """Both variants' config lists, whole (the same on every arch)."""
    del arch
    lists = (("splitk", gemv_configs.SPLITK_CONFIGS), ("tiled", gemv_configs.TILED_CONFIGS))
    return [Shipped("gemv", v, c, ()) for v, cs in lists for c in cs]


def run_shipped(s: Shipped, dtype: torch.dtype, dev: torch.device) -> None:
    """The variant's config list replaced by ``s.config`` alone, unpruned, with autotuning off (the launcher
    then runs the first config: ours); restored after."""
    cfg = s.config
    with mock.patch.dict(os.environ, {"RIDGEBENCH_AUTOTUNE": "0"}), \
            mock.patch.dict(gemv_configs.CONFIGS, {s.variant: [cfg]}), \
            mock.patch.dict(gemv_configs.PRUNE, {s.variant: lambda configs, batch, *_: list(configs)}):
        gemv_configs.plan.cache_clear()
        try:
            rows = cfg.kwargs.get("BLOCK_B", cfg.kwargs.get("BLOCK_M"))
            for b in sorted({1, rows, rows + 1}):
                x = seeded(b, 3000, dtype=dtype, seed=1, device=dev)
                w = seeded(333, 3000, dtype=dtype, seed=2, scale=3000**-0.5, device=dev)
                for split_k in (1, 3):
                    y = gemv(x, w, variant=s.variant, split_k=split_k)
                    assert_close(y, gemv_ref(x, w, compute_dtype=torch.float64), TOLERANCES[dtype])
                    assert last_launch("gemv").config == triton_config_id(cfg)
        finally:
            gemv_configs.plan.cache_clear()


SPEC = OpSpec(
    kernel="gemv",
    build=build,
    launch_args=lambda x: ((x["x"], x["w"], x["b"]), {}),
    launcher=gemv,
    reference=gemv_ref,
    baseline=Baseline(torch_gemv, "F.linear"),
    interpreter_shape=lambda shape: dict(shape, batch=min(shape["batch"], 8), n=min(shape["n"], 384)),
    gpu_cases=(("gemv/decode.llama2-7b.mlp_up", "B1"), ("gemv/decode.llama2-7b.mlp_up", "B256")),
    shipped_configs=shipped_configs,
    run_shipped=run_shipped,
    sample_args=lambda dev: ((torch.randn(1, 8, device=dev), torch.randn(4, 8, device=dev)), {}),
    first_arg="x",
)
