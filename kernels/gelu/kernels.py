"""The ``@triton.jit`` kernel of :mod:`kernels.gelu` (the math is in its docstring, the design in
``DESIGN.md``). Arguments: outputs, inputs, sizes, strides, then constexpr meta-parameters.
"""

import triton
import triton.language as tl


@triton.jit
def _gelu_kernel(
    y_ptr, x_ptr, b_ptr,
    n_rows, n_cols,
    stride_xrow, stride_yrow,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    HAS_BIAS: tl.constexpr, APPROX_TANH: tl.constexpr,
):
    """One [BLOCK_M, BLOCK_N] tile of rows x columns per program (BLOCK_M = 1 for a flat tensor)."""
    pid = tl.program_id(0)
    n_col_blocks = tl.cdiv(n_cols, BLOCK_N)
    pid_m = pid // n_col_blocks
    pid_n = pid % n_col_blocks
    rows = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)  # int64: offsets can pass 2**31
    cols = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < n_cols
    mask = (rows < n_rows)[:, None] & col_mask[None, :]
    # read BLOCK_M*BLOCK_N*elem_bytes bytes
    u = tl.load(x_ptr + rows[:, None] * stride_xrow + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        # read BLOCK_N*elem_bytes bytes of bias, reused by all BLOCK_M rows (L2-resident across programs)
        b = tl.load(b_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
        u = u + b[None, :]
    if APPROX_TANH:
        # 0.5*u*(1 + tanh(k)) == u * sigmoid(2k), k = sqrt(2/pi) * (u + 0.044715 u^3)
        k2 = 1.5957691216057308 * (u + 0.044715 * u * u * u)
        y = u / (1.0 + tl.exp(-k2))
    else:
        y = 0.5 * u * (1.0 + tl.math.erf(u * 0.7071067811865476))
    # write BLOCK_M*BLOCK_N*elem_bytes bytes
    tl.store(y_ptr + rows[:, None] * stride_yrow + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=mask)
