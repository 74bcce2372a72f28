"""Hardware specs: dense peak FLOP/s per dtype class, memory bandwidth, caches and SM resources.

Figures are datasheet values (``shared/REFERENCE.md``), dense (never the 2:4-sparse peaks that spec
pages also print), in decimal units: 1 TFLOP/s = 1e12 FLOP/s, 1 GB/s = 1e9 B/s. Cache and shared
memory sizes are in bytes, binary as NVIDIA means them (the "40 MB" A100 L2 is 40 MiB, "164 KB" of
shared memory per SM is 164 KiB).

Dtype classes (the compute roof a kernel runs against):
``tensor16``: fp16/bf16 on tensor cores (fp32 accumulate); ``tf32``: fp32 matmuls on tensor cores (what
Triton's ``tl.dot`` does with fp32 inputs on sm_80+); ``fp32``: plain fp32 FMA units.
A spec built from measurements (:func:`from_measured`) replaces datasheet ceilings with measured ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

DTYPE_CLASSES: tuple[str, ...] = ("tensor16", "tf32", "fp32")

KiB = 1024
MiB = 1024 * 1024


class UnknownHardwareError(LookupError):
    """A device name or preset that ridgebench has no figures for (it never guesses)."""


@dataclass(frozen=True)
class HardwareSpec:
    """One device's ceilings.

    Attributes
    ----------
    name : preset key (``"A100-SXM4-80GB"``) or a measured device's name.
    peak_flops : dense peak FLOP/s per dtype class; a class the device lacks is absent.
    mem_bandwidth : bytes/s of the main memory (HBM, or DRAM for a CPU).
    source : ``"datasheet"``, ``"seed"`` (a seed document's rounded figures) or ``"measured"``.
    """

    name: str
    peak_flops: Mapping[str, float]
    mem_bandwidth: float
    source: str = "datasheet"
    l2_bytes: int | None = None
    sm_count: int | None = None
    smem_per_sm: int | None = None
    smem_per_block: int | None = None
    arch: int | None = None  # CUDA compute capability x10: 70, 80, 90
    description: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Low-precision tensor-core peaks (dense, FLOP/s or OP/s) and memory capacity; None: the part has no
    # such tensor-core math (the A100 has no fp8) or ridgebench has no sourced figure. See _LOW_PRECISION.
    fp8_peak_flops: float | None = None
    int8_peak_ops: float | None = None
    memory_bytes: int | None = None  # datasheet capacity, decimal as printed ("40GB" -> 40e9)

    def peak(self, dtype_class: str) -> float:
        """Dense peak FLOP/s for ``dtype_class``; ``KeyError`` naming what exists if absent."""
        if dtype_class not in self.peak_flops:
            have = ", ".join(self.peak_flops)
            raise KeyError(f"{self.name} has no {dtype_class!r} peak (it has: {have})")
        return self.peak_flops[dtype_class]

    def ridge(self, dtype_class: str = "tensor16") -> float:
        """Ridge point in FLOP/byte: the intensity where memory time equals compute time."""
        return self.peak(dtype_class) / self.mem_bandwidth

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "peak_flops": dict(self.peak_flops),
            "mem_bandwidth": self.mem_bandwidth,
            "ridge_flop_per_byte": {c: self.ridge(c) for c in self.peak_flops},
            "l2_bytes": self.l2_bytes,
            "sm_count": self.sm_count,
            "smem_per_sm": self.smem_per_sm,
            "smem_per_block": self.smem_per_block,
            "arch": self.arch,
            "notes": list(self.notes),
            "fp8_peak_flops": self.fp8_peak_flops,
            "int8_peak_ops": self.int8_peak_ops,
            "memory_bytes": self.memory_bytes,
        }


def _gpu(name: str, desc: str, tensor16: float, tf32: float | None, fp32: float, hbm_gbs: float,
         l2_mib: int, sms: int, smem_sm_kib: int, smem_block_kib: int, arch: int, **kw) -> HardwareSpec:
    peaks = {"tensor16": tensor16 * 1e12, "fp32": fp32 * 1e12}
    if tf32 is not None:
        peaks["tf32"] = tf32 * 1e12
    return HardwareSpec(name=name, description=desc, peak_flops=peaks, mem_bandwidth=hbm_gbs * 1e9,
                        l2_bytes=l2_mib * MiB, sm_count=sms, smem_per_sm=smem_sm_kib * KiB,
                        smem_per_block=smem_block_kib * KiB, arch=arch, **kw)


PRESETS: dict[str, HardwareSpec] = {
    s.name: s
    for s in (
        _gpu("A100-SXM4-40GB", "NVIDIA A100 40GB SXM4", 312, 156, 19.5, 1555, 40, 108, 164, 163, 80),
        _gpu("A100-PCIE-40GB", "NVIDIA A100 40GB PCIe", 312, 156, 19.5, 1555, 40, 108, 164, 163, 80),
        _gpu("A100-SXM4-80GB", "NVIDIA A100 80GB SXM4", 312, 156, 19.5, 2039, 40, 108, 164, 163, 80),
        _gpu("A100-PCIE-80GB", "NVIDIA A100 80GB PCIe", 312, 156, 19.5, 1935, 40, 108, 164, 163, 80),
        _gpu("H100-SXM5", "NVIDIA H100 SXM5 80GB", 989, 495, 67, 3350, 50, 132, 228, 227, 90),
        _gpu("H100-PCIE", "NVIDIA H100 PCIe 80GB", 756, 378, 51, 2000, 50, 114, 228, 227, 90),
        # H200: 60 MB of L2, as the device reports it (cudaDeviceProp.l2CacheSize)
        _gpu("H200", "NVIDIA H200 SXM 141GB", 989, 495, 67, 4800, 60, 132, 228, 227, 90),
        _gpu("V100-SXM2", "NVIDIA V100 SXM2", 125, None, 15.7, 900, 6, 80, 96, 96, 70),
        # The seed documents' rounded A100: 312 TFLOP/s over 1.5 TB/s (ridge 208) and 2.0 TB/s (156).
        _gpu("A100-SEED-1.5TB", "A100 as the seed documents round it (1.5 TB/s)", 312, 156, 19.5, 1500,
             40, 108, 164, 163, 80, source="seed"),
        _gpu("A100-SEED-2.0TB", "A100 as the seed documents round it (2.0 TB/s)", 312, 156, 19.5, 2000,
             40, 108, 164, 163, 80, source="seed"),
    )
}

# Dense fp8 (e4m3) and int8 tensor-core peaks (TFLOP/s, TOPS) and memory capacity (GB, decimal as the
# datasheets print it), added to the presets above. Sources: NVIDIA A100 datasheet (INT8 Tensor Core
# 624 TOPS dense, 1,248 with sparsity; no fp8 tensor cores on sm_80; 40GB/80GB); NVIDIA H100 datasheet
# (SXM: FP8 and INT8 3,958 with sparsity, 1,979 dense; PCIe: 3,026 with sparsity, 1,513 dense; 80GB);
# NVIDIA H200 datasheet (FP8 and INT8 3,958 with sparsity, 1,979 dense; 141GB). V100 tensor cores do
# fp16 only, and the V100 SXM2 preset does not say 16 or 32 GB. The seed A100s keep the A100's int8 and
# no capacity (the seeds name 40GB and 80GB parts: use those presets).
_LOW_PRECISION: dict[str, tuple[float | None, float | None, float | None]] = {
    "A100-SXM4-40GB": (None, 624, 40), "A100-PCIE-40GB": (None, 624, 40),
    "A100-SXM4-80GB": (None, 624, 80), "A100-PCIE-80GB": (None, 624, 80),
    "H100-SXM5": (1979, 1979, 80), "H100-PCIE": (1513, 1513, 80), "H200": (1979, 1979, 141),
    "A100-SEED-1.5TB": (None, 624, None), "A100-SEED-2.0TB": (None, 624, None),
}
for _name, (_fp8, _int8, _gb) in _LOW_PRECISION.items():
    PRESETS[_name] = replace(PRESETS[_name], fp8_peak_flops=None if _fp8 is None else _fp8 * 1e12,
                             int8_peak_ops=None if _int8 is None else _int8 * 1e12,
                             memory_bytes=None if _gb is None else int(_gb * 1e9))

# The hardware model-only verdicts and `python -m roofline model` use when none is named.
DEFAULT_HARDWARE = "A100-SXM4-80GB"


def get_preset(name: str) -> HardwareSpec:
    """The preset called ``name`` (case-insensitive); :class:`UnknownHardwareError` otherwise."""
    for key, spec in PRESETS.items():
        if key.lower() == name.strip().lower():
            return spec
    raise UnknownHardwareError(f"unknown hardware preset {name!r}; known presets: {', '.join(PRESETS)}")


# (pattern on the upper-cased device name, preset). The first match wins, so more specific
# patterns come first. Names that could be more than one part (a bare "H100") match nothing.
_DEVICE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"A100.*(PCIE|PCI-E).*80\s*GB|A100.*80\s*GB.*(PCIE|PCI-E)", "A100-PCIE-80GB"),
    (r"A100.*(SXM).*80\s*GB|A100.*80\s*GB.*SXM", "A100-SXM4-80GB"),
    (r"A100.*(PCIE|PCI-E)(.*40\s*GB)?$|A100.*40\s*GB.*(PCIE|PCI-E)", "A100-PCIE-40GB"),
    (r"A100.*SXM.*40\s*GB|A100.*40\s*GB.*SXM|A100-SXM4-40GB", "A100-SXM4-40GB"),
    (r"H100.*(PCIE|PCI-E)", "H100-PCIE"),
    (r"H100.*(SXM|HBM3)", "H100-SXM5"),
    (r"(?<![A-Z])H200(?!.*NVL)", "H200"),  # not a GH200 superchip, not an H200 NVL
    (r"V100.*SXM2", "V100-SXM2"),
)


def is_mig(device_name: str) -> bool:
    """Whether ``device_name`` is a MIG slice ("NVIDIA A100-SXM4-80GB MIG 1g.10gb")."""
    return re.search(r"\bMIG\b", device_name.upper()) is not None


MIG_NOTE = ("a MIG slice: no full-GPU datasheet applies (a slice has a fraction of the SMs, L2 and memory "
            "bandwidth); its roof comes from the measured ceilings alone")


def lookup_device(device_name: str) -> HardwareSpec:
    """The preset for a ``torch.cuda.get_device_name()`` string.

    "NVIDIA A100-SXM4-80GB" -> A100-SXM4-80GB, "NVIDIA H100 80GB HBM3" -> H100-SXM5,
    "NVIDIA H100 PCIe" -> H100-PCIE, "NVIDIA H200" -> H200. A name that does not identify one part
    (a bare "NVIDIA H100", an H100 NVL, an unknown GPU) or a MIG slice of any GPU raises
    :class:`UnknownHardwareError`.
    """
    if is_mig(device_name):
        raise UnknownHardwareError(f"{device_name!r} is {MIG_NOTE}")
    upper = device_name.strip().upper()
    for pattern, preset in _DEVICE_PATTERNS:
        if re.search(pattern, upper):
            return PRESETS[preset]
    raise UnknownHardwareError(
        f"no hardware preset for device {device_name!r}; ridgebench does not guess. Known presets: "
        f"{', '.join(PRESETS)}. Use measured ceilings (roofline.hardware.from_measured) or add a preset."
    )


def from_measured(
    name: str,
    mem_bandwidth: float,
    peak_flops: Mapping[str, float],
    *,
    base: HardwareSpec | None = None,
    notes: tuple[str, ...] = (),
) -> HardwareSpec:
    """A spec whose ceilings are measured (bytes/s, FLOP/s per dtype class).

    ``base`` (the matching datasheet preset, if any) supplies what was not measured: caches, SMs,
    shared memory, architecture. A CPU has no base.
    """
    for cls in peak_flops:
        if cls not in DTYPE_CLASSES:
            raise ValueError(f"peak_flops: unknown dtype class {cls!r}, expected one of {DTYPE_CLASSES}")
    if mem_bandwidth <= 0 or any(v <= 0 for v in peak_flops.values()):
        raise ValueError("measured ceilings must be positive")
    if base is None:
        return HardwareSpec(name=name, peak_flops=dict(peak_flops), mem_bandwidth=mem_bandwidth,
                            source="measured", description=f"{name} (measured)", notes=tuple(notes))
    return replace(base, name=name, peak_flops=dict(peak_flops), mem_bandwidth=mem_bandwidth,
                   source="measured", description=f"{base.description} (measured)", notes=tuple(notes))


def dtype_class(dtype: object, *, matmul: bool) -> str:
    """The compute roof for a kernel in ``dtype``.

    Matmul kernels: fp16/bf16 -> ``tensor16``; fp32 -> ``tf32`` (Triton's ``tl.dot`` default on sm_80+).
    Elementwise and row kernels (softmax, GELU) compute in fp32 on the CUDA cores whatever their storage
    dtype, so their roof is ``fp32``.
    """
    name = str(dtype).replace("torch.", "")
    if name in ("float16", "fp16", "half", "bfloat16", "bf16"):
        return "tensor16" if matmul else "fp32"
    if name in ("float32", "fp32", "float"):
        return "tf32" if matmul else "fp32"
    raise ValueError(f"dtype: unsupported {dtype!r}, expected float16, bfloat16 or float32")
