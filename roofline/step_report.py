"""The step report: a model step composed of measured kernels, component by component, against its
roofline floor on this device's measured ceilings.

``python -m roofline step RESULTS`` (also written at the end of ``pytest --benchmark --model ...``)
reads a run made with ``--model`` (its ``step-request.json`` says which model, batches, context) and
writes ``step.md``, ``step.json`` and ``step.png``/``.svg`` into the run directory.

Per step (each decode batch, and the prefill) and provider, per component (:mod:`roofline.step`):
measured median per call x calls per step (``n_layers`` or 1), the roofline floor of those calls on the
measured ceilings (:func:`floor_seconds`, from :func:`roofline.ops.kernel_cost` of the same shapes),
the fraction of the floor achieved (floor / measured) and the bound (memory or compute). The step's
measured total is the sum of its measured components; ops without a kernel (norms, residual adds, ...)
are listed with their memory floor and are not in the measured total. Beside the total: the analytic
lower bound of :mod:`roofline.latency` (``python -m roofline model``'s decode/prefill latency), on the
same measured ceilings.

:func:`decode_knee_from_report` reads seed 004's "decode latency is flat in batch up to the ridge batch,
then grows linearly" off the measured step time vs batch (the claim is in :mod:`roofline.claims.decode_step`).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from roofline.errors import UsageError
from roofline.hardware import HardwareSpec
from roofline.latency import decode_compute_bound_batch, decode_step_latency, prefill_latency
from roofline.ops import kernel_cost
from roofline.results import Record, Results, load_results
from roofline.roof import roof_class, with_matmul_class
from roofline.step import Component, StepRequest, all_components, read_request
from roofline.verdict import (
    CROSSOVER_AGREEMENT,
    CROSSOVER_GROWTH,
    INCONCLUSIVE,
    MEMORY_EVIDENCE,
    REFUTED,
    SUPPORTED,
    Verdict,
    combine,
    status_label,
    withhold,
)


def floor_seconds(kernel: str, shape: dict, dtype: str, spec: HardwareSpec) -> tuple[float, str]:
    """``(seconds, bound)``: the roofline floor of one call, ``max(FLOPs / peak, bytes / bandwidth)`` with
    the cost model's FLOPs and bytes for ``shape`` and the peak of the class :func:`roofline.roof.roof_class`
    gives the kernel on ``spec`` (the roof every benchmark point is judged by)."""
    cost = kernel_cost(kernel, shape, dtype)
    peak = spec.peak_flops[roof_class(spec, kernel, dtype)]
    compute_s, memory_s = cost.flops / peak, cost.bytes / spec.mem_bandwidth
    return max(compute_s, memory_s), ("compute" if compute_s >= memory_s else "memory")


@dataclass
class ComponentRow:
    name: str
    count: int
    kernel: str | None
    measured_s: float | None  # per step: median per call x count; None when not measured
    floor_s: float  # per step
    bound: str
    note: str = ""

    @property
    def fraction(self) -> float | None:
        return self.floor_s / self.measured_s if self.measured_s else None


@dataclass
class StepRow:
    """One step (phase, batch) of one provider."""

    phase: str
    batch: int
    provider: str
    components: list[ComponentRow] = field(default_factory=list)
    analytic_s: float = 0.0
    missing: list[str] = field(default_factory=list)  # measured components without a record

    @property
    def measured_total_s(self) -> float:
        return sum(c.measured_s for c in self.components if c.measured_s is not None)

    @property
    def floor_total_s(self) -> float:
        """The floor of the measured components (what the measured total is compared with)."""
        return sum(c.floor_s for c in self.components if c.measured_s is not None)

    @property
    def unmeasured_floor_s(self) -> float:
        return sum(c.floor_s for c in self.components if c.kernel is None)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def fraction(self) -> float:
        return self.floor_total_s / self.measured_total_s if self.measured_total_s else 0.0

    def to_dict(self) -> dict:
        return {"phase": self.phase, "batch": self.batch, "provider": self.provider,
                "measured_total_s": self.measured_total_s, "floor_total_s": self.floor_total_s,
                "fraction_of_floor": self.fraction, "unmeasured_floor_s": self.unmeasured_floor_s,
                "analytic_lower_bound_s": self.analytic_s, "analytic_predicted": True,
                "complete": self.complete, "missing": self.missing,
                "components": [{"name": c.name, "count": c.count, "kernel": c.kernel,
                                "measured_s": c.measured_s, "floor_s": c.floor_s,
                                "fraction_of_floor": c.fraction, "bound": c.bound, "note": c.note}
                               for c in self.components]}


@dataclass
class StepReport:
    request: StepRequest
    spec: HardwareSpec
    rows: list[StepRow]
    ridge_batch: int | None  # predicted: smallest compute-bound decode batch at this context
    suspect_reasons: tuple[str, ...] = ()  # why the run's ceilings are suspect (Results.run_roofs)

    def claim(self) -> Verdict:
        """Seed 004's decode-knee verdict as ``claims.md`` gives it: withheld (inconclusive) on suspect
        ceilings, by the same rule (:func:`roofline.verdict.withhold`)."""
        return withhold(decode_knee_from_report(self), bool(self.suspect_reasons), self.suspect_reasons)

    def decode_curve(self, provider: str) -> list[tuple[int, float]]:
        """(batch, measured step seconds) of the complete decode steps of ``provider``."""
        return sorted((r.batch, r.measured_total_s) for r in self.rows
                      if r.phase == "decode" and r.provider == provider and r.complete)

    @property
    def providers(self) -> list[str]:
        return sorted({r.provider for r in self.rows})

    def to_dict(self) -> dict:
        return {"request": self.request.to_dict(), "ceilings": self.spec.to_dict(),
                "predicted_ridge_batch": self.ridge_batch, "steps": [r.to_dict() for r in self.rows]}


def _spec(results: Results) -> HardwareSpec:
    if results.ceilings is not None and results.ceilings.measured is not None:
        return results.ceilings.measured
    spec = results.roof_spec()
    if spec is None:
        raise UsageError(f"{results.source}: no ceilings.json beside it and no known hardware: no floor")
    return spec


def _index(records: list[Record]) -> dict[tuple, Record]:
    return {(r.provider, r.sweep, r.extra.get("label"), r.dtype): r for r in records}


def _component_row(c: Component, spec: HardwareSpec, rec: Record | None) -> ComponentRow:
    if c.point is None:
        return ComponentRow(c.name, c.count, None, None, c.count * c.unmeasured_bytes / spec.mem_bandwidth,
                            "memory", f"not measured: {c.note}")
    floor, bound = floor_seconds(c.point.kernel, c.point.shape, c.point.dtype, spec)
    measured = c.count * rec.median_s if rec is not None else None
    return ComponentRow(c.name, c.count, c.point.kernel, measured, c.count * floor, bound, c.note)


def build_report(results: Results, request: StepRequest) -> StepReport:
    """Match the run's records to the request's components and compute every row."""
    spec = _spec(results)
    analytic_spec = with_matmul_class(spec, request.dtype)
    index = _index(results.records)
    providers = sorted({r.provider for r in results.records})
    steps: dict[tuple[str, int], list[Component]] = {}
    for c in all_components(request):
        steps.setdefault((c.phase, c.batch), []).append(c)
    rows = []
    cfg, dt = request.model, request.dtype
    for (phase, batch), comps in steps.items():
        analytic = (decode_step_latency(cfg, batch, request.context, analytic_spec, dt) if phase == "decode"
                    else prefill_latency(cfg, 1, request.context, analytic_spec, dt)).seconds
        for provider in providers:
            row = StepRow(phase, batch, provider, analytic_s=analytic)
            for c in comps:
                rec = None
                if c.point is not None:
                    rec = index.get((provider, c.point.sweep, c.point.label, c.point.dtype))
                    if rec is None or rec.shape != c.point.shape:
                        rec = None
                        row.missing.append(c.name)
                row.components.append(_component_row(c, spec, rec))
            if row.measured_total_s > 0:
                rows.append(row)
    if not rows:
        raise UsageError(f"{results.source}: no benchmark of the {request.model.name} step in this run")
    ridge = decode_compute_bound_batch(cfg, analytic_spec, dt, request.context)
    run = results.run_roofs()
    suspect = tuple(run.reasons) if run is not None and run.suspect else ()
    return StepReport(request, spec, rows, ridge, suspect)


def _t(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def markdown(report: StepReport) -> str:
    req, spec = report.request, report.spec
    m = req.model
    ridge = "never (the KV cache keeps it memory-bound)" if report.ridge_batch is None else report.ridge_batch
    out = [f"# Model step: {m.name}, context {req.context}, {req.dtype}", "",
           f"Decode batches {', '.join(map(str, req.batches))}"
           + (f"; one prefill of {req.context} tokens" if req.prefill else "")
           + f". {m.n_layers} layers, D={m.d_model}, {m.n_heads}/{m.n_kv_heads} heads of {m.head_dim}, "
           f"d_ff={m.d_ff} ({m.mlp}), vocab {m.vocab_size}: the model's real shapes.", "",
           f"Floors on the measured ceilings of {spec.name}: {spec.mem_bandwidth / 1e9:.3g} GB/s, "
           + ", ".join(f"{c} {v / 1e12:.3g} TFLOP/s" for c, v in spec.peak_flops.items())
           + f". Predicted ridge batch (smallest compute-bound decode batch at this context): {ridge}.", "",
           "Measured = median per call x calls per step (layers, or 1 for the LM head and softmax); floor = "
           "roofline floor of the same calls (`roofline.cost` of the same shapes); fraction = floor / "
           "measured. The measured total is the sum of the measured components; ops without a kernel are "
           "listed with their memory floor, outside the total. The analytic lower bound is "
           "`python -m roofline model`'s (predicted, whole step incl. those ops, on the same ceilings).", "",
           "## Steps", "",
           "| step | provider | measured total | floor (measured parts) | fraction | not-measured ops' floor "
           "| analytic lower bound (predicted) | complete |",
           "|---|---|---|---|---|---|---|---|"]
    for r in report.rows:
        step = f"decode B={r.batch}" if r.phase == "decode" else f"prefill {req.context}"
        out.append(f"| {step} | {r.provider} | {_t(r.measured_total_s)} | {_t(r.floor_total_s)} | "
                   f"{r.fraction:.1%} | {_t(r.unmeasured_floor_s)} | {_t(r.analytic_s)} | "
                   + ("yes" if r.complete else "missing: " + ", ".join(r.missing)) + " |")
    for r in report.rows:
        step = f"decode B={r.batch}" if r.phase == "decode" else f"prefill {req.context}"
        out += ["", f"## {step}, {r.provider}", "",
                "| component | calls | kernel | measured | floor | fraction | bound | note |",
                "|---|---|---|---|---|---|---|---|"]
        for c in r.components:
            frac = f"{c.fraction:.1%}" if c.fraction is not None else "-"
            out.append(f"| {c.name} | {c.count} | {c.kernel or 'none'} | {_t(c.measured_s)} | "
                       f"{_t(c.floor_s)} | {frac} | {c.bound} | {c.note} |")
        out.append(f"| **total (measured parts)** | | | **{_t(r.measured_total_s)}** | "
                   f"**{_t(r.floor_total_s)}** | **{r.fraction:.1%}** | | |")
    beaten = [(r, c) for r in report.rows for c in r.components if c.fraction is not None and c.fraction > 1]
    if beaten:
        out += ["", f"**Warning**: {len(beaten)} component(s) in {len({id(r) for r, _ in beaten})} step(s) "
                "measured faster than their roofline floor. A floor "
                "cannot be beaten: the measured ceilings are too low (a busy machine while they were "
                "measured?) or a count is wrong; the fractions and the predicted ridge batch are not "
                "trustworthy in this run."]
    verdict = report.claim()
    out += ["", "## Claim: decode latency flat up to the ridge batch, then linear (seed 004)", "",
            f"**{status_label(verdict)}**: {verdict.summary}", *[f"- {d}" for d in verdict.details]]
    return "\n".join(out) + "\n"


def figure(report: StepReport, out_dir: Path) -> list[Path]:
    """Left: measured vs floor per component, stacked, per step (first complete provider). Right: step
    time vs batch, measured per provider, the floor of the measured parts and the analytic lower bound
    (predicted), the predicted ridge batch marked."""
    from matplotlib.ticker import FuncFormatter

    from roofline.plot import save
    from roofline.plot.layout import plt

    req = report.request
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    provider = next((p for p in report.providers if any(r.provider == p and r.complete for r in report.rows)),
                    report.providers[0])
    rows = [r for r in report.rows if r.provider == provider]
    names = [c.name for c in rows[0].components if c.kernel is not None]
    cmap = plt.get_cmap("tab10")
    labels = []
    for i, r in enumerate(rows):
        labels.append(f"B={r.batch}" if r.phase == "decode" else f"prefill\n{req.context}")
        bottom_m = bottom_f = 0.0
        by = {c.name: c for c in r.components}
        for j, name in enumerate(names):
            c = by.get(name)
            if c is None or c.measured_s is None:
                continue
            total = max(r.measured_total_s, r.floor_total_s)  # both bars fit: the larger one is 1
            left.bar(i - 0.2, c.measured_s / total, 0.38, bottom=bottom_m, color=cmap(j % 10),
                     label=name if i == 0 else None)
            left.bar(i + 0.2, c.floor_s / total, 0.38, bottom=bottom_f, color=cmap(j % 10), alpha=0.45,
                     hatch="//")
            bottom_m += c.measured_s / total
            bottom_f += c.floor_s / total
        left.text(i - 0.2, bottom_m, _t(r.measured_total_s), ha="center", va="bottom", fontsize=7)
        left.text(i + 0.2, bottom_f, f"{_t(r.floor_total_s)}\n({r.fraction:.0%})", ha="center", va="bottom",
                  fontsize=7)
    left.set_xticks(range(len(rows)), labels, fontsize=8)
    left.set_ylabel("share of max(measured, floor) per step")
    left.set_title(f"{req.model.name}: measured (solid, left) vs roofline floor (hatched, right) per "
                   f"component, {provider}", fontsize=9)
    left.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    left.set_ylim(0, 1.15)

    for p in report.providers:
        curve = report.decode_curve(p)
        if curve:
            right.plot([b for b, _ in curve], [t for _, t in curve], "o-", label=f"measured ({p})")
    decode = sorted({(r.batch, r.floor_total_s) for r in report.rows if r.phase == "decode"
                     and r.provider == provider})
    if decode:
        right.plot([b for b, _ in decode], [t for _, t in decode], "s--", color="0.4",
                   label="floor of the measured parts (predicted)")
    top = max(req.batches + ((report.ridge_batch or 1) * 4,))
    dense = sorted({max(1, round(2 ** (k / 4))) for k in range(0, 4 * int(math.log2(top)) + 5)})
    analytic_spec = with_matmul_class(report.spec, req.dtype)
    right.plot(dense, [decode_step_latency(req.model, b, req.context, analytic_spec, req.dtype).seconds
                       for b in dense], ":", color="k", label="analytic lower bound (predicted)")
    right.set_xscale("log", base=2)
    right.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    right.set_yscale("log")
    if report.ridge_batch is not None:
        right.axvline(report.ridge_batch, color="tab:red", lw=1,
                      label=f"predicted ridge batch {report.ridge_batch}")
    right.set_xlabel("decode batch")
    right.set_ylabel("step time, seconds")
    right.set_title(f"decode step vs batch (context {req.context}) on {report.spec.name}", fontsize=9)
    right.legend(fontsize=7)
    fig.subplots_adjust(left=0.05, right=0.98, top=0.92, bottom=0.12, wspace=0.42)
    return save(fig, out_dir / "step")


def write_step_report(results_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write ``step.md``, ``step.json`` and the figure; returns the paths."""
    results = load_results(results_dir)
    request = read_request(results.directory)
    if request is None:
        raise UsageError(f"{results.directory}: no step-request.json; this run was not made with --model")
    report = build_report(results, request)
    out = Path(out_dir) if out_dir else results.directory
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "step.md", out / "step.json"
    md.write_text(markdown(report))
    doc = report.to_dict()
    doc["claim"] = _verdict_dict(report.claim())
    js.write_text(json.dumps(doc, indent=2) + "\n")
    return [md, js, *figure(report, out)]


def _verdict_dict(v: Verdict) -> dict:
    return {"status": v.status, "label": status_label(v), "summary": v.summary, "details": list(v.details),
            "numbers": v.numbers}


# ------------------------------------------------------------------------------------------- the claim

def measured_knee(curve: list[tuple[int, float]]) -> float | None:
    """Where the measured step time leaves its flat level: the line through the two largest batches
    crosses the time at the smallest batch. None when the time does not grow at the top."""
    (b0, t0), (b1, t1), (b2, t2) = curve[0], curve[-2], curve[-1]
    slope = (t2 - t1) / (b2 - b1)
    if slope <= 0:
        return None
    return max(float(b0), b2 - (t2 - t0) / slope)


def decode_knee_from_report(report: StepReport) -> Verdict:
    """Seed 004's flat-then-linear decode latency, on each provider's complete decode curve."""
    pred = report.ridge_batch
    pred_s = "never" if pred is None else str(pred)
    lines, statuses, numbers = [], [], {}
    for p in report.providers:
        curve = report.decode_curve(p)
        if len(curve) < 3:
            continue
        first = next(r for r in report.rows
                     if r.phase == "decode" and r.provider == p and r.batch == curve[0][0])
        growth = curve[-1][1] / curve[0][1]
        where = f"{report.request.model.name} context {report.request.context}, {p}"
        above = [r.batch for r in report.rows if r.phase == "decode" and r.provider == p and r.fraction > 1]
        if above:
            statuses.append(INCONCLUSIVE)
            lines.append(f"{where}: the measured step beats its roofline floor at batch "
                         f"{', '.join(map(str, above))}: the ceilings are wrong (measured on a busy "
                         f"machine?), so the predicted ridge batch ({pred_s}) is too")
            continue
        if first.fraction < MEMORY_EVIDENCE:
            statuses.append(INCONCLUSIVE)
            lines.append(f"{where}: at batch {curve[0][0]} the step reaches only {first.fraction:.1%} of its "
                         "floor, so its flat time is overhead, not weight reads (predicted ridge batch "
                         f"{pred_s})")
            continue
        if growth < CROSSOVER_GROWTH:
            reached = pred is not None and pred <= curve[-1][0] / 4
            statuses.append(REFUTED if reached else INCONCLUSIVE)
            lines.append(f"{where}: step time grew only {growth:.2f}x from batch {curve[0][0]} to "
                         f"{curve[-1][0]}: no knee in range (predicted ridge batch {pred_s})")
            continue
        knee = measured_knee(curve)
        numbers[where] = (knee, pred)
        agree = (knee is not None and pred is not None
                 and 1 / CROSSOVER_AGREEMENT <= knee / pred <= CROSSOVER_AGREEMENT)
        statuses.append(SUPPORTED if agree else REFUTED)
        lines.append(f"{where}: measured knee at batch ~{knee:.3g} (step time x{growth:.2f} from batch "
                     f"{curve[0][0]} to {curve[-1][0]}), predicted ridge batch {pred_s}"
                     if knee is not None else f"{where}: the step time does not grow at the top batches")
    if not lines:
        return Verdict(INCONCLUSIVE, "no provider with 3 or more complete decode steps (--batch) in this run")
    return Verdict(combine(statuses), lines[0] + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""),
                   tuple(lines), {"knees": numbers, "predicted_ridge_batch": pred})


# --------------------------------------------------------------------------------------------- the CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="a results directory made with pytest --benchmark --model ...")
    parser.add_argument("--out", default=None, help="where step.md, step.json and the figure go "
                                                     "(default: the results directory)")


def run(args: argparse.Namespace) -> int:
    paths = write_step_report(args.results, args.out)
    print(paths[0].read_text())
    for p in paths:
        print(f"wrote {p}")
    return 0
