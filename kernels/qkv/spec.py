"""Fused QKV projection across batch 1 -> 512 (decode: M sequences of one token) and prefill chunks:
Triton's one-kernel GEMM + head-layout epilogue vs the unfused sequence (``F.linear`` in the input
dtype, split, view/transpose, contiguous). What the benchmark, the providers and the tests need to know
about it (:class:`kernels._lib.spec.OpSpec`)."""

from __future__ import annotations

import torch

from kernels._lib.launch import last_launch, triton_config_id
from kernels._lib.spec import DTYPES, Baseline, OpSpec, Shipped, assert_close, generator, randn, seeded
from kernels.qkv import TOLERANCES, qkv_projection, qkv_projection_ref, qkv_projection_unfused
from kernels.qkv.configs import CONFIGS


def build(point, device):
    s, dtype = point.shape, DTYPES[point.dtype]
    g = generator(device)
    decode = point.sweep.split("/", 1)[1].startswith("decode")
    batch, tokens = (s["m"], 1) if decode else (1, s["m"])
    n_out = (s["n_heads"] + 2 * s["n_kv_heads"]) * s["head_dim"]
    x = randn(g, batch, tokens, s["d_model"], dtype=dtype, device=device)
    w = randn(g, n_out, s["d_model"], dtype=dtype, device=device, scale=s["d_model"] ** -0.5)
    b = randn(g, n_out, dtype=dtype, device=device) if s["bias"] else None
    layout = (f"x [{batch}, {tokens}, D] ({'decode: one token per sequence' if decode else 'prefill'}); "
              "weight [(Hq+2Hkv)*Dh, D] (nn.Linear); outputs q [B,Hq,T,Dh], k/v [B,Hkv,T,Dh]")
    return {"x": x, "w": w, "b": b, "heads": dict(n_heads=s["n_heads"], n_kv_heads=s["n_kv_heads"]),
            "layout": layout}


def torch_qkv(x, weight, bias, *, n_heads, n_kv_heads):
    return qkv_projection_unfused(x, weight, bias, n_heads=n_heads, n_kv_heads=n_kv_heads)


def shipped_configs(arch: int) -> list[Shipped]:
    """The autotuned config list, whole (the same on every arch)."""
    del arch
    return [Shipped("qkv", "fused", c, ()) for c in CONFIGS]


def run_shipped(s: Shipped, dtype: torch.dtype, dev: torch.device) -> None:
    cfg = s.config
    bm, bn, bk = cfg.kwargs["BLOCK_M"], cfg.kwargs["BLOCK_N"], cfg.kwargs["BLOCK_K"]
    hkv, dh = 2, 64
    hq = 2 * hkv
    t = 2 * bm + 3  # 3 row tiles (a tail), several column tiles, a K tail
    d = 2 * bk + 5
    x = seeded(1, t, d, dtype=dtype, seed=1, device=dev)
    w = seeded((hq + 2 * hkv) * dh, d, dtype=dtype, seed=2, scale=d**-0.5, device=dev)
    want = qkv_projection_ref(x, w, n_heads=hq, n_kv_heads=hkv, compute_dtype=torch.float64)
    got = qkv_projection(x, w, n_heads=hq, n_kv_heads=hkv, config=cfg)
    for gt, wt in zip(got, want, strict=True):
        assert_close(gt, wt, TOLERANCES[dtype])
    assert last_launch("qkv").config == triton_config_id(cfg)
    assert bn  # every config's BLOCK_N is exercised by the 512-wide output above


SPEC = OpSpec(
    kernel="qkv",
    build=build,
    launch_args=lambda x: ((x["x"], x["w"], x["b"]), dict(x["heads"])),
    launcher=qkv_projection,
    reference=qkv_projection_ref,
    contiguous=True,  # the head-major layout is what the fused epilogue computes (and its bytes)
    baseline=Baseline(torch_qkv, "unfused: F.linear + split + transpose + contiguous"),
    interpreter_shape=lambda shape: dict(shape, m=min(shape["m"], 8)),
    gpu_cases=(("qkv/decode.llama2-7b", "M16"),),
    shipped_configs=shipped_configs,
    run_shipped=run_shipped,
    sample_args=lambda dev: ((torch.randn(1, 2, 8, device=dev), torch.randn(3 * 4, 8, device=dev)),
                             {"n_heads": 1, "n_kv_heads": 1}),
    first_arg="x",
)
