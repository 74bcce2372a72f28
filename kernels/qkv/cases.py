"""The fused QKV projection's ahead-of-time compile cases for the static audit
(``python -m kernels.audit --kernel qkv``), the gates its variants must carry and the waivers it needs.

Shapes come from model presets: a llama2-70b decode step appending to a GQA KV cache and a gpt2-xl
prefill with biases (between them every config of :data:`~kernels.qkv.configs.CONFIGS` survives
pruning at exactly one of the two, M = 32 and M = 4096), and for the sm_90 TMA kernel llama2-7b's
4096 x 4096 x 12288 in every code path it has, and a llama2-70b chunked prefill appending to its cache.
"""

from __future__ import annotations

import torch

from kernels._lib.aot import TRITON_TYPE, CompileCase, Pointer, jit_specialisation
from kernels._lib.device import DEFAULT_NUM_SMS, get_arch, has_tma
from kernels._lib.launch import triton_config_id
from kernels.qkv.configs import (
    CONFIGS,
    FUSED_VARIANT,
    KERNEL,
    TMA_VARIANT,
    prune_configs,
    tma_configs,
    tma_store_plan,
)
from kernels.qkv.kernels import _qkv_kernel, _qkv_tma_kernel
from roofline.model.cost import dtype_bytes
from roofline.model.transformer import ModelConfig, get_model

# variant -> gates its cases must declare (kernels/audit/gates.py describes each gate).
REQUIRED_GATES: dict[str, frozenset[str]] = {
    FUSED_VARIANT: frozenset({"tensor_cores"}),
}

# (variant, gate, arch, condition) -> reason; ``arch`` "*" = every architecture the gate applies to;
# ``condition`` is "*", "NAME=VALUE" or "NAME<VALUE" on a part of the config id. Triton lowers a tl.dot
# to wgmma (sm_90) or tcgen05 (sm_100) only for tiles of >= 64 rows.
GATE_EXCEPTIONS: dict[tuple[str, str, int | str, str], str] = {
    (FUSED_VARIANT, "wgmma", "*", "BLOCK_M<64"):
        "decode tiles (M = batch x new tokens <= 32 rows): weight-stream bound; Triton needs >= 64 rows "
        "for wgmma, so these run HMMA on H100",
    (FUSED_VARIANT, "tcgen05", "*", "BLOCK_M<64"):
        "decode tiles (M = batch x new tokens <= 32 rows): weight-stream bound; Triton needs >= 64 rows "
        "for tcgen05, so these run HMMA (mma.sync) on B200",
    # AMD (gfx942, gfx950). The GPU sweeps run bf16; fp32 is the CPU's dtype and the accuracy reference.
    (FUSED_VARIANT, "occupancy", "*", "dtype=fp32"):
        "fp32 operand tiles take twice the LDS and operand registers of 16-bit ones: one workgroup per "
        "CU (1 wave per SIMD) at these tiles; held to 2 waves per SIMD they spill (98 VGPRs on gfx950)",
    (FUSED_VARIANT, "vec128_loads", "gfx950", "dtype=fp32"):
        "gfx950: Triton's AMD backend streams fp32 operand tiles into LDS with 32-bit direct-to-LDS "
        "loads, and only the few direct global loads are 128-bit",
    (FUSED_VARIANT, "vec128_loads", "gfx950", "BLOCK_K=32"):
        "gfx950, the 128x128x32 prefill tile: the 32-wide K slab of x comes in 64-bit loads beside the "
        "W tile's 128-bit direct-to-LDS loads (67% of load bits in 128-bit loads); the wider-K tiles pass",
}

COMPILE_SHAPES = (
    {"model": "llama2-70b", "batch": 32, "tokens": 1, "capacity": 4096},
    {"model": "gpt2-xl", "batch": 4, "tokens": 1024, "capacity": None},
)
TMA_COMPILE_SHAPE = {"model": "llama2-7b", "batch": 1, "tokens": 4096, "capacity": None}
TMA_CACHE_SHAPE = {"model": "llama2-70b", "batch": 1, "tokens": 512, "capacity": 4096}
# two prompts of 1000 tokens: row tiles cross the batch boundary (the TMA-store epilogue's second store;
# compiled only where that epilogue runs, tma_store_plan)
TMA_STRADDLE_SHAPE = {"model": "llama2-7b", "batch": 2, "tokens": 1000, "capacity": None}
GATES = frozenset({"tensor_cores", "vec128_loads"})


def _contiguous_strides(*shape: int) -> tuple[int, ...]:
    strides, acc = [], 1
    for size in reversed(shape):
        strides.append(acc)
        acc *= max(size, 1)
    return tuple(reversed(strides))


def _strides(tensor: str, dims: str, strides: tuple[int, ...]) -> dict[str, int]:
    return {f"stride_{tensor}{dim}": stride for dim, stride in zip(dims, strides, strict=True)}


def _runtime_args(model: ModelConfig, batch: int, tokens: int, capacity: int | None, ty: str,
                  column_major: bool) -> dict[str, object]:
    """The runtime arguments a real, aligned launch at this shape passes (contiguous x and outputs)."""
    hq, hkv, dh, d = model.n_heads, model.n_kv_heads, model.head_dim, model.d_model
    n = model.qkv_width
    cache = capacity is not None
    kv_rows = capacity if cache else tokens
    kv_strides = _contiguous_strides(batch, hkv, kv_rows, dh)
    return {
        "q_ptr": Pointer(ty), "k_ptr": Pointer(ty), "v_ptr": Pointer(ty), "x_ptr": Pointer(ty),
        "w_ptr": Pointer(ty), "bias_ptr": Pointer(ty) if model.bias else None,
        "cache_len_ptr": Pointer("i32") if cache else None,
        "M": batch * tokens, "N": n, "K": d, "T": tokens, "n_heads": hq, "n_kv_heads": hkv,
        "capacity": kv_rows,
        **_strides("x", "btk", _contiguous_strides(batch, tokens, d)),
        **_strides("w", "nk", (1, n) if column_major else (d, 1)),
        **_strides("q", "bhtd", _contiguous_strides(batch, hq, tokens, dh)),
        **_strides("k", "bhtd", kv_strides),
        **_strides("v", "bhtd", kv_strides),
    }


def _case(variant: str, fn: object, model: ModelConfig, shape: dict, dtype: torch.dtype,
          cfg: object, column_major: bool = False, **extra_meta: object) -> CompileCase:
    m = shape["batch"] * shape["tokens"]
    kv_cache = shape["capacity"] is not None
    args = _runtime_args(model, shape["batch"], shape["tokens"], shape["capacity"], TRITON_TYPE[dtype],
                         column_major)
    meta = {"HEAD_DIM": model.head_dim, "HAS_BIAS": model.bias, "HAS_CACHE": kv_cache, **extra_meta,
            **cfg.kwargs}
    signature, constexprs, divisible = jit_specialisation(fn, args, meta)
    case_shape = {"m": m, "d_model": model.d_model, "n_heads": model.n_heads,
                  "n_kv_heads": model.n_kv_heads, "head_dim": model.head_dim, "bias": model.bias,
                  "kv_cache": kv_cache}
    if column_major:
        case_shape["weight"] = "column-major"
    return CompileCase(
        kernel=KERNEL, variant=variant, fn=fn, signature=signature, constexprs=constexprs,
        divisible_by_16=divisible, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        dtype=TRITON_TYPE[dtype], shape=case_shape, config=triton_config_id(cfg), gates=GATES,
    )


def compile_cases(arch: int) -> list[CompileCase]:
    """The pointer kernel: every config surviving ``arch``'s pruning x fp16/bf16/fp32 (tf32 on a GPU) at
    :data:`COMPILE_SHAPES`, plus the column-major weight path once (fp16, prefill, its first config).
    On an architecture with TMA also the TMA kernel in every code path it has (:func:`_tma_cases`),
    launched on an H100's SMs; on sm_100 its configs start with the warp-specialized tiles
    (``WARP_SPECIALIZE=False`` is the kernel's default elsewhere). ``ValueError`` for an architecture the
    table does not know."""
    get_arch(arch)
    dtypes = (torch.float16, torch.bfloat16, torch.float32)
    plan = [(shape, dtype, False) for shape in COMPILE_SHAPES for dtype in dtypes]
    plan.append((COMPILE_SHAPES[1], torch.float16, True))
    cases = []
    for shape, dtype, column_major in plan:
        model = get_model(shape["model"])
        survivors = prune_configs(CONFIGS, shape["batch"] * shape["tokens"], dtype_bytes(dtype), arch)
        for cfg in survivors[:1] if column_major else survivors:
            cases.append(_case(FUSED_VARIANT, _qkv_kernel, model, shape, dtype, cfg, column_major))
    if has_tma(arch):
        cases += _tma_cases(arch)
    return cases


def _tma_cases(arch: int) -> list[CompileCase]:
    """Every code path the TMA kernel can take on ``arch``: each config the autotuner may pick in fp16
    (the 64-row tiles included, and on sm_100 the warp-specialized ones first), the first in bf16 and
    fp32 (tf32), the column-major weight (``W_K_CONTIGUOUS=False``: the first and the smallest tile),
    the KV-cache append (``HAS_CACHE``, a chunked prefill into a GQA cache), and where the
    warp-specialized tiles store by TMA (:func:`~kernels.qkv.configs.tma_store_plan`) row tiles that cross
    a batch boundary (:data:`TMA_STRADDLE_SHAPE`). Each case's ``STORE_N`` and ``ONE_BATCH_TILES`` are what
    the launcher passes at its shape."""
    cases = []

    def add(shape: dict, dtype: torch.dtype, configs: slice, column_major: bool = False,
            only_straddling: bool = False) -> None:
        model = get_model(shape["model"])
        survivors = prune_configs(tma_configs(), shape["batch"] * shape["tokens"], dtype_bytes(dtype), arch)
        store_n, one_batch = tma_store_plan(survivors, shape["batch"], shape["tokens"], model.head_dim,
                                            dtype_bytes(dtype), shape["capacity"] is not None)
        if only_straddling and (not store_n or one_batch):
            return
        for cfg in survivors[configs]:
            cases.append(_case(TMA_VARIANT, _qkv_tma_kernel, model, shape, dtype, cfg, column_major,
                               NUM_SMS=DEFAULT_NUM_SMS, W_K_CONTIGUOUS=not column_major,
                               WARP_SPECIALIZE=False, STORE_N=store_n, ONE_BATCH_TILES=one_batch))

    add(TMA_COMPILE_SHAPE, torch.float16, slice(0, 2))  # the two cases of the first audit, first
    add(TMA_COMPILE_SHAPE, torch.bfloat16, slice(0, 1))
    add(TMA_COMPILE_SHAPE, torch.float16, slice(2, None))
    add(TMA_COMPILE_SHAPE, torch.float32, slice(0, 1))
    add(TMA_COMPILE_SHAPE, torch.float16, slice(0, 1), column_major=True)
    add(TMA_COMPILE_SHAPE, torch.float16, slice(-1, None), column_major=True)
    add(TMA_CACHE_SHAPE, torch.float16, slice(0, 1))
    add(TMA_STRADDLE_SHAPE, torch.float16, slice(0, 1), only_straddling=True)
    return cases
