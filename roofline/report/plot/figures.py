"""The figures themselves: a roofline (roofs, ridges, measured and predicted points, sweep trajectories,
labels placed without overlap) and the companion chart of the fraction of the attainable roof.
:mod:`roofline.report.plot.files` loads results, picks the roofs and writes the files."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from roofline.model.hardware import PRESETS, HardwareSpec
from roofline.model.roof import (
    TOLERANCE_FLOOR,
    RunRoofs,
    judge_run,
    peak_for,
    ridge_for,
)
from roofline.report.plot.layout import (  # pyplot on the Agg backend
    KERNEL_ORDER,
    LabelPlacer,
    kernel_color,
    plt,
    provider_marker,
    si,
)
from roofline.report.results import Record, size_label
from roofline.report.speedup import BASELINE

SEED_REFERENCES = {"A100-SEED-1.5TB": "seed 004", "A100-SEED-2.0TB": "seed 003"}
ROOF_STYLES = {"measured": "-", "datasheet": "--", "seed": ":"}


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

    @property
    def roof_fraction(self) -> float | None:
        """Achieved / attainable FLOP/s at the measured intensity (None when predicted-only)."""
        return None if self.y is None else self.y / self.roof_y

    @property
    def above_roof(self) -> bool:
        return self.y is not None and self.roof_fraction > 1.0 + self.tolerance


def measured_points(records: Iterable[Record], roof: HardwareSpec, run: RunRoofs | None = None
                    ) -> list[Point]:
    """Points for measured records, each where :func:`roofline.model.roof.judge_run` placed it (``run``: the
    run's judgement, whose tolerances decide what is above its roof; default: ``judge_run`` on ``roof``)."""
    records = list(records)
    run = run if run is not None else judge_run(records, roof)
    if len(records) != len(run.points):
        raise ValueError(f"records: {len(records)} for a run judged on {len(run.points)} points")
    points = []
    for i, r in enumerate(records):
        where = run.placements[i]
        points.append(Point(r.name, r.kernel, r.provider, r.sweep, r.shape, where.roof.dtype_class,
                            r.intensity, r.flops, r.achieved_flops_per_s, r.flops_per_s_band,
                            where.predicted_intensity, where.predicted_flops_per_s,
                            where.roof.attainable_flops_per_s, where.tolerance, where.roof.ceiling))
    return points


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


def _size_keys(points: list[Point]) -> list[str]:
    keys = list(points[0].shape)
    return [k for k in keys if len({repr(p.shape.get(k)) for p in points}) > 1]


def _size(point: Point, keys: list[str]) -> str:
    return size_label(point.shape, keys) if keys else ""


def _trajectories(points: list[Point]) -> dict[tuple[str, str, str], list[Point]]:
    groups: dict[tuple[str, str, str], list[Point]] = {}
    for p in points:
        groups.setdefault((p.kernel, p.provider, p.sweep), []).append(p)
    return {k: sorted(v, key=lambda p: (p.flops, p.intensity)) for k, v in groups.items()}


def _limits(points: list[Point], specs: list[HardwareSpec], classes: list[str]) -> tuple:
    xs = [p.intensity for p in points] + [p.predicted_x for p in points]
    ys = [p.predicted_y for p in points] + [p.band[0] for p in points if p.band]
    ridges = [ridge_for(s, c) for s in specs for c in classes]
    peaks = [peak_for(s, c)[0] for s in specs for c in classes]
    x0, x1 = min(xs + ridges) / 4, max(xs + ridges) * 8
    y0 = min(ys + [x0 * s.mem_bandwidth for s in specs]) / 4
    highest = max([p.band[1] for p in points if p.band] + peaks)  # a point above its roof stays visible
    return (x0, x1), (max(y0, min(peaks) * 1e-9), max(max(peaks) * 12, highest * 3))  # room for labels


def _tag(spec: HardwareSpec, kind: str) -> str:
    """How a roof's values are labelled: measured, datasheet, or seed (a seed document's rounding)."""
    return "measured" if kind == "measured" else spec.source


def _draw_roofs(ax, placer, roofs: list[tuple[HardwareSpec, str]], classes: dict[str, list[str]], xlim
                ) -> None:
    """Draw every roof's lines and ridge markers, then one label per roof family (all specs' values)."""
    for spec, kind in roofs:
        style, color = ROOF_STYLES[kind], "0.15" if kind != "seed" else "0.45"
        lw = 2.0 if kind == "measured" else 1.4
        cls_list = classes[spec.name] if kind != "seed" else ["tensor16"]
        top_ridge = max(ridge_for(spec, c) for c in cls_list)
        top_peak = max(peak_for(spec, c)[0] for c in cls_list)
        xs, ys = [xlim[0], top_ridge], [xlim[0] * spec.mem_bandwidth, top_peak]
        line = ax.plot(xs, ys, style, color=color, lw=lw, gid=f"roof:memory:{kind}:{spec.name}")[0]
        line.roof_value = spec.mem_bandwidth
        placer.block_line(xs, ys)
        for cls in cls_list:
            peak, _ = peak_for(spec, cls)
            ridge = peak / spec.mem_bandwidth
            if kind != "seed":
                line = ax.plot([ridge, xlim[1]], [peak, peak], style, color=color, lw=lw,
                               gid=f"roof:{cls}:{kind}:{spec.name}")[0]
                line.roof_value = peak
                placer.block_line([ridge, xlim[1]], [peak, peak])
            pt = ax.plot([ridge], [peak], "*" if kind == "seed" else "D", color=color,
                         ms=9 if kind == "seed" else 6, zorder=5, gid=f"ridge:{cls}:{kind}:{spec.name}")[0]
            pt.ridge_value = ridge
            placer.block_point(ridge, peak, 5)
    for spec, kind in roofs:
        if kind == "seed":
            seed = SEED_REFERENCES.get(spec.name, "seed")
            bw = si(spec.mem_bandwidth, 'B/s', 2)
            text = f"{ridge_for(spec, 'tensor16'):.0f} FLOP/B: {seed}'s A100 ({bw})"
            placer.place(text, (ridge_for(spec, "tensor16"), spec.peak("tensor16")),
                         angles=(60, 80, 100, 120, 40, 140, -30, -60), color="0.35", fontsize=8)
    main = [(s, k) for s, k in roofs if k != "seed"]
    top = max(main, key=lambda sk: sk[0].mem_bandwidth)[0]
    x_mem = xlim[0] * (top.peak_flops[max(top.peak_flops, key=top.peak_flops.get)] / top.mem_bandwidth
                       / xlim[0]) ** 0.12
    peak_labels = []
    for cls in dict.fromkeys(c for s, _ in main for c in classes[s.name]):
        have = [(s, k) for s, k in main if cls in classes[s.name]]
        values = []
        for s, k in have:
            peak, used = peak_for(s, cls)
            note = "" if used == cls else f" (no {cls} unit: {used})"
            values.append(f"{si(peak, 'FLOP/s')} {_tag(s, k)}{note}")
        first = have[0][0]
        ridges = " / ".join(f"{ridge_for(s, cls):.3g} {_tag(s, k)}" for s, k in have)
        placer.place(f"ridge {cls}: {ridges} FLOP/B", (ridge_for(first, cls), peak_for(first, cls)[0]),
                     angles=(-60, -80, -40, -100, -120, -20), color="0.1", fontsize=8)
        hi = max(peak_for(s, cls)[0] for s, _ in have)
        peak_labels.append((f"{cls} peak: " + " / ".join(values), (xlim[1] / 1.5, hi)))
    for text, xy in peak_labels:
        placer.place(text, xy, angles=(100, 120, 80, -100, -120), color="0.1", fontsize=9)
    placer.place("memory: " + " / ".join(f"{si(s.mem_bandwidth, 'B/s')} {_tag(s, k)}" for s, k in main),
                 (x_mem, x_mem * top.mem_bandwidth), angles=(112, 135, 100, 150, -45, -60),
                 color="0.1", fontsize=9)


def roofline_figure(points: list[Point], roofs: list[tuple[HardwareSpec, str]], *, dtype: str, title: str):
    """A roofline figure of ``points`` under ``roofs`` (``(spec, "measured"|"datasheet"|"seed")``)."""
    fig, ax = plt.subplots(figsize=(13, 7.5))
    fig.subplots_adjust(left=0.07, right=0.72, top=0.88, bottom=0.09)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    extra = sorted({p.dtype_class for p in points})
    main = [s for s, k in roofs if k != "seed"]
    classes = {s.name: roof_classes(dtype, s, extra) for s, _ in roofs}
    xlim, ylim = _limits(points, main, roof_classes(dtype, main[0], extra))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("arithmetic intensity (FLOP/byte, cost model's compulsory bytes)", fontsize=11)
    ax.set_ylabel("FLOP/s", fontsize=11)
    ax.set_title(title, fontsize=12)
    ax.grid(True, which="major", alpha=0.25)
    placer = LabelPlacer(fig, ax)
    kernels = sorted({p.kernel for p in points})
    providers = sorted({p.provider for p in points})
    for p in points:
        placer.block_point(p.predicted_x, p.predicted_y)
        if p.y is not None:
            placer.block_point(p.intensity, p.y)
    for traj in _trajectories(points).values():
        measured = [p for p in traj if p.y is not None]
        if len(measured) > 1:
            placer.block_line([p.intensity for p in measured], [p.y for p in measured])
        elif not measured and len(traj) > 1:
            placer.block_line([p.predicted_x for p in traj], [p.predicted_y for p in traj])
    _draw_roofs(ax, placer, roofs, classes, xlim)
    _draw_points(ax, placer, points, kernels, providers)
    _legend(ax, points, kernels, providers, roofs)
    fig.dropped_labels = placer.dropped
    if placer.dropped:  # say so rather than draw labels over each other
        fig.text(0.07, 0.01, f"{len(placer.dropped)} label(s) omitted for lack of space (the SVG has every "
                 "point's id as its gid)", fontsize=7, color="0.4")
    return fig


def _draw_points(ax, placer, points: list[Point], kernels: list[str], providers: list[str]) -> None:
    labelled: set[tuple[str, str]] = set()
    for (kernel, provider, sweep), traj in _trajectories(points).items():
        color = kernel_color(kernel, kernels)
        marker = provider_marker(provider, providers)
        measured = [p for p in traj if p.y is not None]
        line_style = ":" if provider == BASELINE else "-"
        if len(measured) > 1:
            ax.plot([p.intensity for p in measured], [p.y for p in measured], line_style, color=color,
                    lw=1.1, alpha=0.55, zorder=3, gid=f"sweep:{kernel}:{provider}:{sweep}")
        if not measured and len(traj) > 1:
            ax.plot([p.predicted_x for p in traj], [p.predicted_y for p in traj], "-", color=color, lw=1.1,
                    alpha=0.45, zorder=3, gid=f"sweep:{kernel}:{provider}:{sweep}")
        for p in traj:
            ax.plot([p.predicted_x], [p.predicted_y], marker if p.y is not None else "o", mfc="white",
                    mec=color, mew=1.4, ms=7, zorder=6, gid=f"predicted:{p.name}")
            if p.y is None:
                continue
            lo, hi = p.band
            ax.plot([p.intensity, p.predicted_x], [p.y, p.predicted_y], ":", color=color, lw=0.8, alpha=0.6,
                    zorder=2)
            bars = ax.errorbar([p.intensity], [p.y], yerr=[[max(p.y - lo, 0)], [max(hi - p.y, 0)]],
                               fmt=marker, color=color, ms=6, capsize=2, lw=0.9, zorder=7)
            bars.lines[0].set_gid(f"measured:{p.name}")
            if p.above_roof:
                ax.plot([p.intensity], [p.y], "o", ms=15, mfc="none", mec="red", mew=2, zorder=8,
                        gid=f"above-roof:{p.name}")
        if (kernel, sweep) in labelled:
            continue
        labelled.add((kernel, sweep))
        keys = _size_keys(traj)
        ends = [traj[0]] if len(traj) == 1 else [traj[0], traj[-1]]
        for i, p in enumerate(ends):
            size = _size(p, keys)
            text = f"{sweep}: {size}" if i == 0 else size
            xy = (p.intensity, p.y) if p.y is not None else (p.predicted_x, p.predicted_y)
            placer.place(text.strip(": ") or sweep, xy, color=color, fontsize=8)
    for p in points:
        if p.above_roof:
            placer.place(f"ABOVE ROOF x{p.roof_fraction:.2f} ({p.ceiling} ceiling suspect)",
                         (p.intensity, p.y),
                         color="red", fontsize=8, fontweight="bold")


def _legend(ax, points, kernels, providers, roofs) -> None:
    handles = [Line2D([], [], marker="o", ls="", color=kernel_color(k, kernels), label=k) for k in kernels]
    measured = any(p.y is not None for p in points)
    if measured:
        handles += [Line2D([], [], marker=provider_marker(pr, providers), ls="", color="0.3",
                           label=f"{pr} (measured, p20-p80 bars)") for pr in providers]
    handles.append(Line2D([], [], marker="o", ls="", mfc="white", mec="0.3", mew=1.4,
                          label="predicted (cost model, on the roof)"))
    if any(p.above_roof for p in points):
        handles.append(Line2D([], [], marker="o", ls="", ms=12, mfc="none", mec="red", mew=2,
                              label="above its roof past the tolerance: ceiling suspect or miscounted"))
    for kind in dict.fromkeys(k for _, k in roofs):
        text = {"measured": "measured ceilings", "datasheet": "datasheet ceilings",
                "seed": "seed documents' A100 (rounded)"}[kind]
        handles.append(Line2D([], [], ls=ROOF_STYLES[kind], color="0.2", label=text))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)


def fraction_figure(points: list[Point], *, title: str):
    """Horizontal bars: achieved / attainable FLOP/s per benchmark, grouped by kernel and sweep."""
    points = [p for p in points if p.y is not None]
    order = sorted(points, key=lambda p: (KERNEL_ORDER.index(p.kernel) if p.kernel in KERNEL_ORDER
                                          else 99, p.kernel, p.sweep, p.provider, p.flops))
    kernels = sorted({p.kernel for p in points})
    fig_h = max(3.5, 0.24 * len(order) + 1.6)
    fig, ax = plt.subplots(figsize=(11, fig_h))
    fig.subplots_adjust(left=0.42, right=0.95, top=1 - 0.9 / fig_h, bottom=0.75 / fig_h)
    fractions = [p.roof_fraction for p in order]
    ys = list(range(len(order)))[::-1]
    colors = [kernel_color(p.kernel, kernels) for p in order]
    bars = ax.barh(ys, fractions, color=colors, alpha=0.8, height=0.7,
                   edgecolor="red", linewidth=[2.0 if p.above_roof else 0.0 for p in order])
    for bar, p in zip(bars, order, strict=True):
        bar.set_gid(f"fraction:{p.name}")
    groups: dict[tuple[str, str], list[Point]] = {}
    for p in order:
        groups.setdefault((p.kernel, p.sweep), []).append(p)
    labels = []
    for p in order:
        keys = _size_keys(groups[(p.kernel, p.sweep)])
        labels.append(f"{p.kernel} · {p.provider} · {p.sweep}" + (f" · {_size(p, keys)}" if keys else ""))
    ax.set_yticks(ys, labels, fontsize=8)
    low = min(fractions)
    if low < 0.02:
        ax.set_xscale("log")
        ax.set_xlim(low / 3, max(2.0, max(fractions) * 2))
    else:
        ax.set_xlim(0, max(1.1, max(fractions) * 1.15))
    ax.axvline(1.0, color="0.2", ls="--", lw=1)
    ax.text(1.0, 0.005, " roof", transform=ax.get_xaxis_transform(), va="bottom", ha="left", fontsize=8)
    for y, f, p in zip(ys, fractions, order, strict=True):
        text = f"{f:.1%}" if f >= 0.001 else f"{f:.1e}"
        ax.text(f * (1.08 if ax.get_xscale() == "log" else 1.0) + (0 if ax.get_xscale() == "log" else 0.01),
                y, text + ("  ABOVE ROOF" if p.above_roof else ""), va="center", fontsize=7,
                color="red" if p.above_roof else "0.2")
    ax.set_xlabel("fraction of the attainable roof (achieved FLOP/s / min(peak, intensity x bandwidth))")
    ax.set_title(title, fontsize=11)
    ax.grid(True, axis="x", alpha=0.25)
    return fig
