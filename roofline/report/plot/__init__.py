"""Roofline plots: measured benchmarks on their device's roofs, and predicted pictures for any preset.

``python -m roofline plot RESULTS [--out DIR]`` draws, per device and dtype of a run, a log-log roofline
and a roof-fraction chart, and per kernel a speedup figure; ``python -m roofline plot --predict PRESET``
draws a sweep's predicted positions on a preset's datasheet roofs. PNG and SVG; what the figures show is
in docs/roofline-and-claims.md. Every point's place comes from
:mod:`roofline.model.roof`. Modules: :mod:`.files` (loading, roofs, files, the command), :mod:`.figures` (the
charts), :mod:`.speedup` (the speedup figure), :mod:`.layout` (colours, markers, units, label placer).
"""

from __future__ import annotations

from roofline.report.plot.figures import fraction_figure, measured_points, predicted_points, roofline_figure
from roofline.report.plot.files import add_arguments, plot_predicted, plot_results, run, save

__all__ = ["add_arguments", "fraction_figure", "measured_points", "plot_predicted", "plot_results",
           "predicted_points", "roofline_figure", "run", "save"]
