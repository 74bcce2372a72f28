"""The ``@triton.jit`` kernels of :mod:`kernels.softmax` (the math is in its docstring, the design in
``DESIGN.md``). Arguments: outputs, inputs, sizes, strides, then constexpr meta-parameters.
"""

import triton
import triton.language as tl


@triton.jit
def _softmax_single_kernel(
    y_ptr, x_ptr,
    n_rows, n_cols,
    stride_xrow, stride_yrow,
    scale,
    BLOCK_N: tl.constexpr, ROWS: tl.constexpr,
):
    """ROWS whole rows per program, each held in registers: one read, one write per element."""
    pid = tl.program_id(0)
    rows = pid.to(tl.int64) * ROWS + tl.arange(0, ROWS)  # int64: rows * stride can pass 2**31
    cols = tl.arange(0, BLOCK_N)
    mask = (rows < n_rows)[:, None] & (cols < n_cols)[None, :]
    # read rows*cols*elem_bytes bytes (the only read)
    x = tl.load(x_ptr + rows[:, None] * stride_xrow + cols[None, :], mask=mask, other=0.0)
    # mask after scaling: a negative scale must not turn the padding into +inf
    z = tl.where(mask, x.to(tl.float32) * scale, float("-inf"))
    m = tl.max(z, axis=1)
    p = tl.exp(z - m[:, None])  # all -inf row: -inf - -inf = NaN, as torch
    inv = 1.0 / tl.sum(p, axis=1)
    y = p * inv[:, None]
    # write rows*cols*elem_bytes bytes
    tl.store(y_ptr + rows[:, None] * stride_yrow + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _softmax_online_kernel(
    y_ptr, x_ptr,
    n_cols,
    stride_xrow, stride_yrow,
    scale,
    BLOCK_N: tl.constexpr,
):
    """One row per program, any length: a running max/sum pass, then a normalising pass."""
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_xrow
    y_row = y_ptr + row * stride_yrow
    cols = tl.arange(0, BLOCK_N)
    m_i = tl.full([], float("-inf"), tl.float32)
    d_i = tl.zeros([], tl.float32)
    for start in range(0, n_cols, BLOCK_N):
        c = start + cols
        mask = c < n_cols
        # pass 1 reads cols*elem_bytes bytes; keep them in L2 for pass 2
        x = tl.load(x_row + c, mask=mask, other=0.0, eviction_policy="evict_last")
        z = tl.where(mask, x.to(tl.float32) * scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(z, axis=0))
        # while every value so far is -inf, exp(-inf - -inf) would be NaN: shift by 0 instead
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        d_i = d_i * tl.exp(m_i - m_safe) + tl.sum(tl.exp(z - m_safe), axis=0)
        m_i = m_new
    inv = 1.0 / d_i  # all -inf row: m_i = -inf and the exp below is NaN, as torch
    for start in range(0, n_cols, BLOCK_N):
        c = start + cols
        mask = c < n_cols
        # pass 2 reads the row again (cols*elem_bytes bytes, from L2 if it stayed) and writes it
        x = tl.load(x_row + c, mask=mask, other=0.0, eviction_policy="evict_first")
        y = tl.exp(x.to(tl.float32) * scale - m_i) * inv
        tl.store(y_row + c, y.to(y_ptr.dtype.element_ty), mask=mask)
