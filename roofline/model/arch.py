"""The one table of GPU architecture facts: per compute capability, the per-SM and per-block limits, the
tensor-core MMA class and its SASS opcodes, TMA, and the audit's gate for that class.

Everything that branches on an architecture reads this table: the launchers' config pruning
(``kernels/*/configs.py``), the static audit's occupancy, gates, SASS parsing and efficiency rules
(``kernels/audit``), and the hardware presets (:mod:`roofline.model.hardware`, which name their ``arch``
instead of retyping its limits). ``kernels._lib.device`` re-exports it (``roofline`` never imports
``kernels``). ``tests/test_arch_table.py`` fails when an opcode name, a shared-memory size or a
capability compared in a branch appears outside this module.

Sources:
- limits: NVIDIA CUDA C++ Programming Guide, "Technical Specifications per Compute Capability" and its
  "Shared Memory" sections (1 KiB reserved per block); NVIDIA CCCL ``libcudacxx/include/cuda/__device/
  arch_traits.h`` for 10.0 and 12.0 (228 KiB / 100 KiB of shared memory per SM, 32 / 24 resident blocks,
  2048 / 1536 threads); ``cuda_occupancy.h`` for the allocation units. ``smem_per_block`` is the opt-in
  maximum Triton raises a launch to (``cudaDevAttrMaxSharedMemoryPerBlockOptin``: 166,912 B on A100,
  232,448 B on H100). KB here is KiB, as in NVIDIA's tables.
- MMA classes, from AOT compiles with the triton wheel's ``ptxas`` (``shared/TRITON-ON-CPU.md``):
  ``mma.sync`` is ``HMMA`` in SASS (sm_80 and later; sm_120 has nothing wider); ``wgmma`` is ``HGMMA``
  (sm_90a); ``tcgen05.mma`` is ``UTC*MMA`` (sm_100a: ``UTCHMMA`` for fp16/bf16, ``UTCQMMA`` fp8,
  ``UTCIMMA`` int8, ``UTCOMMA`` fp4), with the accumulator in tensor memory (512 columns x 128 lanes of
  32 bits per SM). ``wgmma`` and ``tcgen05`` read their operands from shared memory; Triton emits either
  only for tiles of at least ``native_mma_min_rows`` rows and falls back to ``mma.sync`` below that.

The table is keyed by ``10 * major + minor`` for NVIDIA rows. AMD rows (issue 24) fit the same
record: ``backend="hip"``, a string key and ``target`` (``"gfx942"``), ``warp_size=64``, LDS as the
shared memory, VGPR/AGPR budgets in ``regs_per_sm``/``accum_regs_per_simd`` and ``mfma`` as the MMA class
with ``v_mfma`` as its opcode prefix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

KiB = 1024


@dataclass(frozen=True)
class ArchSpec:
    """Facts of one GPU architecture (see the module docstring for sources).

    Limits: registers and threads per SM and block, shared memory per SM (``smem_per_sm``, the largest
    carve-out) and per block (``smem_per_block``, the opt-in maximum), allocation units.
    MMA: ``mma_class`` names the widest tensor-core instruction Triton emits there (``"mma.sync"``,
    ``"wgmma"``, ``"tcgen05"``); ``mma_opcodes`` are its SASS opcode bases; ``mma_gate`` is the audit
    gate that requires that class for a ``tensor_cores`` case (``None`` where ``mma.sync`` is the class:
    ``tensor_cores`` already requires it); ``native_mma_min_rows`` is the smallest tile (rows per
    warpgroup of 4 warps) Triton lowers to that class; ``mma_reads_smem``: the class takes its
    operands from shared memory (wgmma, tcgen05), which frees the registers ``mma.sync`` spends on
    operand fragments. ``tma``: the Tensor Memory Accelerator (tensor descriptors). ``tmem_columns``:
    tensor-memory columns per SM (0 without tensor memory). ``warp_specialize``: kernels use Triton's
    automatic warp specialization here (``tl.range(..., warp_specialize=True)``: a TMA load partition,
    an MMA partition and the epilogue; Triton's own tutorials 06 and 09 enable it from capability 10).
    ``min_waves_per_simd``: the audit's ``occupancy`` gate, resident waves per SIMD a case must reach
    (AMD rows: 2, what Triton's own AMD attention and matmul configs ask for with ``waves_per_eu=2``:
    one wave's memory latency hidden behind another's MFMAs; 0 where the gate does not apply).
    ``audited``: the static audit compiles for it.
    """

    arch: int | str
    name: str
    backend: str = "cuda"
    target: int | str | None = None  # what GPUTarget takes; None: the key
    warp_size: int = 32
    regs_per_sm: int = 65536
    max_regs_per_thread: int = 255
    reg_alloc_unit: int = 256          # registers, allocated per warp
    sub_partitions: int = 4            # SMSPs; a warp's registers come from one of them
    max_warps_per_sm: int = 64
    max_threads_per_sm: int = 2048
    max_blocks_per_sm: int = 32
    max_threads_per_block: int = 1024
    smem_per_sm: int = 0               # bytes, largest carve-out
    smem_per_block: int = 0            # bytes, opt-in maximum for one block
    smem_reserved_per_block: int = 1024
    smem_alloc_unit: int = 128
    mma_class: str = "mma.sync"
    mma_opcodes: tuple[str, ...] = ("HMMA",)
    mma_gate: str | None = None
    native_mma_min_rows: int = 16
    mma_reads_smem: bool = False
    tma: bool = False
    tmem_columns: int = 0
    warp_specialize: bool = False
    min_waves_per_simd: int = 0        # the audit's occupancy floor (0: not gated)
    audited: bool = False

    @property
    def gpu_target(self) -> tuple[str, int | str, int]:
        """``(backend, arch, warp_size)`` for ``triton.backends.compiler.GPUTarget``."""
        return self.backend, self.arch if self.target is None else self.target, self.warp_size

    def limits_dict(self) -> dict:
        """The per-SM and per-block limits (what the audit JSON's ``limits`` section records)."""
        return {k: getattr(self, k) for k in _LIMIT_FIELDS}

    def to_dict(self) -> dict:
        return asdict(self)


_LIMIT_FIELDS = ("arch", "name", "regs_per_sm", "max_regs_per_thread", "reg_alloc_unit", "sub_partitions",
                 "max_warps_per_sm", "max_threads_per_sm", "max_blocks_per_sm", "max_threads_per_block",
                 "warp_size", "smem_per_sm", "smem_per_block", "smem_reserved_per_block", "smem_alloc_unit")

# The SASS opcodes of each MMA class; HMMA (mma.sync) exists on every tensor-core arch.
_MMA_SYNC = ("HMMA",)
_WGMMA = ("HGMMA",)
_TCGEN05 = ("UTCHMMA", "UTCQMMA", "UTCIMMA", "UTCOMMA")
# 48 warps / 1536 threads per SM on the consumer and embedded parts
_SMALL_SM = {"max_warps_per_sm": 48, "max_threads_per_sm": 1536}

# AMD CDNA3/CDNA4 compute units (AMD "CDNA 3 Instruction Set Architecture" reference guide, sections 1 and
# 3; LLVM AMDGPUUsage "Memory Spaces"/"Processors"): 4 SIMDs per CU ("sub_partitions"), wavefronts of 64,
# up to 8 waves per SIMD (32 per CU), 512 32-bit registers per lane per SIMD shared by a wave's VGPRs and
# AGPRs (a wave may hold 512: 256 VGPRs + 256 AGPRs), allocated in granules of 8 per lane (512 per
# wave); workgroups of up to 1024 work-items; LDS is the shared memory (no reservation per workgroup).
# The matrix class is MFMA (``v_mfma_*``); there is no TMA, tensor memory or Triton warp specialization.
_CDNA = {"backend": "hip", "warp_size": 64, "regs_per_sm": 4 * 512 * 64, "max_regs_per_thread": 512,
         "reg_alloc_unit": 8 * 64, "sub_partitions": 4, "max_warps_per_sm": 32, "max_threads_per_sm": 2048,
         "max_blocks_per_sm": 32, "smem_reserved_per_block": 0, "smem_alloc_unit": 512,
         "mma_class": "mfma", "mma_opcodes": ("MFMA",), "mma_gate": "mfma", "native_mma_min_rows": 16,
         "min_waves_per_simd": 2}

ARCHS: dict[int | str, ArchSpec] = {
    s.arch: s
    for s in (
        ArchSpec(arch=80, name="sm_80 (A100)", smem_per_sm=164 * KiB, smem_per_block=163 * KiB,
                 audited=True),
        ArchSpec(arch=86, name="sm_86 (A10/RTX 30)", **_SMALL_SM, max_blocks_per_sm=16,
                 smem_per_sm=100 * KiB, smem_per_block=99 * KiB),
        ArchSpec(arch=87, name="sm_87 (Orin)", **_SMALL_SM, max_blocks_per_sm=16,
                 smem_per_sm=164 * KiB, smem_per_block=163 * KiB),
        ArchSpec(arch=89, name="sm_89 (L4/L40/RTX 40)", **_SMALL_SM, max_blocks_per_sm=24,
                 smem_per_sm=100 * KiB, smem_per_block=99 * KiB),
        ArchSpec(arch=90, name="sm_90 (H100/H200)", smem_per_sm=228 * KiB, smem_per_block=227 * KiB,
                 mma_class="wgmma", mma_opcodes=_WGMMA, mma_gate="wgmma", native_mma_min_rows=64,
                 mma_reads_smem=True, tma=True, audited=True),
        ArchSpec(arch=100, name="sm_100 (B200/GB200)", smem_per_sm=228 * KiB, smem_per_block=227 * KiB,
                 mma_class="tcgen05", mma_opcodes=_TCGEN05, mma_gate="tcgen05", native_mma_min_rows=64,
                 mma_reads_smem=True, tma=True, tmem_columns=512, warp_specialize=True, audited=True),
        # sm_103 (Blackwell Ultra): sm_100's limits and MMA (CCCL derives its traits from sm_100's)
        ArchSpec(arch=103, name="sm_103 (B300/GB300)", smem_per_sm=228 * KiB, smem_per_block=227 * KiB,
                 mma_class="tcgen05", mma_opcodes=_TCGEN05, mma_gate="tcgen05", native_mma_min_rows=64,
                 mma_reads_smem=True, tma=True, tmem_columns=512, warp_specialize=True),
        ArchSpec(arch=120, name="sm_120 (RTX PRO 6000/RTX 50)", **_SMALL_SM, max_blocks_per_sm=24,
                 smem_per_sm=100 * KiB, smem_per_block=99 * KiB, tma=True, audited=True),
        # AMD CDNA3 (MI300X/MI325X) and CDNA4 (MI355X): per CU and per workgroup (see _CDNA)
        ArchSpec(arch="gfx942", name="gfx942 (MI300X/MI325X)", **_CDNA, smem_per_sm=64 * KiB,
                 smem_per_block=64 * KiB, audited=True),
        ArchSpec(arch="gfx950", name="gfx950 (MI355X)", **_CDNA, smem_per_sm=160 * KiB,
                 smem_per_block=160 * KiB, audited=True),
        # CDNA2 (MI250X), for its preset: the same CU, 64 KiB of LDS; not audited
        ArchSpec(arch="gfx90a", name="gfx90a (MI250X)", **_CDNA, smem_per_sm=64 * KiB,
                 smem_per_block=64 * KiB),
    )
}

# Every tensor-core opcode any row names, the newest classes first and mma.sync last (the audit's table
# prints them in this order).
MMA_OPCODES: tuple[str, ...] = tuple(dict.fromkeys(
    op for spec in reversed(ARCHS.values()) for op in spec.mma_opcodes if op not in _MMA_SYNC)) + _MMA_SYNC
# The audit gates that require an architecture's MMA class (wgmma, tcgen05), in table order.
MMA_GATES: tuple[str, ...] = tuple(dict.fromkeys(s.mma_gate for s in ARCHS.values() if s.mma_gate))
# The architectures the static audit compiles for (all of them unless --arch names some; CI audits all).
AUDITED_ARCHS: tuple[int | str, ...] = tuple(a for a, s in ARCHS.items() if s.audited)
# Configs shared by every architecture (the QKV and GEMV tile lists) fit the sm_80 per-block limit they
# were chosen for; an architecture with less (sm_86/89/120: 99 KiB) prunes to its own.
SHARED_CONFIG_SMEM_PER_BLOCK: int = ARCHS[80].smem_per_block
SMALLEST_SMEM_PER_BLOCK: int = min(s.smem_per_block for s in ARCHS.values() if s.backend == "cuda")
# What a launch off a GPU (the CPU interpreter) plans its configs for where it must name an architecture:
# the one the shared config lists were chosen on.
INTERPRETER_ARCH: int = 80


def get_arch(arch: int | str) -> ArchSpec:
    """The row for ``arch`` (``90``, ``"sm_90"``, ``"90"``); ``ValueError`` naming the known ones."""
    key: int | str = arch
    if isinstance(arch, str):
        text = arch.strip().lower().removeprefix("sm_").removeprefix("sm")
        key = int(text) if text.isdigit() else text
    if key not in ARCHS:
        raise ValueError(f"arch: unknown architecture {arch!r}; known: {', '.join(str(a) for a in ARCHS)}")
    return ARCHS[key]


def arch_label(arch: int | str) -> str:
    """How reports name ``arch``: ``sm_90`` for a compute capability, the target itself (``gfx942``)
    for an AMD row."""
    return f"sm_{arch}" if isinstance(arch, int) else str(arch)


def is_hip(arch: int | str) -> bool:
    """Whether ``arch`` is an AMD (HIP backend) row of the table."""
    spec = ARCHS.get(arch)
    return bool(spec and spec.backend == "hip")


def hip_target(gcn_arch_name: str | None) -> str | None:
    """The AMD target in a ROCm device's ``gcnArchName`` (``"gfx942:sramecc+:xnack-"`` -> ``"gfx942"``);
    None for None or an empty name (an NVIDIA device has none)."""
    return gcn_arch_name.split(":", 1)[0].strip().lower() or None if gcn_arch_name else None


def smem_per_block(arch: int | str) -> int:
    """Opt-in shared memory one block may use on ``arch``; the smallest NVIDIA figure for an unknown
    one (a CPU run passes 0; an unknown capability is an older or newer NVIDIA part)."""
    spec = ARCHS.get(arch)
    return spec.smem_per_block if spec else SMALLEST_SMEM_PER_BLOCK


def has_tma(arch: int | str) -> bool:
    """Whether ``arch`` has TMA (False for an unknown arch, e.g. 0 off a GPU)."""
    spec = ARCHS.get(arch)
    return bool(spec and spec.tma)


def warp_specializes(arch: int | str) -> bool:
    """Whether kernels use Triton's automatic warp specialization on ``arch`` (False when unknown)."""
    spec = ARCHS.get(arch)
    return bool(spec and spec.warp_specialize)


def mma_reads_smem(arch: int | str) -> bool:
    """Whether ``arch``'s widest MMA takes its operands from shared memory (wgmma, tcgen05)."""
    spec = ARCHS.get(arch)
    return bool(spec and spec.mma_reads_smem)
