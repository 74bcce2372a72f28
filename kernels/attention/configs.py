"""Attention's launch plan: the variant for a shape, the shipped configs per padded head dim and their
pruning per architecture, the split-KV row packing and split count, and the grids a launch uses.
Plain Python (no kernels): the launchers, the compile cases and the tests all read these. What a launch
derives from shapes, dtype and device alone is cached per key (:func:`prefill_config`,
:func:`splitkv_plan`, :func:`check_launch_grids`), so a repeated call does not redo it."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton

from kernels._lib import device
from kernels._lib.launch import config_id
from kernels._lib.validation import check_grid

KERNEL = "attention"  # the name in launch records and audit lines
SPLITKV_MAX_Q_LEN = 16  # select_variant: speculative chunks up to this many tokens go to split-KV


def select_variant(q_len: int) -> str:
    """``"splitkv"`` for decode and speculative chunks (``q_len <= 16``), else ``"prefill"``.

    Up to 16 tokens the packed ``G * q_len`` rows fill at most a few 16-64-row tiles per KV head, and
    splitting the cache is what fills the GPU; above it the prefill kernel's 128-row tiles should win.
    The threshold is a design choice, not tuned (no GPU here): benchmarks record the choice.
    """
    return "splitkv" if q_len <= SPLITKV_MAX_Q_LEN else "prefill"


def device_arch(dev: torch.device) -> int:
    """The compute capability configs are chosen for: the device's, or the table's ``INTERPRETER_ARCH``
    (sm_80: what an A100 would pick) for CPU and interpreter runs."""
    return device.arch(dev, default=device.INTERPRETER_ARCH)


def block_d(head_dim: int) -> int:
    """The padded head dim a kernel tiles with (next power of two; 80 and 96 -> 128)."""
    return triton.next_power_of_2(head_dim)


# ----------------------------------------------------------------------------------------------
# Prefill configs, per padded head dim (BLOCK_D). Without autotuning the first config that survives
# pruning (prune_configs) runs, so the usual best for long prompts comes first; the 64-row tile is for
# short chunks (q_len <= 64) and for filling SMs at small batch x heads. On sm_90 the autotuner tries
# the sm_90-only 128x128 tile beside the configs every architecture ships, and picks by measurement.
# Shared memory ~ elem_bytes * (BLOCK_M*BLOCK_D + 2*num_stages*BLOCK_N*BLOCK_D) (Q + K/V stages; an
# upper bound: Triton 3.9 on sm_80 keeps num_stages - 1 K/V buffers). Registers: the fp32 score tile
# and accumulator, (BLOCK_M*BLOCK_N + BLOCK_M*BLOCK_D) / (32*num_warps) per thread, within the
# architecture's budget (FP32_REGISTER_BUDGET). The budgets and the sm_90-only configs come from the
# AOT compile (python -m kernels.audit --kernel attention: registers, spills and the loop column).
# ----------------------------------------------------------------------------------------------

def _cfg(block_m: int, block_n: int, warps: int, stages: int) -> triton.Config:
    return triton.Config({"BLOCK_M": block_m, "BLOCK_N": block_n}, num_warps=warps, num_stages=stages)


# fp32 score-tile + accumulator registers per thread a config may need, by whether the architecture's
# MMA reads its operands from shared memory (kernels._lib.device.mma_reads_smem): with mma.sync (sm_80,
# sm_120) operand fragments live in registers too: 96, since 128x64 tiles at Dh=64 on 4 warps (128 of
# them) spilled at 255 registers on sm_80; with wgmma/tcgen05 (sm_90, sm_100) the K/V operands come from
# shared memory: 128, the 128x128 tile at Dh=128 on 8 warps, which compiles near the register limit
# without spilling (python -m kernels.audit --kernel attention prints its registers).
FP32_REGISTER_BUDGET = {False: 96, True: 128}

# The 128x128 tile on 8 warps, 2 stages: only where the MMA reads shared memory (the sm_90 tile, also
# on sm_100); mma.sync architectures keep the configs sm_80 shipped before (at Dh=128 it is past their
# budget). Its steady-state loop streams 64 KiB of K/V per iteration.
SM90_CONFIGS: dict[int, list[triton.Config]] = {
    64: [_cfg(128, 128, 8, 2)],
    128: [_cfg(128, 128, 8, 2)],
    256: [],
}

# The warp-specialized tile (WARP_SPECIALIZE: both KV sweeps as tl.range(..., warp_specialize=True), Q, K,
# V and O by TMA, the accumulator rescaled in two halves), only where the architecture's row says Triton
# warp-specializes (sm_100: kernels._lib.device.warp_specializes) and the launch loads by TMA. Chosen
# from the sm_100 compile (triton 3.9, fp16, S = 2048; kernels/attention/DESIGN.md): 128x128 on 4 warps,
# 2 stages, as tutorial 06 runs it there; Triton adds the partitions' warps (a 4-warp correction, a
# 1-warp MMA and a 2-warp TMA partition: 12 warps of 168 registers, no spills) and keeps the score tile
# and the accumulator in tensor memory, so the register estimate of prune_configs does not apply.
WS_CONFIGS: dict[int, list[triton.Config]] = {
    64: [],
    128: [triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "WARP_SPECIALIZE": True}, num_warps=4,
                        num_stages=2)],
    256: [],
}

PREFILL_CONFIGS: dict[int, list[triton.Config]] = {
    64: SM90_CONFIGS[64] + [_cfg(128, 64, 8, 3), _cfg(64, 64, 4, 3)],     # 64 KB / 56 KB estimated (fp16)
    # 64x64 with 4 warps compiled at the 255-register cap on sm_80 (spilling with 2 stages): 64x32
    128: WS_CONFIGS[128] + SM90_CONFIGS[128] + [_cfg(128, 64, 8, 3), _cfg(64, 32, 4, 3)],  # 128 KB / 64 KB
    256: SM90_CONFIGS[256] + [_cfg(64, 32, 8, 2)],   # 96 KB; 64-key tiles would need 160 KB
}


# AMD (gfx942, gfx950: kernels._lib.device.is_hip), chosen from the AOT compile for gfx942 (AMDGCN
# registers, spills and the loop column of python -m kernels.audit --arch gfx942; triton 3.9, fp16,
# S = 2048), as Triton's tutorial 06 does on HIP: num_stages=1 (AMD's stream pipeliner prefetches through
# registers; each extra stage costs a K/V tile of LDS, and LDS is 64 KiB per CU on gfx942) and
# waves_per_eu=2, the occupancy the audit's floor asks for. At Dh=128 the 64x64 tile on 4 waves holds
# 244 VGPRs, occupancy 2, no spills, 52 wave instructions per KiB of K/V; the 128x64 tile on 4 waves is
# leaner (48/KiB) but needs 256 VGPRs + 25 AGPRs (occupancy 1), and at waves_per_eu=2 spills 24 VGPRs.
# Dh=64: 128x64, 193 VGPRs, 70/KiB. Dh=256: 64x32 on 8 waves, 240 VGPRs (on 4 waves it spills 11).
def _hip_cfg(block_m: int, block_n: int, warps: int) -> triton.Config:
    return triton.Config({"BLOCK_M": block_m, "BLOCK_N": block_n, "waves_per_eu": 2}, num_warps=warps,
                         num_stages=1)


HIP_PREFILL_CONFIGS: dict[int, list[triton.Config]] = {
    64: [_hip_cfg(128, 64, 4)],
    128: [_hip_cfg(64, 64, 4)],
    256: [_hip_cfg(64, 32, 8)],
}


def prefill_configs(bd: int, arch: int | str) -> list[triton.Config]:
    """The prefill configs ``arch`` chooses from: :data:`HIP_PREFILL_CONFIGS` on AMD, else
    :data:`PREFILL_CONFIGS` (then pruned per architecture by :func:`prune_configs`)."""
    return (HIP_PREFILL_CONFIGS if device.is_hip(arch) else PREFILL_CONFIGS)[bd]


def smem_estimate(cfg: triton.Config, bd: int, elem_bytes: int, block_m: int | None = None) -> int:
    """Q tile + pipelined K and V tiles, bytes (an estimate; the audit reads the compiled figure)."""
    bm = block_m if block_m is not None else cfg.kwargs["BLOCK_M"]
    return elem_bytes * (bm * bd + 2 * cfg.num_stages * cfg.kwargs["BLOCK_N"] * bd)


def _sm90_only(cfg: triton.Config, bd: int) -> bool:
    return any(cfg is c for c in SM90_CONFIGS.get(bd, ()))


def warp_specialized(cfg: triton.Config) -> bool:
    """Whether ``cfg`` runs the warp-specialized prefill (:data:`WS_CONFIGS`)."""
    return bool(cfg.kwargs.get("WARP_SPECIALIZE", False))


def prune_configs(configs: list[triton.Config], bd: int, elem_bytes: int, arch: int,
                  block_m: int | None = None, tma: bool = False) -> list[triton.Config]:
    """Configs for ``arch`` (compute capability, ``major * 10 + minor``): the :data:`SM90_CONFIGS` only
    where the MMA reads shared memory (sm_90, sm_100: :func:`kernels._lib.device.mma_reads_smem`), the
    :data:`WS_CONFIGS` only where Triton warp-specializes (:func:`kernels._lib.device.warp_specializes`)
    and the launch loads by TMA (``tma``), estimated shared memory within ``arch``'s per-block limit
    (:func:`kernels._lib.device.smem_per_block`), and fp32 score tile + accumulator within ``arch``'s
    register budget (:data:`FP32_REGISTER_BUDGET`; not for a warp-specialized tile, which keeps them in
    tensor memory). The cheapest one if none would fit (never empty). ``elem_bytes``: bytes per element
    of q and the caches."""
    limit = device.smem_per_block(arch)
    wide_mma = device.mma_reads_smem(arch)
    ws = tma and device.warp_specializes(arch)
    # the HIP configs were chosen from their own compile (registers and spills read there)
    budget = float("inf") if device.is_hip(arch) else FP32_REGISTER_BUDGET[wide_mma]

    def fits(c: triton.Config) -> bool:
        if warp_specialized(c):
            return ws and smem_estimate(c, bd, elem_bytes, block_m) <= limit
        if not wide_mma and _sm90_only(c, bd):
            return False
        bm = block_m if block_m is not None else c.kwargs["BLOCK_M"]
        fp32_regs = bm * (c.kwargs["BLOCK_N"] + bd) // (32 * c.num_warps)
        return smem_estimate(c, bd, elem_bytes, block_m) <= limit and fp32_regs <= budget

    kept = [c for c in configs if fits(c)]
    return kept or [min((c for c in configs if not warp_specialized(c)),
                        key=lambda c: smem_estimate(c, bd, elem_bytes, block_m))]


@functools.lru_cache(maxsize=1024)
def prefill_config(head_dim: int, q_len: int, elem_bytes: int, arch: int, tma: bool = False) -> triton.Config:
    """The prefill config launched without autotuning: the first survivor of :func:`prune_configs`
    (``tma``: the launch loads by TMA), a 64-row tile when ``q_len <= 64``."""
    bd = block_d(head_dim)
    kept = prune_configs(prefill_configs(bd, arch), bd, elem_bytes, arch, tma=tma)
    short = [c for c in kept if c.kwargs["BLOCK_M"] <= 64]
    return short[0] if q_len <= 64 and short else kept[0]


# ----------------------------------------------------------------------------------------------
# Split-KV configs, per padded head dim (BLOCK_D). BLOCK_M is not tuned: it is the packed row count
# (group * q_len) rounded up to a power of two in [16, 64], 16 being the smallest tl.dot tile.
# Shared memory ~ elem_bytes * (BLOCK_M*BLOCK_D + 2*num_stages*BLOCK_N*BLOCK_D); with 3 stages each
# program keeps two K/V tiles (2 x 2 x BLOCK_N*BLOCK_D*2 B = 64 KB at Dh=128) in flight, far above
# the ~16 KB per SM that Little's law asks of HBM3 at ~600 ns latency.
# ----------------------------------------------------------------------------------------------

DECODE_CONFIGS: dict[int, list[triton.Config]] = {
    64: [triton.Config({"BLOCK_N": 64}, num_warps=4, num_stages=3)],   # 50 KB (fp16)
    128: [triton.Config({"BLOCK_N": 64}, num_warps=4, num_stages=3)],  # 100 KB
    256: [triton.Config({"BLOCK_N": 32}, num_warps=4, num_stages=3)],  # 104 KB
}
# AMD: the KV stream's tile, as the audit compiled it for gfx942 (16-row query tile, fp16, 4k cache):
# BLOCK_N=64 with 2 stages on 4 waves holds 198 VGPRs at occupancy 2 (32 KiB of LDS: two workgroups per
# CU), 30 wave instructions per KiB; the shipped 3-stage tile needs 64 KiB of LDS (one workgroup per CU,
# occupancy 1). Dh=256: BLOCK_N=32, 1 stage (BLOCK_N=64 spills 2 VGPRs).
HIP_DECODE_CONFIGS: dict[int, list[triton.Config]] = {
    64: [triton.Config({"BLOCK_N": 64, "waves_per_eu": 2}, num_warps=4, num_stages=2)],
    128: [triton.Config({"BLOCK_N": 64, "waves_per_eu": 2}, num_warps=4, num_stages=2)],
    256: [triton.Config({"BLOCK_N": 32, "waves_per_eu": 2}, num_warps=4, num_stages=1)],
}
COMBINE_WARPS = 4
COMBINE_SPLIT_TILE = 16  # splits merged per step: 16 x BLOCK_D fp32 = 32 registers per thread at Dh=256
MAX_SPLITS = 128


def decode_block_m(group: int, q_len: int) -> int:
    """Packed rows per split-KV program: ``group * q_len`` rounded up to a power of two in [16, 64]."""
    return min(64, max(16, triton.next_power_of_2(max(1, group * q_len))))


@functools.lru_cache(maxsize=1024)
def decode_config(head_dim: int, elem_bytes: int, arch: int, block_m: int) -> triton.Config:
    """The split-KV config for a head dim: the first survivor of :func:`prune_configs`."""
    bd = block_d(head_dim)
    configs = (HIP_DECODE_CONFIGS if device.is_hip(arch) else DECODE_CONFIGS)[bd]
    return prune_configs(configs, bd, elem_bytes, arch, block_m=block_m)[0]


def select_num_splits(batch: int, n_kv_heads: int, kv_len: int, *, m_blocks: int = 1,
                      n_sms: int = device.DEFAULT_NUM_SMS, block_n: int = 64) -> int:
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


@dataclass(frozen=True)
class SplitKVPlan:
    """What a split-KV launch derives from shapes, dtype and device: the config, the packed-row block
    (``block_m`` rows, ``m_blocks`` of them per sequence) and the split count."""

    config: triton.Config
    block_m: int
    m_blocks: int
    num_splits: int


@functools.lru_cache(maxsize=1024)
def splitkv_plan(batch: int, n_heads: int, n_kv_heads: int, q_len: int, head_dim: int, capacity: int,
                 elem_bytes: int, arch: int, n_sms: int, num_splits: int | None = None) -> SplitKVPlan:
    """The split-KV launch plan for one key (cached: a decode loop computes it once per shape).
    ``num_splits=None``: :func:`select_num_splits` over the cache ``capacity`` on ``n_sms`` SMs."""
    group = n_heads // n_kv_heads
    block_m = decode_block_m(group, q_len)
    m_blocks = triton.cdiv(group * q_len, block_m)
    cfg = decode_config(head_dim, elem_bytes, arch, block_m)
    if num_splits is None:
        num_splits = select_num_splits(batch, n_kv_heads, capacity, m_blocks=m_blocks, n_sms=n_sms,
                                       block_n=cfg.kwargs["BLOCK_N"])
    return SplitKVPlan(cfg, block_m, m_blocks, num_splits)


def splitkv_config_id(cfg: triton.Config, meta: dict) -> str:
    """The config id a split-KV launch records and the audit reports (BLOCK_M and SPLIT included)."""
    return config_id({**cfg.kwargs, "BLOCK_M": meta["BLOCK_M"], "SPLIT": int(meta["SPLIT"])},
                     cfg.num_warps, cfg.num_stages)


# ----------------------------------------------------------------------------------------------
# Grids
# ----------------------------------------------------------------------------------------------

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


@functools.lru_cache(maxsize=1024)
def check_launch_grids(variant: str, batch: int, n_heads: int, n_kv_heads: int, q_len: int, head_dim: int,
                       num_splits: int = 1) -> None:
    """Refuse, before launching, a shape whose grid passes CUDA's limits (on every device alike: the
    interpreter has no such limit, but a shape should not work on CPU and fail on a GPU)."""
    for grid, axes in launch_grids(variant, batch, n_heads, n_kv_heads, q_len, head_dim, num_splits):
        check_grid(grid, axes)
