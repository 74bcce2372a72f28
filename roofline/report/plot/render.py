"""Drawing the charts of :mod:`roofline.report.plot.scene` with matplotlib (Agg): :func:`draw` turns a chart
into a figure, asking nothing back of the model. Also the plumbing every figure shares: pyplot on the Agg
backend, kernel colours and provider markers, unit formatting, and a greedy label placer that keeps
annotations from overlapping each other, the data and the axes' edges."""

from __future__ import annotations

import math

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display anywhere ridgebench runs; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402,F401  (the one pyplot import: after the backend is set)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from roofline.model.ops import OPS  # noqa: E402
from roofline.report.plot.scene import (  # noqa: E402
    KERNEL_ORDER,
    SEED_REFERENCES,
    FractionChart,
    Point,
    Roof,
    RooflineChart,
    SpeedupChart,
)
from roofline.report.speedup import BASELINE  # noqa: E402

ROOF_STYLES = {"measured": "-", "datasheet": "--", "seed": ":"}

# Each op in its own colour, in the ops table's order; a kernel the table lacks (a user's provider module)
# takes the next of OTHER_COLORS, wrapping round into the table's.
OTHER_COLORS = ("#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
_PALETTE = tuple(op.color for op in OPS.values()) + OTHER_COLORS
# One marker per provider (bench/providers.py): the built-in ones fixed, the user's from OTHER_MARKERS in
# name order (distinct up to len(OTHER_MARKERS) of them). "D" and "*" mark ridge points: never a provider.
PROVIDER_MARKERS = {"triton": "o", "torch": "s", "inductor": "P", "sdpa-flash": "^", "sdpa-efficient": "v",
                    "sdpa-cudnn": "<", "sdpa-math": ">", "flash-attn": "X", "flashinfer": "h", "liger": "p"}
OTHER_MARKERS = ("H", "8", "d", "1", "2", "3", "4", "+", "x")


def kernel_color(kernel: str, known: list[str] | None = None) -> str:
    """A fixed colour per kernel (the same kernel has the same colour in every figure)."""
    if kernel in KERNEL_ORDER:
        return _PALETTE[KERNEL_ORDER.index(kernel)]
    others = sorted(set(known or []) - set(KERNEL_ORDER))
    idx = len(KERNEL_ORDER) + (others.index(kernel) if kernel in others else 0)
    return _PALETTE[idx % len(_PALETTE)]


def provider_marker(provider: str, known: list[str] | None = None) -> str:
    if provider in PROVIDER_MARKERS:
        return PROVIDER_MARKERS[provider]
    others = sorted(set(known or []) - set(PROVIDER_MARKERS))
    return OTHER_MARKERS[(others.index(provider) if provider in others else 0) % len(OTHER_MARKERS)]


def si(value: float, unit: str, digits: int = 3) -> str:
    """``si(3.12e14, "FLOP/s")`` -> ``"312 TFLOP/s"``; decimal prefixes, ``digits`` significant digits."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    prefixes = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
    scale, prefix = next((s, p) for s, p in prefixes if abs(value) >= s) if abs(value) >= 1 else (1.0, "")
    scaled = value / scale
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(scaled)))))
    return f"{scaled:.{decimals}f} {prefix}{unit}"


class LabelPlacer:
    """Places annotations where they overlap nothing placed before and stay inside the axes.

    Register obstacles (data points, lines) with :meth:`block_point` and :meth:`block_line`; :meth:`place`
    tries offsets on rings of growing radius around the anchor and keeps the first free one (drawing a
    leader line when the label sits away from its anchor). A label with no free spot is dropped and listed
    in :attr:`dropped` rather than drawn over another.
    """

    RADII = (6, 14, 26, 42, 62, 85, 115)
    ANGLES = (45, -45, 135, -135, 0, 180, 90, -90, 22, -22, 158, -158, 68, -68, 112, -112)

    def __init__(self, fig: Figure, ax: Axes) -> None:
        self.fig, self.ax = fig, ax
        self.renderer = fig.canvas.get_renderer()
        self.boxes = np.empty((0, 4))  # x0, y0, x1, y1 in display pixels
        self.dropped: list[str] = []
        self.placed: list = []
        self.label_boxes: list[Bbox] = []
        self.area = ax.get_window_extent(self.renderer).frozen()  # the layout is fixed before placing

    def _add(self, x0, y0, x1, y1) -> None:
        self.boxes = np.vstack([self.boxes, np.column_stack([x0, y0, x1, y1])])

    def block_point(self, x: float, y: float, radius_px: float = 5.0) -> None:
        px, py = self.ax.transData.transform((x, y))
        self._add([px - radius_px], [py - radius_px], [px + radius_px], [py + radius_px])

    def block_line(self, xs, ys, step_px: float = 6.0, half_width_px: float = 2.0) -> None:
        """Block a polyline (data coordinates) by small boxes every ``step_px`` along it."""
        pts = self.ax.transData.transform(np.column_stack([xs, ys]))
        for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:], strict=True):
            n = max(2, int(math.hypot(x1 - x0, y1 - y0) / step_px) + 1)
            t = np.linspace(0.0, 1.0, n)
            px, py = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            keep = ((px > self.area.x0 - 10) & (px < self.area.x1 + 10)
                    & (py > self.area.y0 - 10) & (py < self.area.y1 + 10))
            h = half_width_px
            self._add(px[keep] - h, py[keep] - h, px[keep] + h, py[keep] + h)

    def _leader(self, xy: tuple[float, float], box: Bbox) -> np.ndarray:
        """Points along the leader line (display pixels): matplotlib draws it from the anchor towards the
        text box's centre and clips it at the box, so keep the points outside the box."""
        px, py = self.ax.transData.transform(xy)
        tx, ty = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
        n = max(3, int(math.hypot(tx - px, ty - py) / 3))
        t = np.linspace(0.0, 1.0, n)[1:-1]
        pts = np.column_stack([px + t * (tx - px), py + t * (ty - py)])
        inside = (pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)
        return pts[~inside]

    def _crosses_labels(self, pts: np.ndarray) -> bool:
        for b in self.label_boxes:
            if ((pts[:, 0] > b.x0) & (pts[:, 0] < b.x1) & (pts[:, 1] > b.y0) & (pts[:, 1] < b.y1)).any():
                return True
        return False

    def free(self, box: Bbox) -> bool:
        inside = (box.x0 >= self.area.x0 + 2 and box.x1 <= self.area.x1 - 2
                  and box.y0 >= self.area.y0 + 2 and box.y1 <= self.area.y1 - 2)
        if not inside:
            return False
        b = self.boxes
        hit = (b[:, 0] < box.x1) & (b[:, 2] > box.x0) & (b[:, 1] < box.y1) & (b[:, 3] > box.y0)
        return not bool(hit.any())

    def place(self, text: str, xy: tuple[float, float], *, radii: tuple[int, ...] | None = None,
              angles: tuple[int, ...] | None = None, **kwargs):
        """Annotate ``xy`` (data coordinates) with ``text`` at the first free offset; None if none is."""
        kwargs.setdefault("fontsize", 8)
        for r in radii or self.RADII:
            for a in angles or self.ANGLES:
                dx, dy = r * math.cos(math.radians(a)), r * math.sin(math.radians(a))
                ha = "left" if dx > 1 else "right" if dx < -1 else "center"
                va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
                arrow = dict(arrowstyle="-", lw=0.5, color="0.5") if r > 14 else None
                ann = self.ax.annotate(text, xy, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                                       arrowprops=arrow, annotation_clip=False, **kwargs)
                # the text's own box: its leader line may cross the anchor's obstacle box by design
                ann.update_positions(self.renderer)
                box = Text.get_window_extent(ann, self.renderer).padded(2)
                leader = self._leader(xy, box) if arrow else None
                if self.free(box) and (leader is None or not self._crosses_labels(leader)):
                    self._add([box.x0], [box.y0], [box.x1], [box.y1])
                    self.label_boxes.append(box)
                    if leader is not None:
                        lx, ly = leader[:, 0], leader[:, 1]
                        self._add(lx - 1.5, ly - 1.5, lx + 1.5, ly + 1.5)
                    self.placed.append(ann)
                    return ann
                ann.remove()
        self.dropped.append(text)
        return None


# ------------------------------------------------------------------------------------------- charts

def draw(chart) -> Figure:
    """The figure of a chart of :mod:`roofline.report.plot.scene` (close it, or save it with
    :func:`roofline.report.plot.files.save`)."""
    painters = {RooflineChart: roofline_figure, FractionChart: fraction_figure, SpeedupChart: speedup_figure}
    if type(chart) not in painters:
        raise TypeError(f"chart: expected one of {', '.join(t.__name__ for t in painters)}, "
                        f"got {type(chart).__name__}")
    return painters[type(chart)](chart)


def _tag(roof: Roof) -> str:
    """How a roof's values are labelled: measured, datasheet, or seed (a seed document's rounding)."""
    return "measured" if roof.kind == "measured" else roof.spec.source


def _draw_roofs(ax, placer: LabelPlacer, roofs: tuple[Roof, ...], xlim) -> None:
    """Draw every roof's lines and ridge markers, then one label per roof family (all specs' values)."""
    for roof in roofs:
        spec, kind = roof.spec, roof.kind
        style, color = ROOF_STYLES[kind], "0.15" if kind != "seed" else "0.45"
        lw = 2.0 if kind == "measured" else 1.4
        top_ridge = max(c.ridge for c in roof.ceilings.values())
        top_peak = max(c.peak for c in roof.ceilings.values())
        xs, ys = [xlim[0], top_ridge], [xlim[0] * spec.mem_bandwidth, top_peak]
        line = ax.plot(xs, ys, style, color=color, lw=lw, gid=f"roof:memory:{kind}:{spec.name}")[0]
        line.roof_value = spec.mem_bandwidth
        placer.block_line(xs, ys)
        for cls, c in roof.ceilings.items():
            peak, ridge = c.peak, c.ridge
            if kind != "seed":
                line = ax.plot([ridge, xlim[1]], [peak, peak], style, color=color, lw=lw,
                               gid=f"roof:{cls}:{kind}:{spec.name}")[0]
                line.roof_value = peak
                placer.block_line([ridge, xlim[1]], [peak, peak])
            pt = ax.plot([ridge], [peak], "*" if kind == "seed" else "D", color=color,
                         ms=9 if kind == "seed" else 6, zorder=5, gid=f"ridge:{cls}:{kind}:{spec.name}")[0]
            pt.ridge_value = ridge
            placer.block_point(ridge, peak, 5)
    for roof in roofs:
        if roof.kind == "seed":
            spec, c = roof.spec, roof.ceilings["tensor16"]
            seed = SEED_REFERENCES.get(spec.name, "seed")
            bw = si(spec.mem_bandwidth, 'B/s', 2)
            text = f"{c.ridge:.0f} FLOP/B: {seed}'s A100 ({bw})"
            placer.place(text, (c.ridge, c.peak), angles=(60, 80, 100, 120, 40, 140, -30, -60), color="0.35",
                         fontsize=8)
    main = [r for r in roofs if r.kind != "seed"]
    top = max(main, key=lambda r: r.spec.mem_bandwidth).spec
    x_mem = xlim[0] * (top.peak_flops[max(top.peak_flops, key=top.peak_flops.get)] / top.mem_bandwidth
                       / xlim[0]) ** 0.12
    peak_labels = []
    for cls in dict.fromkeys(c for r in main for c in r.ceilings):
        have = [r for r in main if cls in r.ceilings]
        values = []
        for r in have:
            c = r.ceilings[cls]
            note = "" if c.used == cls else f" (no {cls} unit: {c.used})"
            values.append(f"{si(c.peak, 'FLOP/s')} {_tag(r)}{note}")
        first = have[0].ceilings[cls]
        ridges = " / ".join(f"{r.ceilings[cls].ridge:.3g} {_tag(r)}" for r in have)
        placer.place(f"ridge {cls}: {ridges} FLOP/B", (first.ridge, first.peak),
                     angles=(-60, -80, -40, -100, -120, -20), color="0.1", fontsize=8)
        hi = max(r.ceilings[cls].peak for r in have)
        peak_labels.append((f"{cls} peak: " + " / ".join(values), (xlim[1] / 1.5, hi)))
    for text, xy in peak_labels:
        placer.place(text, xy, angles=(100, 120, 80, -100, -120), color="0.1", fontsize=9)
    placer.place("memory: " + " / ".join(f"{si(r.spec.mem_bandwidth, 'B/s')} {_tag(r)}" for r in main),
                 (x_mem, x_mem * top.mem_bandwidth), angles=(112, 135, 100, 150, -45, -60),
                 color="0.1", fontsize=9)


def roofline_figure(chart: RooflineChart) -> Figure:
    """A log-log roofline: the chart's roofs and ridges, its points measured and predicted, its sweeps'
    trajectories, and labels placed without overlap (those with no room are counted at the bottom)."""
    points = list(chart.points)
    fig, ax = plt.subplots(figsize=(13, 7.5))
    fig.subplots_adjust(left=0.07, right=0.72, top=0.88, bottom=0.09)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(*chart.xlim)
    ax.set_ylim(*chart.ylim)
    ax.set_xlabel("arithmetic intensity (FLOP/byte, cost model's compulsory bytes)", fontsize=11)
    ax.set_ylabel("FLOP/s", fontsize=11)
    ax.set_title(chart.title, fontsize=12)
    ax.grid(True, which="major", alpha=0.25)
    placer = LabelPlacer(fig, ax)
    kernels = sorted({p.kernel for p in points})
    providers = sorted({p.provider for p in points})
    for p in points:
        placer.block_point(p.predicted_x, p.predicted_y)
        if p.y is not None:
            placer.block_point(p.intensity, p.y)
    for traj in chart.trajectories:
        measured = [p for p in traj.points if p.y is not None]
        if len(measured) > 1:
            placer.block_line([p.intensity for p in measured], [p.y for p in measured])
        elif not measured and len(traj.points) > 1:
            placer.block_line([p.predicted_x for p in traj.points], [p.predicted_y for p in traj.points])
    _draw_roofs(ax, placer, chart.roofs, chart.xlim)
    _draw_points(ax, placer, chart, kernels, providers)
    _legend(ax, points, kernels, providers, chart.roofs)
    fig.dropped_labels = placer.dropped
    if placer.dropped:  # say so rather than draw labels over each other
        fig.text(0.07, 0.01, f"{len(placer.dropped)} label(s) omitted for lack of space (the SVG has every "
                 "point's id as its gid)", fontsize=7, color="0.4")
    return fig


def _draw_points(ax, placer: LabelPlacer, chart: RooflineChart, kernels: list[str], providers: list[str]
                 ) -> None:
    for traj in chart.trajectories:
        kernel, provider, sweep = traj.kernel, traj.provider, traj.sweep
        color = kernel_color(kernel, kernels)
        marker = provider_marker(provider, providers)
        measured = [p for p in traj.points if p.y is not None]
        line_style = ":" if provider == BASELINE else "-"
        if len(measured) > 1:
            ax.plot([p.intensity for p in measured], [p.y for p in measured], line_style, color=color,
                    lw=1.1, alpha=0.55, zorder=3, gid=f"sweep:{kernel}:{provider}:{sweep}")
        if not measured and len(traj.points) > 1:
            ax.plot([p.predicted_x for p in traj.points], [p.predicted_y for p in traj.points], "-",
                    color=color, lw=1.1, alpha=0.45, zorder=3, gid=f"sweep:{kernel}:{provider}:{sweep}")
        for p in traj.points:
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
        for text, xy in traj.labels:
            placer.place(text, xy, color=color, fontsize=8)
    for p in chart.points:
        if p.above_roof:
            placer.place(f"ABOVE ROOF x{p.roof_fraction:.2f} ({p.ceiling} ceiling suspect)",
                         (p.intensity, p.y),
                         color="red", fontsize=8, fontweight="bold")


def _legend(ax, points: list[Point], kernels, providers, roofs: tuple[Roof, ...]) -> None:
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
    for kind in dict.fromkeys(r.kind for r in roofs):
        text = {"measured": "measured ceilings", "datasheet": "datasheet ceilings",
                "seed": "seed documents' A100 (rounded)"}[kind]
        handles.append(Line2D([], [], ls=ROOF_STYLES[kind], color="0.2", label=text))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)


def fraction_figure(chart: FractionChart) -> Figure:
    """Horizontal bars: achieved / attainable FLOP/s per benchmark, grouped by kernel and sweep."""
    order = list(chart.points)
    kernels = sorted({p.kernel for p in order})
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
    ax.set_yticks(ys, list(chart.labels), fontsize=8)
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
    ax.set_title(chart.title, fontsize=11)
    ax.grid(True, axis="x", alpha=0.25)
    return fig


def speedup_figure(chart: SpeedupChart) -> Figure:
    """A panel per sweep, x = the sweep's points in size order, y = speedup over the baseline (log), one
    marker per provider (the roofline's), the parity line at 1."""
    providers = list(chart.providers)
    fig, axes = plt.subplots(len(chart.panels), 1, figsize=(8, 2.6 * len(chart.panels) + 1.0), squeeze=False)
    for ax, panel in zip(axes[:, 0], chart.panels, strict=True):
        ax.axhline(1.0, color="0.5", lw=1, ls="--", zorder=1)
        for provider, xs, ys in panel.series:
            style = ":" if provider == BASELINE else "-"
            ax.plot(list(xs), list(ys), style, marker=provider_marker(provider, providers), ms=7, lw=1.2,
                    label=f"{provider}" + (" (baseline)" if provider == BASELINE else ""),
                    gid=f"speedup:{panel.sweep}:{provider}")
        ax.set_yscale("log")
        times = FuncFormatter(lambda v, _pos: f"{v:.3g}x")
        ax.yaxis.set_major_formatter(times)
        ax.yaxis.set_minor_formatter(times)
        ax.tick_params(axis="y", which="both", labelsize=7)
        ax.set_xticks(range(len(panel.labels)), list(panel.labels), fontsize=8)
        ax.set_xlim(-0.5, max(len(panel.labels) - 0.5, 0.5))
        ax.set_title(panel.sweep, fontsize=9)
        ax.set_ylabel(f"speedup vs {BASELINE}\n(>1 = faster)", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(chart.title, fontsize=10)
    fig.tight_layout()
    return fig
