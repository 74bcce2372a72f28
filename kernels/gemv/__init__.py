"""Decode GEMV / skinny GEMM: ``y[B, N] = x[B, K] @ W^T (+ bias[N])``, ``W`` stored as ``nn.Linear``
stores it (``[N, K]``, K contiguous), for B from 1 upward; fp16, bf16 or fp32 in, fp32 accumulation,
output in the input dtype.

Cost (``roofline.model.cost.gemv_cost``): ``2*B*N*K (+ B*N)`` FLOPs; compulsory bytes
``elem_bytes*(N*K + B*K + B*N (+ N))``. At small B the weight stream is everything: about ``B`` FLOP/byte
at 2-byte dtypes, far under the ridge; sweeping B from 1 to 512 walks across it.

Variants (:data:`VARIANTS`, chosen by :func:`select_variant`): ``"splitk"`` (B <= 4, CUDA-core FMAs over
128-bit weight loads, K split across programs) and ``"tiled"`` (B > 4, tensor-core ``tl.dot`` computing
``y^T = W @ x^T``). Split-K partials go to an fp32 workspace ``[S, B, N]`` summed in split order by a
second kernel, so reruns are bit-identical. Design targets and risks: ``kernels/gemv/DESIGN.md``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton

from kernels._lib import launch
from kernels._lib.device import arch, num_sms
from kernels._lib.validation import (
    SUPPORTED_DTYPES,
    check_device,
    check_int,
    check_same_dtype_device,
    check_tensor,
    check_vector,
)
from kernels.gemv.configs import (
    BLOCK_ROWS,
    JIT_BY_VARIANT,
    KERNEL,
    MAX_N,
    REDUCE_CONFIG,
    autotuned,
    plan,
    select_variant,
)
from kernels.gemv.kernels import _gemv_splitk_reduce_kernel

__all__ = ["TOLERANCES", "VARIANTS", "gemv", "gemv_ref", "gemv_splitk", "gemv_tiled",
           "select_variant"]


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


def _run(variant: str, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
         split_k: int | None) -> torch.Tensor:
    bias, split_k = _validate(x, weight, bias, split_k)
    batch, k = x.shape
    n = weight.shape[0]
    y = launch.empty((batch, n), x.dtype, x.device)
    if batch == 0 or n == 0:
        return y
    if k == 0:  # an empty sum: zeros (+ bias), nothing to launch
        return y.copy_(bias.expand(batch, n)) if bias is not None else y.zero_()
    tune = launch.autotuning()
    cfg, splits, k_per_split = plan(variant, batch, n, k, x.element_size(), num_sms(x.device), split_k, tune,
                                    arch(x.device))
    direct = splits == 1
    ws = y if direct else launch.empty((splits, batch, n), torch.float32, x.device)
    args = (y, ws, x, weight, bias if bias is not None else y, batch, n, k, k_per_split,
            x.stride(0), weight.stride(0), y.stride(0), ws.stride(0) if not direct else 0,
            ws.stride(1) if not direct else 0)
    flags = {"HAS_BIAS": bias is not None, "DIRECT": direct}

    def grid(meta: dict) -> tuple[int, ...]:
        m_tiles = triton.cdiv(batch, meta[BLOCK_ROWS[variant]])
        n_tiles = triton.cdiv(n, meta["BLOCK_N"])
        return (m_tiles, n_tiles, splits) if variant == "splitk" else (m_tiles * n_tiles, splits)

    if tune:
        tuned = autotuned(variant)
        launch.run(tuned, grid, *args, **flags)
        cfg = tuned.best_config
    else:
        launch.run(JIT_BY_VARIANT[variant], grid, *args, **flags, **cfg.kwargs, num_warps=cfg.num_warps,
                   num_stages=cfg.num_stages)
    if not direct:
        rb = REDUCE_CONFIG.kwargs["BLOCK_N"]
        launch.run(
            _gemv_splitk_reduce_kernel, (batch, triton.cdiv(n, rb)),
            y, ws, bias if bias is not None else y, n, splits, y.stride(0), ws.stride(0), ws.stride(1),
            HAS_BIAS=bias is not None, BLOCK_N=rb, num_warps=REDUCE_CONFIG.num_warps, num_stages=1)
    launch.record_launch(KERNEL, variant, launch.triton_config_id(cfg))
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
            variant = select_variant(x.shape[0])
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
