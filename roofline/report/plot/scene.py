"""What the figures show, as data (no matplotlib here; :mod:`roofline.report.plot.render` draws it).

A *chart* holds everything one figure needs, worked out once: a :class:`RooflineChart` (its points where
:func:`roofline.model.roof.judge_run` placed them, its roofs with each class's peak and ridge, the axes'
limits, its sweeps' trajectories and their labels), a :class:`FractionChart` (the same points as bars) and a
:class:`SpeedupChart` (:mod:`roofline.report.speedup`'s ratios, a panel per sweep). Each chart carries its
file name and title. :func:`run_charts` makes every chart of a loaded run, :func:`predicted_charts` those of
a preset's predicted sweep. Values derived from a point (its roof fraction, whether it is above its roof)
are fields filled when the chart is made, so drawing a chart asks nothing back of the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from roofline.errors import UsageError
from roofline.model.hardware import MIG_NOTE, PRESETS, HardwareSpec
from roofline.model.ops import OPS
from roofline.model.roof import TOLERANCE_FLOOR, Placement, judge_run, peak_for
from roofline.report.results import size_label
from roofline.report.speedup import BASELINE, Speedup, speedups

# Figures list ops in the ops table's order (the fraction chart's rows; the render's colours).
KERNEL_ORDER: tuple[str, ...] = tuple(OPS)
SEED_REFERENCES = {"A100-SEED-1.5TB": "seed 004", "A100-SEED-2.0TB": "seed 003"}


def slug(text: str) -> str:
    """File-name-safe form of a name: ``"NVIDIA A100-SXM4-80GB"`` -> ``nvidia-a100-sxm4-80gb``."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "unknown"


# ------------------------------------------------------------------------------------------ points

@dataclass
class Point:
    """One benchmark (or sweep point) as drawn: measured position (None when predicted-only) and the
    cost model's predicted position on the roof."""

    name: str
    kernel: str
    provider: str
    sweep: str
    shape: dict
    dtype_class: str
    intensity: float
    flops: float
    y: float | None
    band: tuple[float, float] | None
    predicted_x: float
    predicted_y: float
    roof_y: float  # the roof's height at the measured intensity
    # above-roof tolerance of the ceiling bounding it (roofline.model.roof)
    tolerance: float = TOLERANCE_FLOOR
    ceiling: str = ""  # "memory" or the dtype class bounding it
    # Achieved / attainable FLOP/s at the measured intensity (None when predicted-only), and whether that
    # passes 1 + tolerance: filled from the fields above.
    roof_fraction: float | None = field(init=False)
    above_roof: bool = field(init=False)

    def __post_init__(self) -> None:
        self.roof_fraction = None if self.y is None else self.y / self.roof_y
        self.above_roof = self.y is not None and self.roof_fraction > 1.0 + self.tolerance


def _placed(records: Sequence, placements: Sequence[Placement]) -> list[Point]:
    if len(records) != len(placements):
        raise ValueError(f"records: {len(records)} for a run judged on {len(placements)} points")
    return [Point(r.name, r.kernel, r.provider, r.sweep, r.shape, where.roof.dtype_class,
                  where.roof.intensity, r.flops, where.roof.achieved_flops_per_s, where.band,
                  where.predicted_intensity,
                  where.predicted_flops_per_s, where.roof.attainable_flops_per_s, where.tolerance,
                  where.roof.ceiling)
            for r, where in zip(records, placements, strict=True)]


def measured_points(records: Iterable, roof: HardwareSpec, run=None) -> list[Point]:
    """Points for measured records, each where :func:`roofline.model.roof.judge_run` placed it (``run``: the
    judgement of exactly these records, whose tolerances decide what is above its roof; default:
    ``judge_run`` on ``roof``)."""
    records = list(records)
    run = run if run is not None else judge_run(records, roof)
    return _placed(records, run.placements)


def predicted_points(sweep_points: Iterable, spec: HardwareSpec) -> list[Point]:
    """Points for sweep points (``kernel, sweep, shape, dtype, label``) predicted on ``spec``
    (:meth:`roofline.model.roof.RunRoofs.predict` of a run of no records)."""
    run = judge_run([], spec)
    points = []
    for sp in sweep_points:
        at = run.predict(sp.kernel, sp.shape, sp.dtype)
        name = f"{sp.sweep}/{getattr(sp, 'label', '') or len(points)}"  # unique within a sweep preset
        points.append(Point(name, sp.kernel, "predicted", sp.sweep, dict(sp.shape), at.dtype_class,
                            at.intensity, at.flops, None, None, at.intensity, at.attainable_flops_per_s,
                            at.attainable_flops_per_s))
    return points


def size_keys(points: Sequence[Point]) -> list[str]:
    """The shape keys that vary among ``points`` (what tells them apart in a label)."""
    keys = list(points[0].shape)
    return [k for k in keys if len({repr(p.shape.get(k)) for p in points}) > 1]


# ------------------------------------------------------------------------------------------- roofs

@dataclass(frozen=True)
class Ceiling:
    """One compute roof of a spec: the class asked for, the class whose peak it is (the next one down
    where the spec lacks it, :func:`roofline.model.roof.peak_for`), the peak and its ridge."""

    dtype_class: str
    used: str
    peak: float
    ridge: float


def ceiling(spec: HardwareSpec, cls: str) -> Ceiling:
    peak, used = peak_for(spec, cls)
    return Ceiling(cls, used, peak, spec.ridge(used))


@dataclass(frozen=True)
class Roof:
    """A spec drawn as roofs: ``kind`` is ``"measured"`` (solid), ``"datasheet"`` (dashed) or ``"seed"`` (a
    seed document's rounded A100, its ridge only); ``ceilings`` are the compute roofs drawn, by class."""

    spec: HardwareSpec
    kind: str
    ceilings: dict[str, Ceiling]


def roof_classes(dtype: str, spec: HardwareSpec, extra: Iterable[str] = ()) -> list[str]:
    """Compute roofs to draw for a figure of ``dtype``: its tensor-core class and plain fp32."""
    wanted = ["tf32", "fp32"] if dtype in ("float32", "fp32") else ["tensor16", "fp32"]
    wanted += [c for c in extra if c not in wanted]
    have = [c for c in wanted if c in spec.peak_flops]
    return have or list(spec.peak_flops)


def reference_specs(spec: HardwareSpec | None) -> list[HardwareSpec]:
    """The seed documents' rounded versions of ``spec``'s part (A100: 1.5 and 2.0 TB/s)."""
    if spec is None or not spec.name.upper().startswith("A100") or spec.source == "seed":
        return []
    return [PRESETS[name] for name in SEED_REFERENCES]


# ------------------------------------------------------------------------------------------ charts

@dataclass(frozen=True)
class Trajectory:
    """A sweep of one kernel and provider, its points in size order; ``labels``: the size labels at its
    ends, ``(text, (x, y))`` (only a kernel's first provider along a sweep is labelled)."""

    kernel: str
    provider: str
    sweep: str
    points: tuple[Point, ...]
    labels: tuple[tuple[str, tuple[float, float]], ...] = ()


@dataclass(frozen=True)
class RooflineChart:
    name: str  # file name without suffix
    title: str
    points: tuple[Point, ...]
    roofs: tuple[Roof, ...]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    trajectories: tuple[Trajectory, ...]


@dataclass(frozen=True)
class FractionChart:
    """Measured points as bars of their roof fraction, in kernel, sweep, provider and size order."""

    name: str
    title: str
    points: tuple[Point, ...]
    labels: tuple[str, ...]  # one per point


@dataclass(frozen=True)
class SpeedupPanel:
    sweep: str
    labels: tuple[str, ...]  # the x axis: the sweep's points in size order
    series: tuple[tuple[str, tuple[int, ...], tuple[float, ...]], ...]  # (provider, x, speedup)


@dataclass(frozen=True)
class SpeedupChart:
    name: str
    title: str
    providers: tuple[str, ...]
    panels: tuple[SpeedupPanel, ...]


def _limits(points: list[Point], specs: list[HardwareSpec], classes: list[str]) -> tuple:
    xs = [p.intensity for p in points] + [p.predicted_x for p in points]
    ys = [p.predicted_y for p in points] + [p.band[0] for p in points if p.band]
    tops = [ceiling(s, c) for s in specs for c in classes]
    ridges, peaks = [t.ridge for t in tops], [t.peak for t in tops]
    x0, x1 = min(xs + ridges) / 4, max(xs + ridges) * 8
    y0 = min(ys + [x0 * s.mem_bandwidth for s in specs]) / 4
    highest = max([p.band[1] for p in points if p.band] + peaks)  # a point above its roof stays visible
    return (x0, x1), (max(y0, min(peaks) * 1e-9), max(max(peaks) * 12, highest * 3))  # room for labels


def _trajectories(points: list[Point]) -> tuple[Trajectory, ...]:
    groups: dict[tuple[str, str, str], list[Point]] = {}
    for p in points:
        groups.setdefault((p.kernel, p.provider, p.sweep), []).append(p)
    out, labelled = [], set()
    for (kernel, provider, sweep), group in groups.items():
        traj = sorted(group, key=lambda p: (p.flops, p.intensity))
        labels = []
        if (kernel, sweep) not in labelled:
            labelled.add((kernel, sweep))
            keys = size_keys(traj)
            ends = [traj[0]] if len(traj) == 1 else [traj[0], traj[-1]]
            for i, p in enumerate(ends):
                size = size_label(p.shape, keys)
                text = f"{sweep}: {size}" if i == 0 else size
                xy = (p.intensity, p.y) if p.y is not None else (p.predicted_x, p.predicted_y)
                labels.append((text.strip(": ") or sweep, xy))
        out.append(Trajectory(kernel, provider, sweep, tuple(traj), tuple(labels)))
    return tuple(out)


def roofline_chart(points: list[Point], roofs: Sequence[tuple[HardwareSpec, str]], *, dtype: str,
                   title: str, name: str = "roofline") -> RooflineChart:
    """A roofline of ``points`` under ``roofs`` (``(spec, "measured"|"datasheet"|"seed")``) for ``dtype``."""
    extra = sorted({p.dtype_class for p in points})
    main = [s for s, k in roofs if k != "seed"]
    classes = {s.name: roof_classes(dtype, s, extra) for s, _ in roofs}
    drawn = tuple(Roof(s, k, {c: ceiling(s, c) for c in (classes[s.name] if k != "seed" else ["tensor16"])})
                  for s, k in roofs)
    xlim, ylim = _limits(points, main, roof_classes(dtype, main[0], extra))
    return RooflineChart(name, title, tuple(points), drawn, xlim, ylim, _trajectories(points))


def fraction_chart(points: list[Point], *, title: str, name: str = "roof-fraction") -> FractionChart:
    """Achieved / attainable FLOP/s per measured benchmark, grouped by kernel and sweep."""
    points = [p for p in points if p.y is not None]
    order = sorted(points, key=lambda p: (KERNEL_ORDER.index(p.kernel) if p.kernel in KERNEL_ORDER
                                          else 99, p.kernel, p.sweep, p.provider, p.flops))
    groups: dict[tuple[str, str], list[Point]] = {}
    for p in order:
        groups.setdefault((p.kernel, p.sweep), []).append(p)
    labels = []
    for p in order:
        keys = size_keys(groups[(p.kernel, p.sweep)])
        size = f" · {size_label(p.shape, keys)}" if keys else ""
        labels.append(f"{p.kernel} · {p.provider} · {p.sweep}{size}")
    return FractionChart(name, title, tuple(order), tuple(labels))


def speedup_charts(records: Iterable) -> list[SpeedupChart]:
    """Per kernel, device and dtype with a provider besides the baseline at a point the baseline ran: each
    provider's speedup over it along each sweep (a panel per sweep)."""
    groups: dict[tuple[str, str, str], list[Speedup]] = {}
    for s in speedups(records):
        groups.setdefault((s.kernel, s.device, s.dtype), []).append(s)
    charts = []
    for (kernel, device, dtype), points in sorted(groups.items()):
        if not any(s.provider != BASELINE for s in points):
            continue
        providers = sorted({s.provider for s in points})
        panels = []
        for sweep in sorted({s.sweep for s in points}):
            mine = [s for s in points if s.sweep == sweep]
            order = sorted({(s.flops, s.label) for s in mine})
            x_of = {label: i for i, (_, label) in enumerate(order)}
            series = []
            for provider in providers:
                xy = sorted((x_of[s.label], s.speedup) for s in mine if s.provider == provider)
                if xy:
                    series.append((provider, tuple(x for x, _ in xy), tuple(y for _, y in xy)))
            panels.append(SpeedupPanel(sweep, tuple(label for _, label in order), tuple(series)))
        title = (f"Speedup vs torch eager: {kernel}, {device}, {dtype} (measured median times; "
                 f">1 = faster than {BASELINE})")
        charts.append(SpeedupChart(f"speedup-{kernel}-{slug(device)}-{slug(dtype)}", title,
                                   tuple(providers), tuple(panels)))
    return charts


def run_charts(results) -> list:
    """Every chart of a loaded run (:class:`roofline.report.results.Results`): per device and dtype a
    roofline and a roof-fraction chart, then per kernel a speedup chart. Raises :class:`UsageError` when no
    roof is known."""
    run = results.judged
    if run is None:
        raise UsageError(f"{results.source}: no ceilings.json beside it and no known hardware preset in the "
                         "records; cannot draw a roof")
    roof = run.spec
    kind = "measured" if roof.source == "measured" else "datasheet"  # line style of the main roof
    roofs: list[tuple[HardwareSpec, str]] = [(roof, kind)]
    datasheet = results.ceilings.datasheet if results.ceilings else None
    if datasheet is not None and datasheet is not roof:
        roofs.append((datasheet, "datasheet"))
    roofs += [(s, "seed") for s in reference_specs(datasheet or roof)]
    judged = ("measured ceilings" if roof.source == "measured" else f"datasheet {roof.name}")
    suspect = "  -  CEILINGS SUSPECT (see claims.md)" if run.check.suspect else ""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(results.records):
        groups.setdefault((r.device, r.dtype), []).append(i)
    charts: list = []
    for (device, dtype), index in sorted(groups.items()):
        records = [results.records[i] for i in index]
        points = _placed(records, [run.placements[i] for i in index])
        cpu = (" (a CPU run: judged against the CPU's measured roof)" if records[0].device_kind == "cpu"
               else "")
        if MIG_NOTE in run.notes:
            cpu += " (MIG slice: no datasheet applies)"
        n_above = sum(p.above_roof for p in points)
        warn = (f"  -  {n_above} point(s) ABOVE their roof: ceiling suspect or miscounted" if n_above else "")
        title = (f"Measured roofline: {device}, {dtype}, {len(points)} benchmarks{warn}{suspect}\n"
                 f"roofs: {judged}{cpu}")
        charts.append(roofline_chart(points, roofs, dtype=dtype, title=title,
                                     name=f"roofline-{slug(device)}-{slug(dtype)}"))
        charts.append(fraction_chart(points, title=f"Fraction of the attainable roof: {device}, {dtype} "
                                                   f"({judged})",
                                     name=f"roof-fraction-{slug(device)}-{slug(dtype)}"))
    return charts + speedup_charts(results.records)


def predicted_charts(spec: HardwareSpec, points: Iterable, sweep: str) -> list[RooflineChart]:
    """One roofline per dtype of the sweep points (``kernel, sweep, shape, dtype, label``) predicted on
    ``spec``'s datasheet roofs (and the seed documents' A100s beside an A100), titled as a prediction."""
    by_dtype: dict[str, list] = {}
    for sp in points:
        by_dtype.setdefault(str(sp.dtype).replace("torch.", ""), []).append(sp)
    if not by_dtype:
        raise UsageError(f"sweep {sweep!r} has no points")
    roofs = [(spec, "datasheet")]  # dashed: not measured (a seed preset's labels say "seed")
    roofs += [(s, "seed") for s in reference_specs(spec)]
    charts = []
    for dtype, sps in sorted(by_dtype.items()):
        pts = predicted_points(sps, spec)
        title = (f"PREDICTED roofline (cost model only, nothing measured): {spec.name}, {dtype}\n"
                 f"sweep {sweep!r}, {len(pts)} points, {spec.source} ceilings")
        charts.append(roofline_chart(pts, roofs, dtype=dtype, title=title,
                                     name=f"predicted-roofline-{slug(spec.name)}-{slug(dtype)}"))
    return charts
