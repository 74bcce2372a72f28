"""Tile configs of the fused QKV projection, the pruning that picks them by shape, and the launch plan
(which variant runs, how many persistent programs). Why these tiles: ``kernels/qkv/DESIGN.md``.

Pipelined operand shared memory is ``num_stages * (BM*BK + BK*BN) * elem_bytes``; every config fits
sm_80's per-block limit for 16-bit types. fp32 (tf32 on a GPU) doubles it, so pruning drops what does
not fit and keeps the cheapest config if nothing would.
"""

from __future__ import annotations

import functools

import torch
import triton

from kernels._lib import device, launch

KERNEL = "qkv"  # the name in launch records and audit lines
FUSED_VARIANT = "fused"
TMA_VARIANT = "tma"

# One config list for every architecture, chosen to fit sm_80's per-block limit
# (device.SHARED_CONFIG_SMEM_PER_BLOCK); an architecture with less (sm_120: 99 KiB) prunes to its own.
SMEM_LIMIT_BYTES = device.SHARED_CONFIG_SMEM_PER_BLOCK


def smem_limit(arch: int) -> int:
    """Shared memory per block a config may plan for on ``arch`` (0 off a GPU: the shared limit)."""
    return min(SMEM_LIMIT_BYTES, device.smem_per_block(arch)) if arch else SMEM_LIMIT_BYTES


def _cfg(bm: int, bn: int, bk: int, warps: int, stages: int, group_m: int = 8) -> triton.Config:
    return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": group_m},
                         num_warps=warps, num_stages=stages)


# Order matters: without autotuning the FIRST config surviving pruning is launched, so within each
# M range the usual best comes first. Shared memory in the comments is for fp16.
CONFIGS: list[triton.Config] = [
    _cfg(128, 256, 64, 8, 3),  # prefill: 147 KB smem, the tutorial's best A100 tile
    _cfg(128, 128, 64, 4, 4),  # prefill: 131 KB
    _cfg(128, 128, 32, 4, 4),  # prefill: 66 KB, 2 CTAs per SM
    _cfg(64, 128, 64, 4, 4),   # medium M / narrow N: 98 KB
    _cfg(128, 64, 64, 4, 4),   # prefill with few column tiles: 98 KB
    _cfg(64, 64, 64, 4, 4),    # medium M: 66 KB
    _cfg(32, 64, 128, 4, 4),   # small batch: 98 KB
    _cfg(16, 64, 128, 4, 4),   # decode: 82 KB, 64 KB of weights in flight
    _cfg(16, 32, 256, 4, 4),   # decode with small N: twice the programs, 98 KB
]


def smem_bytes(cfg: triton.Config, elem_bytes: int) -> int:
    """Upper bound on the pipelined operand shared memory of ``cfg``, bytes: ``num_stages`` buffers of the
    x and W tiles. Triton 3.9 allocates exactly that for wgmma tiles on sm_90 and one buffer fewer for
    mma.sync tiles (sm_80, and 16/32-row tiles on sm_90), per ``metadata.shared`` of the AOT compiles."""
    kw = cfg.kwargs
    return cfg.num_stages * (kw["BLOCK_M"] * kw["BLOCK_K"] + kw["BLOCK_K"] * kw["BLOCK_N"]) * elem_bytes


def _fits_m(block_m: int, m: int) -> bool:
    """Row-tile rule: no tile taller than the next power of two of M (min 16, the smallest dot), and
    for M >= 256 no tile shorter than 64 (short tiles re-read the weights M / BM times)."""
    cap = max(16, triton.next_power_of_2(max(m, 1)))
    return block_m <= cap and (m < 256 or block_m >= 64)


def _fits_registers(cfg: triton.Config, elem_bytes: int) -> bool:
    """fp32 operands (tf32 MMAs on a GPU) double the operand fragments: there, at most 64 accumulator
    registers per thread (the 128x128 tile on 4 warps spilled on sm_80 in the AOT compile:
    ``python -m kernels.audit --kernel qkv``)."""
    kw = cfg.kwargs
    return elem_bytes < 4 or kw["BLOCK_M"] * kw["BLOCK_N"] <= 64 * 32 * cfg.num_warps


def prune_configs(configs: list[triton.Config], m: int, elem_bytes: int,
                  arch: int = 0) -> list[triton.Config]:
    """The configs worth trying for ``m`` rows of ``elem_bytes``-byte operands on ``arch`` (compute
    capability; 0, off a GPU, plans for the shared limit :data:`SMEM_LIMIT_BYTES`; on AMD each tile as
    :func:`kernels._lib.launch.hip_config` makes it). Never empty."""
    if device.is_hip(arch):
        configs = [launch.hip_config(c, elem_bytes) for c in configs if not c.kwargs.get("WARP_SPECIALIZE")]
    # warp-specialized tiles only where the architecture warp-specializes, within its own limit
    ws = [c for c in configs if c.kwargs.get("WARP_SPECIALIZE")]
    configs = [c for c in configs if not c.kwargs.get("WARP_SPECIALIZE")]
    ws = [c for c in ws if device.warp_specializes(arch) and _fits_m(c.kwargs["BLOCK_M"], m)
          and smem_bytes(c, elem_bytes) <= device.smem_per_block(arch) and _fits_registers(c, elem_bytes)]
    by_m = [c for c in configs if _fits_m(c.kwargs["BLOCK_M"], m)] or list(configs)
    limit = smem_limit(arch)
    fitting = ws + [c for c in by_m if smem_bytes(c, elem_bytes) <= limit and _fits_registers(c, elem_bytes)]
    if fitting:
        return fitting
    # Nothing fits as shipped (fp32 on a 99 KiB architecture): the same tiles with fewer stages.
    staged = [launch.fit_stages(c, lambda x: smem_bytes(x, elem_bytes), limit) for c in by_m
              if _fits_registers(c, elem_bytes)]
    return [c for c in staged if c is not None] or [min(by_m, key=lambda c: smem_bytes(c, elem_bytes))]


def early_config_prune(configs: list[triton.Config], named_args: dict,
                       **kwargs: object) -> list[triton.Config]:
    """``@triton.autotune`` hook: prune by the launch's M, operand element size and device."""
    x = named_args["x_ptr"]
    return prune_configs(list(configs), int(named_args["M"]), x.element_size(), device.arch(x.device))


# Warp-specialized TMA tiles, for architectures whose row says Triton's warp specialization is the way
# (sm_100: device.warp_specializes), chosen from the sm_100 compile (fp16, M=K=4096, N=12288; warp-
# weighted loop instructions per KiB of operands, the audit's metric, epilogue spread over the K steps).
# With the TMA-store epilogue (tma_store_plan): 128x256x128 on 8 warps, 2 stages: 3.7/KiB, 168 registers,
# no spills, 230 KB of shared memory (sm_100's own limit, not the shared list's); 128x128x128 on 4 warps:
# 5.0/KiB in 165 KB (tutorial 09: 3.6 and 5.2 at these tiles). The plain persistent kernel's best tile
# was 11.0-15.0/KiB there. 8 warps, not 4, at 128x256: the pointer epilogue (the KV-cache append) spills
# on 4 (255 registers, 592 B of stack).
WS_TMA_CONFIGS: list[triton.Config] = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 128, "GROUP_M": 8, "WARP_SPECIALIZE": True},
                  num_warps=8, num_stages=2),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 128, "GROUP_M": 8, "WARP_SPECIALIZE": True},
                  num_warps=4, num_stages=2),
]


# The warp-specialized tiles' epilogue stores by TMA in slices of at most this many columns (a slice lies
# in one head: the largest power of two dividing head_dim, up to this). 128 on the sm_100 compile (fp16,
# M=K=4096, N=12288, 128x256x128 on 8 warps): 3.7/KiB; 64-column slices: 4.1 (DESIGN.md).
TMA_STORE_MAX_N = 128


def tma_store_plan(configs: list[triton.Config], batch: int, tokens: int, head_dim: int, elem_bytes: int,
                   cache: bool) -> tuple[int, bool]:
    """``(STORE_N, ONE_BATCH_TILES)`` for the TMA kernel's launch when ``configs`` may run (the explicit
    config, or those the autotuner keeps): ``STORE_N`` > 0 lets the warp-specialized tiles store by TMA
    in ``STORE_N``-column slices, the launcher then holding q, k and v in one buffer; 0 keeps the pointer
    epilogue (:func:`~kernels.qkv.kernels._qkv_store_tile`). 0 when no config warp-specializes, for the
    KV-cache append (rows at ``cache_len[b] + t``: no box bounds them), for a head whose rows or slice are
    not 16-byte multiples (TMA), and for ``tokens`` below a tile's rows (a tile then spans more than the
    two batches the epilogue stores). ``ONE_BATCH_TILES``: no row tile crosses a batch boundary
    (``batch == 1`` or ``tokens`` a multiple of every tile's rows), so each slice is stored once."""
    ws = [c for c in configs if c.kwargs.get("WARP_SPECIALIZE")]
    if cache or not ws or (head_dim * elem_bytes) % device.TMA_ALIGN_BYTES:
        return 0, False
    store_n = min(head_dim & -head_dim, TMA_STORE_MAX_N, *(c.kwargs["BLOCK_N"] for c in ws))
    block_ms = [c.kwargs["BLOCK_M"] for c in ws]
    if store_n * elem_bytes < device.TMA_ALIGN_BYTES or tokens < max(block_ms):
        return 0, False
    return store_n, batch == 1 or all(tokens % bm == 0 for bm in block_ms)


def tma_configs() -> list[triton.Config]:
    """The configs of the TMA kernel: :data:`WS_TMA_CONFIGS` (kept by :func:`prune_configs` only where
    the architecture warp-specializes), then the 64- and 128-row tiles of :data:`CONFIGS` (wgmma and
    tcgen05 need 64 rows per warpgroup; the TMA kernel runs from :data:`TMA_MIN_M` rows)."""
    return WS_TMA_CONFIGS + [c for c in CONFIGS if c.kwargs["BLOCK_M"] >= 64]


def variant_configs(variant: str) -> list[triton.Config]:
    """The configs ``variant`` (:data:`FUSED_VARIANT` or :data:`TMA_VARIANT`) may launch."""
    return CONFIGS if variant == FUSED_VARIANT else tma_configs()


@functools.lru_cache(maxsize=1024)
def default_config(variant: str, m: int, elem_bytes: int, arch: int = 0) -> triton.Config:
    """The config launched without autotuning: the first of ``variant``'s configs surviving
    :func:`prune_configs` for ``m`` rows of ``elem_bytes``-byte operands on ``arch`` (cached per key)."""
    return prune_configs(variant_configs(variant), m, elem_bytes, arch)[0]


# ----------------------------------------------------------------------------------------------
# Launch plan
# ----------------------------------------------------------------------------------------------

TMA_MIN_M = 256  # from here every surviving config has >= 64-row tiles (wgmma)
INTERPRETER_PROGRAMS = 3  # TMA programs under the interpreter: few, so each loops over several tiles


def tma_layout_ok(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a tensor descriptor can read ``x`` as one ``[M, K]`` matrix and ``weight`` as ``[N, K]``
    (row-major) or ``[K, N]`` (column-major): batch rows following each other, and TMA's stride and
    alignment rule (:func:`kernels._lib.device.tma_strides_ok`) on the matrix each is read as."""
    batch, tokens, _ = x.shape
    x_ok = (batch == 1 or x.stride(0) == tokens * x.stride(1)) and device.tma_strides_ok(x, 2, (1,))
    inner = 1 if weight.stride(1) == 1 else 0
    w_ok = min(weight.stride()) == 1 and device.tma_strides_ok(weight, inner, (1 - inner,))
    return x_ok and w_ok


def select_variant(m: int, arch: int, tma_layout: bool) -> str:
    """The variant the launcher runs when none is asked for: ``"tma"`` on an architecture with TMA
    (``arch``, 0 off a GPU; :func:`kernels._lib.device.has_tma`) from :data:`TMA_MIN_M` rows when the
    layout allows it (``tma_layout``: :func:`tma_layout_ok`), else ``"fused"``. The tile config changes
    with M too; :func:`kernels._lib.launch.last_launch` records it."""
    if m >= TMA_MIN_M and device.has_tma(arch) and tma_layout:
        return TMA_VARIANT
    return FUSED_VARIANT


def tma_programs(dev: torch.device) -> int:
    """Programs the persistent TMA kernel launches at most: one per SM on a GPU, and
    :data:`INTERPRETER_PROGRAMS` on the CPU interpreter."""
    return device.num_sms(dev) if dev.type == "cuda" else INTERPRETER_PROGRAMS
