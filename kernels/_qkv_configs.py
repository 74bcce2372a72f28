"""Tile configs of the fused QKV projection (``kernels/qkv.py``) and the pruning that picks them by shape.

One deliberate list for both sm_80 (A100) and sm_90 (H100): the audit compiles every entry for both
architectures in CI, so each one earns its place.

- Prefill (M = B*T in the hundreds to tens of thousands): 128-row tiles, the shapes that Triton's
  matmul tutorial and tritonbench found closest to cuBLAS on A100/H100 (128x256x64 with 8 warps and 3
  stages; 128x128 with 4 stages), plus narrower tiles for when ``cdiv(M, BM) * cdiv(N, BN)`` would
  leave SMs idle (gpt2-small's N = 2304 is only 9 column tiles at BN = 256).
- Decode / small batch (M <= 64): a 16-row tile is the smallest ``tl.dot`` shape (tensor-core MMA is
  16 rows); the weight stream is the whole cost, so these use deep K tiles (128-256) and 4 stages to
  keep >= 64 KB of weights in flight per SM, and narrow N tiles (32-64) for more programs.

Pipelined shared memory is ``stages * (BM*BK + BK*BN) * element_size``; every config below stays
under 163 KB (the sm_80 per-block limit) for 16-bit types. fp32 (CPU runs; tf32 on a GPU) doubles
it, so pruning drops what does not fit and keeps the cheapest config if nothing would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import triton

from kernels._lib.aot import CompileCase, TRITON_TYPE
from kernels._lib.launch import triton_config_id
from roofline.model import get_model

SMEM_LIMIT_BYTES = 163 * 1024  # sm_80 per-block opt-in maximum; sm_90 allows 227 KB


def _cfg(bm: int, bn: int, bk: int, warps: int, stages: int, group_m: int = 8) -> triton.Config:
    return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": group_m},
                         num_warps=warps, num_stages=stages)


# Order matters: without autotuning the FIRST config surviving pruning is launched, so within each
# M range the usual best comes first.
CONFIGS: list[triton.Config] = [
    _cfg(128, 256, 64, 8, 3),  # prefill: 147 KB smem (fp16), the tutorial's best A100 tile
    _cfg(128, 128, 64, 4, 4),  # prefill: 131 KB
    _cfg(128, 128, 32, 4, 4),  # prefill: 66 KB, 2 CTAs per SM
    _cfg(64, 128, 64, 4, 4),   # medium M / narrow N: 98 KB
    _cfg(128, 64, 64, 4, 4),   # prefill with few column tiles: 98 KB
    _cfg(64, 64, 64, 4, 4),    # medium M: 66 KB
    _cfg(32, 64, 128, 4, 4),   # small batch: 98 KB
    _cfg(16, 64, 128, 4, 4),   # decode: 82 KB, 64 KB of weights in flight
    _cfg(16, 32, 256, 4, 4),   # decode with small N: twice the programs, 98 KB
]


def smem_bytes(cfg: triton.Config, element_size: int) -> int:
    """Upper bound on the pipelined operand shared memory of ``cfg``, bytes: ``num_stages`` buffers of the
    x and W tiles. Triton 3.9 allocates exactly that for wgmma tiles on sm_90 and one buffer fewer for
    mma.sync tiles (sm_80, and 16/32-row tiles on sm_90), per ``metadata.shared`` of the AOT compiles."""
    kw = cfg.kwargs
    return cfg.num_stages * (kw["BLOCK_M"] * kw["BLOCK_K"] + kw["BLOCK_K"] * kw["BLOCK_N"]) * element_size


def _fits_m(block_m: int, m: int) -> bool:
    """Row-tile rule: no tile taller than the next power of two of M (min 16, the smallest dot), and
    for M >= 256 no tile shorter than 64 (short tiles re-read the weights M / BM times)."""
    cap = max(16, triton.next_power_of_2(max(m, 1)))
    return block_m <= cap and (m < 256 or block_m >= 64)


def _fits_registers(cfg: triton.Config, element_size: int) -> bool:
    """fp32 operands (tf32 MMAs on a GPU) double the operand fragments: there, at most 64 accumulator
    registers per thread (the 128x128 tile on 4 warps spilled 624 B on sm_80 in the AOT compile)."""
    kw = cfg.kwargs
    return element_size < 4 or kw["BLOCK_M"] * kw["BLOCK_N"] <= 64 * 32 * cfg.num_warps


def prune_configs(configs: list[triton.Config], m: int, element_size: int) -> list[triton.Config]:
    """The configs worth trying for ``m`` rows of ``element_size``-byte operands (never empty)."""
    by_m = [c for c in configs if _fits_m(c.kwargs["BLOCK_M"], m)] or list(configs)
    fitting = [c for c in by_m if smem_bytes(c, element_size) <= SMEM_LIMIT_BYTES
               and _fits_registers(c, element_size)]
    return fitting or [min(by_m, key=lambda c: smem_bytes(c, element_size))]


def early_config_prune(configs: list[triton.Config], named_args: dict,
                       **kwargs: object) -> list[triton.Config]:
    """``@triton.autotune`` hook: prune by the launch's M and operand element size."""
    return prune_configs(list(configs), int(named_args["M"]), named_args["x_ptr"].element_size())


def tma_configs() -> list[triton.Config]:
    """The configs of the sm_90 TMA kernel: the 64- and 128-row tiles of :data:`CONFIGS` (wgmma needs
    64 rows per warpgroup; the TMA kernel runs from ``M >= 256``)."""
    return [c for c in CONFIGS if c.kwargs["BLOCK_M"] >= 64]


def config_ids() -> list[str]:
    return [triton_config_id(c) for c in CONFIGS]


# ----------------------------------------------------------------------------------------------
# Ahead-of-time compile cases: what a real, aligned launch at two model-preset shapes specialises.
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Ptr:
    """A 16-byte-aligned pointer argument of Triton element type ``ty`` (``"fp16"``)."""

    ty: str


def jit_specialisation(values: Mapping[str, object]) -> tuple[dict, dict, tuple[str, ...]]:
    """``(signature, constexprs, divisible_by_16)`` exactly as Triton's JIT specialises these argument
    values: ``None`` and integers equal to 1 become constexprs, aligned pointers and integers that are
    multiples of 16 get the divisibility hint, integers outside int32 are ``i64``."""
    signature: dict[str, str] = {}
    constexprs: dict[str, object] = {}
    divisible: list[str] = []
    for name, value in values.items():
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value == 1):
            signature[name], constexprs[name] = "constexpr", value
        elif isinstance(value, _Ptr):
            signature[name] = "*" + value.ty
            divisible.append(name)
        elif isinstance(value, bool):
            signature[name], constexprs[name] = "constexpr", value
        else:
            signature[name] = "i32" if -(2**31) <= value < 2**31 else "i64"
            if value % 16 == 0:
                divisible.append(name)
    return signature, constexprs, tuple(divisible)


def _contiguous_strides(*shape: int) -> tuple[int, ...]:
    strides, acc = [], 1
    for size in reversed(shape):
        strides.append(acc)
        acc *= max(size, 1)
    return tuple(reversed(strides))


# A decode step appending to a GQA KV cache, and a GPT-2 prefill with biases: between them every
# config in CONFIGS survives pruning at exactly one of the two (M = 32 and M = 4096).
COMPILE_SHAPES = (
    {"model": "llama2-70b", "batch": 32, "tokens": 1, "capacity": 4096},
    {"model": "gpt2-xl", "batch": 4, "tokens": 1024, "capacity": None},
)


def _strides(tensor: str, dims: str, strides: tuple[int, ...]) -> dict[str, int]:
    return {f"stride_{tensor}{dim}": stride for dim, stride in zip(dims, strides, strict=True)}


def _arg_values(model, batch: int, tokens: int, capacity: int | None, ty: str, column_major: bool) -> dict:
    hq, hkv, dh, d = model.n_heads, model.n_kv_heads, model.head_dim, model.d_model
    n = model.qkv_width
    cache = capacity is not None
    kv_rows = capacity if cache else tokens
    kv_strides = _contiguous_strides(batch, hkv, kv_rows, dh)
    return {
        "q_ptr": _Ptr(ty), "k_ptr": _Ptr(ty), "v_ptr": _Ptr(ty), "x_ptr": _Ptr(ty), "w_ptr": _Ptr(ty),
        "bias_ptr": _Ptr(ty) if model.bias else None,
        "cache_len_ptr": _Ptr("i32") if cache else None,
        "M": batch * tokens, "N": n, "K": d, "T": tokens, "n_heads": hq, "n_kv_heads": hkv,
        "capacity": kv_rows,
        **_strides("x", "btk", _contiguous_strides(batch, tokens, d)),
        **_strides("w", "nk", (1, n) if column_major else (d, 1)),
        **_strides("q", "bhtd", _contiguous_strides(batch, hq, tokens, dh)),
        **_strides("k", "bhtd", kv_strides),
        **_strides("v", "bhtd", kv_strides),
    }


def compile_cases(arch: int, fn: object, kernel: str, variant: str) -> list[CompileCase]:
    """Every config surviving pruning x fp16/bf16/fp32 (tf32 on a GPU) at :data:`COMPILE_SHAPES`, plus
    the column-major weight path once (fp16, prefill, its first config). Both archs share one list."""
    if arch not in (80, 90):
        raise ValueError(f"arch: expected 80 or 90, got {arch!r}")
    cases = []
    dtypes = (torch.float16, torch.bfloat16, torch.float32)
    plan = [(shape, dtype, False) for shape in COMPILE_SHAPES for dtype in dtypes]
    plan.append((COMPILE_SHAPES[1], torch.float16, True))
    for shape, dtype, column_major in plan:
        model = get_model(shape["model"])
        m = shape["batch"] * shape["tokens"]
        values = _arg_values(model, shape["batch"], shape["tokens"], shape["capacity"], TRITON_TYPE[dtype],
                             column_major)
        signature, constexprs, divisible = jit_specialisation(values)
        survivors = prune_configs(CONFIGS, m, dtype.itemsize)
        for cfg in survivors[:1] if column_major else survivors:
            meta = {"HEAD_DIM": model.head_dim, "HAS_BIAS": model.bias,
                    "HAS_CACHE": shape["capacity"] is not None, **cfg.kwargs}
            case_shape = {"m": m, "d_model": model.d_model, "n_heads": model.n_heads,
                          "n_kv_heads": model.n_kv_heads, "head_dim": model.head_dim, "bias": model.bias,
                          "kv_cache": shape["capacity"] is not None}
            if column_major:
                case_shape["weight"] = "column-major"
            cases.append(CompileCase(
                kernel=kernel, variant=variant, fn=fn,
                signature={**signature, **{k: "constexpr" for k in meta}},
                constexprs={**constexprs, **meta}, divisible_by_16=divisible,
                num_warps=cfg.num_warps, num_stages=cfg.num_stages, dtype=TRITON_TYPE[dtype],
                shape=case_shape, config=triton_config_id(cfg),
                gates=frozenset({"tensor_cores", "vec128_loads"}),
            ))
    return cases


# The issue-15 shape for the TMA kernel: llama2-7b's fused QKV, M = 4096 tokens, K = 4096, N = 12288.
TMA_COMPILE_SHAPE = {"model": "llama2-7b", "batch": 1, "tokens": 4096, "capacity": None}
TMA_NUM_SMS = 132  # an H100 SXM's SMs (the programs a launch there runs)


def tma_compile_cases(fn: object, kernel: str, variant: str) -> list[CompileCase]:
    """sm_90 cases of the TMA kernel at :data:`TMA_COMPILE_SHAPE`: the first two surviving configs in
    fp16 and the first in bf16 (row-major W, as ``nn.Linear`` stores it)."""
    shape = TMA_COMPILE_SHAPE
    model = get_model(shape["model"])
    m = shape["batch"] * shape["tokens"]
    cases = []
    for dtype, n_configs in ((torch.float16, 2), (torch.bfloat16, 1)):
        values = _arg_values(model, shape["batch"], shape["tokens"], None, TRITON_TYPE[dtype], False)
        signature, constexprs, divisible = jit_specialisation(values)
        for cfg in prune_configs(tma_configs(), m, dtype.itemsize)[:n_configs]:
            meta = {"HEAD_DIM": model.head_dim, "HAS_BIAS": model.bias, "HAS_CACHE": False, **cfg.kwargs,
                    "NUM_SMS": TMA_NUM_SMS, "W_K_CONTIGUOUS": True}
            cases.append(CompileCase(
                kernel=kernel, variant=variant, fn=fn,
                signature={**signature, **{k: "constexpr" for k in meta}},
                constexprs={**constexprs, **meta}, divisible_by_16=divisible,
                num_warps=cfg.num_warps, num_stages=cfg.num_stages, dtype=TRITON_TYPE[dtype],
                shape={"m": m, "d_model": model.d_model, "n_heads": model.n_heads,
                       "n_kv_heads": model.n_kv_heads, "head_dim": model.head_dim, "bias": model.bias,
                       "kv_cache": False},
                config=triton_config_id(cfg), gates=frozenset({"tensor_cores", "vec128_loads"}),
            ))
    return cases
