"""The fused QKV projection's ``@triton.jit`` functions: the pointer kernel ``_qkv_kernel`` (every GPU),
the sm_90 TMA + persistent kernel ``_qkv_tma_kernel``, and what they share: the grouped tile order
``_grouped_tile`` and the fused epilogue ``_qkv_store_tile`` (bias, head split, K/V cache append); the
warp-specialized (sm_100) tiles' TMA-store epilogue ``_qkv_store_slices``.

Every row base (batch and token index times a stride) is int64, so outputs and caches larger than
2**31 elements are addressed correctly.
"""

import triton
import triton.language as tl


@triton.jit
def _qkv_store_tile(
    acc, pid_m, pid_n,
    q_ptr, k_ptr, v_ptr, bias_ptr, cache_len_ptr,
    M, N, T, n_heads, n_kv_heads, capacity,
    stride_qb, stride_qh, stride_qt, stride_qd,
    stride_kb, stride_kh, stride_kt, stride_kd,
    stride_vb, stride_vh, stride_vt, stride_vd,
    HEAD_DIM: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CACHE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """The fused epilogue of both QKV kernels: bias, then the ``[BLOCK_M, BLOCK_N]`` fp32 tile ``acc`` of
    output rows ``pid_m * BLOCK_M ..`` and columns ``pid_n * BLOCK_N ..`` scattered into q, k, v (or
    the KV caches at ``cache_len[b] + t``), each section store guarded by a scalar branch."""
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)[None, :]
    out = acc.to(q_ptr.dtype.element_ty)
    # Row indices computed here, not kept alive from the prologue through the K loop: that is what
    # keeps the 128-row tiles free of register spills on sm_80.
    row_b = (offs_m // T).to(tl.int64)
    row_t = (offs_m % T).to(tl.int64)

    # Scatter the tile into the sections it overlaps (write BM x BN once in total).
    head = offs_n // HEAD_DIM  # global head index over [Q heads | K heads | V heads]
    dim = offs_n % HEAD_DIM
    m_ok = offs_m < M
    n_q = n_heads * HEAD_DIM
    n_qk = n_q + n_kv_heads * HEAD_DIM
    tile_lo = pid_n * BLOCK_N
    tile_hi = tile_lo + BLOCK_N
    if tile_lo < n_q:
        q_ptrs = (q_ptr + (row_b * stride_qb + row_t * stride_qt)[:, None]
                  + (head.to(tl.int64) * stride_qh + dim * stride_qd)[None, :])
        tl.store(q_ptrs, out, mask=m_ok[:, None] & (offs_n < n_q)[None, :])
    if tile_hi > n_q:
        pos = row_t
        if HAS_CACHE:
            pos += tl.load(cache_len_ptr + row_b, mask=m_ok, other=0).to(tl.int64)
        # In-kernel guard (the launcher checks too): never write outside the cache's rows.
        row_ok = m_ok & (pos >= 0) & (pos < capacity)
        if tile_lo < n_qk:
            k_ptrs = (k_ptr + (row_b * stride_kb + pos * stride_kt)[:, None]
                      + ((head - n_heads).to(tl.int64) * stride_kh + dim * stride_kd)[None, :])
            k_cols = (offs_n >= n_q) & (offs_n < n_qk)
            tl.store(k_ptrs, out, mask=row_ok[:, None] & k_cols[None, :])
        if tile_hi > n_qk:
            v_ptrs = (v_ptr + (row_b * stride_vb + pos * stride_vt)[:, None]
                      + ((head - n_heads - n_kv_heads).to(tl.int64) * stride_vh + dim * stride_vd)[None, :])
            v_cols = (offs_n >= n_qk) & (offs_n < N)
            tl.store(v_ptrs, out, mask=row_ok[:, None] & v_cols[None, :])


@triton.jit
def _qkv_plane(col, b, n_batch, n_heads, n_kv_heads, HEAD_DIM: tl.constexpr):
    """Where output column ``col`` of batch ``b`` goes in the one buffer that holds q ``[B, Hq, T, Dh]``,
    then k and v ``[B, Hkv, T, Dh]``, each contiguous: its ``[T, HEAD_DIM]`` plane (0 .. B*(Hq+2*Hkv)),
    and how many planes on the next batch's is (scalars)."""
    head = col // HEAD_DIM  # over [Q heads | K heads | V heads]
    if head < n_heads:
        plane = b * n_heads + head
        step = n_heads
    else:
        kv = head - n_heads  # K heads, then V heads
        is_v = (kv >= n_kv_heads).to(tl.int32)
        # after the B*Hq planes of q: k's B*Hkv planes, then v's (kv - Hkv is the head within v)
        plane = n_batch * n_heads + is_v * (n_batch * n_kv_heads - n_kv_heads) + b * n_kv_heads + kv
        step = n_kv_heads
    return plane, step


@triton.jit
def _qkv_store_slices(
    out_desc, acc, col0, m0, bias_ptr, M, N, T, n_heads, n_kv_heads,
    HEAD_DIM: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, WIDTH: tl.constexpr,
    STORE_N: tl.constexpr, ONE_BATCH_TILES: tl.constexpr,
):
    """The TMA-store epilogue of the warp-specialized tiles (``STORE_N`` > 0; q, k, v in one buffer read
    by ``out_desc`` as ``[planes, T, HEAD_DIM]``): the fp32 tile ``acc`` of rows ``m0 ..`` and columns
    ``col0 .. col0 + WIDTH``, halved down to ``STORE_N``-column slices (as tutorial 09's
    ``EPILOGUE_SUBTILE``: a slice at a time out of tensor memory). A slice lies in one head of one
    section (``STORE_N`` divides ``HEAD_DIM``), so its destination, a plane and a row, is picked once per
    slice (scalars) and one TMA store writes it: bias, convert, store. TMA drops rows outside
    ``[0, T)`` of the plane (the M tail) and whole slices at a plane past the last (columns past N).
    A row tile across a batch boundary (not ``ONE_BATCH_TILES``; the launcher guarantees tiles of at
    most T rows, so two batches at most) is stored a second time into batch ``b + 1``'s plane at row
    ``t0 - T`` < 0, where TMA keeps only that batch's rows: each row lands once, in its own plane."""
    if WIDTH > STORE_N:
        halves = tl.permute(tl.reshape(acc, (BLOCK_M, 2, WIDTH // 2)), (0, 2, 1))
        lo, hi = tl.split(halves)
        _qkv_store_slices(out_desc, lo, col0, m0, bias_ptr, M, N, T, n_heads, n_kv_heads,
                          HEAD_DIM, HAS_BIAS, BLOCK_M, WIDTH // 2, STORE_N, ONE_BATCH_TILES)
        _qkv_store_slices(out_desc, hi, col0 + WIDTH // 2, m0, bias_ptr, M, N, T, n_heads, n_kv_heads,
                          HEAD_DIM, HAS_BIAS, BLOCK_M, WIDTH // 2, STORE_N, ONE_BATCH_TILES)
    else:
        if HAS_BIAS:
            cols = col0 + tl.arange(0, WIDTH)
            acc += tl.load(bias_ptr + cols, mask=cols < N, other=0.0).to(tl.float32)[None, :]
        out = tl.reshape(acc.to(out_desc.dtype), (1, BLOCK_M, WIDTH))
        n_batch = M // T
        b = m0 // T
        t0 = m0 - b * T
        plane, step = _qkv_plane(col0, b, n_batch, n_heads, n_kv_heads, HEAD_DIM)
        # past N: the plane after the last one, dropped whole. A select, not a branch: a branch here
        # keeps the whole tile's fp32 registers alive across it (4 warps at 128x256 spilled).
        plane = tl.where(col0 < N, plane, n_batch * (n_heads + 2 * n_kv_heads))
        out_desc.store([plane, t0, col0 % HEAD_DIM], out)
        if not ONE_BATCH_TILES:
            if (t0 + BLOCK_M > T) & (b + 1 < n_batch):  # rows of batch b + 1 too
                out_desc.store([plane + step, t0 - T, col0 % HEAD_DIM], out)


@triton.jit
def _grouped_tile(tile_id, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """Grouped tile order: GROUP_M row tiles sweep the column tiles together, so consecutive tiles
    share x row tiles and W column tiles in L2. Returns ``(pid_m, pid_n)``."""
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    num_pid_in_group = GROUP_M * num_pid_n
    group_id = tile_id // num_pid_in_group
    first_pid_m = group_id * GROUP_M
    group_size_m = tl.minimum(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + ((tile_id % num_pid_in_group) % group_size_m)
    pid_n = (tile_id % num_pid_in_group) // group_size_m
    return pid_m, pid_n


@triton.jit
def _qkv_kernel(
    q_ptr, k_ptr, v_ptr,                       # outputs: q [B,Hq,T,Dh]; k, v [B,Hkv,T or capacity,Dh]
    x_ptr, w_ptr, bias_ptr, cache_len_ptr,     # inputs: x [B,T,D]; w [N,D]; bias [N]; cache_len [B]
    M, N, K, T, n_heads, n_kv_heads, capacity,
    stride_xb, stride_xt, stride_xk,
    stride_wn, stride_wk,
    stride_qb, stride_qh, stride_qt, stride_qd,
    stride_kb, stride_kh, stride_kt, stride_kd,
    stride_vb, stride_vh, stride_vt, stride_vd,
    HEAD_DIM: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CACHE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    pid_m, pid_n = _grouped_tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    # Rows/columns past M/N wrap around (in-bounds reads, results never stored), so the main loop
    # masks only the K tail.
    rows = offs_m % M
    cols = offs_n % N
    x_rows = (rows // T).to(tl.int64) * stride_xb + (rows % T).to(tl.int64) * stride_xt
    x_ptrs = x_ptr + x_rows[:, None] + offs_k[None, :] * stride_xk
    w_ptrs = w_ptr + cols.to(tl.int64)[None, :] * stride_wn + offs_k[:, None] * stride_wk

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kk in range(0, tl.cdiv(K, BLOCK_K)):
        k_left = K - kk * BLOCK_K
        a = tl.load(x_ptrs, mask=offs_k[None, :] < k_left, other=0.0)  # read BM x BK of x
        b = tl.load(w_ptrs, mask=offs_k[:, None] < k_left, other=0.0)  # read BK x BN of W
        acc = tl.dot(a, b, acc)
        x_ptrs += BLOCK_K * stride_xk
        w_ptrs += BLOCK_K * stride_wk

    _qkv_store_tile(acc, pid_m, pid_n, q_ptr, k_ptr, v_ptr, bias_ptr, cache_len_ptr,
                    M, N, T, n_heads, n_kv_heads, capacity,
                    stride_qb, stride_qh, stride_qt, stride_qd,
                    stride_kb, stride_kh, stride_kt, stride_kd,
                    stride_vb, stride_vh, stride_vt, stride_vd,
                    HEAD_DIM, HAS_BIAS, HAS_CACHE, BLOCK_M, BLOCK_N)


@triton.jit
def _qkv_tma_kernel(
    q_ptr, k_ptr, v_ptr,
    x_ptr, w_ptr, bias_ptr, cache_len_ptr,
    M, N, K, T, n_heads, n_kv_heads, capacity,
    stride_xb, stride_xt, stride_xk,
    stride_wn, stride_wk,
    stride_qb, stride_qh, stride_qt, stride_qd,
    stride_kb, stride_kh, stride_kt, stride_kd,
    stride_vb, stride_vh, stride_vt, stride_vd,
    HEAD_DIM: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CACHE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
    NUM_SMS: tl.constexpr, W_K_CONTIGUOUS: tl.constexpr, WARP_SPECIALIZE: tl.constexpr = False,
    STORE_N: tl.constexpr = 0, ONE_BATCH_TILES: tl.constexpr = False,
):
    """The TMA kernel (sm_90 and later): same arguments and results as ``_qkv_kernel``, plus the programs
    launched (``NUM_SMS``) and W's memory order. x is read as one ``[M, K]`` matrix (row stride
    ``stride_xt``: the launcher only sends x whose batch rows follow each other) and W as ``[N, K]``
    (row-major, ``W_K_CONTIGUOUS``) or ``[K, N]`` (column-major) through tensor descriptors: TMA copies whole
    tiles into shared memory and zero-fills past M, N and K, so no load is masked and nothing wraps. Each
    program loops over output tiles ``program_id, program_id + NUM_SMS, ...`` (persistent), one K loop and
    one fused epilogue per tile. ``WARP_SPECIALIZE`` (sm_100: the ``WS_TMA_CONFIGS``) flattens the tile
    and K loops and lets Triton split them into a TMA-load partition, a tcgen05 partition and the
    epilogue, as tutorial 09's persistent matmul does; off, the loops compile as plain ``range``. With
    it, ``STORE_N`` > 0 (the launcher's :func:`~kernels.qkv.configs.tma_store_plan`: no KV cache, q, k
    and v allocated as one buffer at ``q_ptr``) stores the tile by TMA in ``STORE_N``-column slices
    (:func:`_qkv_store_slices`; ``ONE_BATCH_TILES``: no row tile crosses a batch); otherwise, and always
    without it, the pointer epilogue :func:`_qkv_store_tile` writes through the strides."""
    x_desc = tl.make_tensor_descriptor(x_ptr, shape=[M, K], strides=[stride_xt, 1],
                                       block_shape=[BLOCK_M, BLOCK_K])
    if W_K_CONTIGUOUS:
        w_desc = tl.make_tensor_descriptor(w_ptr, shape=[N, K], strides=[stride_wn, 1],
                                           block_shape=[BLOCK_N, BLOCK_K])
    else:
        w_desc = tl.make_tensor_descriptor(w_ptr, shape=[K, N], strides=[stride_wk, 1],
                                           block_shape=[BLOCK_K, BLOCK_N])
    if WARP_SPECIALIZE and STORE_N > 0:  # q, k, v: [T, HEAD_DIM] planes of one buffer from q_ptr
        tl.static_assert(BLOCK_N % STORE_N == 0 and HEAD_DIM % STORE_N == 0)
        planes = (M // T) * (n_heads + 2 * n_kv_heads)
        out_desc = tl.make_tensor_descriptor(q_ptr, shape=[planes, T, HEAD_DIM],
                                             strides=[T * HEAD_DIM, HEAD_DIM, 1],
                                             block_shape=[1, BLOCK_M, STORE_N])
    num_tiles = tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N)
    k_tiles = tl.cdiv(K, BLOCK_K)
    for tile_id in tl.range(tl.program_id(0), num_tiles, NUM_SMS, flatten=WARP_SPECIALIZE,
                            warp_specialize=WARP_SPECIALIZE):
        pid_m, pid_n = _grouped_tile(tile_id, M, N, BLOCK_M, BLOCK_N, GROUP_M)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for kk in range(0, k_tiles):
            a = x_desc.load([pid_m * BLOCK_M, kk * BLOCK_K])  # read BM x BK of x (TMA)
            if W_K_CONTIGUOUS:
                b = w_desc.load([pid_n * BLOCK_N, kk * BLOCK_K]).T  # read BN x BK of W (TMA)
            else:
                b = w_desc.load([kk * BLOCK_K, pid_n * BLOCK_N])
            acc = tl.dot(a, b, acc)
        if WARP_SPECIALIZE and STORE_N > 0:
            _qkv_store_slices(out_desc, acc, pid_n * BLOCK_N, pid_m * BLOCK_M, bias_ptr, M, N, T, n_heads,
                              n_kv_heads, HEAD_DIM, HAS_BIAS, BLOCK_M, BLOCK_N, STORE_N, ONE_BATCH_TILES)
        else:
            _qkv_store_tile(acc, pid_m, pid_n, q_ptr, k_ptr, v_ptr, bias_ptr, cache_len_ptr,
                            M, N, T, n_heads, n_kv_heads, capacity,
                            stride_qb, stride_qh, stride_qt, stride_qd,
                            stride_kb, stride_kh, stride_kt, stride_kd,
                            stride_vb, stride_vh, stride_vt, stride_vd,
                            HEAD_DIM, HAS_BIAS, HAS_CACHE, BLOCK_M, BLOCK_N)
