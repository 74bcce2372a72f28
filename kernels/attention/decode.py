"""Split-KV ("flash-decoding") attention for decode and short query chunks: the kernels and their launch.

``_attn_splitkv_kernel``, grid ``(num_splits, Hkv, B * row blocks)``: one program = one KV head of one
sequence x one split of its keys x one ``BLOCK_M``-row block of packed queries. The ``group * q_len``
queries sharing a KV head are packed query-major into the M rows of a ``tl.dot`` tile (row ``r`` is
token ``r // group`` of query head ``kv_head * group + r % group``), so each K/V tile is read once per
KV head and both products run on tensor cores even at ``q_len = 1``. The ``cache_len[b] + q_len`` keys
are cut into ``num_splits`` runs of whole ``BLOCK_N`` tiles, each swept by
:func:`~kernels.attention.kernels._attn_kv_loop` (unmasked, then the masked tail). With ``SPLIT``
(``num_splits > 1``) each program writes a normalised fp32 partial O and its base-2 LSE, and
``_attn_combine_kernel`` (grid ``(q_len, Hq, B)``) merges them:
``O = sum_s 2^(lse_s - m) O_s / sum_s 2^(lse_s - m)``. Without ``SPLIT`` it is the single-pass path
and writes O (and the natural-log LSE) directly. Every split count gives the same non-finite results.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels._lib import device, launch
from kernels.attention.configs import (
    COMBINE_SPLIT_TILE,
    COMBINE_WARPS,
    KERNEL,
    block_d,
    decode_block_m,
    device_arch,
    select_num_splits,
    splitkv_config_id,
    splitkv_plan,
)
from kernels.attention.kernels import LN2, LOG2E, _attn_kv_loop


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

    # [split_start, full_end): whole tiles every row sees, unmasked; then the tail tiles (the diagonal
    # and the split/sequence end), masked: a row may see no key at all there (its running max stays
    # -inf), so the exponents use a finite stand-in for the max
    m_i, l_i, acc = _attn_kv_loop(m_i, l_i, acc, q, q_pos, k_base, v_base, stride_kn, stride_vn,
                                  split_start, full_end, qk_scale, HEAD_DIM, BLOCK_D, BLOCK_N,
                                  MASKED=False, USE_TMA=False)
    m_i, l_i, acc = _attn_kv_loop(m_i, l_i, acc, q, q_pos, k_base, v_base, stride_kn, stride_vn,
                                  full_end, split_end, qk_scale, HEAD_DIM, BLOCK_D, BLOCK_N,
                                  MASKED=True, USE_TMA=False)

    # Non-finite scores (the convention in kernels/attention/DESIGN.md): l_i == 0 exactly when no
    # visible score was finite-or-+inf (all -inf, or no key in this split): LSE -inf. l_i is NaN when a
    # score was +inf or NaN, and so is m + log2(l): LSE NaN. The final O is acc / l (0/0 = NaN for an
    # all -inf query, as the reference); a partial O of a split that saw nothing must stay finite (0),
    # since the combine weighs it by 2^-inf = 0 and 0 * NaN would be NaN.
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
            tl.store(lse_ptr + lse_rows, lse2 * LN2, mask=row_mask)


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
        lse = (m + tl.math.log2(w_sum)) * LN2
        tl.store(lse_ptr + batch * stride_lseb + head * stride_lseh + tok, lse)


# ----------------------------------------------------------------------------------------------
# Launch
# ----------------------------------------------------------------------------------------------

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


def launch_splitkv(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, cache_len: torch.Tensor,
                   o: torch.Tensor, lse: torch.Tensor | None, scale: float, num_splits: int | None,
                   config: triton.Config | None = None) -> int:
    """Launch split-KV (and, with more than one split, the combine kernel) on validated inputs into
    preallocated ``o`` (and ``lse``); the fp32 partials come from :func:`kernels._lib.launch.empty`.
    ``num_splits=None``: :func:`~kernels.attention.configs.select_num_splits` on this device's SMs.
    ``config``: default :func:`~kernels.attention.configs.decode_config`. Returns the splits used and
    records the launch as ``("attention", "splitkv", config id + num_splits)``."""
    batch, n_heads, q_len, head_dim = q.shape
    n_kv_heads, capacity = k_cache.shape[1], k_cache.shape[2]
    n_sms = device.num_sms(q.device)
    requested = num_splits
    plan = splitkv_plan(batch, n_heads, n_kv_heads, q_len, head_dim, capacity, q.element_size(),
                        device_arch(q.device), n_sms, requested)  # cached per key
    m_blocks, cfg, num_splits = plan.m_blocks, config or plan.config, plan.num_splits
    if config is not None and requested is None:  # an explicit config (tests, the audit) splits by its tile
        num_splits = select_num_splits(batch, n_kv_heads, capacity, m_blocks=m_blocks, n_sms=n_sms,
                                       block_n=config.kwargs["BLOCK_N"])
    o_part = lse_part = None
    if num_splits > 1:
        o_part = launch.empty((batch, n_heads, q_len, num_splits, head_dim), torch.float32, q.device)
        lse_part = launch.empty((batch, n_heads, q_len, num_splits), torch.float32, q.device)
    args, meta = splitkv_args(q, k_cache, v_cache, cache_len, o, lse, scale, num_splits, o_part, lse_part)
    launch.run(_attn_splitkv_kernel, (num_splits, n_kv_heads, batch * m_blocks),
               *args, **meta, **cfg.kwargs, num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    if num_splits > 1:
        args, cmeta = combine_args(o, lse, o_part, lse_part)
        launch.run(_attn_combine_kernel, (q_len, n_heads, batch), *args, **cmeta, num_warps=COMBINE_WARPS)
    launch.record_launch(KERNEL, "splitkv", f"{splitkv_config_id(cfg, meta)},num_splits={num_splits}")
    return num_splits
