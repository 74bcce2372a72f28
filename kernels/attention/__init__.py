"""Causal attention over a KV cache: prefill (FlashAttention-2) and decode (split-KV, flash-decoding).

Per sequence ``b``, query head ``h`` and new token ``i`` at position ``p = cache_len[b] + i``::

    O[b, h, i] = softmax_j(scale * Q[b, h, i] . K[b, h // G, j]) @ V[b, h // G, j],   j = 0 .. p

Shapes: ``q [B, Hq, q_len, Dh]``; ``k_cache, v_cache [B, Hkv, capacity, Dh]`` already holding the new
tokens at ``cache_len[b] .. cache_len[b] + q_len - 1``; ``cache_len`` int32 ``[B]`` (tokens cached
before this step); ``G = Hq // Hkv``; Dh in 64, 80, 96, 128, 256. Output ``O`` like ``q``, optional LSE
(natural log, fp32 ``[B, Hq, q_len]``). Variants: ``"prefill"`` (:mod:`.prefill`) and ``"splitkv"``
(:mod:`.decode`, ``q_len <= 16``), sharing one KV-tile loop (:mod:`.kernels`). FLOPs ``4 * Dh * Hq *
pairs`` (unmasked query-key pairs); compulsory bytes: Q and O once per query head, ``cache_len + q_len``
keys and values once per KV head (``roofline.model.cost.attention_cost``). Design, non-finite scores and the
audit evidence: ``kernels/attention/DESIGN.md``.
"""

from __future__ import annotations

import math

import torch

from kernels._lib import launch
from kernels._lib.validation import (
    SUPPORTED_DTYPES,
    check_cache_len_range,
    check_device,
    check_flag,
    check_int,
    check_real,
    check_same_dtype_device,
    check_shape,
    check_tensor,
    check_vector,
)
from kernels.attention.configs import MAX_SPLITS, check_launch_grids, select_variant
from kernels.attention.decode import launch_splitkv
from kernels.attention.prefill import launch_prefill

__all__ = ["HEAD_DIMS", "TOLERANCES", "VARIANTS", "attention", "attention_prefill", "attention_ref",
           "attention_sdpa", "attention_splitkv", "select_variant"]

HEAD_DIMS: tuple[int, ...] = (64, 80, 96, 128, 256)


def _validate(q, k_cache, v_cache, cache_len, scale, check_cache_len: bool
              ) -> tuple[int, int, float, torch.Tensor]:
    """Check every argument; returns ``(n_kv_heads, capacity, scale, cache_len)`` (cache_len contiguous).

    The caches are only read, so they may alias each other or themselves (K = V, or one prefix
    expanded over the batch); the launchers that write caches (:mod:`kernels.qkv`) refuse that."""
    check_tensor("q", q, ndim=4, dtypes=SUPPORTED_DTYPES)
    check_device("q", q)
    check_tensor("k_cache", k_cache, ndim=4, dtypes=None)
    check_tensor("v_cache", v_cache, ndim=4, dtypes=None)
    # q passed the device rule; the caches and cache_len must be on q's device (which also refuses meta)
    check_same_dtype_device("k_cache", k_cache, "q", q)
    check_same_dtype_device("v_cache", v_cache, "q", q)
    if q.device.type == "cuda" and q.dtype == torch.float32:
        raise TypeError("q: float32 is for CPU (interpreter) runs only; use float16 or bfloat16 on a GPU")
    batch, n_heads, q_len, head_dim = q.shape
    if head_dim not in HEAD_DIMS:
        raise ValueError(f"q: head dim {head_dim} not supported, expected one of {HEAD_DIMS}")
    if k_cache.shape[0] != batch or k_cache.shape[3] != head_dim:
        raise ValueError(f"k_cache: expected shape [{batch}, n_kv_heads, capacity, {head_dim}] to match q "
                         f"{tuple(q.shape)}, got {tuple(k_cache.shape)}")
    check_shape("v_cache", v_cache, tuple(k_cache.shape))
    n_kv_heads, capacity = k_cache.shape[1], k_cache.shape[2]
    if n_kv_heads == 0 or n_heads % n_kv_heads:
        raise ValueError(f"k_cache: n_kv_heads ({n_kv_heads}) must divide q's n_heads ({n_heads})")
    if not isinstance(cache_len, torch.Tensor):
        raise TypeError(f"cache_len: expected an int32 torch.Tensor of shape [{batch}], "
                        f"got {type(cache_len).__name__}")
    cache_len = check_vector("cache_len", cache_len, batch, q, "q", dtypes=(torch.int32,))  # any stride
    scale = 1.0 / math.sqrt(head_dim) if scale is None else check_real("scale", scale)
    if check_cache_len and batch > 0:
        check_cache_len_range(cache_len, q_len, capacity, entries="lengths", total="cache_len + q_len")
    return n_kv_heads, capacity, scale, cache_len


def attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    cache_len: torch.Tensor,
    *,
    scale: float | None = None,
    variant: str | None = None,
    num_splits: int | None = None,
    return_lse: bool = False,
    check_cache_len: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Causal attention of ``q_len`` new tokens per sequence over a KV cache that already holds them.

    Parameters
    ----------
    q : Tensor ``[B, Hq, q_len, Dh]``, fp16/bf16 (fp32 on CPU), last dim contiguous.
    k_cache, v_cache : Tensor ``[B, Hkv, capacity, Dh]``, q's dtype and device, last dim contiguous;
        ``Hkv`` divides ``Hq``. Positions ``cache_len[b] .. cache_len[b] + q_len - 1`` hold the new
        tokens' keys/values; positions from ``cache_len[b] + q_len`` on are never read. Only read, so
        they may share memory (``k_cache is v_cache``, one prefix expanded over the batch).
    cache_len : int32 Tensor ``[B]`` on q's device, any stride: tokens cached before this step.
    scale : softmax scale, a finite real number (Python or numpy scalar, not a bool); default
        ``1/sqrt(Dh)``.
    variant : ``"prefill"`` or ``"splitkv"``; ``None`` = :func:`select_variant`.
    num_splits : split-KV only (giving it with ``variant=None`` selects split-KV): splits of the key axis,
        an integer (``int`` or numpy integer, not a bool) in 1..128; ``None`` =
        :func:`~kernels.attention.configs.select_num_splits`.
    return_lse : also return the natural-log log-sum-exp of each query's scores, fp32 ``[B, Hq, q_len]``.
    check_cache_len : check ``0 <= cache_len`` and ``cache_len + q_len <= capacity`` (one device-to-host
        copy). ``False`` skips the sync (CUDA graphs, timing); the caller then guarantees both.

    Returns
    -------
    ``O [B, Hq, q_len, Dh]`` (contiguous, q's dtype), or ``(O, lse)`` with ``return_lse``. Queries with
    non-finite scores get the float64 reference's answer on every variant and split count: all visible
    scores ``-inf``: O NaN, LSE ``-inf``; a ``+inf`` or NaN score: O and LSE NaN. Not
    ``torch.logsumexp``'s ``+inf`` for a ``+inf`` score, on purpose: O is NaN anyway, NaN is what the
    online softmax's ``m + log2(l)`` gives on every path (prefill, decode, the split-KV combine) without
    an extra branch, and a NaN LSE poisons a later merge of partial results where ``+inf`` would
    silently dominate it (DESIGN.md, "Non-finite scores").

    Raises ``ValueError`` before launching when ``Hq`` or ``B`` (split-KV: ``B`` x packed-row blocks)
    passes CUDA's 65,535 programs on grid axis y or z, on every device alike
    (:func:`~kernels.attention.configs.launch_grids`).
    """
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {sorted(VARIANTS)} or None, got {variant!r}")
    if num_splits is not None:
        num_splits = check_int("num_splits", num_splits, lo=1, hi=MAX_SPLITS, none_ok=True)
        if variant == "prefill":
            raise ValueError("num_splits: only applies to variant='splitkv', not 'prefill'")
    return_lse = check_flag("return_lse", return_lse)
    check_cache_len = check_flag("check_cache_len", check_cache_len)
    n_kv_heads, _, scale, cache_len = _validate(q, k_cache, v_cache, cache_len, scale, check_cache_len)
    batch, n_heads, q_len, head_dim = q.shape
    if variant is None:
        variant = "splitkv" if num_splits is not None else select_variant(q_len)
    # the default split count is at most MAX_SPLITS, far inside axis x: check with 2 (a combine launch)
    check_launch_grids(variant, batch, n_heads, n_kv_heads, q_len, head_dim,
                       num_splits if num_splits is not None else 2)
    o = launch.empty((batch, n_heads, q_len, head_dim), q.dtype, q.device)
    lse = launch.empty((batch, n_heads, q_len), torch.float32, q.device) if return_lse else None
    if o.numel() > 0:
        if variant == "prefill":
            launch_prefill(q, k_cache, v_cache, cache_len, o, lse, scale)
        else:
            launch_splitkv(q, k_cache, v_cache, cache_len, o, lse, scale, num_splits)
    return (o, lse) if return_lse else o


def attention_prefill(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, cache_len: torch.Tensor,
                      *, scale: float | None = None, return_lse: bool = False,
                      check_cache_len: bool = True) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """:func:`attention` with the FlashAttention-2 prefill kernel (any ``q_len``, any ``cache_len``)."""
    return attention(q, k_cache, v_cache, cache_len, scale=scale, variant="prefill", return_lse=return_lse,
                     check_cache_len=check_cache_len)


def attention_splitkv(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, cache_len: torch.Tensor,
                      *, scale: float | None = None, num_splits: int | None = None, return_lse: bool = False,
                      check_cache_len: bool = True) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """:func:`attention` with the split-KV (flash-decoding) kernels; meant for small ``q_len``."""
    return attention(q, k_cache, v_cache, cache_len, scale=scale, variant="splitkv", num_splits=num_splits,
                     return_lse=return_lse, check_cache_len=check_cache_len)


VARIANTS = {"prefill": attention_prefill, "splitkv": attention_splitkv}


def attention_ref(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, cache_len: torch.Tensor,
                  *, scale: float | None = None, return_lse: bool = False,
                  compute_dtype: torch.dtype = torch.float32
                  ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Plain PyTorch over the cache, one sequence at a time with its own length, computed in
    ``compute_dtype`` (fp32, or float64 in tests) and cast back to q's dtype; LSE in ``compute_dtype``.
    Non-finite scores follow the convention of :func:`attention` (torch's softmax; LSE NaN where torch's
    ``logsumexp`` would say ``+inf``, for the reason given there)."""
    batch, n_heads, q_len, head_dim = q.shape
    group = n_heads // k_cache.shape[1]
    scale = 1.0 / math.sqrt(head_dim) if scale is None else scale
    o = torch.empty(q.shape, dtype=compute_dtype, device=q.device)
    lse = torch.empty((batch, n_heads, q_len), dtype=compute_dtype, device=q.device)
    for b, past in enumerate(cache_len.tolist()):
        n = past + q_len
        k = k_cache[b, :, :n].to(compute_dtype).repeat_interleave(group, dim=0)  # [Hq, n, Dh]
        v = v_cache[b, :, :n].to(compute_dtype).repeat_interleave(group, dim=0)
        s = q[b].to(compute_dtype) @ k.transpose(-1, -2) * scale  # [Hq, q_len, n]
        key = torch.arange(n, device=q.device)
        pos = past + torch.arange(q_len, device=q.device)
        s = s.masked_fill(key[None, :] > pos[:, None], float("-inf"))
        lse_b = torch.logsumexp(s, dim=-1)
        o[b] = torch.exp(s - lse_b[..., None]) @ v
        lse[b] = lse_b.masked_fill(lse_b == math.inf, math.nan)  # attention's convention, not torch's +inf
    o = o.to(q.dtype)
    return (o, lse) if return_lse else o


def attention_sdpa(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                   cache_len: int | torch.Tensor, *, scale: float | None = None) -> torch.Tensor:
    """The benchmark baseline: ``torch.nn.functional.scaled_dot_product_attention`` over the cache.

    ``cache_len``: an int (the same for every sequence; no device sync, no host-to-device copy) or an
    int32 tensor. The mask is the cheapest SDPA accepts for the case, so the baseline is not slowed
    by mask materialisation: every length 0 (prefill) is ``is_causal=True`` (the flash backend on a
    GPU); one query per sequence over equal lengths needs no mask; equal lengths with ``q_len > 1``
    use ``causal_lower_right`` (SDPA's ``is_causal`` is top-left aligned); unequal lengths fall back
    to a boolean ``[B, 1, q_len, n]`` mask.
    """
    from torch.nn.attention.bias import causal_lower_right

    sdpa = torch.nn.functional.scaled_dot_product_attention
    batch, n_heads, q_len, _ = q.shape
    gqa = n_heads != k_cache.shape[1]
    lens = [cache_len] * batch if isinstance(cache_len, int) else cache_len.tolist()
    n = max(lens, default=0) + q_len
    k, v = k_cache[:, :, :n], v_cache[:, :, :n]
    if len(set(lens)) <= 1:
        past = lens[0] if lens else 0
        if past == 0:
            return sdpa(q, k, v, is_causal=True, scale=scale, enable_gqa=gqa)
        mask = None if q_len == 1 else causal_lower_right(q_len, n)
        return sdpa(q, k, v, attn_mask=mask, scale=scale, enable_gqa=gqa)
    past = torch.tensor(lens, device=q.device)[:, None, None, None]
    pos = past + torch.arange(q_len, device=q.device)[:, None]
    mask = torch.arange(n, device=q.device) <= pos  # [B, 1, q_len, n]
    return sdpa(q, k, v, attn_mask=mask, scale=scale, enable_gqa=gqa)


# (atol, rtol) of the kernel against attention_ref (float64) on the same inputs. P is rounded to the
# input dtype before the PV product, as in FlashAttention, so 16-bit outputs carry a few ulps of it.
# fp32 runs only on the CPU interpreter, whose dots are exact: only the summation order differs.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (1.6e-2, 1.6e-2),
    torch.float32: (2e-5, 2e-5),
}
