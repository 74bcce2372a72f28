"""Split-KV ("flash-decoding") attention kernels for decode and short query chunks; the public launcher,
validation and configs live in :mod:`kernels.attention`.

``_attn_splitkv_kernel``: one program = one KV head of one sequence x one split of its keys x one
``BLOCK_M``-row block of packed queries. The ``group * q_len`` queries that share a KV head (the
``Hq // Hkv`` query heads of a GQA group, times the ``q_len`` new tokens) are packed query-major into the
M dimension of a ``tl.dot`` tile (row ``r`` is token ``r // group`` of query head
``kv_head * group + r % group``), so each K/V tile is loaded once for the whole group and both products
run on tensor cores even at ``q_len = 1``. Sequence ``b``'s ``cache_len[b] + q_len`` keys are cut
into ``num_splits`` runs of whole ``BLOCK_N`` tiles; a split that starts past a query's position (or
past the sequence) contributes nothing.

With ``SPLIT`` (``num_splits > 1``) each program writes its normalised partial output (fp32) and its
base-2 LSE (``-inf`` and a zero partial for a split that saw no key, or only ``-inf`` scores), and
``_attn_combine_kernel`` merges the splits: ``O = sum_s 2^(lse_s - m) O_s / sum_s 2^(lse_s - m)``.
Without ``SPLIT`` the same kernel is the single-pass path: it normalises and writes O (and the
natural-log LSE) directly. Every split count gives the same non-finite results (the convention is in
:mod:`kernels.attention`): all splits ``-inf`` combine to ``0/0`` = NaN and ``-inf``; a NaN split LSE
(a ``+inf`` or NaN score) makes the total weight, hence O and LSE, NaN.
"""

from __future__ import annotations

import triton
import triton.language as tl

from kernels._attention_prefill import LOG2E, _online_softmax_tile, block_d, prune_configs
from kernels._lib.launch import config_id

DEFAULT_SM_COUNT = 132  # H100 SXM; the launcher reads the real count from torch.cuda on a GPU


@triton.jit
def _attn_splitkv_kernel(
    o_ptr, lse_ptr,
    q_ptr, k_ptr, v_ptr, cache_len_ptr,
    qk_scale,  # scale * log2(e), fp32
    q_len, group, num_splits,
    stride_qb, stride_qh, stride_qm,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_om, stride_os,  # O [B,Hq,q_len,Dh] or partial O [B,Hq,q_len,S,Dh]
    stride_lseb, stride_lseh, stride_lsem,  # LSE [B,Hq,q_len] or partial LSE [B,Hq,q_len,S] (S unit)
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    SPLIT: tl.constexpr, STORE_LSE: tl.constexpr,
):
    split = tl.program_id(0)
    kv_head = tl.program_id(1).to(tl.int64)
    n_rows = group * q_len
    m_blocks = tl.cdiv(n_rows, BLOCK_M)
    batch = (tl.program_id(2) // m_blocks).to(tl.int64)
    m_block = tl.program_id(2) % m_blocks

    past = tl.load(cache_len_ptr + batch)
    kv_len = past + q_len

    rows = m_block * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < n_rows
    tok = rows // group  # query token of each packed row
    head = kv_head * group + (rows % group)  # query head of each packed row
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_mask = offs_d < HEAD_DIM

    # read the group's queries once: BLOCK_M x Dh
    q_rows = batch * stride_qb + head * stride_qh + tok * stride_qm
    q = tl.load(q_ptr + q_rows[:, None] + offs_d[None, :],
                mask=row_mask[:, None] & d_mask[None, :], other=0.0)
    # the unmasked loop scales inside the exp2 FMA, which needs a scale >= 0: a negative one negates q
    q = tl.where(qk_scale < 0, -q, q)
    qk_scale = tl.abs(qk_scale)

    # this split's keys: whole tiles [split_start, split_end), clipped to the sequence and to the
    # block's last query position (keys past it are above the diagonal for every row)
    tiles_per_split = tl.cdiv(tl.cdiv(kv_len, BLOCK_N), num_splits)
    split_start = split * tiles_per_split * BLOCK_N
    tok_first = (m_block * BLOCK_M) // group
    tok_last = tl.minimum((m_block * BLOCK_M + BLOCK_M - 1) // group, q_len - 1)
    split_end = tl.minimum(tl.minimum(split_start + tiles_per_split * BLOCK_N, kv_len), past + tok_last + 1)
    # [split_start, full_end): whole tiles every row of the block sees (keys <= past + tok_first)
    full_end = tl.minimum(((past + tok_first + 1) // BLOCK_N) * BLOCK_N, (split_end // BLOCK_N) * BLOCK_N)
    full_end = tl.maximum(full_end, split_start)

    k_base = k_ptr + batch * stride_kb + kv_head * stride_kh
    v_base = v_ptr + batch * stride_vb + kv_head * stride_vh
    q_pos = past + tok

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    for start_n in range(split_start, full_end, BLOCK_N):
        offs_kv = start_n + offs_n
        # read BLOCK_N x Dh of K and of V: the KV stream, shared by all BLOCK_M packed rows
        k = tl.load(k_base + offs_kv[:, None] * stride_kn + offs_d[None, :], mask=d_mask[None, :], other=0.0)
        qk = tl.dot(q, tl.trans(k))  # raw scores: the scale is applied in the exp2 FMA
        v = tl.load(v_base + offs_kv[:, None] * stride_vn + offs_d[None, :], mask=d_mask[None, :], other=0.0)
        m_i, l_i, acc = _online_softmax_tile(qk, v, m_i, l_i, acc, qk_scale)

    # tail tiles (the diagonal and the split/sequence end): masked; a row may see no key at all here
    # (its running max stays -inf), so exponents use a finite stand-in for the max
    for start_n in range(full_end, split_end, BLOCK_N):
        offs_kv = start_n + offs_n
        n_mask = offs_kv < split_end
        k = tl.load(k_base + offs_kv[:, None] * stride_kn + offs_d[None, :],
                    mask=n_mask[:, None] & d_mask[None, :], other=0.0)
        qk = tl.dot(q, tl.trans(k)) * qk_scale  # scaled before masking (a zero scale meets no -inf)
        visible = (offs_kv[None, :] <= q_pos[:, None]) & n_mask[None, :]
        qk = tl.where(visible, qk, float("-inf"))
        v = tl.load(v_base + offs_kv[:, None] * stride_vn + offs_d[None, :],
                    mask=n_mask[:, None] & d_mask[None, :], other=0.0)
        m_i, l_i, acc = _online_softmax_tile(qk, v, m_i, l_i, acc, 1.0)

    # Non-finite scores (the convention in kernels.attention): l_i == 0 exactly when no visible score
    # was finite-or-+inf (all -inf, or no key in this split): LSE -inf. l_i is NaN when a score was
    # +inf or NaN, and so is m + log2(l): LSE NaN. The final O is acc / l (0/0 = NaN for an all -inf
    # query, as the reference); a partial O of a split that saw nothing must stay finite (0), since
    # the combine weighs it by 2^-inf = 0 and 0 * NaN would be NaN.
    empty = l_i == 0.0
    l_safe = tl.where(empty, 1.0, l_i)  # log2(0) is -inf anyway; this keeps the interpreter quiet
    lse2 = tl.where(empty, float("-inf"), m_i + tl.math.log2(l_safe))
    if SPLIT:
        acc = acc / l_safe[:, None]
    else:
        acc = acc / l_i[:, None]
    o_rows = batch * stride_ob + head * stride_oh + tok * stride_om + split * stride_os
    out_mask = row_mask[:, None] & d_mask[None, :]
    lse_rows = batch * stride_lseb + head * stride_lseh + tok * stride_lsem
    if SPLIT:
        # write BLOCK_M x Dh fp32 partials + BLOCK_M base-2 LSEs per split (combined by the next kernel)
        tl.store(o_ptr + o_rows[:, None] + offs_d[None, :], acc, mask=out_mask)
        tl.store(lse_ptr + lse_rows + split, lse2, mask=row_mask)
    else:
        tl.store(o_ptr + o_rows[:, None] + offs_d[None, :], acc.to(o_ptr.dtype.element_ty), mask=out_mask)
        if STORE_LSE:
            tl.store(lse_ptr + lse_rows, lse2 * 0.6931471805599453, mask=row_mask)


@triton.jit
def _attn_combine_kernel(
    o_ptr, lse_ptr,
    o_part_ptr, lse_part_ptr,
    num_splits,
    stride_ob, stride_oh, stride_om,
    stride_lseb, stride_lseh,
    stride_pb, stride_ph, stride_pm, stride_ps,  # partial O [B,Hq,q_len,S,Dh]
    stride_plb, stride_plh, stride_plm,  # partial LSE [B,Hq,q_len,S] (S unit stride)
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_S: tl.constexpr, SPLIT_TILE: tl.constexpr,
    STORE_LSE: tl.constexpr,
):
    tok = tl.program_id(0).to(tl.int64)
    head = tl.program_id(1).to(tl.int64)
    batch = tl.program_id(2).to(tl.int64)
    offs_d = tl.arange(0, BLOCK_D)
    d_mask = offs_d < HEAD_DIM

    # read num_splits base-2 LSEs: their max and the total weight
    lse_base = lse_part_ptr + batch * stride_plb + head * stride_plh + tok * stride_plm
    offs_s = tl.arange(0, BLOCK_S)
    lse_all = tl.load(lse_base + offs_s, mask=offs_s < num_splits, other=float("-inf"))
    m = tl.max(lse_all, 0)
    m_use = tl.where(m == float("-inf"), 0.0, m)
    w_sum = tl.sum(tl.math.exp2(lse_all - m_use), 0)

    # read num_splits x Dh fp32 partials, SPLIT_TILE splits at a time (bounded registers)
    o_base = o_part_ptr + batch * stride_pb + head * stride_ph + tok * stride_pm
    acc = tl.zeros([BLOCK_D], dtype=tl.float32)
    for s0 in range(0, num_splits, SPLIT_TILE):
        offs_t = s0 + tl.arange(0, SPLIT_TILE)
        t_mask = offs_t < num_splits
        w = tl.math.exp2(tl.load(lse_base + offs_t, mask=t_mask, other=float("-inf")) - m_use)
        o_t = tl.load(o_base + offs_t[:, None] * stride_ps + offs_d[None, :],
                      mask=t_mask[:, None] & d_mask[None, :], other=0.0)
        acc += tl.sum(w[:, None] * o_t, 0)

    # write Dh of O (+ one natural-log LSE)
    out = acc / w_sum
    tl.store(o_ptr + batch * stride_ob + head * stride_oh + tok * stride_om + offs_d,
             out.to(o_ptr.dtype.element_ty), mask=d_mask)
    if STORE_LSE:
        lse = (m + tl.math.log2(w_sum)) * 0.6931471805599453  # ln 2
        tl.store(lse_ptr + batch * stride_lseb + head * stride_lseh + tok, lse)


# ----------------------------------------------------------------------------------------------
# Configs, per padded head dim (BLOCK_D). BLOCK_M is not tuned: it is the packed row count
# (group * q_len) rounded up to a power of two in [16, 64], 16 being the smallest tl.dot tile.
# Shared memory ~ element_size * (BLOCK_M*BLOCK_D + 2*num_stages*BLOCK_N*BLOCK_D); with 3 stages each
# program keeps two K/V tiles (2 x 2 x BLOCK_N*BLOCK_D*2 B = 64 KB at Dh=128) in flight, far above
# the ~16 KB per SM that Little's law asks of HBM3 at ~600 ns latency.
# ----------------------------------------------------------------------------------------------

DECODE_CONFIGS: dict[int, list[triton.Config]] = {
    64: [triton.Config({"BLOCK_N": 64}, num_warps=4, num_stages=3)],   # 50 KB (fp16)
    128: [triton.Config({"BLOCK_N": 64}, num_warps=4, num_stages=3)],  # 100 KB
    256: [triton.Config({"BLOCK_N": 32}, num_warps=4, num_stages=3)],  # 104 KB
}
COMBINE_WARPS = 4
COMBINE_SPLIT_TILE = 16  # splits merged per step: 16 x BLOCK_D fp32 = 32 registers per thread at Dh=256
MAX_SPLITS = 128


def decode_block_m(group: int, q_len: int) -> int:
    """Packed rows per split-KV program: ``group * q_len`` rounded up to a power of two in [16, 64]."""
    return min(64, max(16, triton.next_power_of_2(max(1, group * q_len))))


def decode_config(head_dim: int, elt: int, arch: int, block_m: int) -> triton.Config:
    """The split-KV config for a head dim: the first survivor of :func:`prune_configs`."""
    bd = block_d(head_dim)
    return prune_configs(DECODE_CONFIGS[bd], bd, elt, arch, block_m=block_m)[0]


def select_num_splits(batch: int, n_kv_heads: int, kv_len: int, *, m_blocks: int = 1,
                      n_sms: int = DEFAULT_SM_COUNT, block_n: int = 64) -> int:
    """Splits of the KV axis for the split-KV kernel (after FlashAttention-2's ``num_splits_heuristic``).

    ``batch * n_kv_heads * m_blocks`` programs run without splitting; if that is >= 80% of the SMs,
    one split. Otherwise the split count (at most :data:`MAX_SPLITS`, and at least 4 key tiles per
    split so each program streams enough to amortise its prologue) whose last wave is best filled:
    the smallest count within 85% of the best wave efficiency. ``kv_len`` is the longest sequence's
    key count; the launcher passes the cache capacity (an upper bound known without a device sync).
    """
    programs = max(1, batch * n_kv_heads * m_blocks)
    if programs >= 0.8 * n_sms:
        return 1
    max_splits = max(1, min(MAX_SPLITS, triton.cdiv(max(kv_len, 1), 4 * block_n)))
    eff = [programs * s / (triton.cdiv(programs * s, n_sms) * n_sms) for s in range(1, max_splits + 1)]
    best = max(eff)
    return next(s for s, e in enumerate(eff, start=1) if e >= 0.85 * best)


def splitkv_args(q, k_cache, v_cache, cache_len, o, lse, scale: float, num_splits: int,
                  o_part, lse_part) -> tuple[tuple, dict]:
    """Positional arguments and shape-derived constexprs of ``_attn_splitkv_kernel``: it writes the
    fp32 partials ``o_part``/``lse_part`` when ``num_splits > 1``, else ``o`` (and ``lse``) directly."""
    n_heads, q_len, head_dim = q.shape[1:]
    group = n_heads // k_cache.shape[1]
    if num_splits > 1:
        outs = (o_part, lse_part, *o_part.stride()[:4], *lse_part.stride()[:3])
    else:
        lse_t = lse if lse is not None else o
        outs = (o, lse_t, *o.stride()[:3], 0, *(lse.stride() if lse is not None else (0, 0, 0)))
    args = (*outs[:2], q, k_cache, v_cache, cache_len, scale * LOG2E, q_len, group, num_splits,
            *q.stride()[:3], *k_cache.stride()[:3], *v_cache.stride()[:3], *outs[2:])
    meta = dict(HEAD_DIM=head_dim, BLOCK_D=block_d(head_dim), BLOCK_M=decode_block_m(group, q_len),
                SPLIT=num_splits > 1, STORE_LSE=lse is not None)
    return args, meta


def combine_args(o, lse, o_part, lse_part) -> tuple[tuple, dict]:
    """Positional arguments and constexprs of ``_attn_combine_kernel``."""
    lse_t = lse if lse is not None else o
    num_splits, head_dim = o_part.shape[3], o.shape[3]
    args = (o, lse_t, o_part, lse_part, num_splits, *o.stride()[:3], *lse_t.stride()[:2],
            *o_part.stride()[:4], *lse_part.stride()[:3])
    return args, dict(HEAD_DIM=head_dim, BLOCK_D=block_d(head_dim),
                      BLOCK_S=triton.next_power_of_2(num_splits), SPLIT_TILE=COMBINE_SPLIT_TILE,
                      STORE_LSE=lse is not None)


def splitkv_config_id(cfg: triton.Config, meta: dict) -> str:
    return config_id({**cfg.kwargs, "BLOCK_M": meta["BLOCK_M"], "SPLIT": int(meta["SPLIT"])},
                     cfg.num_warps, cfg.num_stages)
