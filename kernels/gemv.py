"""Decode GEMV / skinny GEMM: ``y[B, N] = x[B, K] @ W^T (+ bias[N])``, ``W`` stored as ``nn.Linear``
stores it (``[N, K]``, K contiguous), for B from 1 upward; fp16, bf16 or fp32 in, fp32 accumulation,
output in the input dtype.

Cost (``roofline.cost.gemv_cost``): ``2*B*N*K (+ B*N)`` FLOPs; compulsory bytes
``p*(N*K + B*K + B*N (+ N))``. At small B the weight stream ``p*N*K`` is everything: the intensity is
about ``B`` FLOP/byte at 2-byte dtypes, far under the ridge (~150-300 FLOP/byte on A100/H100), so the
kernel is a memory copy of W with arithmetic attached. Sweeping B from 1 to 512 walks across the ridge.

Two variants, side by side in :data:`VARIANTS`; :func:`select_variant` picks one by shape:

- ``"splitk"`` (B <= :data:`SPLITK_MAX_BATCH`): CUDA-core FMAs, no ``tl.dot``. Each program streams one
  ``[BLOCK_N, BLOCK_K]`` weight tile per step with 128-bit loads (K is the contiguous axis, each thread
  holds 8 consecutive fp16/bf16 elements; the JIT's divisibility-by-16 specialisation of the pointers,
  ``K`` and the weight's row stride is what lets the compiler prove the 16-byte alignment) and
  evict-first caching (the weights are touched once). Up to ``BLOCK_B`` = 4 batch rows share each
  weight tile, each with its own ``[BLOCK_N, BLOCK_K]`` fp32 accumulator that is reduced across K once,
  after the loop (no per-step shuffles). K is split across programs so that even B = 1 with small N
  launches several programs per SM (bytes in flight, not FLOPs, are the limit).
- ``"tiled"`` (B > :data:`SPLITK_MAX_BATCH`): a tensor-core ``tl.dot`` tile GEMM with software-pipelined
  loads (``num_stages`` 3-4) computing ``y^T = W @ x^T`` ("swap AB"): 64-128 weight rows are the MMA's
  M side and the batch the narrow N side (``BLOCK_M`` = 16-128, sized to B), so every config lowers to
  wgmma on sm_90 (HMMA on sm_80) even at B = 5. Programs over the batch vary fastest so that those
  sharing a weight tile run together and W comes from HBM once. It uses the same K split when the tile
  grid alone would not fill the GPU.

Split-K partials are reduced deterministically: each split writes fp32 partials to a workspace
``[S, B, N]`` and a second kernel sums them in split order (plus the bias) into ``y``, so two runs are
bit-identical. With one split the main kernel writes ``y`` directly. The split count
(:func:`split_count`) aims at :data:`PROGRAMS_PER_SM` programs per SM (SM count from
``torch.cuda`` when present, else :data:`DEFAULT_NUM_SMS`) and is capped so the workspace round trip
stays under ~10% of the weight bytes.

Design targets for the GPU benchmark (targets, not claims; nothing here was measured on a GPU): at B = 1
with a weight several times larger than L2, at least 85% of measured copy bandwidth, and not slower than
cuBLAS (``F.linear``) at B <= 8. How the design aims there: 128-bit evict-first weight loads with no
shared-memory staging; at most 76 registers at B = 1 (six 4-warp programs fit per SM) and split-K
aiming at four programs per SM, i.e. ~32 KB of weight loads in flight per SM, above the ~20 KB that
latency x bandwidth asks on an H100; fp32 partials and the second pass cost under 10% of the weight
bytes. Crossover (a design choice, to be checked against measurements): at B <= 4 and full bandwidth the
CUDA-core FMAs need ~20% of an H100 SXM's and ~42% of an A100 80GB's FP32 peak (2*B FLOPs per 2-byte
weight element), so the split-K path stays bandwidth-bound; from B = 5 (so
B = 5..8 of the cuBLAS target) the tiled path runs on tensor cores with ``BLOCK_M`` = 16 and the same
K split. Known risks: the second pass is a second launch (a few microseconds), which matters for
weights of a few MB; the x row is re-read from L1 once per weight-tile row (L1 traffic, not HBM).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
import triton

from kernels._lib.aot import CompileCase
from kernels._lib.launch import autotuning, record_launch, triton_config_id
from kernels._lib.validation import (
    SUPPORTED_DTYPES,
    check_device,
    check_int,
    check_same_dtype_device,
    check_tensor,
    check_vector,
)
from kernels._gemv_kernels import _gemv_splitk_kernel, _gemv_splitk_reduce_kernel, _gemv_tiled_kernel

SPLITK_MAX_BATCH = 4  # select_variant: B <= 4 -> "splitk" (CUDA cores), B > 4 -> "tiled" (tensor cores)
DEFAULT_NUM_SMS = 132  # H100 SXM; used when torch.cuda cannot tell (CPU, interpreter, AOT)
PROGRAMS_PER_SM = {"splitk": 4, "tiled": 2}  # split-K target: programs in flight per SM
MAX_SPLITS = 64
MAX_N = 65535 * 16  # grid axis 1 (<= 65535) holds N tiles of at least 16 rows
MIN_K_PER_SPLIT = 512  # a split streams at least this many K elements (amortises its partial write)

# ----------------------------------------------------------------------------------------------
# Configs. The first config surviving pruning is the shape heuristic (launched when not autotuning).
# ----------------------------------------------------------------------------------------------
# splitk: [BLOCK_N, BLOCK_K] weight tile over 128 threads = 16-32 elements (2-4 x 128-bit loads) per
# thread per step; one fp32 accumulator of the same size per batch row. No pipelining (plain LDG).
SPLITK_CONFIGS = [
    triton.Config({"BLOCK_B": 1, "BLOCK_N": 32, "BLOCK_K": 128}, num_warps=4, num_stages=1),
    triton.Config({"BLOCK_B": 1, "BLOCK_N": 16, "BLOCK_K": 256}, num_warps=4, num_stages=1),
    triton.Config({"BLOCK_B": 2, "BLOCK_N": 32, "BLOCK_K": 128}, num_warps=4, num_stages=1),
    triton.Config({"BLOCK_B": 4, "BLOCK_N": 16, "BLOCK_K": 128}, num_warps=4, num_stages=1),
]
# tiled: shared memory ~ num_stages * (BLOCK_M + BLOCK_N) * BLOCK_K * elem_bytes: at most ~97 KB at
# fp16/bf16 and ~193 KB at fp32 on sm_90 (of 227 KB; on sm_80 at most 144 KB of 163 KB).
# BLOCK_N (weight rows, the MMA's M side) >= 64 with 4 warps per warpgroup: every config is wgmma on
# sm_90. Dropped after the sm_80/sm_90 compile: BLOCK_N=256 at BLOCK_M=128 (254 registers, spills).
TILED_CONFIGS = [
    triton.Config({"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 128}, num_warps=4, num_stages=4),
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 128}, num_warps=4, num_stages=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 64}, num_warps=4, num_stages=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64}, num_warps=8, num_stages=3),
]
# reduce: 64 threads x 4 fp32 (one 128-bit load per split); small blocks so B=1 still spreads over SMs.
REDUCE_CONFIG = triton.Config({"BLOCK_N": 256}, num_warps=2, num_stages=1)


def prune_splitk_configs(configs: list, batch: int) -> list:
    """Keep the configs whose batch block fits ``batch`` (1, 2, or 4 rows per weight tile)."""
    block_b = min(triton.next_power_of_2(max(batch, 1)), 4)
    return [c for c in configs if c.kwargs["BLOCK_B"] == block_b]


def prune_tiled_configs(configs: list, batch: int) -> list:
    """Keep the configs with ``BLOCK_M <= max(16, next_pow2(batch))``, largest ``BLOCK_M`` first."""
    cap = min(max(16, triton.next_power_of_2(max(batch, 1))), 128)
    kept = [c for c in configs if c.kwargs["BLOCK_M"] <= cap]
    return sorted(kept, key=lambda c: -c.kwargs["BLOCK_M"])  # stable: list order among equals


_PRUNE = {"splitk": prune_splitk_configs, "tiled": prune_tiled_configs}
_CONFIGS = {"splitk": SPLITK_CONFIGS, "tiled": TILED_CONFIGS}
_KERNELS = {"splitk": _gemv_splitk_kernel, "tiled": _gemv_tiled_kernel}
_BLOCK_ROWS = {"splitk": "BLOCK_B", "tiled": "BLOCK_M"}


@functools.lru_cache(maxsize=None)
def _autotuned(variant: str):
    return triton.autotune(
        configs=_CONFIGS[variant], key=["B", "N", "K", "K_PER_SPLIT", "DIRECT"],
        prune_configs_by={"early_config_prune": lambda configs, named_args, **_: _PRUNE[variant](
            configs, named_args["B"])},
    )(_KERNELS[variant])


def num_sms(device: torch.device | None = None) -> int:
    """SMs of ``device`` from ``torch.cuda`` when it is a CUDA device, else :data:`DEFAULT_NUM_SMS`."""
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda" and torch.cuda.is_available():
        return _cuda_sms(device.index if device.index is not None else torch.cuda.current_device())
    return DEFAULT_NUM_SMS


@functools.lru_cache(maxsize=None)
def _cuda_sms(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def split_count(programs: int, k: int, batch: int, elem_bytes: int, grain: int, n_sm: int,
                per_sm: int) -> tuple[int, int]:
    """``(splits, k_per_split)`` for a launch of ``programs`` tiles over a K of ``k``.

    Aims at ``per_sm * n_sm`` programs, with at most ``k // MIN_K_PER_SPLIT`` splits and at most
    ``elem_bytes * k // (80 * batch)`` (the fp32 workspace written and read back, ``8*B*N*S`` bytes,
    stays under 10% of the weight's ``elem_bytes*N*K``). ``k_per_split`` is a multiple of ``grain``
    (every ``BLOCK_K`` the launch may use divides it) and no split is empty.
    """
    want = triton.cdiv(per_sm * n_sm, max(programs, 1))
    cap = min(MAX_SPLITS, max(1, k // MIN_K_PER_SPLIT), max(1, elem_bytes * k // (80 * max(batch, 1))))
    return _splits_of(min(want, cap), k, grain)


def _splits_of(splits: int, k: int, grain: int) -> tuple[int, int]:
    k_per_split = triton.cdiv(triton.cdiv(k, grain), max(splits, 1)) * grain
    return triton.cdiv(k, k_per_split), k_per_split


def select_variant(batch: int, n: int, k: int) -> str:
    """The variant :func:`gemv` runs for ``x[batch, k] @ W[n, k]^T``: ``"splitk"`` up to
    :data:`SPLITK_MAX_BATCH` rows (one weight pass, CUDA-core FMAs, 1-4 rows per weight tile), else
    ``"tiled"`` (tensor cores). ``n`` and ``k`` do not move the crossover today; they are part of the
    signature so that a measured crossover can depend on them without changing callers."""
    return "splitk" if batch <= SPLITK_MAX_BATCH else "tiled"


def _validate(x: object, weight: object, bias: object, split_k: object
              ) -> tuple[torch.Tensor | None, int | None]:
    """Check every argument; returns ``(bias, split_k)`` normalised (bias contiguous, split_k an int)."""
    check_tensor("x", x, ndim=2)
    check_device("x", x)
    check_tensor("weight", weight, ndim=2, dtypes=SUPPORTED_DTYPES, last_dim_contiguous=False)
    if weight.shape[1] > 1 and weight.stride(1) != 1:
        hint = " (a transposed view: pass nn.Linear's [N, K] weight itself)" if weight.stride(0) == 1 else ""
        raise ValueError(f"weight: expected [N, K] with K contiguous (stride 1), got strides "
                         f"{tuple(weight.stride())}{hint}")
    check_same_dtype_device("weight", weight, "x", x)
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight: expected shape (N, K={x.shape[1]}) (nn.Linear layout [out, in]) to match "
                         f"x [B, K]={tuple(x.shape)}, got {tuple(weight.shape)}")
    if bias is not None:
        bias = check_vector("bias", bias, weight.shape[0], x, "x")  # any stride (a strided one is copied)
    if split_k is not None:
        split_k = check_int("split_k", split_k, lo=1, none_ok=True)
    if weight.shape[0] > MAX_N:
        raise ValueError(f"weight: at most {MAX_N} output rows (CUDA grid limit), got N={weight.shape[0]}")
    return bias, split_k


def _empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Allocation of the output and the workspace (a seam the tests use to pre-fill with NaN)."""
    return torch.empty(shape, dtype=dtype, device=device)


@functools.lru_cache(maxsize=4096)
def _plan(variant: str, batch: int, n: int, k: int, elem_bytes: int, n_sm: int, split_k: int | None,
          tune: bool) -> tuple[triton.Config, int, int]:
    """``(config, splits, k_per_split)`` of one launch; cached, so a decode step pays for it once."""
    configs = _PRUNE[variant](_CONFIGS[variant], batch)
    cfg = configs[0]
    grain = max(c.kwargs["BLOCK_K"] for c in configs) if tune else cfg.kwargs["BLOCK_K"]
    if split_k is not None:
        return (cfg, *_splits_of(split_k, k, grain))
    programs = triton.cdiv(batch, cfg.kwargs[_BLOCK_ROWS[variant]]) * triton.cdiv(n, cfg.kwargs["BLOCK_N"])
    return (cfg, *split_count(programs, k, batch, elem_bytes, grain, n_sm, PROGRAMS_PER_SM[variant]))


def _run(variant: str, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
         split_k: int | None) -> torch.Tensor:
    bias, split_k = _validate(x, weight, bias, split_k)
    batch, k = x.shape
    n = weight.shape[0]
    y = _empty((batch, n), x.dtype, x.device)
    if batch == 0 or n == 0:
        return y
    if k == 0:  # an empty sum: zeros (+ bias), nothing to launch
        return y.copy_(bias.expand(batch, n)) if bias is not None else y.zero_()
    tune = autotuning()
    cfg, splits, k_per_split = _plan(variant, batch, n, k, x.element_size(), num_sms(x.device), split_k, tune)
    direct = splits == 1
    ws = y if direct else _empty((splits, batch, n), torch.float32, x.device)
    args = (y, ws, x, weight, bias if bias is not None else y, batch, n, k, k_per_split,
            x.stride(0), weight.stride(0), y.stride(0), ws.stride(0) if not direct else 0,
            ws.stride(1) if not direct else 0)
    flags = {"HAS_BIAS": bias is not None, "DIRECT": direct}

    def grid(meta: dict) -> tuple[int, ...]:
        m_tiles = triton.cdiv(batch, meta[_BLOCK_ROWS[variant]])
        n_tiles = triton.cdiv(n, meta["BLOCK_N"])
        return (m_tiles, n_tiles, splits) if variant == "splitk" else (m_tiles * n_tiles, splits)

    if tune:
        tuned = _autotuned(variant)
        tuned[grid](*args, **flags)
        cfg = tuned.best_config
    else:
        _KERNELS[variant][grid](*args, **flags, **cfg.kwargs, num_warps=cfg.num_warps,
                                num_stages=cfg.num_stages)
    if not direct:
        rb = REDUCE_CONFIG.kwargs["BLOCK_N"]
        _gemv_splitk_reduce_kernel[(batch, triton.cdiv(n, rb))](
            y, ws, bias if bias is not None else y, n, splits, y.stride(0), ws.stride(0), ws.stride(1),
            HAS_BIAS=bias is not None, BLOCK_N=rb, num_warps=REDUCE_CONFIG.num_warps, num_stages=1)
    record_launch("gemv", variant, triton_config_id(cfg))
    return y


def gemv_splitk(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
                split_k: int | None = None) -> torch.Tensor:
    """Split-K CUDA-core GEMV ``x @ weight.T (+ bias)`` (see :func:`gemv`); ``split_k`` forces the
    number of K splits (rounded so that each is a whole number of ``BLOCK_K`` tiles; None = heuristic)."""
    return _run("splitk", x, weight, bias, split_k)


def gemv_tiled(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
               split_k: int | None = None) -> torch.Tensor:
    """Tensor-core tiled skinny GEMM ``x @ weight.T (+ bias)`` (see :func:`gemv`); ``split_k`` as in
    :func:`gemv_splitk`."""
    return _run("tiled", x, weight, bias, split_k)


VARIANTS = {"splitk": gemv_splitk, "tiled": gemv_tiled}


def gemv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
         variant: str | None = None, split_k: int | None = None) -> torch.Tensor:
    """``y = x @ weight.T + bias``, the decode-time linear layer.

    Parameters
    ----------
    x : Tensor ``[B, K]``, fp16/bf16/fp32, last dimension contiguous (any row stride).
    weight : Tensor ``[N, K]`` as ``nn.Linear`` stores it, same dtype and device, K contiguous.
    bias : optional Tensor ``[N]``, same dtype and device, any stride (a strided one is copied).
    variant : ``"splitk"``, ``"tiled"``, or None for :func:`select_variant`'s choice.
    split_k : optional forced number of K splits, a positive integer (``int`` or numpy integer, not a
        bool); None = heuristic from the SM count.

    Returns
    -------
    Tensor ``[B, N]`` in x's dtype, accumulated in fp32 (tf32 products for fp32 inputs on the tiled path).
    """
    if variant is None:
        if isinstance(x, torch.Tensor) and isinstance(weight, torch.Tensor) and x.dim() == 2 and weight.dim():
            variant = select_variant(x.shape[0], weight.shape[0], x.shape[1])
        else:
            variant = "splitk"  # let the launcher's validation name the bad argument
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {sorted(VARIANTS)} or None, got {variant!r}")
    return VARIANTS[variant](x, weight, bias, split_k=split_k)


def gemv_ref(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
             compute_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """PyTorch reference (``F.linear``, cuBLAS on a GPU): computed in ``compute_dtype``, cast to x's dtype."""
    b = bias.to(compute_dtype) if bias is not None else None
    return F.linear(x.to(compute_dtype), weight.to(compute_dtype), b).to(x.dtype)


# (atol, rtol) against a float64 reference with inputs scaled so that |y| ~ 1. fp16/bf16: about two
# output ulps. fp32: the tiled path's tf32 products (inputs rounded to 10 mantissa bits) give an error
# of std ~2**-11 ~ 5e-4 per output whatever K is; 5e-3 is ~10 sigma, safe over millions of outputs.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (1.6e-2, 1.6e-2),
    torch.float32: (5e-3, 5e-3),
}


def compile_cases(arch: int) -> list[CompileCase]:
    """The sm_80/sm_90 audit's cases: every shipped config surviving pruning x variant x dtype at
    model-preset shapes (built in :mod:`kernels._gemv_cases`)."""
    from kernels._gemv_cases import build_compile_cases  # late: that module reads this one's configs

    return build_compile_cases(arch)
