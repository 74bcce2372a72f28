"""Device facts for the launchers and the static audit alike: SM counts, the compute capability of a
device, TMA's layout rule, and the architecture table (:mod:`roofline.model.arch`, re-exported here: per
architecture the shared-memory, register and thread limits, the MMA class and its opcodes, TMA, with
their sources).
"""

from __future__ import annotations

import torch
import triton

from kernels._triton_compat import version_tuple
from roofline.model import arch as arch_table
from roofline.model import machine
from roofline.model.arch import (  # noqa: F401  (re-exported: the kernels' one view of the table)
    ARCHS,
    AUDITED_ARCHS,
    INTERPRETER_ARCH,
    MMA_GATES,
    MMA_OPCODES,
    SHARED_CONFIG_SMEM_PER_BLOCK,
    SMALLEST_SMEM_PER_BLOCK,
    ArchSpec,
    arch_label,
    get_arch,
    has_tma,
    hip_target,
    is_hip,
    mma_reads_smem,
    smem_per_block,
)

DEFAULT_NUM_SMS = 132  # H100 SXM; what a launch plans for when torch.cuda cannot tell (CPU, interpreter, AOT)


def num_sms(device: torch.device | None = None) -> int:
    """SMs of ``device`` from ``torch.cuda`` when it is a CUDA device, else :data:`DEFAULT_NUM_SMS`."""
    if device is not None and device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(device).multi_processor_count
    return DEFAULT_NUM_SMS


def arch(dev: torch.device, default: int = 0) -> int | str:
    """Compute capability ``10 * major + minor`` of a CUDA device (80 for an A100), the AMD target of a
    ROCm one (``"gfx942"`` for an MI300X: ROCm's torch calls its devices ``"cuda"`` too, and names the
    target in ``gcnArchName``); ``default`` for any other device (the CPU, the interpreter). A forced GPU
    machine (``RIDGEBENCH_MACHINE=sm90`` or ``mi300x``, :mod:`roofline.model.machine`) wins on every device,
    so its launch plans can be tested on a CPU."""
    forced = machine.forced_arch()
    if forced is not None:
        return forced
    if dev.type != "cuda":
        return default
    target = hip_target(getattr(torch.cuda.get_device_properties(dev), "gcnArchName", None))
    if target is not None:
        return target
    major, minor = torch.cuda.get_device_capability(dev)
    return 10 * major + minor


# The shipped warp-specialized configs (attention's WS_CONFIGS, qkv's WS_TMA_CONFIGS) were chosen and
# audited with triton 3.9.0; triton 3.6.0 (torch 2.11's pin) fails to compile two of the QKV ones for sm_100
# ("PassManager::run failed": the KV-cache append and a batch-straddling T; scripts/compat.sh 3.6.0,
# 2026-12-06), and 3.7/3.8 were never compiled. Older tritons run the plain tiles there.
WARP_SPECIALIZE_MIN_TRITON = (3, 9)


def warp_specializes(arch: int | str, triton_version: str | None = None) -> bool:
    """Whether the launchers use Triton's automatic warp specialization on ``arch``: where the
    architecture row says so (:func:`roofline.model.arch.warp_specializes`) and ``triton_version``
    (default: the installed one) is at least :data:`WARP_SPECIALIZE_MIN_TRITON`."""
    version = triton.__version__ if triton_version is None else triton_version
    return arch_table.warp_specializes(arch) and version_tuple(version) >= WARP_SPECIALIZE_MIN_TRITON


TMA_ALIGN_BYTES = 16  # a tensor descriptor's base address and every stride but the unit one


def tma_strides_ok(t: torch.Tensor, inner_dim: int, outer_dims: tuple[int, ...]) -> bool:
    """TMA's rule for reading ``t`` through a tensor descriptor: unit stride along ``inner_dim``, and a
    base address and strides along ``outer_dims`` (in bytes) that are multiples of
    :data:`TMA_ALIGN_BYTES`. Which dimensions a descriptor spans is the caller's layout question."""
    elem_bytes = t.element_size()
    return (t.stride(inner_dim) == 1 and t.data_ptr() % TMA_ALIGN_BYTES == 0
            and all((t.stride(d) * elem_bytes) % TMA_ALIGN_BYTES == 0 for d in outer_dims))


# The architecture table lives in roofline.model.arch (the presets read it too, and roofline never imports
# kernels); these names are the launchers' and the audit's view of it.
ArchLimits = ArchSpec  # the name the audit used before the table held more than limits
LIMITS: dict[int | str, ArchSpec] = ARCHS
