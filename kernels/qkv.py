"""Fused QKV projection: one GEMM whose epilogue writes Q, K, V in attention layout (or K/V into a cache).

Math. With ``x[B, T, D]`` flattened to ``M = B*T`` rows and the fused weight ``W`` holding the Q, K and
V projections stacked along its output dimension ``N = (Hq + 2*Hkv) * Dh``::

    y[m, n] = sum_k x[m, k] * W[n, k] (+ bias[n])          (fp32 accumulation)
    column n < Hq*Dh          -> q[b, n // Dh,              t,                 n % Dh]
    Hq*Dh <= n < (Hq+Hkv)*Dh  -> k[b, n // Dh - Hq,         t (+ cache_len[b]), n % Dh]
    n >= (Hq+Hkv)*Dh          -> v[b, n // Dh - Hq - Hkv,   t (+ cache_len[b]), n % Dh]

with ``m = b*T + t``. Shapes: q ``[B, Hq, T, Dh]``; k, v ``[B, Hkv, T, Dh]``, or the caches
``[B, Hkv, capacity, Dh]`` written at rows ``cache_len[b] .. cache_len[b] + T - 1``. GQA/MQA: any
``Hkv`` dividing ``Hq``. Cost: ``2*M*N*D`` FLOPs (+ ``M*N`` with a bias); compulsory bytes
``p*(M*D + N*D + M*N (+ N))`` at ``p`` bytes per element (``roofline.cost.qkv_cost``).

Weight layout. ``weight`` has ``nn.Linear``'s shape ``[N, D]`` (``torch.cat([wq, wk, wv])`` of
``nn.Linear`` weights; ``Dh = N / (Hq + 2*Hkv)``). Either memory order is read transpose-free: row-major
(``nn.Linear``'s storage, 128-bit loads along D) or column-major, i.e. ``w.t()`` of a ``[D, N]`` matrix
such as GPT-2's ``Conv1D`` (128-bit loads along N). A tensor of shape ``[D, N]`` is rejected with a
hint to pass ``w.t()``; no copy is ever made.

How the design reaches its GPU targets (targets for users with A100/H100 to measure, not claims):

- *Faster than the unfused sequence at every size* (``F.linear`` + split + view/transpose + contiguous,
  + cache copy: >= 4 kernels). The unfused path writes ``[M, N]``, reads and rewrites it to transpose,
  and copies K/V again into the cache; the fused kernel writes each output element once, in its final
  layout, in one launch. At decode (M = batch) both stream the ``N*D`` weights once, so the saving
  is the launches and the extra passes; in prefill it is ``2*M*N*p`` bytes of traffic.
- *Within 10% of the cuBLAS GEMM alone at M >= 2048.* The core is the tiled, software-pipelined GEMM of
  Triton's matmul tutorial (published at ~267 vs cuBLAS's 273 TFLOP/s on A100 at 8192^3): 128x256x64
  and 128x128 tiles, 3-4 pipeline stages of ``cp.async`` (LDGSTS; Triton 3.9 uses no TMA for these
  pointer loads), fp32 accumulators on HMMA (sm_80) or wgmma (sm_90), and GROUP_M = 8 grouped tile
  order so a wave of programs shares W column tiles and x row tiles in L2. fp32 inputs run as tf32
  on a GPU, pruned to tiles with <= 64 accumulators per thread. The epilogue costs what cuBLAS's
  store costs: ``HEAD_DIM`` is a compile-time constant, so ``n // Dh`` and ``n % Dh`` are shifts
  (multiply-shifts for Dh not a power of two) and each row's stores stay contiguous within a head
  (128-bit stores at Dh = 64 and 128 in the audit); the three section stores are guarded by
  scalar branches, so a tile pays only for the sections it touches. Risk: on H100 a non-persistent,
  non-TMA Triton GEMM has been published ~10% behind cuBLAS (525 vs 585 TFLOP/s at 3072^3); hence
  the sm_90 variant ``"tma"`` (``_qkv_tma_kernel``): x and W tiles by TMA (tensor descriptors, zero
  fill past the edges instead of masks and wrapped rows) and a persistent loop of one program per SM
  over the grouped tiles, the class of Triton's persistent-matmul tutorial. It runs on sm_90 from
  M = 256 when x's rows are uniformly strided and 16-byte aligned. Its K loop is about 40% shorter
  than the pointer kernel's at the same tile (the audit's ``loop`` column, ``--kernel qkv --arch
  90``); not timed here.
- *Decode* (M <= 64): 16-row tiles with 128-256-deep K tiles and 4 stages keep the weight stream
  pipelined; narrow N tiles give ``N/32 .. N/64`` programs. These small tiles run on ``mma.sync``
  (HMMA) on sm_90 too: wgmma needs 64 rows per warpgroup, and at 16-32 rows the weight stream, not
  the tensor cores, bounds the time (16-32 FLOP/byte against H100's ridge near 300). There is no
  split-K here (the fused scatter makes partial sums awkward): for small-N models at batch 1
  (gpt2-small, N = 2304 -> 72 programs) fewer programs than SMs x occupancy may leave bandwidth
  unused; the GEMV kernel (``kernels/gemv.py``) covers that regime for the plain projection.

Static evidence (the sm_80/sm_90 AOT compile of every shipped config, ``python -m kernels.audit
--kernel qkv``): no spills, <= 255 registers, shared memory within both limits, HMMA on sm_80,
HGMMA on sm_90 for the 64/128-row tiles, operand loads as 128-bit ``cp.async`` (LDGSTS), output
stores 128-bit (64-bit for the 16x32 tile). Keeping the prologue's row offsets alive through the K
loop spilled the 128-row tiles on sm_80; the epilogue recomputes them instead.

int64 offsets: every row base (batch and token index times a stride) is computed in int64, so
caches and outputs larger than 2**31 elements are addressed correctly.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels import _qkv_configs as cfgs
from kernels._lib.aot import CompileCase
from kernels._lib.launch import autotuning, record_launch, set_descriptor_allocator, triton_config_id
from kernels._lib.validation import (
    check_device,
    check_flag,
    check_no_overlap,
    check_positive,
    check_same_dtype_device,
    check_shape,
    check_tensor,
    check_vector,
)

KERNEL = "qkv"


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
    NUM_SMS: tl.constexpr, W_K_CONTIGUOUS: tl.constexpr,
):
    """The sm_90 (TMA) kernel: same arguments and results as ``_qkv_kernel``, plus the programs launched
    (``NUM_SMS``) and W's memory order. x is read as one ``[M, K]`` matrix (row stride ``stride_xt``:
    the launcher only sends x whose batch rows follow each other) and W as ``[N, K]`` (row-major,
    ``W_K_CONTIGUOUS``) or ``[K, N]`` (column-major) through tensor descriptors: TMA copies whole tiles
    into shared memory and zero-fills past M, N and K, so no load is masked and nothing wraps. Each
    program loops over output tiles ``program_id, program_id + NUM_SMS, ...`` (persistent), one
    K loop and one fused epilogue per tile."""
    x_desc = tl.make_tensor_descriptor(x_ptr, shape=[M, K], strides=[stride_xt, 1],
                                       block_shape=[BLOCK_M, BLOCK_K])
    if W_K_CONTIGUOUS:
        w_desc = tl.make_tensor_descriptor(w_ptr, shape=[N, K], strides=[stride_wn, 1],
                                           block_shape=[BLOCK_N, BLOCK_K])
    else:
        w_desc = tl.make_tensor_descriptor(w_ptr, shape=[K, N], strides=[stride_wk, 1],
                                           block_shape=[BLOCK_K, BLOCK_N])
    num_tiles = tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N)
    k_tiles = tl.cdiv(K, BLOCK_K)
    for tile_id in range(tl.program_id(0), num_tiles, NUM_SMS):
        pid_m, pid_n = _grouped_tile(tile_id, M, N, BLOCK_M, BLOCK_N, GROUP_M)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for kk in range(0, k_tiles):
            a = x_desc.load([pid_m * BLOCK_M, kk * BLOCK_K])  # read BM x BK of x (TMA)
            if W_K_CONTIGUOUS:
                b = w_desc.load([pid_n * BLOCK_N, kk * BLOCK_K]).T  # read BN x BK of W (TMA)
            else:
                b = w_desc.load([kk * BLOCK_K, pid_n * BLOCK_N])
            acc = tl.dot(a, b, acc)
        _qkv_store_tile(acc, pid_m, pid_n, q_ptr, k_ptr, v_ptr, bias_ptr, cache_len_ptr,
                        M, N, T, n_heads, n_kv_heads, capacity,
                        stride_qb, stride_qh, stride_qt, stride_qd,
                        stride_kb, stride_kh, stride_kt, stride_kd,
                        stride_vb, stride_vh, stride_vt, stride_vd,
                        HEAD_DIM, HAS_BIAS, HAS_CACHE, BLOCK_M, BLOCK_N)


_AUTOTUNED: list = []  # built on first use: autotuning needs a GPU driver, the interpreter has none


def _autotuned_kernel():
    if not _AUTOTUNED:
        _AUTOTUNED.append(triton.autotune(
            configs=cfgs.CONFIGS,
            key=["M", "N", "K"],
            prune_configs_by={"early_config_prune": cfgs.early_config_prune},
        )(_qkv_kernel))
    return _AUTOTUNED[0]


# ----------------------------------------------------------------------------------------------
# Launcher
# ----------------------------------------------------------------------------------------------

VARIANT = "fused"


def select_variant(m: int, n_heads: int, n_kv_heads: int, head_dim: int) -> str:
    """The variant the launcher runs for this shape: always ``"fused"`` (one kernel at every size; the
    tile config, not the variant, changes with M and is recorded by :func:`kernels._lib.launch.last_launch`)."""
    return VARIANT


def _empty(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Output allocation (tests replace it with a NaN-filled one, so unwritten elements fail)."""
    return torch.empty(shape, dtype=like.dtype, device=like.device)


def _validate(x, weight, bias, n_heads, n_kv_heads, k_cache, v_cache, cache_len, check_cache_len
              ) -> tuple[int, int, int, torch.Tensor | None, torch.Tensor | None]:
    """Check every argument (errors name it); returns ``(head_dim, n_heads, n_kv_heads, bias, cache_len)``
    normalised (Python ints; bias and cache_len contiguous)."""
    check_tensor("x", x, ndim=3)
    check_device("x", x)
    batch, tokens, d_model = x.shape
    if d_model == 0:
        raise ValueError(f"x: the model dimension (last) must be positive, got shape {tuple(x.shape)}")
    n_heads = check_positive("n_heads", n_heads)
    n_kv_heads = check_positive("n_kv_heads", n_kv_heads)
    if n_heads % n_kv_heads:
        raise ValueError(f"n_kv_heads: must divide n_heads ({n_heads}), got {n_kv_heads}")
    heads = n_heads + 2 * n_kv_heads
    check_tensor("weight", weight, ndim=2, last_dim_contiguous=False)
    check_same_dtype_device("weight", weight, "x", x)
    n_out, d_in = weight.shape
    if d_in != d_model:
        hint = ""
        if n_out == d_model and d_in % heads == 0:
            hint = ("; this looks like a [D, N] matrix (GPT-2 Conv1D layout): pass weight.t(), "
                    "which is read without a copy")
        raise ValueError(f"weight: expected shape [(n_heads + 2*n_kv_heads) * head_dim, D] with "
                         f"D = {d_model} (x's last dim), got {tuple(weight.shape)}{hint}")
    if n_out == 0 or n_out % heads:
        raise ValueError(f"weight: first dim must be (n_heads + 2*n_kv_heads) * head_dim = "
                         f"{heads} * head_dim, got {n_out}")
    head_dim = n_out // heads
    if weight.stride(1) != 1 and weight.stride(0) != 1:
        raise ValueError(f"weight: one dimension must be contiguous (stride 1), "
                         f"got strides {weight.stride()}")
    bias_in, cache_len_in = bias, cache_len  # the caller's tensors, for the overlap checks
    if bias is not None:
        bias = check_vector("bias", bias, n_out, x, "x")  # any stride (a strided one is copied)
    given = [name for name, t in (("k_cache", k_cache), ("v_cache", v_cache), ("cache_len", cache_len))
             if t is not None]
    if given and len(given) != 3:
        raise ValueError(f"k_cache, v_cache, cache_len: pass all three or none, got only {', '.join(given)}")
    if given:
        check_tensor("k_cache", k_cache, ndim=4)
        check_same_dtype_device("k_cache", k_cache, "x", x)
        check_shape("k_cache", k_cache, (batch, n_kv_heads, k_cache.shape[2], head_dim))
        check_tensor("v_cache", v_cache, ndim=4)
        check_same_dtype_device("v_cache", v_cache, "x", x)
        check_shape("v_cache", v_cache, tuple(k_cache.shape))
        cache_len = check_vector("cache_len", cache_len, batch, x, "x", dtypes=(torch.int32,))
        # The caches are written: refuse one that aliases itself (e.g. expanded over the batch, so two
        # sequences would write one row), the other cache, or any input.
        inputs = {"x": x, "weight": weight, "bias": bias_in, "cache_len": cache_len_in}
        check_no_overlap("k_cache", k_cache, inputs)
        check_no_overlap("v_cache", v_cache, {"k_cache": k_cache, **inputs})
        if check_cache_len and batch and tokens:
            lo, hi = (int(v) for v in torch.stack([cache_len.min(), cache_len.max()]).tolist())
            if lo < 0:
                raise ValueError(f"cache_len: entries must be >= 0, got a minimum of {lo}")
            capacity = k_cache.shape[2]
            if hi + tokens > capacity:
                raise ValueError(f"cache_len: max(cache_len) + T = {hi} + {tokens} exceeds the cache "
                                 f"capacity {capacity} (k_cache.shape[2])")
    return head_dim, n_heads, n_kv_heads, bias, cache_len


def qkv_projection(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    n_heads: int,
    n_kv_heads: int,
    k_cache: torch.Tensor | None = None,
    v_cache: torch.Tensor | None = None,
    cache_len: torch.Tensor | None = None,
    variant: str | None = None,
    config: triton.Config | None = None,
    check_cache_len: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fused QKV projection ``x @ weight.T (+ bias)`` written straight into attention layout.

    Parameters
    ----------
    x : Tensor ``[B, T, D]``, fp16/bf16/fp32, last dim contiguous (a CUDA tensor, or CPU under the
        Triton interpreter).
    weight : Tensor ``[(Hq + 2*Hkv) * Dh, D]`` (``nn.Linear`` shape: Q, K, V weights stacked), same dtype
        and device; row-major (``nn.Linear``) or column-major (``w.t()`` of a ``[D, N]`` matrix).
    bias : optional Tensor ``[(Hq + 2*Hkv) * Dh]``, any stride (a strided one is copied).
    n_heads, n_kv_heads : query heads ``Hq`` and key/value heads ``Hkv`` (``Hkv`` divides ``Hq``):
        positive integers (``int`` or numpy integers; bools are refused).
    k_cache, v_cache : optional Tensors ``[B, Hkv, capacity, Dh]``, last dim contiguous; when given,
        K and V are written IN PLACE at rows ``cache_len[b] .. cache_len[b] + T - 1``, nothing else.
        They must not share memory with each other (interleaved views of one buffer that never meet
        are fine), with themselves (e.g. expanded over the batch) or with any input.
    cache_len : int32 Tensor ``[B]``, any stride, tokens already cached per sequence (required with the
        caches).
    variant : ``None``, ``"fused"`` (pointer loads, every GPU) or ``"tma"`` (tensor-descriptor loads and
        a persistent tile loop, sm_90; x with uniformly strided rows and 16-byte aligned rows). ``None``
        runs ``"tma"`` on an sm_90+ GPU for ``M >= 256`` when the layout allows it, else ``"fused"``.
    config : a ``triton.Config`` to run instead of autotuning / the first config surviving pruning.
    check_cache_len : check ``0 <= cache_len[b]`` and ``cache_len[b] + T <= capacity`` on the host
        (one device-to-host sync). With ``False`` the kernel still never writes outside the cache:
        out-of-range rows are dropped silently.

    Returns
    -------
    ``(q, k, v)``: q ``[B, Hq, T, Dh]``, k and v ``[B, Hkv, T, Dh]`` (new, contiguous), or
    ``(q, k_cache, v_cache)`` when the caches are given.
    """
    if variant not in (None, VARIANT, TMA_VARIANT):
        raise ValueError(f"variant: expected None, {VARIANT!r} or {TMA_VARIANT!r}, got {variant!r}")
    if config is not None and not isinstance(config, triton.Config):
        raise TypeError(f"config: expected a triton.Config, got {type(config).__name__}")
    check_cache_len = check_flag("check_cache_len", check_cache_len)
    head_dim, n_heads, n_kv_heads, bias, cache_len = _validate(
        x, weight, bias, n_heads, n_kv_heads, k_cache, v_cache, cache_len, check_cache_len)
    batch, tokens, d_model = x.shape
    n_out = weight.shape[0]
    q = _empty((batch, n_heads, tokens, head_dim), x)
    use_cache = k_cache is not None
    if use_cache:
        k_out, v_out, capacity = k_cache, v_cache, k_cache.shape[2]
    else:
        k_out = _empty((batch, n_kv_heads, tokens, head_dim), x)
        v_out = _empty((batch, n_kv_heads, tokens, head_dim), x)
        capacity = tokens
    m = batch * tokens
    if m == 0:
        return q, k_out, v_out

    args = (q, k_out, v_out, x, weight, bias, cache_len if use_cache else None,
            m, n_out, d_model, tokens, n_heads, n_kv_heads, capacity,
            *x.stride(), *weight.stride(), *q.stride(), *k_out.stride(), *v_out.stride())
    meta = {"HEAD_DIM": head_dim, "HAS_BIAS": bias is not None, "HAS_CACHE": use_cache}

    if variant is None and m >= TMA_MIN_M and _device_arch(x.device) >= 90 and tma_layout_ok(x, weight):
        variant = TMA_VARIANT
    if variant == TMA_VARIANT:
        config = _launch_tma(args, meta, x, weight, m, n_out, config)
        record_launch(KERNEL, TMA_VARIANT, triton_config_id(config))
        return q, k_out, v_out

    def grid(kw):
        return (triton.cdiv(m, kw["BLOCK_M"]) * triton.cdiv(n_out, kw["BLOCK_N"]),)

    if config is None and autotuning():
        kernel = _autotuned_kernel()
        kernel[grid](*args, **meta)
        config = kernel.best_config
    else:
        if config is None:
            config = cfgs.prune_configs(cfgs.CONFIGS, m, x.element_size())[0]
        _qkv_kernel[grid](*args, **meta, **config.kwargs,
                          num_warps=config.num_warps, num_stages=config.num_stages)
    record_launch(KERNEL, VARIANT, triton_config_id(config))
    return q, k_out, v_out


# ----------------------------------------------------------------------------------------------
# The sm_90 TMA + persistent variant
# ----------------------------------------------------------------------------------------------

TMA_VARIANT = "tma"
TMA_MIN_M = 256  # from here every surviving config has >= 64-row tiles (wgmma)
_INTERPRETER_SMS = 3  # programs launched under the interpreter: few, so each loops over several tiles
_AUTOTUNED_TMA: list = []


def _device_arch(device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    major, minor = torch.cuda.get_device_capability(device)
    return 10 * major + minor


def tma_layout_ok(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a tensor descriptor can read ``x`` as one ``[M, K]`` matrix and ``weight`` as ``[N, K]``
    (row-major) or ``[K, N]`` (column-major): unit inner stride, batch rows following each other, 16-byte
    aligned base addresses and row strides (TMA's requirements)."""
    elt = x.element_size()
    batch, tokens, _ = x.shape
    x_ok = (x.stride(2) == 1 and (batch == 1 or x.stride(0) == tokens * x.stride(1))
            and (x.stride(1) * elt) % 16 == 0 and x.data_ptr() % 16 == 0)
    outer = weight.stride(0) if weight.stride(1) == 1 else weight.stride(1)
    w_ok = min(weight.stride()) == 1 and (outer * elt) % 16 == 0 and weight.data_ptr() % 16 == 0
    return x_ok and w_ok


def _launch_tma(args: tuple, meta: dict, x: torch.Tensor, weight: torch.Tensor, m: int, n_out: int,
                config: triton.Config | None) -> triton.Config:
    if not tma_layout_ok(x, weight):
        raise ValueError("variant: 'tma' needs x [B, T, D] with unit last stride, batch rows following each "
                         "other and 16-byte aligned rows, and weight with 16-byte aligned rows or columns")
    set_descriptor_allocator(x.device)
    sms = (torch.cuda.get_device_properties(x.device).multi_processor_count if x.device.type == "cuda"
           else _INTERPRETER_SMS)
    meta = {**meta, "NUM_SMS": sms, "W_K_CONTIGUOUS": weight.stride(1) == 1}

    def grid(kw):
        return (min(sms, triton.cdiv(m, kw["BLOCK_M"]) * triton.cdiv(n_out, kw["BLOCK_N"])),)

    if config is None and autotuning():
        if not _AUTOTUNED_TMA:
            _AUTOTUNED_TMA.append(triton.autotune(
                configs=cfgs.tma_configs(), key=["M", "N", "K"],
                prune_configs_by={"early_config_prune": cfgs.early_config_prune},
            )(_qkv_tma_kernel))
        _AUTOTUNED_TMA[0][grid](*args, **meta)
        return _AUTOTUNED_TMA[0].best_config
    if config is None:
        config = cfgs.prune_configs(cfgs.tma_configs(), m, x.element_size())[0]
    _qkv_tma_kernel[grid](*args, **meta, **config.kwargs, num_warps=config.num_warps,
                          num_stages=config.num_stages)
    return config


def qkv_projection_tma(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                       **kwargs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`qkv_projection` with ``variant="tma"`` (tensor descriptors, persistent; sm_90)."""
    return qkv_projection(x, weight, bias, variant=TMA_VARIANT, **kwargs)


VARIANTS = {VARIANT: qkv_projection, TMA_VARIANT: qkv_projection_tma}


# ----------------------------------------------------------------------------------------------
# Reference (also the unfused baseline) and tolerances
# ----------------------------------------------------------------------------------------------

def qkv_projection_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    n_heads: int,
    n_kv_heads: int,
    k_cache: torch.Tensor | None = None,
    v_cache: torch.Tensor | None = None,
    cache_len: torch.Tensor | None = None,
    compute_dtype: torch.dtype | None = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The unfused sequence: ``F.linear`` + split + view/transpose + contiguous (+ cache copy).

    Same arguments and results as :func:`qkv_projection` (caches are written in place). The GEMM runs
    in ``compute_dtype`` (fp32 by default, float64 in tests) and results are cast back to ``x.dtype``.
    ``compute_dtype=None`` keeps the input dtype: that is the honest benchmark baseline (cuBLAS on the
    16-bit tensor-core path), see :func:`qkv_projection_unfused`.
    """
    batch, tokens, _ = x.shape
    head_dim = weight.shape[0] // (n_heads + 2 * n_kv_heads)
    cd = x.dtype if compute_dtype is None else compute_dtype
    y = torch.nn.functional.linear(x.to(cd), weight.to(cd), None if bias is None else bias.to(cd))
    y = y.to(x.dtype)
    q, k, v = y.split([n_heads * head_dim, n_kv_heads * head_dim, n_kv_heads * head_dim], dim=-1)
    q = q.view(batch, tokens, n_heads, head_dim).transpose(1, 2).contiguous()
    k = k.view(batch, tokens, n_kv_heads, head_dim)
    v = v.view(batch, tokens, n_kv_heads, head_dim)
    if k_cache is None:
        return q, k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous()
    rows = torch.arange(batch, device=x.device)[:, None].expand(batch, tokens)
    pos = cache_len.to(torch.int64)[:, None] + torch.arange(tokens, device=x.device)[None, :]
    k_cache.transpose(1, 2)[rows, pos] = k  # one scatter per cache, [B, cap, Hkv, Dh] view
    v_cache.transpose(1, 2)[rows, pos] = v
    return q, k_cache, v_cache


def qkv_projection_unfused(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                           **kwargs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The benchmark baseline: :func:`qkv_projection_ref` in the input dtype (no upcast)."""
    return qkv_projection_ref(x, weight, bias, compute_dtype=None, **kwargs)


# (atol, rtol) against the reference for inputs scaled by 1/sqrt(D); fp32 allows for tf32 on a GPU.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (1e-2, 1e-2),
    torch.float32: (5e-3, 5e-3),
}


def compile_cases(arch: int) -> list[CompileCase]:
    """The sm_80/sm_90 audit's cases: every shipped config surviving pruning x fp16/bf16/fp32 at a decode
    (llama2-70b GQA, batch 32, cache append) and a prefill (gpt2-xl, 4 x 1024 tokens, biases) shape;
    on sm_90 also the TMA kernel at llama2-7b's 4096 x 4096 x 12288."""
    cases = cfgs.compile_cases(arch, _qkv_kernel, KERNEL, VARIANT)
    if arch >= 90:
        cases += cfgs.tma_compile_cases(_qkv_tma_kernel, KERNEL, TMA_VARIANT)
    return cases
