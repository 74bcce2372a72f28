"""Draw a run's figures (:func:`plot_results`) or a preset's predicted roofline (:func:`plot_predicted`)
into PNG and SVG files (:func:`save`), and the ``python -m roofline plot`` command."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from roofline.errors import UsageError
from roofline.model.hardware import HardwareSpec, get_preset, is_mig
from roofline.report.plot.figures import (
    fraction_figure,
    measured_points,
    predicted_points,
    reference_specs,
    roofline_figure,
)
from roofline.report.plot.layout import plt
from roofline.report.results import Results, as_results, slug


def save(fig, base: Path) -> list[Path]:
    """Write ``base.png`` and ``base.svg``; close the figure."""
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [base.parent / f"{base.name}.png", base.parent / f"{base.name}.svg"]  # names may hold dots
    fig.savefig(paths[0], dpi=130)  # the layout is fixed (subplots_adjust): no tight-bbox redraw
    fig.savefig(paths[1])
    plt.close(fig)
    return paths


def plot_results(results_dir: str | Path | Results, out_dir: str | Path | None = None) -> list[Path]:
    """Draw every (device, dtype) of a run (a results directory or benchmark JSON, or the run already
    loaded) into ``out_dir`` (default: the results directory).

    Returns the written paths (PNG and SVG of a roofline and a roof-fraction chart per device and dtype).
    """
    results = as_results(results_dir)
    roof = results.roof
    if roof is None:
        raise UsageError(f"{results.source}: no ceilings.json beside it and no known hardware preset in the "
                         "records; cannot draw a roof")
    out = Path(out_dir) if out_dir is not None else results.directory
    kind = "measured" if roof.source == "measured" else "datasheet"  # line style of the main roof
    roofs: list[tuple[HardwareSpec, str]] = [(roof, kind)]
    datasheet = results.ceilings.datasheet if results.ceilings else None
    if datasheet is not None and datasheet is not roof:
        roofs.append((datasheet, "datasheet"))
    roofs += [(s, "seed") for s in reference_specs(datasheet or roof)]
    judged = ("measured ceilings" if roof.source == "measured" else f"datasheet {roof.name}")
    cpu = " (a CPU run: judged against the CPU's measured roof)" if results.device_kind == "cpu" else ""
    if is_mig(results.device):
        cpu += " (MIG slice: no datasheet applies)"
    run = results.judged
    suspect = "  -  CEILINGS SUSPECT (see claims.md)" if run.check.suspect else ""
    written = []
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(results.records):
        groups.setdefault((r.device, r.dtype), []).append(i)
    for (device, dtype), index in sorted(groups.items()):
        records = [results.records[i] for i in index]
        sub = replace(run, points=tuple(run.points[i] for i in index))
        points = measured_points(records, roof, sub)
        n_above = sum(p.above_roof for p in points)
        warn = (f"  -  {n_above} point(s) ABOVE their roof: ceiling suspect or miscounted" if n_above else "")
        title = (f"Measured roofline: {device}, {dtype}, {len(points)} benchmarks{warn}{suspect}\n"
                 f"roofs: {judged}{cpu}")
        fig = roofline_figure(points, roofs, dtype=dtype, title=title)
        written += save(fig, out / f"roofline-{slug(device)}-{slug(dtype)}")
        fig = fraction_figure(points, title=f"Fraction of the attainable roof: {device}, {dtype} ({judged})")
        written += save(fig, out / f"roof-fraction-{slug(device)}-{slug(dtype)}")
    from roofline.report.plot.speedup import plot_speedups

    written += plot_speedups(results.records, out, save)
    return written


def plot_predicted(preset: str, out_dir: str | Path, sweep: str = "quick", points: Iterable | None = None
                   ) -> list[Path]:
    """Draw the predicted roofline of a sweep (default: ``roofline.model.sweeps``' ``sweep`` preset for CUDA)
    on a hardware preset's datasheet roofs; one figure per dtype, titled as a prediction."""
    spec = get_preset(preset)
    if points is None:
        from roofline.model.sweeps import sweep_points  # the benchmark suite's sweep, as data

        try:
            points = sweep_points(preset=sweep, device_kind="cuda")
        except (KeyError, ValueError) as exc:
            raise UsageError(f"--sweep: {exc.args[0] if exc.args else exc}") from None
    by_dtype: dict[str, list] = {}
    for sp in points:
        by_dtype.setdefault(str(sp.dtype).replace("torch.", ""), []).append(sp)
    if not by_dtype:
        raise UsageError(f"sweep {sweep!r} has no points")
    roofs = [(spec, "datasheet")]  # dashed: not measured (a seed preset's labels say "seed")
    roofs += [(s, "seed") for s in reference_specs(spec)]
    written = []
    for dtype, sps in sorted(by_dtype.items()):
        pts = predicted_points(sps, spec)
        title = (f"PREDICTED roofline (cost model only, nothing measured): {spec.name}, {dtype}\n"
                 f"sweep {sweep!r}, {len(pts)} points, {spec.source} ceilings")
        fig = roofline_figure(pts, roofs, dtype=dtype, title=title)
        written += save(fig, Path(out_dir) / f"predicted-roofline-{slug(spec.name)}-{slug(dtype)}")
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="?", help="a results directory or a pytest-benchmark JSON file")
    parser.add_argument("--predict", metavar="PRESET", help="draw the predicted sweep on a hardware preset")
    parser.add_argument("--sweep", default="quick", help="sweep preset for --predict (default: quick)")
    parser.add_argument("--out", help="output directory (default: the results directory, or "
                                      "results/predicted/<PRESET> for --predict)")


def run(args: argparse.Namespace) -> int:
    if (args.results is None) == (args.predict is None):
        raise UsageError("give either RESULTS or --predict PRESET (exactly one)")
    if args.predict:
        spec = get_preset(args.predict)
        out = Path(args.out) if args.out else Path("results") / "predicted" / slug(spec.name)
        paths = plot_predicted(spec.name, out, sweep=args.sweep)
    else:
        paths = plot_results(args.results, args.out)
    for path in paths:
        print(path)
    return 0
