"""Row softmax over the last dimension: ``y[r, :] = exp(s*x[r, :] - m_r) / sum(exp(s*x[r, :] - m_r))``
with ``m_r = max(s*x[r, :])`` and ``s`` an optional scale (1 when ``None``).

Shapes: any ``x`` whose last dimension is contiguous; the leading dimensions are flattened to ``rows``
(no copy when they collapse to one row stride). ``y`` has ``x``'s shape and dtype, contiguous. fp16,
bf16, fp32 in; fp32 math. Cost: 5 FLOPs per element; compulsory bytes ``2 * rows * cols * elem_bytes``.

Variants (:data:`VARIANTS`, chosen by :func:`select_variant` from the row length): ``"single"``
(``cols <= SINGLE_BLOCK_LIMIT``: whole rows in registers, one read and one write per element) and
``"online"`` (longer rows: a running max and sum, then a normalising pass; reads each row twice).
Numerics follow ``torch.softmax``: ``-inf`` gets probability 0, an all ``-inf`` row gives NaN, a row with
``+inf`` or NaN gives NaN. Design targets and risks: ``kernels/softmax/DESIGN.md``.
"""

from __future__ import annotations

import functools

import torch
import triton

from kernels._lib import launch
from kernels._lib.validation import check_device, check_real, check_tensor, collapsed_row_stride
from kernels.softmax.configs import KERNEL, SINGLE_BLOCK_LIMIT, online_config, select_variant, single_config
from kernels.softmax.kernels import _softmax_online_kernel, _softmax_single_kernel

__all__ = ["SINGLE_BLOCK_LIMIT", "TOLERANCES", "VARIANTS", "select_variant", "softmax",
           "softmax_ref"]


def softmax(x: torch.Tensor, *, scale: float | None = None, variant: str | None = None) -> torch.Tensor:
    """Softmax of ``scale * x`` over the last dimension.

    Parameters
    ----------
    x : Tensor, any shape ``[..., cols]``, fp16/bf16/fp32, last dimension contiguous (stride 1).
    scale : a finite real number (Python or numpy scalar, not a bool) or None. Multiplies ``x`` (in
        fp32) before the softmax; ``None`` means 1.
    variant : ``"single"``, ``"online"`` or ``None`` (:func:`select_variant` picks by ``cols``).
        ``"single"`` is refused for rows longer than ``SINGLE_BLOCK_LIMIT``.

    Returns
    -------
    Tensor with ``x``'s shape and dtype, contiguous.
    """
    check_tensor("x", x)
    check_device("x", x)
    s = 1.0 if scale is None else check_real("scale", scale)
    n_cols = x.shape[-1] if x.dim() else 1
    if variant is None:
        variant = select_variant(n_cols)
    elif variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS)} or None, got {variant!r}")
    elif variant == "single" and n_cols > SINGLE_BLOCK_LIMIT:
        raise ValueError(
            f"variant: 'single' holds a row in registers and is limited to {SINGLE_BLOCK_LIMIT} columns, "
            f"got {n_cols}; use 'online' or None"
        )
    y = launch.empty(x.shape, x.dtype, x.device)
    if x.numel() == 0:
        return y
    stride_row = collapsed_row_stride(x)
    if stride_row is None:  # leading dims do not collapse to one stride: one copy, documented
        x = x.reshape(-1, n_cols)
        stride_row = n_cols
    n_rows = x.numel() // n_cols
    if variant == "single":
        meta, num_warps, num_stages = single_config(n_cols, n_rows)
        grid = (triton.cdiv(n_rows, meta["ROWS"]),)
        launch.run(
            _softmax_single_kernel, grid, y, x, n_rows, n_cols, stride_row, n_cols, s,
            **meta, num_warps=num_warps, num_stages=num_stages,
        )
    else:
        meta, num_warps, num_stages = online_config(n_cols)
        launch.run(
            _softmax_online_kernel, (n_rows,), y, x, n_cols, stride_row, n_cols, s,
            **meta, num_warps=num_warps, num_stages=num_stages,
        )
    launch.record_launch(KERNEL, variant, launch.config_id(meta, num_warps, num_stages))
    return y


VARIANTS = {
    "single": functools.partial(softmax, variant="single"),
    "online": functools.partial(softmax, variant="online"),
}


def softmax_ref(x: torch.Tensor, *, scale: float | None = None, compute_dtype=torch.float32) -> torch.Tensor:
    """``torch.softmax(scale * x)`` over the last dimension, in ``compute_dtype``, cast back to x's dtype."""
    z = x.to(compute_dtype)
    if scale is not None:
        z = z * scale
    return torch.softmax(z, dim=-1).to(x.dtype)


# (atol, rtol) against softmax_ref: about 2 output ulps for the half types, fp32 exp/rcp error for fp32
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float16: (1e-5, 2e-3),
    torch.bfloat16: (1e-5, 1.6e-2),
    torch.float32: (1e-6, 1e-5),
}
