"""The ``extra_info`` of one benchmark (the results contract) and the record of one skipped case.

``attainable_s`` is the roofline lower bound on this device: on a GPU with a datasheet preset it uses
the datasheet's ceilings (``roof_source: "datasheet"``) and the measured ceilings' version sits beside
it under ``roofs.measured``; on a CPU, or a GPU without a preset, it uses the measured ceilings.
``roof_fraction = attainable_s / median_s``: 1.0 is on the roof; above 1 means the cost model or the
timing is wrong (a warm cache, a miscounted byte), never that the roof was beaten.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.timing import Summary
from roofline.cost import CONVENTIONS, MATMUL_KERNELS, kernel_cost
from roofline.hardware import HardwareSpec, dtype_class
from roofline.sweeps import SweepPoint

# Every key the results contract requires in a benchmark's extra_info.
EXTRA_INFO_FIELDS: tuple[str, ...] = (
    "kernel", "variant", "provider", "sweep", "shape", "dtype", "device", "device_kind", "flops", "bytes",
    "intensity", "achieved_flops_per_s", "achieved_bytes_per_s", "median_s", "p20_s", "p80_s", "hardware",
    "dtype_class", "attainable_s", "roof_fraction", "bound", "max_error", "tolerance", "conventions",
    "timing_method", "config", "audit",
)

SKIP_CATEGORIES: tuple[str, ...] = (
    "not-timed",        # Triton without a GPU: checked under the interpreter, never timed
    "unavailable",      # the kernel module is missing or fails to import
    "out-of-memory",
    "compile-failure",  # Triton could not compile or launch the config (incl. out of resources)
    "unsupported",      # the launcher rejects this shape/dtype on this device
)


@dataclass(frozen=True)
class Roofs:
    """The ceilings a run judges its points against: ``primary`` gives ``attainable_s``."""

    measured: HardwareSpec
    datasheet: HardwareSpec | None

    @property
    def primary(self) -> HardwareSpec:
        return self.datasheet if self.datasheet is not None else self.measured

    @property
    def source(self) -> str:
        return "datasheet" if self.datasheet is not None else "measured"


def roof_class(spec: HardwareSpec, kernel: str, dtype: str) -> str:
    """The dtype class whose peak bounds ``kernel`` in ``dtype`` on ``spec``.

    :func:`roofline.hardware.dtype_class`'s answer when ``spec`` has that peak; a device without it (a
    CPU has no TF32 units: fp32 matmuls run on its fp32 FMA units) falls back to ``fp32``.
    """
    cls = dtype_class(dtype, matmul=kernel in MATMUL_KERNELS)
    if cls in spec.peak_flops:
        return cls
    if "fp32" in spec.peak_flops:
        return "fp32"
    raise KeyError(f"{spec.name}: no {cls!r} or fp32 peak to bound {kernel} in {dtype}")


def _roof(spec: HardwareSpec, kernel: str, dtype: str, flops: float, nbytes: float, median_s: float) -> dict:
    from roofline.cost import Cost

    cost = Cost(flops, nbytes)
    cls = roof_class(spec, kernel, dtype)
    attainable = cost.attainable_seconds(spec, cls)
    return {"hardware": spec.name, "source": spec.source, "dtype_class": cls, "attainable_s": attainable,
            "roof_fraction": attainable / median_s, "bound": cost.bound(spec, cls)}


def extra_info(
    *,
    point: SweepPoint,
    provider: str,
    variant: str | None,
    config: str | None,
    device_name: str,
    device_kind: str,
    summary: Summary,
    roofs: Roofs,
    max_error: float,
    tolerance: tuple[float, float],
    timing_method: str,
    audit: object = None,
    details: dict | None = None,
) -> dict:
    """Every field of the results contract for one timed benchmark, plus ``roofs`` (both ceilings),
    ``roof_source``, ``rounds`` and any ``details`` (how the input was laid out, what was checked)."""
    cost = kernel_cost(point.kernel, point.shape, point.dtype)
    median = summary.median_s
    primary = _roof(roofs.primary, point.kernel, point.dtype, cost.flops, cost.bytes, median)
    info = {
        "kernel": point.kernel,
        "variant": variant,
        "provider": provider,
        "sweep": point.sweep,
        "label": point.label,
        "shape": dict(point.shape),
        "dtype": point.dtype,
        "device": device_name,
        "device_kind": device_kind,
        "flops": cost.flops,
        "bytes": cost.bytes,
        "intensity": cost.intensity,
        "achieved_flops_per_s": cost.flops / median,
        "achieved_bytes_per_s": cost.bytes / median,
        "median_s": median,
        "p20_s": summary.p20_s,
        "p80_s": summary.p80_s,
        "rounds": summary.rounds,
        "hardware": primary["hardware"],
        "dtype_class": primary["dtype_class"],
        "attainable_s": primary["attainable_s"],
        "roof_fraction": primary["roof_fraction"],
        "bound": primary["bound"],
        "roof_source": roofs.source,
        "roofs": {
            "datasheet": primary if roofs.datasheet is not None else None,
            "measured": _roof(roofs.measured, point.kernel, point.dtype, cost.flops, cost.bytes, median),
        },
        "max_error": max_error,
        "tolerance": list(tolerance),
        "conventions": dict(CONVENTIONS),
        "timing_method": timing_method,
        "config": config,
        "audit": audit,
    }
    if details:
        info["details"] = details
    return info


def skip_record(*, nodeid: str, point: SweepPoint, provider: str, category: str, reason: str,
                **details: object) -> dict:
    """One entry of ``skipped.json``."""
    if category not in SKIP_CATEGORIES:
        raise ValueError(f"category: expected one of {SKIP_CATEGORIES}, got {category!r}")
    return {"nodeid": nodeid, "kernel": point.kernel, "provider": provider, "sweep": point.sweep,
            "label": point.label, "shape": dict(point.shape), "dtype": point.dtype, "category": category,
            "reason": reason, **details}
