"""The theoretical occupancy of one kernel config on one audited architecture.

Theoretical occupancy is the number of warps resident on one SM when every SM is full of blocks of
this kernel, as limited by registers, shared memory, threads and the block-slot count. It predicts
latency hiding; it does not measure speed (a kernel at 12% occupancy can be at the roof, and one at
100% can be far from it).

The limits (with their sources) are the architecture table's (:mod:`roofline.model.arch`, re-exported by
:mod:`kernels._lib.device`): one copy for the launchers' config pruning and this audit. Occupancy follows
``cuda_occupancy.h``: registers allocated per warp in units of 256 over 4 sub-partitions, shared memory
in 128 B units plus 1 KB reserved per block; the shared-memory carve-out is assumed to be the largest
the SM offers (a smaller one only lowers it). On an architecture with tensor memory (sm_100) the
columns a block allocates (Triton's ``metadata.tmem_size``) limit resident blocks too
(``tensor_memory``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from kernels._lib.device import ARCHS, AUDITED_ARCHS, ArchLimits

# The architectures the audit compiles for (the table's ``audited`` rows). With no --arch: the NVIDIA
# ones; AMD (gfx942, gfx950) by name (``--arch gfx942 gfx950``), and CI audits every supported row.
SUPPORTED_ARCHS: tuple[int | str, ...] = AUDITED_ARCHS
DEFAULT_ARCHS: tuple[int | str, ...] = tuple(a for a in SUPPORTED_ARCHS if ARCHS[a].backend == "cuda")
LIMITS: dict[int | str, ArchLimits] = {arch: ARCHS[arch] for arch in SUPPORTED_ARCHS}


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


@dataclass(frozen=True)
class Occupancy:
    """Theoretical occupancy of one config on one architecture.

    ``blocks_by`` gives the resident-block limit each resource sets (``registers``, ``shared_memory``,
    ``warps`` (threads), ``blocks``); ``limiter`` names the smallest (ties list every one, joined by
    ``+``), plus ``tensor_memory`` on an architecture that has it. ``fraction`` =
    ``warps_per_sm / max_warps_per_sm``.
    """

    blocks_per_sm: int
    warps_per_sm: int
    max_warps_per_sm: int
    fraction: float
    limiter: str
    blocks_by: dict[str, int]
    waves_per_simd: int | None = None  # AMD: resident waves on each of the CU's 4 SIMDs

    def to_dict(self) -> dict:
        """The fields; ``waves_per_simd`` only on AMD (an NVIDIA line's JSON is unchanged)."""
        d = asdict(self)
        if d["waves_per_simd"] is None:
            del d["waves_per_simd"]
        return d


def occupancy(arch: int | str, *, registers: int, num_warps: int, shared_bytes: int,
              tmem_columns: int = 0) -> Occupancy:
    """Resident blocks and warps per SM for a kernel using ``registers`` per thread, ``num_warps`` warps
    per block, ``shared_bytes`` of shared memory per block (static + dynamic) and ``tmem_columns`` of
    tensor memory per block, on ``arch``.

    Follows ``cudaOccMaxActiveBlocksPerMultiprocessor`` (partitioned global caching off). A block that
    cannot launch at all (too many threads, registers or shared memory) gets 0 blocks.
    """
    if arch not in LIMITS:
        raise ValueError(f"arch: expected one of {list(LIMITS)}, got {arch!r}")
    if num_warps <= 0:
        raise ValueError(f"num_warps: expected a positive integer, got {num_warps!r}")
    if registers < 0 or shared_bytes < 0 or tmem_columns < 0:
        raise ValueError(f"registers, shared_bytes, tmem_columns: expected values >= 0, got {registers}, "
                         f"{shared_bytes}, {tmem_columns}")
    lim = LIMITS[arch]
    threads = num_warps * lim.warp_size

    # Warps (threads) and block slots.
    by_warps = lim.max_warps_per_sm // num_warps if threads <= lim.max_threads_per_block else 0
    by_blocks = lim.max_blocks_per_sm

    # Registers: allocated per warp in 256-register units; each sub-partition holds whole warps.
    regs_per_warp = _round_up(registers * lim.warp_size, lim.reg_alloc_unit)
    regs_per_block = regs_per_warp * num_warps
    # The hardware check assumes the block's warps are spread over all sub-partitions.
    regs_assumed = regs_per_warp * _round_up(num_warps, lim.sub_partitions)
    if registers > lim.max_regs_per_thread or max(regs_per_block, regs_assumed) > lim.regs_per_sm:
        by_regs = 0
    elif regs_per_warp == 0:
        by_regs = by_blocks
    else:
        warps_per_partition = (lim.regs_per_sm // lim.sub_partitions) // regs_per_warp
        by_regs = (warps_per_partition * lim.sub_partitions) // num_warps

    # Shared memory: the block's bytes + the 1 KB system reservation, in 128-byte units.
    if shared_bytes > lim.smem_per_block:
        by_smem = 0
    else:
        smem = _round_up(shared_bytes + lim.smem_reserved_per_block, lim.smem_alloc_unit)
        by_smem = lim.smem_per_sm // smem

    blocks_by = {"registers": by_regs, "shared_memory": by_smem, "warps": by_warps, "blocks": by_blocks}
    if lim.tmem_columns:  # tensor memory: whole allocations of the block's columns
        blocks_by["tensor_memory"] = lim.tmem_columns // tmem_columns if tmem_columns else by_blocks
    elif tmem_columns:
        raise ValueError(f"tmem_columns: sm_{arch} has no tensor memory, got {tmem_columns}")
    blocks = min(blocks_by.values())
    limiter = "+".join(k for k, v in blocks_by.items() if v == blocks)
    warps = blocks * num_warps
    return Occupancy(
        blocks_per_sm=blocks,
        warps_per_sm=warps,
        max_warps_per_sm=lim.max_warps_per_sm,
        fraction=warps / lim.max_warps_per_sm,
        limiter=limiter,
        blocks_by=blocks_by,
    )


def amd_occupancy(arch: int | str, *, compiler_waves_per_simd: int, num_warps: int,
                  shared_bytes: int) -> Occupancy:
    """Resident workgroups and waves per CU on an AMD architecture (``backend == "hip"`` in the table).

    The registers' limit is the compiler's (``; Occupancy:`` in the AMDGCN: waves per SIMD its VGPRs,
    AGPRs and SGPRs allow); LDS is Triton's launch-time allocation, which the compiler does not see, so
    it limits workgroups here (``smem_per_sm // shared_bytes``). A workgroup's waves spread over the
    CU's SIMDs (``sub_partitions``); ``warps_per_sm`` counts waves per CU.
    """
    if arch not in LIMITS or LIMITS[arch].backend != "hip":
        raise ValueError(f"arch: expected an AMD architecture of {list(LIMITS)}, got {arch!r}")
    if num_warps <= 0:
        raise ValueError(f"num_warps: expected a positive integer, got {num_warps!r}")
    if compiler_waves_per_simd < 0 or shared_bytes < 0:
        raise ValueError(f"compiler_waves_per_simd, shared_bytes: expected values >= 0, got "
                         f"{compiler_waves_per_simd}, {shared_bytes}")
    lim = LIMITS[arch]
    by_regs = compiler_waves_per_simd * lim.sub_partitions // num_warps
    if shared_bytes > lim.smem_per_block:
        by_smem = 0
    else:
        by_smem = lim.smem_per_sm // _round_up(shared_bytes, lim.smem_alloc_unit) if shared_bytes else \
            lim.max_blocks_per_sm
    by_warps = lim.max_warps_per_sm // num_warps if num_warps * lim.warp_size <= lim.max_threads_per_block \
        else 0
    blocks_by = {"registers": by_regs, "shared_memory": by_smem, "warps": by_warps,
                 "blocks": lim.max_blocks_per_sm}
    blocks = min(blocks_by.values())
    limiter = "+".join(k for k, v in blocks_by.items() if v == blocks)
    waves = blocks * num_warps
    return Occupancy(blocks_per_sm=blocks, warps_per_sm=waves, max_warps_per_sm=lim.max_warps_per_sm,
                     fraction=waves / lim.max_warps_per_sm, limiter=limiter, blocks_by=blocks_by,
                     waves_per_simd=waves // lim.sub_partitions)
