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

from roofline.model.arch import ARCHS

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
    arch: int | str | None = None  # CUDA compute capability x10 (70, 80, 90), or an AMD target ("gfx942")
    description: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Low-precision tensor-core peaks (dense, FLOP/s or OP/s) and memory capacity; None: the part has no
    # such tensor-core math (the A100 has no fp8) or ridgebench has no sourced figure. See _LOW_PRECISION.
    fp8_peak_flops: float | None = None
    int8_peak_ops: float | None = None
    memory_bytes: int | None = None  # datasheet capacity, decimal as printed ("40GB" -> 40e9)
    # AMD's Infinity Cache (the memory-side last-level cache past L2, 256 MB on MI300X): what a cache flush
    # must cover there; the device reports only its L2. None on NVIDIA parts.
    infinity_cache_bytes: int | None = None

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
            "infinity_cache_bytes": self.infinity_cache_bytes,
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


def _arch_gpu(name: str, desc: str, arch: int | str, tensor16: float, tf32: float | None, fp32: float,
              hbm_gbs: float, l2_mib: int | None, sms: int | None, datasheet: str,
              unverified: tuple[str, ...] = (), **kw) -> HardwareSpec:
    """A preset whose shared-memory limits come from its architecture's row (:mod:`roofline.model.arch`), with
    the datasheet named in its notes and each figure that could not be confirmed listed as unverified."""
    row = ARCHS[arch]
    peaks = {"tensor16": tensor16 * 1e12, "fp32": fp32 * 1e12}
    if tf32 is not None:
        peaks["tf32"] = tf32 * 1e12
    notes = (f"source: {datasheet}",) + tuple(f"unverified: {u}" for u in unverified)
    return HardwareSpec(name=name, description=desc, peak_flops=peaks, mem_bandwidth=hbm_gbs * 1e9,
                        l2_bytes=None if l2_mib is None else l2_mib * MiB, sm_count=sms,
                        smem_per_sm=row.smem_per_sm, smem_per_block=row.smem_per_block, arch=arch,
                        notes=notes, **kw)


# Blackwell (sm_100/sm_103 datacenter, sm_120 workstation/consumer) and Ada (sm_89) parts. Dense peaks per
# GPU: NVIDIA's HGX/NVL72 pages print 8-GPU (72-GPU) totals with 2:4 sparsity, so a per-GPU dense figure
# is total / GPUs / 2. L2 None where spec pages disagree (the device reports it; bench/ceilings.py uses
# the device's figure). GeForce parts run fp16/bf16 MMAs with fp32 accumulation (what every ridgebench
# kernel does) at half their fp16-accumulate rate; the RTX PRO parts at the full rate.
PRESETS.update({
    s.name: s
    for s in (
        _arch_gpu("B200", "NVIDIA B200 (HGX, 1000 W) 180GB", 100, 2250, 1125, 75, 8000, None, 148,
                  "NVIDIA HGX B200 datasheet (8-GPU: 36 PF fp16/bf16 and 18 PF tf32 sparse, 600 TF fp32, "
                  "64 TB/s HBM3e); per GPU dense = / 8 / 2",
                  unverified=("tf32 1125 TF (some spec pages list 1100)",
                              "fp32 75 TF (some list 80 at 1000 W)",
                              "SM count 148 (spec sites; not in the datasheet)",
                              "HBM 8000 GB/s (some list 7700)")),
        _arch_gpu("GB200", "NVIDIA GB200 (NVL72, per GPU, 1200 W) 186GB", 100, 2500, 1250, 90, 8000, None,
                  148,
                  "NVIDIA GB200 NVL72 datasheet (per superchip of 2 GPUs: 10 PF fp16/bf16 and 5 PF tf32 "
                  "sparse, 180 TF fp32, 16 TB/s HBM3e); per GPU dense = / 2 / 2",
                  unverified=("SM count 148 (assumed the B200's)",)),
        _arch_gpu("B300", "NVIDIA B300 / Blackwell Ultra (HGX, per GPU) 288GB", 103, 2250, 1125, 75, 8000,
                  None, 160,
                  "NVIDIA HGX B300 spec table (8-GPU: 36 PF fp16/bf16 and 18 PF tf32 sparse, 600 TF fp32, "
                  "8 TB/s per GPU); per GPU dense = / 8 / 2",
                  unverified=("fp16/bf16 2250 TF: one review lists ~3500 dense",
                              "SM count 160 (spec sites)")),
        _arch_gpu("RTX-PRO-6000-BLACKWELL", "NVIDIA RTX PRO 6000 Blackwell (Workstation/Server, 600 W) 96GB",
                  120, 503.8, 251.9, 125.9, 1792, 128, 188,
                  "NVIDIA RTX PRO 6000 Blackwell datasheet (125 TF fp32, 4000 AI TOPS = fp4 sparse, "
                  "1792 GB/s GDDR7, 188 SMs)",
                  unverified=("fp16/bf16 503.8 TF dense with fp32 accumulate (4000 fp4-sparse TOPS / 8; "
                              "the RTX Blackwell whitepaper's figure not confirmed here)",
                              "tf32 251.9 TF dense (half of fp16, as on Ada)", "L2 128 MB")),
        _arch_gpu("RTX-5090", "NVIDIA GeForce RTX 5090 32GB", 120, 209.5, 104.8, 104.8, 1792, 96, 170,
                  "NVIDIA GeForce RTX 5090 specifications (104.8 TF fp32, 838 TF fp16 tensor sparse with "
                  "fp16 accumulate, 1792 GB/s GDDR7, 170 SMs, 96 MB L2)",
                  unverified=("fp16/bf16 209.5 TF dense with fp32 accumulate (GeForce: half the "
                              "fp16-accumulate rate of 419 TF)", "tf32 104.8 TF dense")),
        _arch_gpu("L40S", "NVIDIA L40S 48GB", 89, 362.05, 183, 91.6, 864, 96, 142,
                  "NVIDIA L40S datasheet (fp16/bf16 362.05 TF, tf32 183 TF dense; 91.6 TF fp32; 864 GB/s "
                  "GDDR6; 96 MB L2; 142 SMs)"),
    )
})

# AMD Instinct (gfx942: MI300X, MI325X; gfx950: MI355X; gfx90a: MI250X). Dense peaks (AMD prints sparse
# figures beside them: twice these); "tensor16" is the Matrix Core fp16/bf16 rate, "tf32" AMD's xf32 (CDNA3
# only: CDNA2 has no xf32, and CDNA4 dropped it), "fp32" the vector rate. sm_count is compute units;
# l2_bytes the L2 of one XCD (what the device reports), infinity_cache_bytes the 256 MB Infinity Cache
# (MI250X has none). Sources: AMD's product pages and datasheets, as each note says.
PRESETS.update({
    s.name: s
    for s in (
        _arch_gpu("MI300X", "AMD Instinct MI300X 192GB", "gfx942", 1307.4, 653.7, 163.4, 5300, 4, 304,
                  "AMD Instinct MI300X datasheet (fp16/bf16 1307.4 TF dense, 2614.9 sparse; tf32 653.7 TF; "
                  "fp32 vector 163.4 TF; 192 GB HBM3 at 5.3 TB/s; 304 CUs; 256 MB Infinity Cache; 4 MB L2 "
                  "per XCD)", infinity_cache_bytes=256 * MiB),
        _arch_gpu("MI325X", "AMD Instinct MI325X 256GB", "gfx942", 1307.4, 653.7, 163.4, 6000, 4, 304,
                  "AMD Instinct MI325X datasheet (the MI300X's compute: fp16/bf16 1307.4 TF dense, tf32 "
                  "653.7 TF, fp32 vector 163.4 TF; 256 GB HBM3E at 6 TB/s; 304 CUs; 256 MB Infinity Cache)",
                  infinity_cache_bytes=256 * MiB),
        _arch_gpu("MI355X", "AMD Instinct MI355X 288GB", "gfx950", 2500, None, 157.3, 8000, 4, 256,
                  "AMD Instinct MI355X product page (fp16/bf16 2.5 PF dense, fp8 5 PF dense; fp32 vector "
                  "157.3 TF; 288 GB HBM3E at 8 TB/s; 256 CUs: 8 XCDs x 32; 256 MB Infinity Cache)",
                  unverified=("fp16/bf16 2500 TF (AMD prints 2.5 PF, half its 5 PF fp8 figure; a more "
                              "precise figure not confirmed here)",
                              "Infinity Cache 256 MB (one reseller page says 64 MB)",
                              "L2 4 MB per XCD (assumed the MI300X's)"),
                  infinity_cache_bytes=256 * MiB),
        _arch_gpu("MI250X", "AMD Instinct MI250X 128GB (OAM, both GCDs)", "gfx90a", 383, None, 47.9, 3276.8,
                  16, 220,
                  "AMD Instinct MI250X datasheet (fp16/bf16 383 TF, no sparsity; fp32 vector 47.9 TF, "
                  "fp32 matrix 95.7 TF; 128 GB HBM2e at 3.2768 TB/s; 220 CUs; 8 MB L2 per GCD, 2 GCDs)",
                  unverified=("the two GCDs appear as two devices of 110 CUs and 64 GB each: one device is "
                              "half of this preset",)),
    )
})

# Dense fp8 (e4m3) and int8 tensor-core peaks (TFLOP/s, TOPS) and memory capacity (GB, decimal as the
# datasheets print it), added to the presets above. Sources: NVIDIA A100 datasheet (INT8 Tensor Core
# 624 TOPS dense, 1,248 with sparsity; no fp8 tensor cores on sm_80; 40GB/80GB); NVIDIA H100 datasheet
# (SXM: FP8 and INT8 3,958 with sparsity, 1,979 dense; PCIe: 3,026 with sparsity, 1,513 dense; 80GB);
# NVIDIA H200 datasheet (FP8 and INT8 3,958 with sparsity, 1,979 dense; 141GB). V100 tensor cores do
# fp16 only, and the V100 SXM2 preset does not say 16 or 32 GB. The seed A100s keep the A100's int8 and
# no capacity (the seeds name 40GB and 80GB parts: use those presets). The newer parts (presets above):
# NVIDIA HGX B200 datasheet (8-GPU: FP8 72 PF and INT8 72 POPS with sparsity, 1,440 GB: per GPU dense
# 4,500 and 180 GB); GB200 NVL72 datasheet (72-GPU: FP8 720 PF, INT8 720 POPS sparse, per GPU 186 GB:
# per GPU dense 5,000); HGX B300 (8-GPU: FP8 72 PF sparse, 2.3 TB: per GPU dense 4,500 and 288 GB;
# Blackwell Ultra's int8 is not a published dense figure here: none); NVIDIA L40S datasheet (FP8 and INT8
# 733 dense, 1,466 sparse; 48 GB); RTX PRO 6000 Blackwell (96 GB) and RTX 5090 (32 GB): capacity only,
# their fp8 figures are fp4-derived marketing numbers not confirmed here.
_LOW_PRECISION: dict[str, tuple[float | None, float | None, float | None]] = {
    "A100-SXM4-40GB": (None, 624, 40), "A100-PCIE-40GB": (None, 624, 40),
    "A100-SXM4-80GB": (None, 624, 80), "A100-PCIE-80GB": (None, 624, 80),
    "H100-SXM5": (1979, 1979, 80), "H100-PCIE": (1513, 1513, 80), "H200": (1979, 1979, 141),
    "A100-SEED-1.5TB": (None, 624, None), "A100-SEED-2.0TB": (None, 624, None),
    "B200": (4500, 4500, 180), "GB200": (5000, 5000, 186), "B300": (4500, None, 288),
    "L40S": (733, 733, 48), "RTX-PRO-6000-BLACKWELL": (None, None, 96), "RTX-5090": (None, None, 32),
    # AMD datasheets: MI300X/MI325X fp8 and int8 2614.9 dense; MI355X fp8 5 PF dense (int8 not confirmed
    # here); MI250X int8 383 TOPS, no fp8
    "MI300X": (2614.9, 2614.9, 192), "MI325X": (2614.9, 2614.9, 256), "MI355X": (5000, None, 288),
    "MI250X": (None, 383, 128),
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
    (r"(?<![A-Z])GB200", "GB200"),
    (r"(?<![A-Z])B200", "B200"),
    (r"(?<![A-Z])B300", "B300"),  # a GB300 superchip GPU runs at a different power: not matched
    (r"RTX PRO 6000 BLACKWELL(?!.*MAX-Q)", "RTX-PRO-6000-BLACKWELL"),
    (r"RTX 5090(?!.*(LAPTOP|D\b))", "RTX-5090"),
    (r"(?<![A-Z0-9])L40S", "L40S"),
    # ROCm's torch names AMD parts "AMD Instinct MI300X" (an "... MI300X VF" virtual function is one too)
    (r"INSTINCT MI300X", "MI300X"),
    (r"INSTINCT MI325X", "MI325X"),
    (r"INSTINCT MI355X", "MI355X"),
    (r"INSTINCT MI250X", "MI250X"),
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
        f"{', '.join(PRESETS)}. Use measured ceilings (roofline.model.hardware.from_measured) or add a "
        "preset."
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
    # the low-precision peaks are the datasheet's, not measured: a measured spec has none (a step asking
    # for int8/fp8 math then says it is predicted on the measured 16-bit roof)
    return replace(base, name=name, peak_flops=dict(peak_flops), mem_bandwidth=mem_bandwidth,
                   fp8_peak_flops=None, int8_peak_ops=None,
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
