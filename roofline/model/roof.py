"""The one place that decides a point's roof: which ceiling, which dtype class, attainable FLOP/s, ridge,
fraction, and when a point counts as above its roof.

- **Which ceiling**: the measured ceilings first (what this device did in this run); the datasheet
  preset, when the device has one, is judged beside it (``datasheet_roof_fraction``), never instead.
- **Which class**: :func:`roofline.model.hardware.dtype_class`, falling down tensor16 -> tf32 -> fp32 on a
  spec without that class (a CPU has no TF32 units).
- **Fraction**: achieved / attainable FLOP/s at the point's intensity, i.e. ``attainable_s / median_s``.
- **Above roof**: only past a tolerance derived from the ceilings' own measured noise
  (:func:`assess_ceilings`): ``max(TOLERANCE_FLOOR, best/median spread, before/after drift)`` of the
  ceiling that bounds the point. A point past it names the ceiling it beats and by how much, and that
  ceiling becomes suspect (a roof that a real kernel beats was measured wrong).
- **Suspect ceilings**: a wide spread, a wide before/after drift or a loaded machine; every measured
  verdict that depends on the roof is then *inconclusive (ceilings suspect)*.
- **Native low-precision math** (:func:`native_math`): decided from the CPU's flags and torch's own
  capability report, never from a probe's speed. Without it a bf16/fp16 GEMM is converted and
  multiplied in fp32, so that class's roof is at least the fp32 roof.

Pure Python (no torch): the bench measures, this module decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from roofline.model.hardware import DTYPE_CLASSES, HardwareSpec, dtype_class
from roofline.model.ops import MATMUL_KERNELS, kernel_cost, modelled_cost

TOLERANCE_FLOOR = 0.05  # never flag a point within 5% of its roof, however quiet the ceilings were
WIDE_SPREAD = 0.30  # a ceiling whose best is >30% above its median, or drifts >30% before/after: suspect
LOADED_FRACTION = 0.5  # other processes' load above half the usable cores: a loaded machine
# Measured over the pass: other processes used more than a quarter of the usable cores' time. A share of
# time, not a count of runnable threads: two busy loops beside a 2-thread pass on 2 cores get ~1 core.
BUSY_FRACTION = 0.25
MEMORY = "memory"

# CPU flags (/proc/cpuinfo) that multiply a dtype natively, and torch's report that must agree.
NATIVE_FLAGS: dict[str, tuple[str, ...]] = {"bfloat16": ("avx512_bf16", "amx_bf16"),
                                           "float16": ("avx512_fp16", "amx_fp16")}
TORCH_REPORT_KEY = {"bfloat16": "mkldnn_bf16", "float16": "mkldnn_fp16"}


# ----------------------------------------------------------------------------------------- classes

def roof_class(spec: HardwareSpec, kernel: str, dtype: str) -> str:
    """The dtype class whose peak bounds ``kernel`` in ``dtype`` on ``spec``: :func:`dtype_class`'s answer
    when ``spec`` has it, else the next class down (tensor16 -> tf32 -> fp32). ``KeyError`` if none."""
    return class_on(spec, kernel_class(kernel, dtype))


def kernel_class(kernel: str, dtype: object) -> str:
    """The dtype class of ``kernel`` in ``dtype`` (:func:`dtype_class`, a matmul per the table of ops):
    the one place that decides which kernels are matmuls."""
    return dtype_class(dtype, matmul=kernel in MATMUL_KERNELS)


def class_on(spec: HardwareSpec, cls: str) -> str:
    """``cls`` if ``spec`` has a peak for it, else the next class down that it has."""
    if cls in spec.peak_flops:
        return cls
    order = list(DTYPE_CLASSES)
    for other in order[order.index(cls) + 1:] if cls in order else order:
        if other in spec.peak_flops:
            return other
    raise KeyError(f"{spec.name}: no {cls!r} peak nor any class below it down to fp32 "
                   f"(it has: {', '.join(spec.peak_flops)})")


def peak_for(spec: HardwareSpec, cls: str) -> tuple[float, str]:
    """(peak FLOP/s, class used) for ``cls`` on ``spec`` (see :func:`class_on`)."""
    used = class_on(spec, cls)
    return spec.peak_flops[used], used


def with_matmul_class(spec: HardwareSpec, dtype: str) -> HardwareSpec:
    """``spec`` with a peak for ``dtype``'s matmul class, taken from :func:`peak_for` (the next class down)
    when ``spec`` lacks it (a CPU has no tf32 peak): what the analytic latency models need."""
    cls = dtype_class(dtype, matmul=True)
    if cls in spec.peak_flops:
        return spec
    return replace(spec, peak_flops={**spec.peak_flops, cls: peak_for(spec, cls)[0]})


def ridge_for(spec: HardwareSpec, cls: str) -> float:
    return peak_for(spec, cls)[0] / spec.mem_bandwidth


def flops_per_s_band(flops: float, p20_s: float, p80_s: float) -> tuple[float, float]:
    """(low, high) FLOP/s at the p80 and p20 times: a measured point's error bar."""
    return flops / p80_s, flops / p20_s


def attainable_flops_per_s(spec: HardwareSpec, cls: str, intensity: float) -> float:
    """The roof's height at ``intensity``: ``min(peak, intensity * bandwidth)``."""
    return min(peak_for(spec, cls)[0], intensity * spec.mem_bandwidth)


# ------------------------------------------------------------------------------------------- a point

@dataclass(frozen=True)
class PointRoof:
    """One point against one spec. ``ceiling`` is what bounds it there: ``"memory"`` or the class."""

    hardware: str
    source: str
    dtype_class: str
    peak_flops: float
    mem_bandwidth: float
    intensity: float
    attainable_flops_per_s: float
    ridge: float
    attainable_s: float
    achieved_flops_per_s: float
    fraction: float
    bound: str = field(init=False)  # "compute" at or past the ridge, else "memory"
    ceiling: str = field(init=False)  # what bounds it: MEMORY or the dtype class

    def __post_init__(self) -> None:
        bound = "compute" if self.intensity >= self.ridge else "memory"
        object.__setattr__(self, "bound", bound)
        object.__setattr__(self, "ceiling", MEMORY if bound == "memory" else self.dtype_class)

    def to_dict(self) -> dict:
        return {"hardware": self.hardware, "source": self.source, "dtype_class": self.dtype_class,
                "attainable_s": self.attainable_s, "attainable_flops_per_s": self.attainable_flops_per_s,
                "ridge": self.ridge, "roof_fraction": self.fraction, "bound": self.bound,
                "ceiling": self.ceiling}


def point_roof(spec: HardwareSpec, kernel: str, dtype: str, flops: float, nbytes: float,
               seconds: float) -> PointRoof:
    """Where a point that moved ``nbytes`` and did ``flops`` in ``seconds`` sits under ``spec``'s roof."""
    if flops <= 0 or nbytes <= 0 or seconds <= 0:
        raise ValueError(f"flops, nbytes, seconds: expected positive numbers, got {flops}, {nbytes}, "
                         f"{seconds}")
    cls = roof_class(spec, kernel, dtype)
    peak = spec.peak_flops[cls]
    intensity = flops / nbytes
    attainable = min(peak, intensity * spec.mem_bandwidth)
    attainable_s = flops / attainable
    return PointRoof(hardware=spec.name, source=spec.source, dtype_class=cls, peak_flops=peak,
                     mem_bandwidth=spec.mem_bandwidth, intensity=intensity, attainable_flops_per_s=attainable,
                     ridge=peak / spec.mem_bandwidth, attainable_s=attainable_s,
                     achieved_flops_per_s=flops / seconds, fraction=attainable_s / seconds)


def record_roof(spec: HardwareSpec, record) -> PointRoof:
    """:func:`point_roof` of a loaded :class:`roofline.report.results.Record` (anything with kernel, dtype,
    flops, bytes and median_s)."""
    return point_roof(spec, record.kernel, record.dtype, record.flops, record.bytes, record.median_s)


# ----------------------------------------------------------------------------------- the ceilings' noise

@dataclass(frozen=True)
class CeilingCheck:
    """How far the measured ceilings can be trusted: per-ceiling above-roof tolerance, and why (if at all)
    they are suspect."""

    tolerance: Mapping[str, float]
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    method: str = ""
    suspect: bool = field(init=False)  # any reason at all

    def __post_init__(self) -> None:
        object.__setattr__(self, "suspect", bool(self.reasons))

    def tolerance_for(self, ceiling: str) -> float:
        return max(TOLERANCE_FLOOR, self.tolerance.get(ceiling, TOLERANCE_FLOOR))

    def to_dict(self) -> dict:
        return {"suspect": self.suspect, "reasons": list(self.reasons), "tolerance": dict(self.tolerance),
                "notes": list(self.notes), "method": self.method}


TOLERANCE_METHOD = (f"above-roof tolerance per ceiling = max({TOLERANCE_FLOOR:.0%}, the ceiling's "
                    "best/median spread - 1, its before/after-sweep drift - 1)")


def _ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b or a <= 0 or b <= 0:
        return None
    return max(a, b) / min(a, b) - 1


def other_load(load: Mapping | None) -> float | None:
    """Load average (1 min) not explained by this run: ``load1 - own_threads``, or None if unknown."""
    if not isinstance(load, Mapping) or not load.get("loadavg"):
        return None
    return float(load["loadavg"][0]) - float(load.get("own_threads") or 0)


def other_busy_cores(load: Mapping | None) -> float | None:
    """Cores other processes kept busy during the ceilings pass (``load["during"]``, measured over the
    pass from ``/proc/stat``), or None where it was not measured."""
    during = load.get("during") if isinstance(load, Mapping) else None
    value = during.get("other_busy_cores") if isinstance(during, Mapping) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def assess_ceilings(measured: Mapping | None) -> CeilingCheck:
    """The :class:`CeilingCheck` of a ``ceilings.json`` ``measured`` block.

    Reads ``ceilings`` (per ceiling: ``best``, ``median``, ``before``, ``after``) and ``load`` (per pass:
    ``loadavg``, ``own_threads``, ``usable_cores`` and ``during``, the cores' use measured over the pass:
    the load average over half the usable cores, or others busy over a quarter of their time during the
    pass, makes the ceilings suspect). An older file without them gets
    the floor tolerance and a note, not a suspicion.
    """
    if not isinstance(measured, Mapping):
        return CeilingCheck({}, notes=("no measured ceilings",), method=TOLERANCE_METHOD)
    per = measured.get("ceilings")
    if not isinstance(per, Mapping) or not per:
        return CeilingCheck({}, notes=("no best/median spread recorded (an older ceilings.json): the "
                                       f"above-roof tolerance is the floor, {TOLERANCE_FLOOR:.0%}",),
                            method=TOLERANCE_METHOD)
    tolerance: dict[str, float] = {}
    reasons: list[str] = []
    for name, c in per.items():
        if not isinstance(c, Mapping):
            continue
        spread = _ratio(c.get("best"), c.get("median"))
        drift = _ratio(c.get("before"), c.get("after"))
        tolerance[name] = max(TOLERANCE_FLOOR, spread or 0.0, drift or 0.0)
        if spread is not None and spread > WIDE_SPREAD:
            reasons.append(f"{name} ceiling: best is {spread + 1:.2f}x its median (wide spread; limit "
                           f"{WIDE_SPREAD + 1:.2f}x)")
        if drift is not None and drift > WIDE_SPREAD:
            reasons.append(f"{name} ceiling: {c['before']:.4g} before the sweep vs {c['after']:.4g} after "
                           f"({drift + 1:.2f}x apart; limit {WIDE_SPREAD + 1:.2f}x)")
    loads = measured.get("load")
    if isinstance(loads, Mapping):
        for when, load in loads.items():
            extra = other_load(load)
            cores = load.get("usable_cores") if isinstance(load, Mapping) else None
            if isinstance(load, Mapping) and load.get("device_kind") == "cuda":
                continue  # recorded, not judged: CUDA events time the device, not the host's cores
            busy = other_busy_cores(load)
            if busy is not None and cores and busy > BUSY_FRACTION * cores:
                window = load["during"].get("window_s", 0.0)
                reasons.append(f"loaded machine {when} the sweep: {busy:.2f} of {cores} usable cores busy "
                               f"with other processes during the ceilings pass ({window:.1f} s, /proc/stat "
                               f"less this run's CPU time; limit {BUSY_FRACTION * cores:.2f})")
            if extra is not None and cores and extra > LOADED_FRACTION * cores:
                load1 = load["loadavg"][0]
                reasons.append(f"loaded machine {when} the sweep: 1-min load average {load1:.2f} on {cores} "
                               f"usable cores, {extra:.2f} of it not this run's "
                               f"(limit {LOADED_FRACTION * cores:.2f})")
    return CeilingCheck(tolerance, tuple(reasons), method=TOLERANCE_METHOD)


# ------------------------------------------------------------------------------------------- a run

@dataclass(frozen=True)
class AboveRoof:
    """A point past its roof's tolerance: the ceiling it beats and by how much."""

    index: int
    name: str
    ceiling: str
    fraction: float
    tolerance: float

    def describe(self, spec: HardwareSpec) -> str:
        value = (f"{spec.mem_bandwidth / 1e9:,.1f} GB/s" if self.ceiling == MEMORY
                 else f"{spec.peak_flops[self.ceiling] / 1e9:,.1f} GFLOP/s")
        return (f"{self.name}: {self.fraction:.2f}x its roof: beats the measured {self.ceiling} ceiling "
                f"({value}) by {self.fraction - 1:.0%}, past the {self.tolerance:.0%} tolerance")


@dataclass(frozen=True)
class RunRoofs:
    """Every point of a run against its roof (measured first), the datasheet beside it, and the verdict on
    the ceilings themselves."""

    spec: HardwareSpec
    datasheet: HardwareSpec | None
    check: CeilingCheck
    points: tuple[PointRoof, ...]
    datasheet_points: tuple[PointRoof | None, ...]
    above: tuple[AboveRoof, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    placements: tuple[Placement, ...] = ()  # where each point is drawn (:func:`placement`), by index

    @property
    def suspect_ceilings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.ceiling for a in self.above))

    @property
    def reasons(self) -> tuple[str, ...]:
        beaten = tuple(f"{c} ceiling beaten by {sum(a.ceiling == c for a in self.above)} point(s) (up to "
                       f"{max(a.fraction for a in self.above if a.ceiling == c):.2f}x): measured wrong"
                       for c in self.suspect_ceilings)
        return self.check.reasons + beaten

    @property
    def suspect(self) -> bool:
        return bool(self.reasons)

    def tolerance_text(self) -> str:
        """``"memory 5%, fp32 12%"``: the tolerance of every ceiling that bounds a point."""
        ceilings = dict.fromkeys(p.ceiling for p in self.points)
        return ", ".join(f"{c} {self.check.tolerance_for(c):.0%}" for c in ceilings)

    def is_above(self, index: int) -> bool:
        return any(a.index == index for a in self.above)

    def predict(self, kernel: str, shape: Mapping, dtype: object) -> Prediction:
        """The cost model's point for ``kernel`` at ``shape`` in ``dtype``, on this run's roof (a predicted
        plot's run has no records: ``judge_run([], spec)``)."""
        cost = kernel_cost(kernel, dict(shape), dtype)
        cls = kernel_class(kernel, dtype)
        return Prediction(cls, cost.intensity, cost.flops,
                          attainable_flops_per_s(self.spec, cls, cost.intensity))


@dataclass(frozen=True)
class Placement:
    """Where a measured point is drawn on a roofline, and why (:func:`placement`, one per point of a run in
    ``RunRoofs.placements``).

    The filled marker sits at ``roof.intensity`` (the recorded FLOPs / compulsory bytes) and
    ``roof.achieved_flops_per_s`` (FLOPs / median time), under ``roof.attainable_flops_per_s`` of the
    ceiling that bounds it (``roof.ceiling``, from :func:`roof_class` on the run's spec). The hollow
    marker is the cost model's prediction for the shape: its intensity, at the roof's height there. The
    point is above its roof when its fraction passes ``1 + tolerance`` (:func:`assess_ceilings`). ``band``
    is its error bar (:func:`flops_per_s_band`).
    """

    roof: PointRoof
    predicted_intensity: float
    predicted_flops_per_s: float
    tolerance: float
    band: tuple[float, float]


@dataclass(frozen=True)
class Prediction:
    """Where the cost model puts a shape on a roofline (:meth:`RunRoofs.predict`): nothing measured."""

    dtype_class: str
    intensity: float
    flops: float
    attainable_flops_per_s: float


def placement(spec: HardwareSpec, point: PointRoof, record, check: CeilingCheck) -> Placement:
    """Where ``record`` (placed under ``spec`` at ``point``; anything with kernel, shape, dtype, flops and
    p20/p80 times) goes on a roofline: the cost model's prediction for its shape (its recorded intensity
    when the model does not cover it), at the roof's height there, and its error bar."""
    cost = modelled_cost(record.kernel, record.shape, record.dtype)
    predicted = cost.intensity if cost is not None else point.intensity
    return Placement(point, predicted, attainable_flops_per_s(spec, point.dtype_class, predicted),
                     check.tolerance_for(point.ceiling),
                     flops_per_s_band(record.flops, record.p20_s, record.p80_s))


def is_above_roof(point: PointRoof, check: CeilingCheck) -> bool:
    return point.fraction > 1.0 + check.tolerance_for(point.ceiling)


def judge_run(records: Iterable, spec: HardwareSpec, datasheet: HardwareSpec | None = None,
              measured: Mapping | None = None, notes: tuple[str, ...] = ()) -> RunRoofs:
    """Place every record under ``spec`` (and ``datasheet``), flag the points past the tolerance."""
    check = assess_ceilings(measured) if measured is not None else CeilingCheck(
        {}, notes=("no measured ceilings: judged against the datasheet",), method=TOLERANCE_METHOD)
    records = list(records)
    points = tuple(record_roof(spec, r) for r in records)
    sheet = (tuple(_try_roof(datasheet, r) for r in records) if datasheet is not None
             else (None,) * len(points))
    above = tuple(AboveRoof(i, r.name, p.ceiling, p.fraction, check.tolerance_for(p.ceiling))
                  for i, (r, p) in enumerate(zip(records, points, strict=True)) if is_above_roof(p, check))
    placed = tuple(placement(spec, p, r, check) for r, p in zip(records, points, strict=True))
    return RunRoofs(spec, datasheet, check, points, sheet, above, notes + check.notes, placed)


def _try_roof(spec: HardwareSpec, record) -> PointRoof | None:
    try:
        return record_roof(spec, record)
    except KeyError:
        return None


# --------------------------------------------------------------------------------------- native math

def native_math(features: Mapping) -> dict[str, dict]:
    """For bf16 and fp16: ``{"native": bool, "reason": str}`` on the CPU described by ``features``
    (``flags``: the /proc/cpuinfo flags; ``torch``: torch's report, keys ``capability``, ``mkldnn_bf16``,
    ``mkldnn_fp16``). Native needs a flag from :data:`NATIVE_FLAGS` and torch not reporting otherwise."""
    flags = set(features.get("flags") or ())
    report = features.get("torch") or {}
    out = {}
    for dtype, wanted in NATIVE_FLAGS.items():
        have = [f for f in wanted if f in flags]
        key = TORCH_REPORT_KEY[dtype]
        torch_says = report.get(key)
        torch_text = f"torch {key}={torch_says}, CPU capability {report.get('capability', 'unknown')}"
        if have and torch_says is not False:
            out[dtype] = {"native": True, "reason": f"CPU flags {', '.join(have)}; {torch_text}"}
        elif have:
            out[dtype] = {"native": False,
                          "reason": f"CPU flags {', '.join(have)} but {torch_text}: torch does not use them"}
        else:
            out[dtype] = {"native": False,
                          "reason": f"no {'/'.join(wanted)} in the CPU flags ({torch_text}): {dtype} is "
                                    "converted and multiplied in fp32"}
    return out


def cpu_sweep_dtype(features: Mapping, override: str | None = None) -> tuple[str, str]:
    """(dtype, reason) of the CPU sweep: ``override`` if given; else bf16 where the CPU multiplies it
    natively and fp32 otherwise (a non-native bf16 GEMM would time torch's conversion path)."""
    if override:
        return override, f"--dtype {override} (given on the command line)"
    bf16 = native_math(features)["bfloat16"]
    if bf16["native"]:
        return "bfloat16", f"native bf16 math: {bf16['reason']}"
    return "float32", f"no native bf16 math ({bf16['reason']}); fp32 is this CPU's fastest GEMM dtype"
