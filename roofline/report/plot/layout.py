"""Plot plumbing that is not about rooflines: unit formatting, kernel colours and provider markers, and a
greedy label placer that keeps annotations from overlapping each other, the data and the axes' edges."""

from __future__ import annotations

import math

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display anywhere ridgebench runs; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402,F401  (the one pyplot import: after the backend is set)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from roofline.model.ops import OPS  # noqa: E402

# Figures list ops in the ops table's order, each in its own colour; a kernel the table lacks (a user's
# provider module) takes the next of OTHER_COLORS, wrapping round into the table's.
KERNEL_ORDER: tuple[str, ...] = tuple(OPS)
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
