"""Draw a run's figures (:func:`plot_results`) or a preset's predicted roofline (:func:`plot_predicted`)
into PNG and SVG files (:func:`save`), and the ``python -m roofline plot`` command."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from roofline.errors import UsageError
from roofline.model.hardware import get_preset
from roofline.report.plot.render import draw, plt
from roofline.report.plot.scene import predicted_charts, run_charts, slug
from roofline.report.results import Results, as_results


def save(fig, base: Path) -> list[Path]:
    """Write ``base.png`` and ``base.svg``; close the figure."""
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [base.parent / f"{base.name}.png", base.parent / f"{base.name}.svg"]  # names may hold dots
    fig.savefig(paths[0], dpi=130)  # the layout is fixed (subplots_adjust): no tight-bbox redraw
    fig.savefig(paths[1])
    plt.close(fig)
    return paths


def save_charts(charts: Iterable, out: Path) -> list[Path]:
    """Draw each chart of :mod:`roofline.report.plot.scene` and :func:`save` it as ``out/<its name>``."""
    return [path for chart in charts for path in save(draw(chart), out / chart.name)]


def plot_results(results_dir: str | Path | Results, out_dir: str | Path | None = None) -> list[Path]:
    """Draw every (device, dtype) of a run (a results directory or benchmark JSON, or the run already
    loaded) into ``out_dir`` (default: the results directory).

    Returns the written paths (PNG and SVG of a roofline and a roof-fraction chart per device and dtype,
    then of a speedup chart per kernel with a provider besides the baseline): load, then
    :func:`roofline.report.plot.scene.run_charts`, then draw and save each chart.
    """
    results = as_results(results_dir)
    return save_charts(run_charts(results), Path(out_dir) if out_dir is not None else results.directory)


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
    return save_charts(predicted_charts(spec, points, sweep), Path(out_dir))


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
