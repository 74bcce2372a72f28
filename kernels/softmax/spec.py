"""Row softmax over the last dimension, short rows to 256k-column rows: Triton single-block/online vs
``torch.softmax``. What the benchmark, the providers and the tests need to know about it
(:class:`kernels._lib.spec.OpSpec`)."""

from __future__ import annotations

import torch

from kernels._lib.launch import config_id, last_launch
from kernels._lib.spec import DTYPES, Baseline, OpSpec, Shipped, assert_close, generator, randn, seeded
from kernels.softmax import TOLERANCES, softmax, softmax_ref
from kernels.softmax import configs as softmax_configs


def build(point, device):
    s = point.shape
    x = randn(generator(device), s["rows"], s["cols"], dtype=DTYPES[point.dtype], device=device, scale=3.0)
    return {"x": x, "layout": "x [rows, cols], contiguous; softmax over cols"}


def torch_softmax(x):
    return torch.softmax(x, dim=-1)


def shipped_configs(arch: int) -> list[Shipped]:
    """Every config the heuristic gives over the row lengths it can see (the same on every arch)."""
    del arch
    out = [Shipped("softmax", "single", softmax_configs.single_config(2**p, 4096), (4096, 2**p))
           for p in range(0, 16)]
    out += [Shipped("softmax", "online", softmax_configs.online_config(n), (3, n))
            for n in (32769, 50257, 256000)]
    return out


def run_shipped(s: Shipped, dtype: torch.dtype, dev: torch.device) -> None:
    rows, cols = s.shape
    x = seeded(rows, cols, dtype=dtype, seed=1, device=dev) * 3
    want = softmax_ref(x, compute_dtype=torch.float64)
    assert_close(softmax(x, variant=s.variant), want, TOLERANCES[dtype])
    assert last_launch("softmax").config == config_id(*s.config)


SPEC = OpSpec(
    kernel="softmax",
    build=build,
    launch_args=lambda x: ((x["x"],), {}),
    launcher=softmax,
    reference=softmax_ref,
    baseline=Baseline(torch_softmax, "torch.softmax"),
    interpreter_shape=lambda shape: dict(shape, rows=min(shape["rows"], 4)),
    gpu_cases=(("softmax/cols.r4k", "C4k"),),
    shipped_configs=shipped_configs,
    run_shipped=run_shipped,
    sample_args=lambda dev: ((torch.randn(2, 8, device=dev),), {}),
    first_arg="x",
)
