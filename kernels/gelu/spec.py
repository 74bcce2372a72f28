"""GELU over MLP activations with the MLP bias fused: Triton vs ``F.gelu(x + bias)`` (two kernels). What
the benchmark, the providers and the tests need to know about it (:class:`kernels._lib.spec.OpSpec`)."""

from __future__ import annotations

import torch

from kernels._lib.launch import config_id, last_launch
from kernels._lib.spec import DTYPES, Baseline, OpSpec, Shipped, assert_close, generator, randn, seeded
from kernels.gelu import TOLERANCES, gelu, gelu_ref
from kernels.gelu import configs as gelu_configs


def build(point, device):
    s, dtype = point.shape, DTYPES[point.dtype]
    g = generator(device)
    if s["bias_len"]:
        x = randn(g, s["n"] // s["bias_len"], s["bias_len"], dtype=dtype, device=device, scale=2.0)
        b = randn(g, s["bias_len"], dtype=dtype, device=device)
        layout = "x [tokens, d_ff]; bias [d_ff]"
    else:
        x, b, layout = randn(g, s["n"], dtype=dtype, device=device, scale=2.0), None, "x [n]"
    return {"x": x, "b": b, "approximate": s["approximate"], "layout": layout}


def interpreter_shape(shape: dict) -> dict:
    width = shape["bias_len"] or 4096
    return dict(shape, n=min(shape["n"], 4 * width))


def torch_gelu(x, bias, *, approximate):
    return torch.nn.functional.gelu(x if bias is None else x + bias, approximate=approximate)


def shipped_configs(arch: int) -> list[Shipped]:
    """Every config the tile heuristic gives over the row lengths it can see (the same on every arch)."""
    del arch
    shapes = [(1, 2**p) for p in range(0, 13)] + [(r, 2**p) for r in (3, 64, 4096) for p in range(11)]
    return [Shipped("gelu", "elementwise", gelu_configs.tile_config(rows, cols), (rows, cols))
            for rows, cols in shapes]


def run_shipped(s: Shipped, dtype: torch.dtype, dev: torch.device) -> None:
    rows, cols = s.shape
    x = seeded(rows, cols, dtype=dtype, seed=1, device=dev)
    # a bias keeps the row tiling (without one, contiguous input runs flat)
    bias = seeded(cols, dtype=dtype, seed=2, device=dev) if rows > 1 else None
    assert_close(gelu(x, bias), gelu_ref(x, bias, compute_dtype=torch.float64), TOLERANCES[dtype])
    assert last_launch("gelu").config == config_id(*s.config)


SPEC = OpSpec(
    kernel="gelu",
    build=build,
    launch_args=lambda x: ((x["x"], x["b"]), {"approximate": x["approximate"]}),
    launcher=gelu,
    reference=gelu_ref,
    baseline=Baseline(torch_gelu, "F.gelu"),
    interpreter_shape=interpreter_shape,
    gpu_cases=(("gelu/mlp.gpt2-xl.tanh", "T4k"),),
    shipped_configs=shipped_configs,
    run_shipped=run_shipped,
    sample_args=lambda dev: ((torch.randn(2, 8, device=dev),), {}),
    first_arg="x",
)
