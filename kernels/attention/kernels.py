"""The ``@triton.jit`` pieces both attention stages share (Triton inlines them into each kernel): one
online-softmax step and the one KV-tile loop that prefill and split-KV decode both run, as the Triton
fused-attention tutorial's single ``_attn_fwd_inner`` serves both of its stages.

The softmax is online, in fp32 and in base 2: ``qk_scale = |scale| * log2(e)`` is applied inside the
``exp2`` argument's FMA on unmasked tiles, and before the mask on masked ones (see the functions).
"""

from __future__ import annotations

import triton
import triton.language as tl

LOG2E = 1.4426950408889634  # the launchers pass scale * LOG2E as qk_scale
LN2 = tl.constexpr(0.6931471805599453)  # the kernels turn a base-2 LSE into natural log: lse2 * LN2


@triton.jit
def _online_softmax_tile(qk, v, m_i, l_i, acc, qk_scale, SPLIT_RESCALE: tl.constexpr = False):
    """Fold one KV tile into the running softmax state (base 2).

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
    if SPLIT_RESCALE:
        # the accumulator rescaled in two column halves, as Triton's tutorial 06 does on its warp-
        # specialized Blackwell path: each half is a separate tensor-memory load and store
        BM: tl.constexpr = acc.shape[0]
        BD: tl.constexpr = acc.shape[1]
        acc0, acc1 = acc.reshape([BM, 2, BD // 2]).permute(0, 2, 1).split()
        acc = tl.join(acc0 * alpha[:, None], acc1 * alpha[:, None]).permute(0, 2, 1).reshape([BM, BD])
    else:
        acc = acc * alpha[:, None]
    acc = tl.dot(p.to(v.dtype), v, acc)
    return m_new, l_i, acc


@triton.jit
def _attn_kv_loop(m_i, l_i, acc, q, q_pos, k_src, v_src, stride_kn, stride_vn, lo, hi, qk_scale,
                  HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
                  MASKED: tl.constexpr, USE_TMA: tl.constexpr, WARP_SPECIALIZE: tl.constexpr = False):
    """Fold the keys ``[lo, hi)``, ``BLOCK_N`` at a time, into the running state ``(m_i, l_i, acc)`` of
    the query tile ``q`` [M, BLOCK_D]; returns the new state.

    ``k_src``/``v_src``: the (batch, KV head)'s K and V, as base pointers (rows ``stride_kn`` /
    ``stride_vn`` apart) or, with ``USE_TMA``, as tensor descriptors over its ``[kv_len, HEAD_DIM]``
    slice (TMA zero-fills rows and columns past it). Without ``MASKED`` every key of every tile is
    visible to every row: no sequence mask, and the scale goes into the exp2 FMA. With ``MASKED`` (the
    diagonal and the end of a sequence or split) key ``j`` is visible to row ``r`` when ``j <
    hi`` and ``j <= q_pos[r]``; scores are scaled before masking, so a zero scale meets no ``-inf``.
    Head dims below ``BLOCK_D`` load zeros in the padding.
    """
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_mask = offs_d < HEAD_DIM  # all-true (and folded) unless the head dim is padded
    # WARP_SPECIALIZE (prefill on sm_100): Triton's warp specialization of the loop, which then counts
    # tiles, not keys (lo must be a multiple of BLOCK_N): with key bounds that depend on the loaded cache
    # length, ptxas kept two thread indices on the stack (kernels/attention/DESIGN.md, "Blackwell")
    if WARP_SPECIALIZE:
        first, last, step = lo // BLOCK_N, tl.cdiv(hi, BLOCK_N), 1
    else:
        first, last, step = lo, hi, BLOCK_N
    for it in tl.range(first, last, step, warp_specialize=WARP_SPECIALIZE):
        if WARP_SPECIALIZE:
            start_n = it * BLOCK_N
        else:
            start_n = it
        offs_kv = start_n + offs_n
        if MASKED:
            n_mask = offs_kv < hi
            kv_mask = n_mask[:, None] & d_mask[None, :]
        else:
            kv_mask = d_mask[None, :]
        # read BLOCK_N x Dh of K and of V per iteration: the only HBM stream in the loop
        if USE_TMA:
            k = k_src.load([start_n, 0])
        else:
            k = tl.load(k_src + offs_kv[:, None] * stride_kn + offs_d[None, :], mask=kv_mask, other=0.0)
        if MASKED:
            qk = tl.dot(q, tl.trans(k)) * qk_scale  # scaled before masking (a zero scale meets no -inf)
            visible = (offs_kv[None, :] <= q_pos[:, None]) & n_mask[None, :]
            qk = tl.where(visible, qk, float("-inf"))
        else:
            qk = tl.dot(q, tl.trans(k))  # raw scores: the scale is applied in the exp2 FMA
        if USE_TMA:
            v = v_src.load([start_n, 0])
        else:
            v = tl.load(v_src + offs_kv[:, None] * stride_vn + offs_d[None, :], mask=kv_mask, other=0.0)
        if MASKED:
            m_i, l_i, acc = _online_softmax_tile(qk, v, m_i, l_i, acc, 1.0, WARP_SPECIALIZE)
        else:
            m_i, l_i, acc = _online_softmax_tile(qk, v, m_i, l_i, acc, qk_scale, WARP_SPECIALIZE)
    return m_i, l_i, acc
