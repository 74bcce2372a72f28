"""Who is ahead: each provider's time relative to the torch baseline at the same point.

``speedup = torch median / provider median`` on the same device, dtype, kernel, sweep and shape
(> 1: faster than torch eager). Points without a torch record at the same shape have no speedup. Used by
the speedup figures (:func:`roofline.report.plot.scene.speedup_charts`) and the provider table of
``claims.md``.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from roofline.report.results import Record
from roofline.rundir import BASELINE


@dataclass(frozen=True)
class Speedup:
    kernel: str
    sweep: str
    device: str
    dtype: str
    provider: str
    label: str
    flops: float  # the point's size along its sweep (orders the x axis)
    baseline_s: float
    median_s: float
    speedup: float = field(init=False)  # baseline_s / median_s: > 1 is faster than the baseline

    def __post_init__(self) -> None:
        object.__setattr__(self, "speedup", self.baseline_s / self.median_s)


def _key(r: Record) -> tuple:
    return (r.device, r.dtype, r.kernel, r.sweep, json.dumps(r.shape, sort_keys=True, default=str))


def speedups(records: Iterable[Record], baseline: str = BASELINE) -> list[Speedup]:
    """Every record with a baseline record at the same point (the baseline's own, 1.0, included)."""
    records = list(records)
    base = {_key(r): r for r in records if r.provider == baseline}
    out = []
    for r in records:
        b = base.get(_key(r))
        if b is None or not (r.median_s > 0 and b.median_s > 0):
            continue
        label = str(r.extra.get("label") or r.size_label())
        out.append(Speedup(r.kernel, r.sweep, r.device, r.dtype, r.provider, label, r.flops, b.median_s,
                           r.median_s))
    return sorted(out, key=lambda s: (s.device, s.dtype, s.kernel, s.sweep, s.provider, s.flops))


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def table_lines(records: Iterable[Record], baseline: str = BASELINE) -> list[str]:
    """The Markdown table of ``claims.md``: per kernel, sweep and provider, the speedup over the torch
    baseline (geometric mean, min and max over the sweep's points, and how many points). Empty when
    nothing but the baseline has a comparable point."""
    rows: dict[tuple, list[Speedup]] = {}
    for s in speedups(records, baseline):
        if s.provider != baseline:
            rows.setdefault((s.kernel, s.sweep, s.dtype, s.provider), []).append(s)
    if not rows:
        return []
    lines = [f"Time of each provider relative to `{baseline}` (eager PyTorch) at the same point: speedup = "
             f"{baseline} median / provider median, > 1 = faster. Measured on this run's device; the "
             "speedup figures (`speedup-<kernel>-*.png`) show every point.", "",
             "| kernel | sweep | dtype | provider | points | geomean speedup | min | max |",
             "|---|---|---|---|---|---|---|---|"]
    return lines + _table_rows(rows)


def versus_lines(records: Iterable[Record], ours: str = "triton") -> list[str]:
    """The Markdown table of ``ours`` against every other provider at the same points (the prefill
    target "within 10% of SDPA's flash backend" is the ``sdpa-flash`` row): ``other median / ours
    median``, > 1 = ours faster. Empty when ``ours`` shares no point with another provider."""
    records = list(records)
    rows: dict[tuple, list[Speedup]] = {}
    for other in sorted({r.provider for r in records} - {ours}):
        for s in speedups(records, baseline=other):
            if s.provider == ours:
                rows.setdefault((s.kernel, s.sweep, s.dtype, other), []).append(s)
    if not rows:
        return []
    lines = [f"`{ours}` (ridgebench's kernels) against each provider at the same points: other median / "
             f"{ours} median, > 1 = {ours} faster.", "",
             f"| kernel | sweep | dtype | {ours} vs | points | geomean | min | max |",
             "|---|---|---|---|---|---|---|---|"]
    return lines + _table_rows(rows)


def _table_rows(rows: dict[tuple, list[Speedup]]) -> list[str]:
    """One Markdown row per (kernel, sweep, dtype, provider): points, geometric mean, min, max."""
    out = []
    for (kernel, sweep, dtype, provider), ss in sorted(rows.items()):
        values = [s.speedup for s in ss]
        out.append(f"| {kernel} | {sweep} | {dtype} | {provider} | {len(values)} | {geomean(values):.2f}x "
                   f"| {min(values):.2f}x | {max(values):.2f}x |")
    return out
