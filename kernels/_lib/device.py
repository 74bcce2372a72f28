"""Device limits, one copy for the launchers' config pruning and the static audit alike: SM counts and
per-architecture shared-memory, register and thread limits.

Sources: NVIDIA CUDA C++ Programming Guide, "Technical Specifications per Compute Capability" (8.0,
8.6, 8.7, 8.9, 9.0 columns) and its "Shared Memory" sections (1 KB reserved per block);
``cuda_occupancy.h`` for the allocation units. ``smem_per_block`` is the opt-in maximum Triton raises a
launch to (``cudaDevAttrMaxSharedMemoryPerBlockOptin``: 166,912 B on A100, 232,448 B on H100). KB here
is KiB, as in NVIDIA's tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from roofline import machine

DEFAULT_NUM_SMS = 132  # H100 SXM; what a launch plans for when torch.cuda cannot tell (CPU, interpreter, AOT)


def num_sms(device: torch.device | None = None) -> int:
    """SMs of ``device`` from ``torch.cuda`` when it is a CUDA device, else :data:`DEFAULT_NUM_SMS`."""
    if device is not None and device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(device).multi_processor_count
    return DEFAULT_NUM_SMS


def arch(dev: torch.device, default: int = 0) -> int:
    """Compute capability ``10 * major + minor`` of a CUDA device (80 for an A100); ``default`` for any
    other device (the CPU, the interpreter). A forced GPU machine (``RIDGEBENCH_MACHINE=sm90``,
    :mod:`roofline.machine`) wins on every device, so its launch plans can be tested on a CPU."""
    forced = machine.forced_arch()
    if forced is not None:
        return forced
    if dev.type != "cuda":
        return default
    major, minor = torch.cuda.get_device_capability(dev)
    return 10 * major + minor


TMA_ALIGN_BYTES = 16  # a tensor descriptor's base address and every stride but the unit one


def tma_strides_ok(t: torch.Tensor, inner_dim: int, outer_dims: tuple[int, ...]) -> bool:
    """TMA's rule for reading ``t`` through a tensor descriptor: unit stride along ``inner_dim``, and a
    base address and strides along ``outer_dims`` (in bytes) that are multiples of
    :data:`TMA_ALIGN_BYTES`. Which dimensions a descriptor spans is the caller's layout question."""
    elem_bytes = t.element_size()
    return (t.stride(inner_dim) == 1 and t.data_ptr() % TMA_ALIGN_BYTES == 0
            and all((t.stride(d) * elem_bytes) % TMA_ALIGN_BYTES == 0 for d in outer_dims))


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
    86: ArchLimits(arch=86, name="sm_86 (A10/RTX 30)", max_warps_per_sm=48, max_threads_per_sm=1536,
                   max_blocks_per_sm=16, smem_per_sm=100 * 1024, smem_per_block=99 * 1024),
    87: ArchLimits(arch=87, name="sm_87 (Orin)", max_warps_per_sm=48, max_threads_per_sm=1536,
                   max_blocks_per_sm=16, smem_per_sm=164 * 1024, smem_per_block=163 * 1024),
    89: ArchLimits(arch=89, name="sm_89 (L4/L40/RTX 40)", max_warps_per_sm=48, max_threads_per_sm=1536,
                   max_blocks_per_sm=24, smem_per_sm=100 * 1024, smem_per_block=99 * 1024),
    90: ArchLimits(arch=90, name="sm_90 (H100/H200)", smem_per_sm=228 * 1024, smem_per_block=227 * 1024),
}

SMALLEST_SMEM_PER_BLOCK = min(lim.smem_per_block for lim in LIMITS.values())


def smem_per_block(arch: int) -> int:
    """Opt-in shared memory one block may use on ``arch``; the smallest known figure for an unknown one."""
    lim = LIMITS.get(arch)
    return lim.smem_per_block if lim else SMALLEST_SMEM_PER_BLOCK
