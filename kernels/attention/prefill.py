"""Prefill attention: FlashAttention-2 forward, causal, over a KV cache; the kernel and its launch.

One program computes ``BLOCK_M`` queries of one query head of one sequence (grid ``(q blocks, Hq, B)``)
against that head's KV group, in two sweeps of :func:`~kernels.attention.kernels._attn_kv_loop` over
``BLOCK_N``-key tiles: keys ``[0, diag_start)`` are visible to every query of the block and run with no
sequence mask; keys ``[diag_start, hi)`` are the diagonal tiles, masked with ``key <= query position``;
``hi`` is one past the block's last query position, so tiles above the diagonal are never visited and
nothing at or past ``cache_len + q_len`` is loaded. O is written once, normalised, with an optional
natural-log LSE. K/V come by pointer loads, or on sm_90 by TMA (``USE_TMA``) through in-kernel tensor
descriptors. Head dims 80 and 96 are padded to ``BLOCK_D = 128`` with masks. On sm_100
(``WARP_SPECIALIZE``, the :data:`~kernels.attention.configs.WS_CONFIGS`) both sweeps are Triton
warp-specialized loops, as in Triton's tutorial 06 there, and Q and O go by TMA as well.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels._lib import device, launch
from kernels.attention.configs import (
    KERNEL,
    block_d,
    device_arch,
    prefill_config,
    prefill_configs,
    prune_configs,
    warp_specialized,
)
from kernels.attention.kernels import LN2, LOG2E, _attn_kv_loop


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
    STORE_LSE: tl.constexpr, USE_TMA: tl.constexpr = False, WARP_SPECIALIZE: tl.constexpr = False,
):
    tl.static_assert(USE_TMA or not WARP_SPECIALIZE, "WARP_SPECIALIZE loads Q, K, V and stores O by TMA")
    start_m = tl.program_id(0)
    head = tl.program_id(1).to(tl.int64)
    batch = tl.program_id(2).to(tl.int64)
    kv_head = head // group
    past = tl.load(cache_len_ptr + batch)  # tokens cached before this step (int32)
    kv_len = past + q_len

    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_mask = offs_m < q_len
    d_mask = offs_d < HEAD_DIM  # all-true (and folded) unless the head dim is padded

    # int64 bases: batch * stride_*b passes 2**31 for large caches; in-tile offsets stay int32.
    q_base = q_ptr + batch * stride_qb + head * stride_qh
    k_base = k_ptr + batch * stride_kb + kv_head * stride_kh
    v_base = v_ptr + batch * stride_vb + kv_head * stride_vh
    if USE_TMA:
        # sm_90: K/V tiles by TMA, zero-filled past the sequence (kv_len) and past the head dim
        k_src = tl.make_tensor_descriptor(k_base, shape=[kv_len, HEAD_DIM], strides=[stride_kn, 1],
                                          block_shape=[BLOCK_N, BLOCK_D])
        v_src = tl.make_tensor_descriptor(v_base, shape=[kv_len, HEAD_DIM], strides=[stride_vn, 1],
                                          block_shape=[BLOCK_N, BLOCK_D])
    else:
        k_src = k_base
        v_src = v_base

    # read BLOCK_M x Dh of Q once; it stays on chip for the whole KV sweep
    if WARP_SPECIALIZE:
        q_desc = tl.make_tensor_descriptor(q_base, shape=[q_len, HEAD_DIM], strides=[stride_qm, 1],
                                           block_shape=[BLOCK_M, BLOCK_D])
        q = q_desc.load([start_m * BLOCK_M, 0])
    else:
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
    m_i, l_i, acc = _attn_kv_loop(m_i, l_i, acc, q, q_pos, k_src, v_src, stride_kn, stride_vn,
                                  0, diag_start, qk_scale, HEAD_DIM, BLOCK_D, BLOCK_N,
                                  MASKED=False, USE_TMA=USE_TMA, WARP_SPECIALIZE=WARP_SPECIALIZE)
    # 2) diagonal tiles: causal mask. Key 0 is visible to every row, so a row whose scores in one tile
    # are all masked already has a finite running max (no -inf - -inf).
    m_i, l_i, acc = _attn_kv_loop(m_i, l_i, acc, q, q_pos, k_src, v_src, stride_kn, stride_vn,
                                  diag_start, hi, qk_scale, HEAD_DIM, BLOCK_D, BLOCK_N,
                                  MASKED=True, USE_TMA=USE_TMA, WARP_SPECIALIZE=WARP_SPECIALIZE)

    # write BLOCK_M x Dh of O once (and BLOCK_M fp32 LSEs)
    acc = acc / l_i[:, None]
    o_base = o_ptr + batch * stride_ob + head * stride_oh
    if WARP_SPECIALIZE:
        o_desc = tl.make_tensor_descriptor(o_base, shape=[q_len, HEAD_DIM], strides=[stride_om, 1],
                                           block_shape=[BLOCK_M, BLOCK_D])
        o_desc.store([start_m * BLOCK_M, 0], acc.to(o_ptr.dtype.element_ty))
    else:
        tl.store(o_base + offs_m[:, None] * stride_om + offs_d[None, :], acc.to(o_ptr.dtype.element_ty),
                 mask=m_mask[:, None] & d_mask[None, :])
    if STORE_LSE:
        lse = (m_i + tl.math.log2(l_i)) * LN2
        tl.store(lse_ptr + batch * stride_lseb + head * stride_lseh + offs_m, lse, mask=m_mask)


# ----------------------------------------------------------------------------------------------
# Launch
# ----------------------------------------------------------------------------------------------

def prefill_tma_ok(*tensors: torch.Tensor) -> bool:
    """Whether tiles of each of ``tensors`` (the K/V caches; q and o for the warp-specialized path) can
    go by TMA (tensor descriptors): TMA's stride and alignment rule
    (:func:`kernels._lib.device.tma_strides_ok`) with the head dim as the unit-stride one and the batch,
    head and token strides aligned, so every (batch, head) slice is a TMA-legal matrix."""
    return all(device.tma_strides_ok(t, 3, (0, 1, 2)) for t in tensors)


def prefill_tma(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, o: torch.Tensor,
                arch: int) -> bool:
    """Whether a launch on ``arch`` loads by TMA: where the architecture has it and the caches are
    TMA-legal; where it also warp-specializes (sm_100), only when q and o are too, so that every config
    of a TMA launch (the :data:`~kernels.attention.configs.WS_CONFIGS` among them) can run."""
    if not (device.has_tma(arch) and prefill_tma_ok(k_cache, v_cache)):
        return False
    return not device.warp_specializes(arch) or prefill_tma_ok(q, o)


def prefill_args(q, k_cache, v_cache, cache_len, o, lse, scale: float,
                 tma: bool = False) -> tuple[tuple, dict]:
    """Positional arguments and shape-derived constexprs of ``_attn_prefill_kernel``; ``tma``: load K/V
    through tensor descriptors (sm_90 and sm_100, when :func:`prefill_tma`; the caller sets
    :func:`kernels._lib.launch.set_descriptor_allocator`)."""
    head_dim = q.shape[3]
    lse_t = lse if lse is not None else o  # never written when STORE_LSE is False
    group = q.shape[1] // k_cache.shape[1]
    args = (o, lse_t, q, k_cache, v_cache, cache_len, scale * LOG2E, q.shape[2], group,
            *q.stride()[:3], *k_cache.stride()[:3], *v_cache.stride()[:3], *o.stride()[:3],
            *lse_t.stride()[:2])
    return args, dict(HEAD_DIM=head_dim, BLOCK_D=block_d(head_dim), STORE_LSE=lse is not None, USE_TMA=tma)


_PREFILL_TUNERS: dict[tuple[int, bool], object] = {}


# The shape and the constexprs that select a code path (TMA loads, the LSE store): one tuned config each.
PREFILL_AUTOTUNE_KEY = ["q_len", "HEAD_DIM", "USE_TMA", "STORE_LSE"]


def prefill_tuner(bd: int, arch: int | str):
    """``@triton.autotune`` over the padded head dim ``bd``'s prefill configs for ``arch``'s vendor (the
    HIP list on AMD), pruned per dtype and architecture; built on first use (only a GPU launch autotunes)."""
    key = (bd, device.is_hip(arch))
    if key not in _PREFILL_TUNERS:
        def early_prune(configs, named_args, **kwargs):
            q = named_args["q_ptr"]
            return prune_configs(configs, bd, q.element_size(), device_arch(q.device),
                                 tma=bool(kwargs.get("USE_TMA")))

        _PREFILL_TUNERS[key] = triton.autotune(
            configs=prefill_configs(bd, arch), key=PREFILL_AUTOTUNE_KEY,
            prune_configs_by={"early_config_prune": early_prune},
        )(_attn_prefill_kernel)
    return _PREFILL_TUNERS[key]


def launch_prefill(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, cache_len: torch.Tensor,
                   o: torch.Tensor, lse: torch.Tensor | None, scale: float,
                   config: triton.Config | None = None) -> None:
    """Launch the prefill kernel on validated inputs into preallocated ``o`` (and ``lse``): autotuned on
    a GPU, else ``config`` or :func:`~kernels.attention.configs.prefill_config`. K/V by TMA on sm_90
    and sm_100 when :func:`prefill_tma`; a warp-specialized ``config`` (which loads Q, K, V and stores O
    by TMA) on any device, the interpreter included, when q, the caches and o are TMA-legal
    (``ValueError`` otherwise). Records the launch as ``("attention", "prefill", config id)``."""
    batch, n_heads, q_len, head_dim = q.shape
    arch = device_arch(q.device)
    if config is not None and warp_specialized(config):
        if not prefill_tma_ok(q, k_cache, v_cache, o):
            raise ValueError("config: a WARP_SPECIALIZE config loads q, k_cache, v_cache and stores o by "
                             "TMA, which needs each with unit stride along the head dim and 16-byte aligned "
                             "base and batch, head and token strides")
        tma = True
    else:
        tma = prefill_tma(q, k_cache, v_cache, o, arch)
    if tma:
        launch.set_descriptor_allocator(q.device)
    args, meta = prefill_args(q, k_cache, v_cache, cache_len, o, lse, scale, tma=tma)
    if config is None and launch.autotuning():
        tuner = prefill_tuner(meta["BLOCK_D"], arch)
        launch.run(tuner, lambda m: (triton.cdiv(q_len, m["BLOCK_M"]), n_heads, batch), *args, **meta)
        launch.record_launch(KERNEL, "prefill", launch.triton_config_id(tuner.best_config))
        return
    cfg = config or prefill_config(head_dim, q_len, q.element_size(), arch, tma)
    grid = (triton.cdiv(q_len, cfg.kwargs["BLOCK_M"]), n_heads, batch)
    launch.run(_attn_prefill_kernel, grid, *args, **meta, **cfg.kwargs, num_warps=cfg.num_warps,
               num_stages=cfg.num_stages)
    launch.record_launch(KERNEL, "prefill", launch.triton_config_id(cfg))
