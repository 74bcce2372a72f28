"""The ``extra_info`` of one benchmark (the results contract) and the record of one skipped case.

Every roof field comes from :mod:`roofline.model.roof` (the one module that decides a point's roof), the same
code the plots and the claims use. ``attainable_s`` and ``roof_fraction = attainable_s / median_s`` are
against the **measured** ceilings (``roof_source: "measured"``); on a GPU with a datasheet preset the
datasheet's version sits beside it as ``datasheet_roof_fraction`` and under ``roofs.datasheet``.
A point is ``above_roof`` only past ``above_roof_tolerance``, derived from the ceilings' measured noise
(:func:`roofline.model.roof.assess_ceilings`); one that is means a ceiling was measured wrong or the cost
model
or the timing is (a warm cache, a miscounted byte), never that the roof was beaten.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.timing import Summary
from roofline.model.cost import CONVENTIONS
from roofline.model.hardware import HardwareSpec
from roofline.model.ops import kernel_cost
from roofline.model.roof import CeilingCheck, is_above_roof, point_roof
from roofline.model.roof import roof_class as roof_class  # re-exported: one decision, in roofline.model.roof
from roofline.model.sweeps import SweepPoint

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
    """The ceilings a run judges its points against: ``primary`` (the measured ceilings) gives
    ``attainable_s`` and ``roof_fraction``; ``datasheet`` (if the device has a preset) sits beside it."""

    measured: HardwareSpec
    datasheet: HardwareSpec | None

    @property
    def primary(self) -> HardwareSpec:
        return self.measured

    @property
    def source(self) -> str:
        return "measured"


def roof_fields(kernel: str, dtype: str, flops: float, nbytes: float, median_s: float, roofs: Roofs,
                check: CeilingCheck | None = None) -> dict:
    """The roof fields of one point's ``extra_info``: measured roof first, the datasheet's beside it."""
    measured = point_roof(roofs.measured, kernel, dtype, flops, nbytes, median_s)
    sheet = (point_roof(roofs.datasheet, kernel, dtype, flops, nbytes, median_s)
             if roofs.datasheet is not None else None)
    check = check or CeilingCheck({})
    return {
        "hardware": measured.hardware,
        "dtype_class": measured.dtype_class,
        "attainable_s": measured.attainable_s,
        "attainable_flops_per_s": measured.attainable_flops_per_s,
        "ridge": measured.ridge,
        "roof_fraction": measured.fraction,
        "datasheet_roof_fraction": sheet.fraction if sheet is not None else None,
        "bound": measured.bound,
        "roof_ceiling": measured.ceiling,
        "above_roof": is_above_roof(measured, check),
        "above_roof_tolerance": check.tolerance_for(measured.ceiling),
        "roof_source": roofs.source,
        "roofs": {"measured": measured.to_dict(),
                  "datasheet": sheet.to_dict() if sheet is not None else None},
    }


def reroof_benchmark_doc(doc: dict, roofs: Roofs, check: CeilingCheck) -> int:
    """Recompute the roof fields of every ridgebench benchmark in a pytest-benchmark document (after the
    ceilings were measured again); returns how many were updated."""
    n = 0
    for bench in doc.get("benchmarks", []):
        info = bench.get("extra_info") or {}
        if not all(k in info for k in ("kernel", "dtype", "flops", "bytes", "median_s")):
            continue
        info.update(roof_fields(info["kernel"], info["dtype"], info["flops"], info["bytes"], info["median_s"],
                                roofs, check))
        n += 1
    return n


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
    timing: dict | None = None,
    audit: object = None,
    details: dict | None = None,
    check: CeilingCheck | None = None,
) -> dict:
    """Every field of the results contract for one timed benchmark, plus the roof fields of
    :func:`roof_fields`, ``rounds``, ``timing`` (the method that measured it and the host launch cost:
    :func:`bench.runner.time_point`) and any ``details`` (how the input was laid out, what was checked)."""
    cost = kernel_cost(point.kernel, point.shape, point.dtype)
    median = summary.median_s
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
        **roof_fields(point.kernel, point.dtype, cost.flops, cost.bytes, median, roofs, check),
        "max_error": max_error,
        "tolerance": list(tolerance),
        "conventions": dict(CONVENTIONS),
        "timing_method": timing_method,
        "timing": dict(timing or {}),
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
