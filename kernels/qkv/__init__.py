"""Fused QKV projection: one GEMM whose epilogue writes Q, K, V in attention layout (or K/V into a cache).

With ``x[B, T, D]`` flattened to ``M = B*T`` rows (``m = b*T + t``) and ``weight`` ``[N, D]`` holding
the Q, K and V projections stacked (``N = (Hq + 2*Hkv) * Dh``, ``nn.Linear``'s shape)::

    y[m, n] = sum_k x[m, k] * weight[n, k] (+ bias[n])          (fp32 accumulation)
    column n < Hq*Dh          -> q[b, n // Dh,              t,                 n % Dh]
    Hq*Dh <= n < (Hq+Hkv)*Dh  -> k[b, n // Dh - Hq,         t (+ cache_len[b]), n % Dh]
    n >= (Hq+Hkv)*Dh          -> v[b, n // Dh - Hq - Hkv,   t (+ cache_len[b]), n % Dh]

q ``[B, Hq, T, Dh]``; k, v ``[B, Hkv, T, Dh]``, or appended into caches ``[B, Hkv, capacity, Dh]`` at rows
``cache_len[b] ..``; GQA/MQA: ``Hkv`` divides ``Hq``. Variants: ``"fused"`` (pointer loads, every GPU)
and ``"tma"`` (tensor descriptors + persistent tiles, sm_90). Cost: ``2*M*N*D`` FLOP (+ ``M*N`` with a
bias); compulsory bytes ``elem_bytes*(M*D + N*D + M*N (+ N))`` at ``elem_bytes`` bytes per element
(``roofline.model.cost.qkv_cost``). Design and audit evidence: ``kernels/qkv/DESIGN.md``.
"""

from __future__ import annotations

import math

import torch
import triton

from kernels._lib import device, launch
from kernels._lib.validation import (
    check_cache_len_range,
    check_device,
    check_flag,
    check_no_overlap,
    check_positive,
    check_same_dtype_device,
    check_shape,
    check_tensor,
    check_vector,
)
from kernels.qkv.configs import (
    FUSED_VARIANT,
    KERNEL,
    TMA_VARIANT,
    default_config,
    early_config_prune,
    prune_configs,
    select_variant,
    tma_layout_ok,
    tma_programs,
    tma_store_plan,
    variant_configs,
)
from kernels.qkv.kernels import _qkv_kernel, _qkv_tma_kernel

__all__ = ["TOLERANCES", "VARIANTS", "qkv_projection", "qkv_projection_ref", "qkv_projection_tma",
           "qkv_projection_unfused", "select_variant"]

# variant -> (its @triton.jit kernel, the configs it may launch)
_KERNELS: dict[str, tuple[triton.JITFunction, list[triton.Config]]] = {
    FUSED_VARIANT: (_qkv_kernel, variant_configs(FUSED_VARIANT)),
    TMA_VARIANT: (_qkv_tma_kernel, variant_configs(TMA_VARIANT)),
}
# The shape and every constexpr that selects a code path, per variant (Triton refuses a key that is not
# an argument of the kernel): one tuned config per code path.
AUTOTUNE_KEYS = {FUSED_VARIANT: ["M", "N", "K", "HEAD_DIM", "HAS_BIAS", "HAS_CACHE"],
                 TMA_VARIANT: ["M", "N", "K", "HEAD_DIM", "HAS_BIAS", "HAS_CACHE", "W_K_CONTIGUOUS",
                               "STORE_N", "ONE_BATCH_TILES"]}
_AUTOTUNED: dict[str, triton.runtime.Autotuner] = {}  # built on first use: autotuning needs a GPU driver


def _autotuned_kernel(variant: str = FUSED_VARIANT) -> triton.runtime.Autotuner:
    """The ``@triton.autotune`` wrapper of ``variant``'s kernel over its configs, pruned by shape."""
    if variant not in _AUTOTUNED:
        fn, configs = _KERNELS[variant]
        _AUTOTUNED[variant] = triton.autotune(
            configs=configs, key=AUTOTUNE_KEYS[variant],
            prune_configs_by={"early_config_prune": early_config_prune},
        )(fn)
    return _AUTOTUNED[variant]


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
            check_cache_len_range(cache_len, tokens, k_cache.shape[2], entries="entries",
                                  total="max(cache_len) + T")
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
        runs ``"tma"`` on an sm_90+ GPU for ``M >= 256`` when the layout allows it, else ``"fused"``
        (:func:`~kernels.qkv.configs.select_variant`).
    config : a ``triton.Config`` to run instead of autotuning / the first config surviving pruning.
    check_cache_len : check ``0 <= cache_len[b]`` and ``cache_len[b] + T <= capacity`` on the host
        (one device-to-host sync). With ``False`` the kernel still never writes outside the cache:
        out-of-range rows are dropped silently.

    Returns
    -------
    ``(q, k, v)``: q ``[B, Hq, T, Dh]``, k and v ``[B, Hkv, T, Dh]`` (new, contiguous; where the
    warp-specialized tiles store by TMA, :func:`~kernels.qkv.configs.tma_store_plan`, three consecutive
    views of one buffer), or ``(q, k_cache, v_cache)`` when the caches are given.
    """
    if variant not in (None, *_KERNELS):
        raise ValueError(f"variant: expected None, {FUSED_VARIANT!r} or {TMA_VARIANT!r}, got {variant!r}")
    if config is not None and not isinstance(config, triton.Config):
        raise TypeError(f"config: expected a triton.Config, got {type(config).__name__}")
    check_cache_len = check_flag("check_cache_len", check_cache_len)
    head_dim, n_heads, n_kv_heads, bias, cache_len = _validate(
        x, weight, bias, n_heads, n_kv_heads, k_cache, v_cache, cache_len, check_cache_len)
    batch, tokens, d_model = x.shape
    n_out = weight.shape[0]
    use_cache = k_cache is not None
    m = batch * tokens
    arch = device.arch(x.device)
    if variant is None:
        variant = select_variant(m, arch, tma_layout_ok(x, weight))
    meta = {"HEAD_DIM": head_dim, "HAS_BIAS": bias is not None, "HAS_CACHE": use_cache}
    if variant == TMA_VARIANT:
        # the configs that may run: the given one, else those the autotuner keeps or the default
        if config is not None:
            may_run = [config]
        elif launch.autotuning():
            may_run = prune_configs(variant_configs(variant), m, x.element_size(), arch)
        else:
            may_run = [default_config(variant, m, x.element_size(), arch)]
        store_n, one_batch = tma_store_plan(may_run, batch, tokens, head_dim, x.element_size(), use_cache)
        meta.update(STORE_N=store_n, ONE_BATCH_TILES=one_batch)
    q_shape, kv_shape = (batch, n_heads, tokens, head_dim), (batch, n_kv_heads, tokens, head_dim)
    if meta.get("STORE_N"):
        # the TMA-store epilogue writes q, k and v as [T, Dh] planes of one buffer, in that order
        sizes = [math.prod(q_shape), math.prod(kv_shape), math.prod(kv_shape)]
        flat = launch.empty((sum(sizes),), x.dtype, x.device)
        q, k_out, v_out = (part.view(shape) for part, shape in
                           zip(flat.split(sizes), (q_shape, kv_shape, kv_shape), strict=True))
    else:
        q = launch.empty(q_shape, x.dtype, x.device)
        if use_cache:
            k_out, v_out = k_cache, v_cache
        else:
            k_out, v_out = (launch.empty(kv_shape, x.dtype, x.device) for _ in range(2))
    capacity = k_cache.shape[2] if use_cache else tokens
    if m == 0:
        return q, k_out, v_out

    args = (q, k_out, v_out, x, weight, bias, cache_len if use_cache else None,
            m, n_out, d_model, tokens, n_heads, n_kv_heads, capacity,
            *x.stride(), *weight.stride(), *q.stride(), *k_out.stride(), *v_out.stride())
    programs = None  # the pointer kernel runs one program per tile
    if variant == TMA_VARIANT:
        if not tma_layout_ok(x, weight):
            raise ValueError("variant: 'tma' needs x [B, T, D] with unit last stride, batch rows following "
                             "each other and 16-byte aligned rows, and weight with 16-byte aligned rows or "
                             "columns")
        launch.set_descriptor_allocator(x.device)
        programs = tma_programs(x.device)
        meta.update(NUM_SMS=programs, W_K_CONTIGUOUS=weight.stride(1) == 1)

    def grid(kw):
        tiles = triton.cdiv(m, kw["BLOCK_M"]) * triton.cdiv(n_out, kw["BLOCK_N"])
        return (tiles if programs is None else min(programs, tiles),)

    if config is None and launch.autotuning():
        kernel = _autotuned_kernel(variant)
        launch.run(kernel, grid, *args, **meta)
        config = kernel.best_config
    else:
        if config is None:
            config = default_config(variant, m, x.element_size(), arch)
        launch.run(_KERNELS[variant][0], grid, *args, **meta, **config.kwargs, num_warps=config.num_warps,
                   num_stages=config.num_stages)
    launch.record_launch(KERNEL, variant, launch.triton_config_id(config))
    return q, k_out, v_out


def qkv_projection_tma(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                       **kwargs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`qkv_projection` with ``variant="tma"`` (tensor descriptors, persistent; sm_90)."""
    return qkv_projection(x, weight, bias, variant=TMA_VARIANT, **kwargs)


VARIANTS = {FUSED_VARIANT: qkv_projection, TMA_VARIANT: qkv_projection_tma}


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
