"""Roofline plots: measured benchmarks on their device's roofs, and predicted pictures for any preset.

``python -m roofline plot RESULTS [--out DIR]`` draws, per device and dtype of a run, a log-log roofline
and a roof-fraction chart, and per kernel a speedup figure; ``python -m roofline plot --predict PRESET``
draws a sweep's predicted positions on a preset's datasheet roofs. PNG and SVG; what the figures show is
in docs/roofline-and-claims.md. Every point's place comes from :mod:`roofline.model.roof`.

Modules, in the order a run goes through them: :mod:`.files` (load, chart, draw, save; the command),
:mod:`.scene` (what each figure shows, as data: points, roofs, limits, labels, titles, file names) and
:mod:`.render` (matplotlib: a chart into a figure; colours, markers, units, the label placer);
:mod:`.generation` draws the model's predicted generation throughput.
"""

from __future__ import annotations

from roofline.report.plot.files import add_arguments, plot_predicted, plot_results, run, save
from roofline.report.plot.render import draw, fraction_figure, roofline_figure, speedup_figure
from roofline.report.plot.scene import (
    fraction_chart,
    measured_points,
    predicted_points,
    roofline_chart,
    run_charts,
)

__all__ = ["add_arguments", "draw", "fraction_chart", "fraction_figure", "measured_points", "plot_predicted",
           "plot_results", "predicted_points", "roofline_chart", "roofline_figure", "run", "run_charts",
           "save", "speedup_figure"]
