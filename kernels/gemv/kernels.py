"""The ``@triton.jit`` kernels of :mod:`kernels.gemv` (the math is in its docstring, the design in
``DESIGN.md``). Arguments: outputs, inputs, sizes, strides, then constexpr meta-parameters.
"""

import triton
import triton.language as tl


@triton.jit
def _gemv_splitk_kernel(
    y_ptr, ws_ptr, x_ptr, w_ptr, bias_ptr,
    B, N, K, K_PER_SPLIT,
    stride_xb, stride_wn, stride_yb, stride_wss, stride_wsb,
    HAS_BIAS: tl.constexpr, DIRECT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    # Grid: (batch blocks [fastest, so programs sharing a weight tile run together], N tiles, K splits).
    pid_b = tl.program_id(0)
    pid_n = tl.program_id(1)
    pid_k = tl.program_id(2)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    mask_n = offs_n < N
    k_start = pid_k * K_PER_SPLIT  # a multiple of BLOCK_K, so no tile straddles two splits
    k_end = tl.minimum(k_start + K_PER_SPLIT, K)
    b0 = pid_b * BLOCK_B
    w_ptrs = w_ptr + offs_n.to(tl.int64)[:, None] * stride_wn + (k_start + offs_k)[None, :]
    # Rows past B re-read row B-1 (valid addresses, no extra mask); their results are never stored.
    # x is loaded as a [BLOCK_N, BLOCK_K] broadcast (same address down each column) so that it gets the
    # weight tile's register layout: 128-bit loads served by L1, no shared-memory layout conversion.
    x_cols = (k_start + offs_k)[None, :] + (offs_n * 0)[:, None]
    x_ptrs0 = x_ptr + b0.to(tl.int64) * stride_xb + x_cols
    x_ptrs1 = x_ptr + tl.minimum(b0 + 1, B - 1).to(tl.int64) * stride_xb + x_cols
    x_ptrs2 = x_ptr + tl.minimum(b0 + 2, B - 1).to(tl.int64) * stride_xb + x_cols
    x_ptrs3 = x_ptr + tl.minimum(b0 + 3, B - 1).to(tl.int64) * stride_xb + x_cols
    # One [BLOCK_N, BLOCK_K] accumulator per batch row (unused ones are dead code), reduced after the loop.
    acc0 = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
    acc1 = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
    acc2 = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
    acc3 = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
    for k0 in range(k_start, k_end, BLOCK_K):
        mask_k = (k0 + offs_k) < K
        # read BLOCK_N*BLOCK_K weight elements (128-bit loads, touched once: evict first)
        w = tl.load(w_ptrs, mask=mask_n[:, None] & mask_k[None, :], other=0.0,
                    eviction_policy="evict_first").to(tl.float32)
        # read BLOCK_K elements of each batch row (L1/L2 hits after the first N tile)
        mask_x = mask_k[None, :]
        acc0 += w * tl.load(x_ptrs0, mask=mask_x, other=0.0).to(tl.float32)
        if BLOCK_B > 1:
            acc1 += w * tl.load(x_ptrs1, mask=mask_x, other=0.0).to(tl.float32)
        if BLOCK_B > 2:
            acc2 += w * tl.load(x_ptrs2, mask=mask_x, other=0.0).to(tl.float32)
            acc3 += w * tl.load(x_ptrs3, mask=mask_x, other=0.0).to(tl.float32)
        w_ptrs += BLOCK_K
        x_ptrs0 += BLOCK_K
        x_ptrs1 += BLOCK_K
        x_ptrs2 += BLOCK_K
        x_ptrs3 += BLOCK_K

    if DIRECT:  # one split: finish here (bias, cast, write y)
        out_ptr = y_ptr + b0.to(tl.int64) * stride_yb + offs_n
        stride_out = stride_yb
    else:  # several splits: write this split's fp32 partials to the workspace
        out_ptr = ws_ptr + pid_k.to(tl.int64) * stride_wss + b0.to(tl.int64) * stride_wsb + offs_n
        stride_out = stride_wsb
    if HAS_BIAS and DIRECT:
        bias = tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)
    else:
        bias = tl.zeros((BLOCK_N,), dtype=tl.float32)
    out_ty = out_ptr.dtype.element_ty
    # row r is stored when b0 + r < B: compare offs_n against N or 0
    tl.store(out_ptr, (tl.sum(acc0, axis=1) + bias).to(out_ty), mask=mask_n)
    if BLOCK_B > 1:
        n_lim = tl.where(b0 + 1 < B, N, 0)
        tl.store(out_ptr + stride_out, (tl.sum(acc1, axis=1) + bias).to(out_ty), mask=offs_n < n_lim)
    if BLOCK_B > 2:
        n_lim = tl.where(b0 + 2 < B, N, 0)
        tl.store(out_ptr + 2 * stride_out, (tl.sum(acc2, axis=1) + bias).to(out_ty), mask=offs_n < n_lim)
        n_lim = tl.where(b0 + 3 < B, N, 0)
        tl.store(out_ptr + 3 * stride_out, (tl.sum(acc3, axis=1) + bias).to(out_ty), mask=offs_n < n_lim)


@triton.jit
def _gemv_tiled_kernel(
    y_ptr, ws_ptr, x_ptr, w_ptr, bias_ptr,
    B, N, K, K_PER_SPLIT,
    stride_xb, stride_wn, stride_yb, stride_wss, stride_wsb,
    HAS_BIAS: tl.constexpr, DIRECT: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    # "Swap AB": the tile computes y^T = W @ x^T, so the weight's BLOCK_N rows are the MMA's M side
    # (64-128 rows: wgmma-sized on sm_90) and the batch is the narrow side (wgmma allows N down to 8).
    # Grid: (batch tiles x N tiles with batch fastest, K splits): programs sharing a weight tile run
    # together, so W comes from HBM once; x is small and stays in L2.
    pid = tl.program_id(0)
    pid_k = tl.program_id(1)
    num_m = tl.cdiv(B, BLOCK_M)
    pid_m = pid % num_m
    pid_n = pid // num_m
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    # Out-of-range rows wrap around (valid addresses, results masked at the store), so only the K tail
    # needs a load mask.
    rows_x = offs_m % B
    rows_w = offs_n % N
    k_start = pid_k * K_PER_SPLIT
    k_end = tl.minimum(k_start + K_PER_SPLIT, K)
    w_ptrs = w_ptr + rows_w.to(tl.int64)[:, None] * stride_wn + (k_start + offs_k)[None, :]  # K-major
    xt_ptrs = x_ptr + rows_x.to(tl.int64)[None, :] * stride_xb + (k_start + offs_k)[:, None]  # x^T tile
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for k0 in range(k_start, k_end, BLOCK_K):
        mask_k = (k0 + offs_k) < K
        w = tl.load(w_ptrs, mask=mask_k[None, :], other=0.0)  # read BLOCK_N*BLOCK_K of W
        xt = tl.load(xt_ptrs, mask=mask_k[:, None], other=0.0)  # read BLOCK_K*BLOCK_M of x
        acc = tl.dot(w, xt, acc)
        w_ptrs += BLOCK_K
        xt_ptrs += BLOCK_K
    mask = (offs_n < N)[:, None] & (offs_m < B)[None, :]
    if DIRECT:
        if HAS_BIAS:
            acc += tl.load(bias_ptr + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)[:, None]
        y_ptrs = y_ptr + offs_m.to(tl.int64)[None, :] * stride_yb + offs_n[:, None]
        tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=mask)
    else:
        ws_ptrs = (ws_ptr + pid_k.to(tl.int64) * stride_wss + offs_m.to(tl.int64)[None, :] * stride_wsb
                   + offs_n[:, None])
        tl.store(ws_ptrs, acc, mask=mask)


@triton.jit
def _gemv_splitk_reduce_kernel(
    y_ptr, ws_ptr, bias_ptr,
    N, SPLITS,
    stride_yb, stride_wss, stride_wsb,
    HAS_BIAS: tl.constexpr, BLOCK_N: tl.constexpr,
):
    # Sums the S partials of one batch row in split order (deterministic), adds the bias, casts.
    b = tl.program_id(0).to(tl.int64)
    pid_n = tl.program_id(1)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = offs_n < N
    ptrs = ws_ptr + b * stride_wsb + offs_n
    acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
    # Unrolled so that several partial loads are in flight at once (the order of the adds is unchanged).
    for _ in tl.range(0, SPLITS, loop_unroll_factor=4):
        acc += tl.load(ptrs, mask=mask, other=0.0)  # read S*B*N*4 bytes in all
        ptrs += stride_wss  # 64-bit pointer arithmetic: S*B*N may pass 2**31
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=mask, other=0.0).to(tl.float32)
    tl.store(y_ptr + b * stride_yb + offs_n, acc.to(y_ptr.dtype.element_ty), mask=mask)
