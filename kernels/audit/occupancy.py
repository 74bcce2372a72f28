"""Per-SM limits of sm_80 (A100) and sm_90 (H100) and the theoretical occupancy of one kernel config.

Theoretical occupancy is the number of warps resident on one SM when every SM is full of blocks of
this kernel, as limited by registers, shared memory, threads and the block-slot count. It predicts
latency hiding; it does not measure speed (a kernel at 12% occupancy can be at the roof, and one at
100% can be far from it).

Sources for the limits (both architectures share all but the shared-memory figures):

- NVIDIA CUDA C++ Programming Guide, "Compute Capabilities", table "Technical Specifications per
  Compute Capability" (8.0 and 9.0 columns): 65,536 32-bit registers per SM, at most 255 registers per
  thread, 64 resident warps (2,048 threads) per SM, 32 resident blocks per SM, 1,024 threads per block;
  shared memory per SM 164 KB (8.0) and 228 KB (9.0); at most 163 KB (8.0) and 227 KB (9.0) per block
  (the opt-in maximum Triton raises the launch to; the driver attribute
  ``cudaDevAttrMaxSharedMemoryPerBlockOptin`` reads 166,912 B on A100 and 232,448 B on H100).
- Same guide, sections "Compute Capability 8.x / 9.x, Shared Memory": 1 KB of shared memory per block
  is reserved for system use, so a block occupies its own shared memory + 1,024 B of the SM's.
- ``cuda_occupancy.h`` (CUDA toolkit, the code behind ``cudaOccupancyMaxActiveBlocksPerMultiprocessor``):
  registers are allocated per warp in units of 256, spread over 4 SM sub-partitions (a warp's registers
  live in one sub-partition); shared memory is allocated in units of 128 B.

KB here is KiB (1 KB = 1,024 B), as in NVIDIA's tables. The shared-memory carve-out is assumed to be
the largest the SM offers (the driver picks a carve-out that fits the launch); a smaller preferred
carve-out can only lower occupancy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ArchLimits:
    """Per-SM and per-block limits of one CUDA compute capability (see the module docstring)."""

    arch: int
    name: str
    regs_per_sm: int = 65536
    max_regs_per_thread: int = 255
    reg_alloc_unit: int = 256          # registers, allocated per warp
    sub_partitions: int = 4            # SMSPs; a warp's registers come from one of them
    max_warps_per_sm: int = 64
    max_threads_per_sm: int = 2048
    max_blocks_per_sm: int = 32
    max_threads_per_block: int = 1024
    warp_size: int = 32
    smem_per_sm: int = 0               # bytes, largest carve-out
    smem_per_block: int = 0            # bytes, opt-in maximum for one block
    smem_reserved_per_block: int = 1024
    smem_alloc_unit: int = 128

    def to_dict(self) -> dict:
        return asdict(self)


LIMITS: dict[int, ArchLimits] = {
    80: ArchLimits(arch=80, name="sm_80 (A100)", smem_per_sm=164 * 1024, smem_per_block=163 * 1024),
    90: ArchLimits(arch=90, name="sm_90 (H100/H200)", smem_per_sm=228 * 1024, smem_per_block=227 * 1024),
}

SUPPORTED_ARCHS: tuple[int, ...] = tuple(LIMITS)


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


@dataclass(frozen=True)
class Occupancy:
    """Theoretical occupancy of one config on one architecture.

    ``blocks_by`` gives the resident-block limit each resource sets (``registers``, ``shared_memory``,
    ``warps`` (threads), ``blocks``); ``limiter`` names the smallest (ties list every one, joined by
    ``+``). ``fraction`` = ``warps_per_sm / max_warps_per_sm``.
    """

    blocks_per_sm: int
    warps_per_sm: int
    max_warps_per_sm: int
    fraction: float
    limiter: str
    blocks_by: dict[str, int]

    def to_dict(self) -> dict:
        return asdict(self)


def occupancy(arch: int, *, registers: int, num_warps: int, shared_bytes: int) -> Occupancy:
    """Resident blocks and warps per SM for a kernel using ``registers`` per thread, ``num_warps`` warps
    per block and ``shared_bytes`` of shared memory per block (static + dynamic), on ``arch``.

    Follows ``cudaOccMaxActiveBlocksPerMultiprocessor`` (partitioned global caching off). A block that
    cannot launch at all (too many threads, registers or shared memory) gets 0 blocks.
    """
    if arch not in LIMITS:
        raise ValueError(f"arch: expected one of {list(LIMITS)}, got {arch!r}")
    if num_warps <= 0:
        raise ValueError(f"num_warps: expected a positive integer, got {num_warps!r}")
    if registers < 0 or shared_bytes < 0:
        raise ValueError(f"registers, shared_bytes: expected values >= 0, got {registers}, {shared_bytes}")
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
