"""Causal attention over a KV cache: prefill (FlashAttention-2) and decode (split-KV, flash-decoding).

Math, per sequence ``b``, query head ``h`` and new token ``i`` at position ``p = cache_len[b] + i``::

    O[b, h, i] = softmax_j(scale * Q[b, h, i] . K[b, h // G, j]) @ V[b, h // G, j],   j = 0 .. p

Shapes: ``q [B, Hq, q_len, Dh]``; ``k_cache, v_cache [B, Hkv, capacity, Dh]``; ``cache_len`` int32
``[B]`` = tokens cached BEFORE this step, unequal across the batch. The ``q_len`` new tokens' K/V are
ALREADY in the cache at positions ``cache_len[b] .. cache_len[b] + q_len - 1`` (``kernels.qkv``
appends them there), so the kernels read one contiguous run of ``cache_len[b] + q_len`` keys and never
look past it. ``G = Hq // Hkv`` (GQA; MQA is ``Hkv = 1``). Head dims 64, 80, 96, 128, 256 (80 and 96
padded to 128 with masks); fp16/bf16 on a GPU, fp32 too for CPU (interpreter) runs. ``scale``
defaults to ``1/sqrt(Dh)``. Output ``O`` like ``q``; optional LSE (natural log, fp32, ``[B, Hq, q_len]``).

Non-finite scores: one convention for every variant, split count and cache capacity, the one of the
float64 reference :func:`attention_ref` (so of ``torch.softmax`` and SDPA's math backend). A query whose
visible scores ``scale * q.k`` are ALL ``-inf`` gets ``O = NaN`` (softmax 0/0) and ``LSE = -inf`` (as
``torch.logsumexp``); a visible score of ``+inf`` or NaN gives ``O = NaN`` and ``LSE = NaN``. Why not
FlashAttention's 0 output for fully masked rows: the mask here is causal and key 0 is always visible,
so such a row only arises from infinities in the data, which should surface, not read as a valid
zero (the softmax kernel also returns NaN for an all ``-inf`` row). Why LSE NaN rather than
``torch.logsumexp``'s ``+inf`` for a ``+inf`` score: O is NaN there anyway, NaN is what the online
softmax's ``m + log2(l)`` yields on every path and platform without an extra branch (``l`` is NaN),
and a NaN LSE poisons any later merge instead of dominating it. Keys the causal mask hides, or past
``cache_len + q_len``, are never read, so their values do not matter.

FLOPs: ``4 * Dh * Hq * pairs`` (pairs = unmasked query-key pairs). Compulsory bytes: Q and O once per
query head, the ``cache_len + q_len`` keys and values once per KV head (``roofline.cost.attention_cost``).

Variants (:func:`select_variant`: ``"splitkv"`` for ``q_len <= 16``, ``"prefill"`` above):

- ``"prefill"`` (``kernels/_attention_prefill.py``): FlashAttention-2 forward. Grid ``(q blocks, Hq,
  B)``; each program keeps a ``BLOCK_M x Dh`` Q tile on chip and sweeps ``BLOCK_N``-key tiles with an
  fp32 online softmax in base 2 (``exp2``, scale folded with ``log2 e``). Tiles below the diagonal run
  unmasked, diagonal tiles masked, tiles above the diagonal are never visited (loop bound), and O is
  written once. Works for any ``cache_len`` (chunked prefill). Design target (not a claim; no GPU here):
  within 10% of SDPA's flash backend at ``S >= 2048`` on A100 and H100. How: the algorithm and tile
  shapes of FA2 and the Triton fused-attention tutorial (128x64 tiles, K/V pipelined through
  ``cp.async`` 3 stages deep, both GEMMs on tensor cores: HMMA on sm_80, HGMMA/wgmma on sm_90), half
  the work skipped by causality, no masking cost off the diagonal, autotuning among the head dim's
  configs on a GPU. On sm_90, K/V tiles arrive by TMA (tensor descriptors) when the caches are
  16-byte aligned, and a 128x128 tile (8 warps) is tried beside the sm_80 configs. Known gaps: no warp
  specialisation (FA3's H100 technique), so on H100 the bar is SDPA's FA2-class flash kernel, not FA3;
  GQA K/V tiles are re-read per query head (adjacent programs, so mostly from L2), not shared as in
  split-KV.
- ``"splitkv"`` (``kernels/_attention_decode.py``): flash-decoding. Grid ``(num_splits, Hkv,
  B * m_blocks)``: the ``G * q_len`` queries of one KV group are packed into the M rows of one
  ``tl.dot`` tile, so every K/V tile is read once per KV head (not once per query head) and both
  products use tensor cores; the cache is cut into ``num_splits`` runs so that batch 1 still launches
  ~one wave of programs; each writes a partial O and its LSE, and a small kernel combines them.
  ``num_splits=1`` is the single-pass path (no partials, no combine). Design target (not a claim):
  at batch 1 with a cache several times larger than L2, >= 85% of measured copy bandwidth on the KV
  read and faster than SDPA over the same cache. How: the KV stream is the only large traffic (the
  fp32 partials add ``2 * G * num_splits / kv_len`` of it: 6% for llama2-70b at 4k tokens, 0.8% at
  32k), read with 128-bit ``cp.async`` loads 3 stages deep (64 KB in flight per program at Dh=128),
  :func:`select_num_splits` fills the SMs (FA2's wave-efficiency rule), and GQA packing divides the
  bytes by ``G`` compared with a per-query-head kernel. The M tile is 16-64 rows, so sm_90 runs HMMA,
  not wgmma (a waiver in ``kernels/audit/gates.py``: the tile is KV-stream bound). Known gap: the
  split count is chosen from the cache capacity (no device sync), so a cache allocated far larger
  than its contents gets more, shorter splits than it needs; pass ``num_splits`` to override.

Compile evidence: ``python -m kernels.audit --kernel attention`` (Triton 3.9, no GPU) compiles every
case for sm_80 and sm_90 and reports registers, spills, shared memory, the MMA and load instructions,
and the steady-state loop's warp instructions per KiB of K/V (its ``loop`` column). Predicted
readiness, not measured speed.

Files: this module (validation, launchers, heuristics, references), ``_attention_prefill.py`` and
``_attention_decode.py`` (the jit kernels, their configs and argument builders), ``_attention_cases.py``
(``compile_cases``, re-exported here). Every launcher calls ``record_launch("attention", variant,
config_id)``.
"""

from __future__ import annotations

import math

import torch
import triton

from kernels._attention_cases import compile_cases  # noqa: F401  (the module contract: attention.compile_cases)
from kernels._attention_decode import (
    COMBINE_WARPS,
    DEFAULT_SM_COUNT,
    MAX_SPLITS,
    _attn_combine_kernel,
    _attn_splitkv_kernel,
    combine_args,
    decode_block_m,
    decode_config,
    select_num_splits,
    splitkv_args,
    splitkv_config_id,
)
from kernels._attention_prefill import (
    PREFILL_CONFIGS,
    _attn_prefill_kernel,
    prefill_args,
    prefill_config,
    prefill_tma_ok,
    prune_configs,
)
from kernels._lib.launch import autotuning, record_launch, set_descriptor_allocator, triton_config_id
from kernels._lib.validation import (
    SUPPORTED_DTYPES,
    check_device,
    check_flag,
    check_grid,
    check_int,
    check_real,
    check_same_dtype_device,
    check_shape,
    check_tensor,
    check_vector,
)

HEAD_DIMS: tuple[int, ...] = (64, 80, 96, 128, 256)
SPLITKV_MAX_Q_LEN = 16  # select_variant: speculative chunks up to this many tokens go to split-KV
KERNEL = "attention"


# ----------------------------------------------------------------------------------------------
# Variant choice and device facts (config pruning and the split heuristic sit beside the kernels)
# ----------------------------------------------------------------------------------------------

def _device_arch(device: torch.device) -> int:
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return 10 * major + minor
    return 80  # CPU / interpreter runs pick what an A100 would


def _sm_count(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return DEFAULT_SM_COUNT


def select_variant(q_len: int, n_heads: int = 1, n_kv_heads: int = 1) -> str:
    """``"splitkv"`` for decode and speculative chunks (``q_len <= 16``), else ``"prefill"``.

    Up to 16 tokens the packed ``G * q_len`` rows fill at most a few 16-64-row tiles per KV head, and
    splitting the cache is what fills the GPU; above it the prefill kernel's 128-row tiles should win.
    The threshold is a design choice, not tuned (no GPU here): benchmarks record the choice.
    ``n_heads``/``n_kv_heads`` are accepted so callers can record the inputs of the choice.
    """
    return "splitkv" if q_len <= SPLITKV_MAX_Q_LEN else "prefill"


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------

def _validate(q, k_cache, v_cache, cache_len, scale, check_cache_len: bool
              ) -> tuple[int, int, float, torch.Tensor]:
    """Check every argument; returns ``(n_kv_heads, capacity, scale, cache_len)`` (cache_len contiguous).

    The caches are only read, so they may alias each other or themselves (K = V, or one prefix
    expanded over the batch); the launchers that write caches (:mod:`kernels.qkv`) refuse that."""
    check_tensor("q", q, ndim=4, dtypes=SUPPORTED_DTYPES)
    check_device("q", q)
    check_tensor("k_cache", k_cache, ndim=4, dtypes=None)
    check_tensor("v_cache", v_cache, ndim=4, dtypes=None)
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
        lo, hi = (int(x) for x in torch.stack(torch.aminmax(cache_len)).tolist())  # one device sync
        if lo < 0:
            raise ValueError(f"cache_len: lengths must be >= 0, got a minimum of {lo}")
        if hi + q_len > capacity:
            raise ValueError(f"cache_len: cache_len + q_len = {hi} + {q_len} exceeds the cache capacity "
                             f"{capacity} (k_cache.shape[2])")
    return n_kv_heads, capacity, scale, cache_len


def launch_grids(variant: str, batch: int, n_heads: int, n_kv_heads: int, q_len: int, head_dim: int,
                 num_splits: int = 1) -> list[tuple[tuple[int, int, int], tuple[str, str, str]]]:
    """Every grid a launch of ``variant`` uses, each with what its axes count (for the error message).

    Prefill: ``(q blocks, Hq, B)``, counted at the smallest ``BLOCK_M`` (64) any config uses. Split-KV:
    ``(num_splits, Hkv, B * row blocks)``, then the combine kernel's ``(q_len, Hq, B)`` when
    ``num_splits > 1``. CUDA caps axes y and z at 65,535 (:func:`kernels._lib.validation.check_grid`).
    """
    if variant == "prefill":
        return [((triton.cdiv(q_len, 64), n_heads, batch),
                 ("q: query blocks of 64 (q_len / 64)", "q: n_heads", "q: batch"))]
    m_blocks = triton.cdiv(n_heads // n_kv_heads * q_len, decode_block_m(n_heads // n_kv_heads, q_len))
    grids = [((num_splits, n_kv_heads, batch * m_blocks),
              ("num_splits", "k_cache: n_kv_heads", f"q: batch x packed-row blocks ({batch} x {m_blocks})"))]
    if num_splits > 1:
        grids.append(((q_len, n_heads, batch), ("q: q_len", "q: n_heads", "q: batch")))
    return grids


def check_launch_grids(variant: str, batch: int, n_heads: int, n_kv_heads: int, q_len: int, head_dim: int,
                       num_splits: int = 1) -> None:
    """Refuse, before launching, a shape whose grid passes CUDA's limits (on every device alike: the
    interpreter has no such limit, but a shape should not work on CPU and fail on a GPU)."""
    for grid, axes in launch_grids(variant, batch, n_heads, n_kv_heads, q_len, head_dim, num_splits):
        check_grid(grid, axes)


def _alloc(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Output allocation (tests replace it with a NaN fill to catch unwritten elements)."""
    return torch.empty(shape, dtype=dtype, device=device)


# ----------------------------------------------------------------------------------------------
# Launches (validated inputs, preallocated outputs)
# ----------------------------------------------------------------------------------------------

_PREFILL_TUNERS: dict[int, object] = {}


def _prefill_tuner(bd: int):
    """``@triton.autotune`` over the head dim's prefill configs, built on first use on a GPU."""
    if bd not in _PREFILL_TUNERS:
        def early_prune(configs, named_args, **kwargs):
            q = named_args["q_ptr"]
            return prune_configs(configs, bd, q.element_size(), _device_arch(q.device))

        _PREFILL_TUNERS[bd] = triton.autotune(
            configs=PREFILL_CONFIGS[bd], key=["q_len", "HEAD_DIM"],
            prune_configs_by={"early_config_prune": early_prune},
        )(_attn_prefill_kernel)
    return _PREFILL_TUNERS[bd]


def _launch_prefill(q, k_cache, v_cache, cache_len, o, lse, scale: float,
                    config: triton.Config | None = None) -> None:
    batch, n_heads, q_len, head_dim = q.shape
    tma = _device_arch(q.device) >= 90 and prefill_tma_ok(k_cache, v_cache)
    if tma:
        set_descriptor_allocator(q.device)
    args, meta = prefill_args(q, k_cache, v_cache, cache_len, o, lse, scale, tma=tma)
    if config is None and autotuning():
        tuner = _prefill_tuner(meta["BLOCK_D"])
        tuner[lambda m: (triton.cdiv(q_len, m["BLOCK_M"]), n_heads, batch)](*args, **meta)
        record_launch(KERNEL, "prefill", triton_config_id(tuner.best_config))
        return
    cfg = config or prefill_config(head_dim, q_len, q.element_size(), _device_arch(q.device))
    grid = (triton.cdiv(q_len, cfg.kwargs["BLOCK_M"]), n_heads, batch)
    _attn_prefill_kernel[grid](*args, **meta, **cfg.kwargs, num_warps=cfg.num_warps,
                               num_stages=cfg.num_stages)
    record_launch(KERNEL, "prefill", triton_config_id(cfg))


def _launch_splitkv(q, k_cache, v_cache, cache_len, o, lse, scale: float, num_splits: int | None,
                    config: triton.Config | None = None) -> int:
    """Returns the number of splits used."""
    batch, n_heads, q_len, head_dim = q.shape
    n_kv_heads, capacity = k_cache.shape[1], k_cache.shape[2]
    bm = decode_block_m(n_heads // n_kv_heads, q_len)
    m_blocks = triton.cdiv(n_heads // n_kv_heads * q_len, bm)
    cfg = config or decode_config(head_dim, q.element_size(), _device_arch(q.device), bm)
    if num_splits is None:
        num_splits = select_num_splits(batch, n_kv_heads, capacity, m_blocks=m_blocks,
                                       n_sms=_sm_count(q.device), block_n=cfg.kwargs["BLOCK_N"])
    o_part = lse_part = None
    if num_splits > 1:
        o_part = _alloc((batch, n_heads, q_len, num_splits, head_dim), torch.float32, q.device)
        lse_part = _alloc((batch, n_heads, q_len, num_splits), torch.float32, q.device)
    args, meta = splitkv_args(q, k_cache, v_cache, cache_len, o, lse, scale, num_splits, o_part, lse_part)
    _attn_splitkv_kernel[(num_splits, n_kv_heads, batch * m_blocks)](
        *args, **meta, **cfg.kwargs, num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    if num_splits > 1:
        args, cmeta = combine_args(o, lse, o_part, lse_part)
        _attn_combine_kernel[(q_len, n_heads, batch)](*args, **cmeta, num_warps=COMBINE_WARPS)
    record_launch(KERNEL, "splitkv", f"{splitkv_config_id(cfg, meta)},num_splits={num_splits}")
    return num_splits


# ----------------------------------------------------------------------------------------------
# Public launchers
# ----------------------------------------------------------------------------------------------

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
        an integer (``int`` or numpy integer, not a bool) in 1..128; ``None`` = :func:`select_num_splits`.
    return_lse : also return the natural-log log-sum-exp of each query's scores, fp32 ``[B, Hq, q_len]``.
    check_cache_len : check ``0 <= cache_len`` and ``cache_len + q_len <= capacity`` (one device-to-host
        copy). ``False`` skips the sync (CUDA graphs, timing); the caller then guarantees both.

    Returns
    -------
    ``O [B, Hq, q_len, Dh]`` (contiguous, q's dtype), or ``(O, lse)`` with ``return_lse``. Queries with
    non-finite scores follow the module's convention (NaN O; LSE ``-inf`` or NaN).

    Raises ``ValueError`` before launching when ``Hq`` or ``B`` (split-KV: ``B`` x packed-row blocks)
    passes CUDA's 65,535 programs on grid axis y or z (:func:`launch_grids`), on every device alike.
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
        variant = "splitkv" if num_splits is not None else select_variant(q_len, n_heads, n_kv_heads)
    # the default split count is at most MAX_SPLITS, far inside axis x: check with 2 (a combine launch)
    check_launch_grids(variant, batch, n_heads, n_kv_heads, q_len, head_dim,
                       num_splits if num_splits is not None else 2)
    o = _alloc((batch, n_heads, q_len, head_dim), q.dtype, q.device)
    lse = _alloc((batch, n_heads, q_len), torch.float32, q.device) if return_lse else None
    if o.numel() > 0:
        if variant == "prefill":
            _launch_prefill(q, k_cache, v_cache, cache_len, o, lse, scale)
        else:
            _launch_splitkv(q, k_cache, v_cache, cache_len, o, lse, scale, num_splits)
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


# ----------------------------------------------------------------------------------------------
# References
# ----------------------------------------------------------------------------------------------

def attention_ref(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, cache_len: torch.Tensor,
                  *, scale: float | None = None, return_lse: bool = False,
                  compute_dtype: torch.dtype = torch.float32
                  ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Plain PyTorch over the cache, one sequence at a time with its own length, computed in
    ``compute_dtype`` (fp32, or float64 in tests) and cast back to q's dtype; LSE in ``compute_dtype``.
    Non-finite scores follow the module's convention (torch's softmax; LSE NaN where torch's
    ``logsumexp`` would say ``+inf``)."""
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
        lse[b] = lse_b.masked_fill(lse_b == math.inf, math.nan)  # the module's convention, not torch's +inf
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
