"""Roofline plots: measured benchmarks on their device's roofs, and predicted pictures for any preset.

``python -m roofline plot RESULTS [--out DIR]`` draws, for each device and dtype of a run, a log-log
roofline (x = arithmetic intensity in FLOP/byte, y = FLOP/s) and a companion chart of the fraction of the
attainable roof each benchmark reached, and per kernel a speedup figure: each provider's time relative
to the torch baseline along each sweep (:mod:`roofline.plot.speedup`).
``python -m roofline plot --predict PRESET [--sweep quick]`` draws the default sweep's predicted
positions on a hardware preset's datasheet roofs, titled as a prediction. Both write PNG and SVG.

On a roofline: the memory roof (diagonal) and one compute roof per dtype class (tensor cores and plain
fp32), each labelled with its value; measured ceilings solid, datasheet ceilings dashed, the seed
documents' rounded A100 (1.5 and 2.0 TB/s, ridges 208 and 156 FLOP/byte) dotted; ridge points marked.
Each benchmark is a filled marker (colour = kernel, shape = provider) with p20/p80 error bars; a hollow
marker of the same colour at the cost model's intensity shows its predicted (attainable) position on the
roof; each sweep is a line annotated at its ends. Every point's roof, fraction and above-roof flag come
from :mod:`roofline.roof` (the code that writes benchmark.json and claims.md); a point past its roof's
tolerance is ringed in red and names the ceiling it beats: that ceiling is suspect, or the point was
miscounted, never a result.

Modules: :mod:`.files` (loading, roofs, files, the command), :mod:`.figures` (the roofline and
roof-fraction charts), :mod:`.speedup` (the speedup figure), :mod:`.layout` (colours, markers, units,
the label placer).
"""

from __future__ import annotations

from roofline.plot.figures import (
    ROOF_STYLES,
    SEED_REFERENCES,
    Point,
    fraction_figure,
    measured_points,
    predicted_points,
    reference_specs,
    roof_classes,
    roofline_figure,
)
from roofline.plot.files import add_arguments, plot_predicted, plot_results, run, save

__all__ = ["ROOF_STYLES", "SEED_REFERENCES", "Point", "add_arguments", "fraction_figure", "measured_points",
           "plot_predicted", "plot_results", "predicted_points", "reference_specs", "roof_classes",
           "roofline_figure", "run", "save"]
