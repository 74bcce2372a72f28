"""Who is ahead, as a picture: per kernel (and device, dtype), each provider's speedup over the torch
baseline along each sweep (:mod:`roofline.report.speedup`; > 1 = faster than torch eager), one panel per
sweep,
one marker per provider (the roofline's markers), log y with the parity line at 1."""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import FuncFormatter

from roofline.report.plot.layout import plt, provider_marker  # pyplot on the Agg backend
from roofline.report.results import Record, slug
from roofline.report.speedup import BASELINE, Speedup, speedups


def speedup_figure(points: list[Speedup], title: str):
    """One figure: a panel per sweep, x = the sweep's points in size order, y = speedup (log)."""
    sweeps = sorted({s.sweep for s in points})
    providers = sorted({s.provider for s in points})
    fig, axes = plt.subplots(len(sweeps), 1, figsize=(8, 2.6 * len(sweeps) + 1.0), squeeze=False)
    for ax, sweep in zip(axes[:, 0], sweeps, strict=True):
        mine = [s for s in points if s.sweep == sweep]
        order = sorted({(s.flops, s.label) for s in mine})
        x_of = {label: i for i, (_, label) in enumerate(order)}
        ax.axhline(1.0, color="0.5", lw=1, ls="--", zorder=1)
        for provider in providers:
            series = sorted((x_of[s.label], s.speedup) for s in mine if s.provider == provider)
            if not series:
                continue
            style = ":" if provider == BASELINE else "-"
            ax.plot([x for x, _ in series], [y for _, y in series], style,
                    marker=provider_marker(provider, providers), ms=7, lw=1.2,
                    label=f"{provider}" + (" (baseline)" if provider == BASELINE else ""),
                    gid=f"speedup:{sweep}:{provider}")
        ax.set_yscale("log")
        times = FuncFormatter(lambda v, _pos: f"{v:.3g}x")
        ax.yaxis.set_major_formatter(times)
        ax.yaxis.set_minor_formatter(times)
        ax.tick_params(axis="y", which="both", labelsize=7)
        ax.set_xticks(range(len(order)), [label for _, label in order], fontsize=8)
        ax.set_xlim(-0.5, max(len(order) - 0.5, 0.5))
        ax.set_title(sweep, fontsize=9)
        ax.set_ylabel(f"speedup vs {BASELINE}\n(>1 = faster)", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_speedups(records: list[Record], out_dir: Path, save) -> list[Path]:
    """``speedup-<kernel>-<device>-<dtype>.png/.svg`` for every kernel with a provider besides the
    baseline at a point the baseline ran; ``save(fig, base)`` writes them
    (roofline.report.plot.files.save)."""
    groups: dict[tuple[str, str, str], list[Speedup]] = {}
    for s in speedups(records):
        groups.setdefault((s.kernel, s.device, s.dtype), []).append(s)
    written: list[Path] = []
    for (kernel, device, dtype), points in sorted(groups.items()):
        if not any(s.provider != BASELINE for s in points):
            continue
        title = (f"Speedup vs torch eager: {kernel}, {device}, {dtype} (measured median times; "
                 f">1 = faster than {BASELINE})")
        base = out_dir / f"speedup-{kernel}-{slug(device)}-{slug(dtype)}"
        written += save(speedup_figure(points, title), base)
    return written
