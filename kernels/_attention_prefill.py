"""Prefill attention kernel (FlashAttention-2 forward, causal, over a KV cache); the public launcher,
validation and configs live in :mod:`kernels.attention`.

One program computes ``BLOCK_M`` queries of one query head of one sequence against that head's KV
group, in two loops over ``BLOCK_N``-key tiles:

1. keys ``[0, diag_start)``: visible to every query of the block (``diag_start`` is the first tile
   boundary past the block's first query position), loaded and scored with no sequence mask at all;
2. keys ``[diag_start, hi)``: the diagonal tiles, masked with ``key <= query position``; ``hi`` is one
   past the block's last query position, so tiles entirely above the diagonal are never visited
   (loop bounds, not masks) and nothing at or past ``cache_len + q_len`` is ever loaded.

Softmax is online in fp32 and in base 2: in the unmasked loop ``scale * log2(e)`` is folded into the
``exp2`` argument's FMA (``exp2(qk * qk_scale - m)``), the row max taken on the raw scores; the masked
diagonal tiles scale before masking; the output tile is rescaled lazily and written once, normalised, with an
optional natural-log LSE (``m + log2(l)`` times ``ln 2``).

K/V tiles come by pointer loads (``cp.async`` pipelined), or on sm_90 with ``USE_TMA`` through
in-kernel tensor descriptors over each (batch, KV head)'s ``[kv_len, HEAD_DIM]`` slice: TMA zero-fills
rows past the sequence and columns past the head dim, so those loads need no mask.

Head dims that are not powers of two (80, 96) are padded to ``BLOCK_D`` (the next power of two): loads
are masked on the head dim so the padding reads zeros, and stores are masked the same way.
"""

from __future__ import annotations

import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def _online_softmax_tile(qk, v, m_i, l_i, acc, qk_scale):
    """Fold one KV tile into the running softmax state (base 2), shared by the prefill and decode kernels.

    ``qk`` [M, N]: raw scores ``q . k``, masked entries ``-inf``; the scaled score is ``qk * qk_scale``
    with ``qk_scale = |scale| * log2(e) >= 0`` (the kernels negate q for a negative scale), so the row
    max is taken on the raw scores and scaled once per row, and ``exp2(qk * qk_scale - m)`` is one FMA
    per score (no separate scaling multiply). A tile with masked entries is passed already scaled, with
    ``qk_scale = 1.0``, so a zero scale never meets ``-inf * 0``. ``v`` [N, D]; ``m_i``/``l_i`` [M]:
    running max (scaled units) and sum; ``acc`` [M, D] fp32: unnormalised output. A row that has seen
    no visible key yet keeps ``m = -inf``; the exponents then use 0 as a finite stand-in for the max, so
    no ``-inf - -inf`` NaN appears (a no-op for rows with a finite max).
    """
    m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
    m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    p = tl.math.exp2(qk * qk_scale - m_use[:, None])
    alpha = tl.math.exp2(m_i - m_use)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    acc = tl.dot(p.to(v.dtype), v, acc)
    return m_new, l_i, acc


@triton.jit
def _attn_prefill_kernel(
    o_ptr, lse_ptr,
    q_ptr, k_ptr, v_ptr, cache_len_ptr,
    qk_scale,  # scale * log2(e), fp32
    q_len, group,  # new tokens per sequence; query heads per KV head (Hq // Hkv)
    stride_qb, stride_qh, stride_qm,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_om,
    stride_lseb, stride_lseh,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    STORE_LSE: tl.constexpr, USE_TMA: tl.constexpr = False,
):
    start_m = tl.program_id(0)
    head = tl.program_id(1).to(tl.int64)
    batch = tl.program_id(2).to(tl.int64)
    kv_head = head // group
    past = tl.load(cache_len_ptr + batch)  # tokens cached before this step (int32)
    kv_len = past + q_len

    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    m_mask = offs_m < q_len
    d_mask = offs_d < HEAD_DIM  # all-true (and folded) unless the head dim is padded

    # int64 bases: batch * stride_*b passes 2**31 for large caches; in-tile offsets stay int32.
    q_base = q_ptr + batch * stride_qb + head * stride_qh
    k_base = k_ptr + batch * stride_kb + kv_head * stride_kh
    v_base = v_ptr + batch * stride_vb + kv_head * stride_vh
    if USE_TMA:
        # sm_90: K/V tiles by TMA, zero-filled past the sequence (kv_len) and past the head dim
        k_desc = tl.make_tensor_descriptor(k_base, shape=[kv_len, HEAD_DIM], strides=[stride_kn, 1],
                                           block_shape=[BLOCK_N, BLOCK_D])
        v_desc = tl.make_tensor_descriptor(v_base, shape=[kv_len, HEAD_DIM], strides=[stride_vn, 1],
                                           block_shape=[BLOCK_N, BLOCK_D])

    # read BLOCK_M x Dh of Q once; it stays on chip for the whole KV sweep
    q = tl.load(q_base + offs_m[:, None] * stride_qm + offs_d[None, :],
                mask=m_mask[:, None] & d_mask[None, :], other=0.0)
    # scores are scaled inside the exp2 FMA, which needs a scale >= 0: a negative one negates q instead
    q = tl.where(qk_scale < 0, -q, q)
    qk_scale = tl.abs(qk_scale)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    first_pos = past + start_m * BLOCK_M  # position of the block's first query
    q_pos = past + offs_m
    diag_start = ((first_pos + 1) // BLOCK_N) * BLOCK_N
    hi = tl.minimum(first_pos + BLOCK_M, kv_len)

    # 1) tiles below the diagonal: no sequence mask (every key < diag_start <= first_pos + 1 <= kv_len)
    for start_n in range(0, diag_start, BLOCK_N):
        offs_kv = start_n + offs_n
        # read BLOCK_N x Dh of K and of V per iteration: the only HBM stream in the loop
        if USE_TMA:
            k = k_desc.load([start_n, 0])
        else:
            k = tl.load(k_base + offs_kv[:, None] * stride_kn + offs_d[None, :], mask=d_mask[None, :],
                        other=0.0)
        qk = tl.dot(q, tl.trans(k))  # raw scores: the scale is applied in the exp2 FMA
        if USE_TMA:
            v = v_desc.load([start_n, 0])
        else:
            v = tl.load(v_base + offs_kv[:, None] * stride_vn + offs_d[None, :], mask=d_mask[None, :],
                        other=0.0)
        m_i, l_i, acc = _online_softmax_tile(qk, v, m_i, l_i, acc, qk_scale)

    # 2) diagonal tiles: causal mask. Key 0 is visible to every row, so a row whose scores in one tile
    # are all masked already has a finite running max (no -inf - -inf).
    for start_n in range(diag_start, hi, BLOCK_N):
        offs_kv = start_n + offs_n
        n_mask = offs_kv < hi
        if USE_TMA:
            k = k_desc.load([start_n, 0])
        else:
            k = tl.load(k_base + offs_kv[:, None] * stride_kn + offs_d[None, :],
                        mask=n_mask[:, None] & d_mask[None, :], other=0.0)
        qk = tl.dot(q, tl.trans(k)) * qk_scale  # scaled before masking (a zero scale meets no -inf)
        visible = (offs_kv[None, :] <= q_pos[:, None]) & n_mask[None, :]
        qk = tl.where(visible, qk, float("-inf"))
        if USE_TMA:
            v = v_desc.load([start_n, 0])
        else:
            v = tl.load(v_base + offs_kv[:, None] * stride_vn + offs_d[None, :],
                        mask=n_mask[:, None] & d_mask[None, :], other=0.0)
        m_i, l_i, acc = _online_softmax_tile(qk, v, m_i, l_i, acc, 1.0)

    # write BLOCK_M x Dh of O once (and BLOCK_M fp32 LSEs)
    acc = acc / l_i[:, None]
    o_base = o_ptr + batch * stride_ob + head * stride_oh
    tl.store(o_base + offs_m[:, None] * stride_om + offs_d[None, :], acc.to(o_ptr.dtype.element_ty),
             mask=m_mask[:, None] & d_mask[None, :])
    if STORE_LSE:
        lse = (m_i + tl.math.log2(l_i)) * 0.6931471805599453  # ln 2
        tl.store(lse_ptr + batch * stride_lseb + head * stride_lseh + offs_m, lse, mask=m_mask)



# ----------------------------------------------------------------------------------------------
# Configs, per padded head dim (BLOCK_D). Without autotuning the first config that survives pruning
# (prune_configs) runs, so the usual best for long prompts comes first; the 64-row tile is for short
# chunks (q_len <= 64) and for filling SMs at small batch x heads. On sm_90 the autotuner tries the
# sm_90-only 128x128 tile beside the configs every architecture ships, and picks by measurement.
# Shared memory ~ element_size * (BLOCK_M*BLOCK_D + 2*num_stages*BLOCK_N*BLOCK_D) (Q + K/V stages; an
# upper bound: Triton 3.9 on sm_80 keeps num_stages - 1 K/V buffers). Registers: the fp32 score tile
# and accumulator, (BLOCK_M*BLOCK_N + BLOCK_M*BLOCK_D) / (32*num_warps) per thread, within the
# architecture's budget (FP32_REGISTER_BUDGET). The budgets and the sm_90-only configs come from the
# AOT compile (python -m kernels.audit --kernel attention: registers, spills and the loop column).
# ----------------------------------------------------------------------------------------------

def _cfg(block_m: int, block_n: int, warps: int, stages: int) -> triton.Config:
    return triton.Config({"BLOCK_M": block_m, "BLOCK_N": block_n}, num_warps=warps, num_stages=stages)


# fp32 score-tile + accumulator registers per thread a config may need, by compute capability:
# sm_80 (mma.sync keeps operand fragments in registers too): 96, since 128x64 tiles at Dh=64 on 4
# warps (128 of them) spilled at 255 registers; sm_90 (wgmma reads the K/V operands from shared
# memory): 128, the 128x128 tile at Dh=128 on 8 warps, which compiles at 254 registers, no spill.
FP32_REGISTER_BUDGET = {80: 96, 90: 128}

# The 128x128 tile on 8 warps, 2 stages: sm_90 only (sm_80 keeps the configs it shipped before; at
# Dh=128 it is past sm_80's budget). Its steady-state loop streams 64 KiB of K/V per iteration.
SM90_CONFIGS: dict[int, list[triton.Config]] = {
    64: [_cfg(128, 128, 8, 2)],
    128: [_cfg(128, 128, 8, 2)],
    256: [],
}

PREFILL_CONFIGS: dict[int, list[triton.Config]] = {
    64: SM90_CONFIGS[64] + [_cfg(128, 64, 8, 3), _cfg(64, 64, 4, 3)],     # 64 KB / 56 KB estimated (fp16)
    # 64x64 with 4 warps compiled at the 255-register cap on sm_80 (spilling with 2 stages): 64x32
    128: SM90_CONFIGS[128] + [_cfg(128, 64, 8, 3), _cfg(64, 32, 4, 3)],  # 128 KB / 64 KB estimated
    256: SM90_CONFIGS[256] + [_cfg(64, 32, 8, 2)],   # 96 KB; 64-key tiles would need 160 KB
}

# Per-block shared-memory opt-in maximum by compute capability (bytes); 99 KB for anything unknown.
SMEM_LIMIT = {80: 166912, 86: 101376, 87: 166912, 89: 101376, 90: 232448}


def block_d(head_dim: int) -> int:
    """The padded head dim a kernel tiles with (next power of two; 80 and 96 -> 128)."""
    return triton.next_power_of_2(head_dim)


def smem_estimate(cfg: triton.Config, bd: int, elt: int, block_m: int | None = None) -> int:
    """Q tile + pipelined K and V tiles, bytes (an estimate; the audit reads the compiled figure)."""
    bm = block_m if block_m is not None else cfg.kwargs["BLOCK_M"]
    return elt * (bm * bd + 2 * cfg.num_stages * cfg.kwargs["BLOCK_N"] * bd)


def _sm90_only(cfg: triton.Config, bd: int) -> bool:
    return any(cfg is c for c in SM90_CONFIGS.get(bd, ()))


def prune_configs(configs: list[triton.Config], bd: int, elt: int, arch: int,
                  block_m: int | None = None) -> list[triton.Config]:
    """Configs for ``arch`` (compute capability, ``major * 10 + minor``): the :data:`SM90_CONFIGS` only on
    sm_90 and later, estimated shared memory within ``arch``'s limit, and fp32 score tile + accumulator
    within ``arch``'s register budget (:data:`FP32_REGISTER_BUDGET`; sm_80's 96 for anything before
    sm_90). The cheapest one if none would fit (never empty). ``elt``: bytes/element."""
    limit = SMEM_LIMIT.get(arch, 101376)
    budget = FP32_REGISTER_BUDGET[90 if arch >= 90 else 80]

    def fits(c: triton.Config) -> bool:
        if arch < 90 and _sm90_only(c, bd):
            return False
        bm = block_m if block_m is not None else c.kwargs["BLOCK_M"]
        fp32_regs = bm * (c.kwargs["BLOCK_N"] + bd) // (32 * c.num_warps)
        return smem_estimate(c, bd, elt, block_m) <= limit and fp32_regs <= budget

    kept = [c for c in configs if fits(c)]
    return kept or [min(configs, key=lambda c: smem_estimate(c, bd, elt, block_m))]


def prefill_config(head_dim: int, q_len: int, elt: int, arch: int) -> triton.Config:
    """The prefill config launched without autotuning: the first survivor of :func:`prune_configs`,
    a 64-row tile when ``q_len <= 64``."""
    bd = block_d(head_dim)
    kept = prune_configs(PREFILL_CONFIGS[bd], bd, elt, arch)
    short = [c for c in kept if c.kwargs["BLOCK_M"] <= 64]
    return short[0] if q_len <= 64 and short else kept[0]


def prefill_tma_ok(k_cache, v_cache) -> bool:
    """Whether K/V tiles can come by TMA (tensor descriptors): unit head-dim stride and 16-byte aligned
    base addresses and batch/head/token strides, so every (batch, head) slice is a TMA-legal matrix."""
    for t in (k_cache, v_cache):
        elt = t.element_size()
        if t.stride(3) != 1 or t.data_ptr() % 16 or any((s * elt) % 16 for s in t.stride()[:3]):
            return False
    return True


def prefill_args(q, k_cache, v_cache, cache_len, o, lse, scale: float,
                 tma: bool = False) -> tuple[tuple, dict]:
    """Positional arguments and shape-derived constexprs of ``_attn_prefill_kernel``; ``tma``: load K/V
    through tensor descriptors (sm_90, when :func:`prefill_tma_ok`; the caller sets
    :func:`kernels._lib.launch.set_descriptor_allocator`)."""
    head_dim = q.shape[3]
    lse_t = lse if lse is not None else o  # never written when STORE_LSE is False
    group = q.shape[1] // k_cache.shape[1]
    args = (o, lse_t, q, k_cache, v_cache, cache_len, scale * LOG2E, q.shape[2], group,
            *q.stride()[:3], *k_cache.stride()[:3], *v_cache.stride()[:3], *o.stride()[:3],
            *lse_t.stride()[:2])
    return args, dict(HEAD_DIM=head_dim, BLOCK_D=block_d(head_dim), STORE_LSE=lse is not None, USE_TMA=tma)
