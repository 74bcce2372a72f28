"""The claim that no measured point lies above its roof (:func:`roofline.model.roof.judge_run` decides which
do), with the cost model's recount of every point beside it."""

from __future__ import annotations

from roofline.model.hardware import HardwareSpec
from roofline.model.verdict import REFUTED, SUPPORTED, Verdict
from roofline.report.claims.registry import claim
from roofline.report.results import Results

ABOVE_ROOF = claim(
    "no-point-above-roof",
    "No measured point lies above its roof; one that does is a counting or caching error, never a "
    "result.", "ridgebench")


@ABOVE_ROOF.measured
def above_roof_measured(results: Results, roof: HardwareSpec) -> Verdict:
    """Points past their roof's tolerance (:func:`roofline.model.roof.judge_run`), the ceiling each beats and
    by how much; a beaten ceiling is suspect."""
    run = results.judged
    miscounted = []
    for r in results.records:
        cost = r.cost()
        if cost is not None and (abs(cost.flops - r.flops) > 1e-6 * cost.flops
                                 or abs(cost.bytes - r.bytes) > 1e-6 * cost.bytes):
            miscounted.append(f"{r.name}: recorded {r.flops:.4g} FLOP / {r.bytes:.4g} B, the cost model says "
                              f"{cost.flops:.4g} / {cost.bytes:.4g}")
    tol = run.tolerance_text()
    numbers = {"above": len(run.above), "tolerance": {p.ceiling: run.check.tolerance_for(p.ceiling)
                                                      for p in run.points},
               "suspect_ceilings": list(run.suspect_ceilings)}
    if run.above:
        lines = tuple(a.describe(run.spec) for a in run.above)
        beaten = ", ".join(run.suspect_ceilings)
        return Verdict(REFUTED, f"{len(run.above)}/{len(results.records)} points above their roof past "
                                f"the tolerance ({tol}); suspect ceiling(s): {beaten} (a roof a real kernel "
                                "beats was measured wrong) or a counting/caching error",
                       lines + tuple(miscounted), numbers)
    worst = max(p.fraction for p in run.points)
    return Verdict(SUPPORTED, f"all {len(results.records)} points at or below their roof within the "
                              f"tolerance ({tol}; highest {worst:.1%})", tuple(miscounted), numbers)
