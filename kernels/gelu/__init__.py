"""Elementwise GELU with an optional fused bias along the last dimension (the MLP epilogue
``gelu(x @ W1 + b1)``), in fp32 on ``u = x + bias``:

- exact (``approximate="none"``): ``y = 0.5 * u * (1 + erf(u / sqrt(2)))``;
- tanh (``approximate="tanh"``): ``y = 0.5 * u * (1 + tanh(sqrt(2/pi) * (u + 0.044715 u^3)))``, computed
  as the identical ``u * sigmoid(2 * sqrt(2/pi) * (u + 0.044715 u^3))``.

Shapes: ``x`` ``[..., n]`` with a contiguous last dimension, ``bias`` ``[n]``; ``y`` has ``x``'s shape and
dtype (or is ``x`` with ``inplace=True``). fp16, bf16, fp32. Cost: 5 (erf) or 9 (tanh) FLOPs per
element, +1 with a bias; compulsory bytes ``elem_bytes * (2 * numel + n)``. One variant,
``"elementwise"``: a contiguous ``x`` without a bias is tiled as one flat row, otherwise as
``[BLOCK_M, BLOCK_N]`` rows x columns so each program loads its bias slice once. Design targets and
risks: ``kernels/gelu/DESIGN.md``.
"""

from __future__ import annotations

import torch
import triton

from kernels._lib import launch
from kernels._lib.validation import (
    check_device,
    check_flag,
    check_no_overlap,
    check_tensor,
    check_vector,
    collapsed_row_stride,
)
from kernels.gelu.configs import KERNEL, tile_config
from kernels.gelu.kernels import _gelu_kernel

__all__ = ["TOLERANCES", "VARIANTS", "gelu", "gelu_ref"]


def gelu(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    approximate: str = "none",
    inplace: bool = False,
) -> torch.Tensor:
    """``gelu(x + bias)`` elementwise, exact (erf) or tanh-approximated.

    Parameters
    ----------
    x : Tensor ``[..., n]``, fp16/bf16/fp32, last dimension contiguous. Leading dimensions that do not
        collapse to one row stride are copied once (refused with ``inplace=True``).
    bias : Tensor ``[n]`` of ``x``'s dtype and device, any stride (a strided one is copied), or None.
        Added (in fp32) before the GELU.
    approximate : ``"none"`` (erf) or ``"tanh"``, as ``torch.nn.functional.gelu``.
    inplace : write the result into ``x`` and return ``x``. As torch's in-place ops, refused when
        ``bias`` shares memory with ``x`` (e.g. ``bias = x[0]``: rows written before others read it)
        or ``x``'s elements overlap each other (an expanded view).

    Returns
    -------
    Tensor with ``x``'s shape and dtype: contiguous, or ``x`` itself when ``inplace``.
    """
    check_tensor("x", x)
    check_device("x", x)
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
    inplace = check_flag("inplace", inplace)
    n = x.shape[-1] if x.dim() else 1
    if inplace:  # x is the output: no element may alias another, nor the (caller's, uncopied) bias
        bias_c = check_vector("bias", bias, n, x, "x") if bias is not None else None
        check_no_overlap("x", x, {"bias": bias})
        bias = bias_c
    elif bias is not None:
        bias = check_vector("bias", bias, n, x, "x")  # [n], any stride (a strided one is copied)
    if x.numel() == 0:
        return x if inplace else launch.empty(x.shape, x.dtype, x.device)
    stride_row = collapsed_row_stride(x)
    if inplace:
        if stride_row is None:
            raise ValueError(
                f"x: inplace=True needs leading dimensions that collapse to one row stride, got shape "
                f"{tuple(x.shape)} with strides {x.stride()}"
            )
    src = x
    if stride_row is None:  # not inplace: one copy, documented
        src = x.reshape(-1, n)
        stride_row = n
    y = x if inplace else launch.empty(x.shape, x.dtype, x.device)
    n_rows = src.numel() // n
    if bias is None and src.is_contiguous() and y.is_contiguous():
        # flat: row strides are never used; 0 lets the JIT specialise them as divisible by 16
        n_rows, n_cols, stride_x, stride_y = 1, src.numel(), 0, 0
    else:
        n_cols, stride_x, stride_y = n, stride_row, (stride_row if inplace else n)
    meta, num_warps, num_stages = tile_config(n_rows, n_cols)
    grid = (triton.cdiv(n_rows, meta["BLOCK_M"]) * triton.cdiv(n_cols, meta["BLOCK_N"]),)
    launch.run(
        _gelu_kernel, grid, y, src, bias if bias is not None else src,  # b_ptr unused without a bias
        n_rows, n_cols, stride_x, stride_y,
        **meta, HAS_BIAS=bias is not None, APPROX_TANH=approximate == "tanh",
        num_warps=num_warps, num_stages=num_stages,
    )
    launch.record_launch(KERNEL, "elementwise", launch.config_id(meta, num_warps, num_stages))
    return y


VARIANTS = {"elementwise": gelu}


def gelu_ref(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    approximate: str = "none",
    compute_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``F.gelu(x + bias)`` in ``compute_dtype`` (fp32 by default), cast back to ``x``'s dtype."""
    u = x.to(compute_dtype)
    if bias is not None:
        u = u + bias.to(compute_dtype)
    return torch.nn.functional.gelu(u, approximate=approximate).to(x.dtype)


# (atol, rtol) against gelu_ref: ~2 output ulps for the half types; fp32 libdevice erf/exp for fp32
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float16: (1e-5, 2e-3),
    torch.bfloat16: (1e-5, 1.6e-2),
    torch.float32: (1e-6, 1e-5),
}
