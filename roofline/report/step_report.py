"""The step report: a model step composed of measured kernels, component by component, against its
roofline floor on this device's measured ceilings.

``python -m roofline step RESULTS`` (also written at the end of ``pytest --benchmark --model ...``)
reads a run made with ``--model`` (its ``step-request.json`` says which model, batches, context) and
writes ``step.md``, ``step.json`` and ``step.png``/``.svg`` into the run directory.

Per step (each decode batch, and the prefill) and provider, per component (:mod:`roofline.model.step`):
measured median per call x calls per step (``n_layers`` or 1), the roofline floor of those calls on the
measured ceilings (:func:`floor_seconds`, from :func:`roofline.model.ops.kernel_cost` of the same shapes),
the fraction of the floor achieved (floor / measured) and the bound (memory or compute). The step's
measured total is the sum of its measured components; ops without a kernel (norms, residual adds, ...)
are listed with their memory floor and are not in the measured total. Beside the total: the analytic
lower bound of :mod:`roofline.model.latency` (``python -m roofline model``'s decode/prefill latency), on the
same measured ceilings.

With ``--weights/--activations/--kv/--group-size`` (recorded in ``step-request.json``, or given to
``python -m roofline step``): the kernels ran the run's dtype only, so a quantized step is never
measured; beside each measured step the report PREDICTS the step in that precision (the analytic lower
bound of :mod:`roofline.model.latency` on the same measured ceilings), its ratio to the run's dtype, and the
measured step times that ratio, all labelled predicted.

A whole generation (:mod:`roofline.model.generation`) of ``context`` prompt + ``output_tokens`` tokens per
batch:
anchored on the measured steps (TTFT from the measured prefill, TPOT from the measured decode step at the
run's context, its growth with the context predicted; :func:`roofline.model.generation.anchored`) beside the
predicted generation on the same ceilings.

:func:`decode_knee_from_report` reads seed 004's "decode latency is flat in batch up to the ridge batch,
then grows linearly" off the measured step time vs batch (the claim is in
:mod:`roofline.report.claims.decode_step`).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from roofline.errors import UsageError
from roofline.model.generation import Generation, anchored, generation
from roofline.model.hardware import HardwareSpec
from roofline.model.latency import decode_compute_bound_batch, decode_step_latency, prefill_latency
from roofline.model.ops import kernel_cost
from roofline.model.precision import (
    LOW_PRECISION_MATH,
    parse_precision,
    precision_options,
    resolve_math,
)
from roofline.model.roof import roof_class, with_matmul_class
from roofline.model.step import Component, StepRequest, all_components, read_request
from roofline.model.verdict import (
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
from roofline.report.results import Record, Results, as_results

DEFAULT_OUTPUT_TOKENS = 128  # the generation's output tokens per sequence (issue 27's 128 + 128)


def floor_seconds(kernel: str, shape: dict, dtype: str, spec: HardwareSpec) -> tuple[float, str]:
    """``(seconds, bound)``: the roofline floor of one call, ``max(FLOPs / peak, bytes / bandwidth)`` with
    the cost model's FLOPs and bytes for ``shape`` and the peak of the class
    :func:`roofline.model.roof.roof_class`
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
    precision_s: float | None = None  # predicted lower bound in the requested precision (None: none asked)

    @property
    def precision_ratio(self) -> float | None:
        """Predicted: the step in the requested precision over the step in the run's dtype."""
        return None if self.precision_s is None else self.precision_s / self.analytic_s

    @property
    def precision_projected_s(self) -> float | None:
        """Predicted: the measured total x :attr:`precision_ratio` (quantized kernels reaching the same
        fraction of their floor as the measured ones did)."""
        ratio = self.precision_ratio
        return None if ratio is None else self.measured_total_s * ratio

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
                "precision_lower_bound_s": self.precision_s, "precision_ratio": self.precision_ratio,
                "precision_projected_s": self.precision_projected_s,
                "complete": self.complete, "missing": self.missing,
                "components": [{"name": c.name, "count": c.count, "kernel": c.kernel,
                                "measured_s": c.measured_s, "floor_s": c.floor_s,
                                "fraction_of_floor": c.fraction, "bound": c.bound, "note": c.note}
                               for c in self.components]}


@dataclass(frozen=True)
class GenerationRow:
    """One batch's whole generation for one provider: ``anchored`` on its measured steps
    (:func:`roofline.model.generation.anchored`), ``predicted`` on the same measured ceilings, and
    ``in_precision`` predicted in the requested precision (None: none asked for)."""

    provider: str
    anchored: Generation
    predicted: Generation
    in_precision: Generation | None = None

    def to_dict(self) -> dict:
        return {"provider": self.provider, "batch": self.anchored.batch,
                "on_measured_steps": self.anchored.to_dict(), "predicted": self.predicted.to_dict(),
                "predicted_in_precision": None if self.in_precision is None else self.in_precision.to_dict()}


@dataclass
class StepReport:
    request: StepRequest
    spec: HardwareSpec
    rows: list[StepRow]
    ridge_batch: int | None  # predicted: smallest compute-bound decode batch at this context
    suspect_reasons: tuple[str, ...] = ()  # why the run's ceilings are suspect (Results.judged)
    ridge_batch_precision: int | None = None  # the same in the requested precision
    output_tokens: int = DEFAULT_OUTPUT_TOKENS
    generations: list[GenerationRow] = field(default_factory=list)

    @property
    def analytic_spec(self) -> HardwareSpec:
        return analytic_spec(self.spec, self.request)

    def claim(self) -> Verdict:
        """Seed 004's decode-knee verdict as ``claims.md`` gives it: withheld (inconclusive) on suspect
        ceilings, by the same rule (:func:`roofline.model.verdict.withhold`)."""
        return withhold(decode_knee_from_report(self), bool(self.suspect_reasons), self.suspect_reasons)

    def decode_curve(self, provider: str) -> list[tuple[int, float]]:
        """(batch, measured step seconds) of the complete decode steps of ``provider``."""
        return sorted((r.batch, r.measured_total_s) for r in self.rows
                      if r.phase == "decode" and r.provider == provider and r.complete)

    @property
    def providers(self) -> list[str]:
        return sorted({r.provider for r in self.rows})

    def to_dict(self) -> dict:
        out = {"request": self.request.to_dict(), "ceilings": self.spec.to_dict(),
               "predicted_ridge_batch": self.ridge_batch, "steps": [r.to_dict() for r in self.rows],
               "generation": {"prompt": self.request.context, "output_tokens": self.output_tokens,
                              "rows": [g.to_dict() for g in self.generations]}}
        p = self.request.precision
        if p is not None:
            out["precision"] = {**p.to_dict(), "label": p.label, "measured": False,
                                "matmul_math_used": resolve_math(self.analytic_spec, p.matmul_math)[0],
                                "predicted_ridge_batch": self.ridge_batch_precision}
        return out


def analytic_spec(spec: HardwareSpec, request: StepRequest) -> HardwareSpec:
    """``spec`` with a peak for every matmul class the analytic models ask for: the run dtype's and, with
    a requested precision, its float's and ``tensor16`` (where fp8/int8 math falls back when the
    measured ceilings have no such peak), each from the next class down when not measured."""
    out = with_matmul_class(spec, request.dtype)
    if request.precision is not None:
        for dtype in (request.precision.float_dtype, "bfloat16"):
            out = with_matmul_class(out, dtype)
    return out


def _spec(results: Results) -> HardwareSpec:
    if results.ceilings is not None and results.ceilings.measured is not None:
        return results.ceilings.measured
    spec = results.roof
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


def build_report(results: Results, request: StepRequest,
                 output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> StepReport:
    """Match the run's records to the request's components and compute every row, and the generation of
    ``request.context`` prompt + ``output_tokens`` tokens at each measured decode batch."""
    if isinstance(output_tokens, bool) or not isinstance(output_tokens, int) or output_tokens < 1:
        raise UsageError(f"--output-tokens: expected a positive integer, got {output_tokens!r}")
    spec = _spec(results)
    aspec = analytic_spec(spec, request)
    prec = request.precision
    index = _index(results.records)
    providers = sorted({r.provider for r in results.records})
    steps: dict[tuple[str, int], list[Component]] = {}
    for c in all_components(request):
        steps.setdefault((c.phase, c.batch), []).append(c)
    rows = []
    cfg, dt = request.model, request.dtype
    for (phase, batch), comps in steps.items():
        def predicted(dtype: object, phase: str = phase, batch: int = batch) -> float:
            return (decode_step_latency(cfg, batch, request.context, aspec, dtype) if phase == "decode"
                    else prefill_latency(cfg, 1, request.context, aspec, dtype)).seconds

        analytic = predicted(dt)
        in_precision = None if prec is None else predicted(prec)
        for provider in providers:
            row = StepRow(phase, batch, provider, analytic_s=analytic, precision_s=in_precision)
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
    ridge = decode_compute_bound_batch(cfg, aspec, dt, request.context)
    ridge_p = None if prec is None else decode_compute_bound_batch(cfg, aspec, prec, request.context)
    run = results.judged
    suspect = tuple(run.reasons) if run is not None and run.suspect else ()
    return StepReport(request, spec, rows, ridge, suspect, ridge_p, output_tokens,
                      generations(rows, request, aspec, output_tokens))


def generations(rows: list[StepRow], request: StepRequest, spec: HardwareSpec,
                output_tokens: int) -> list[GenerationRow]:
    """Per provider and complete decode step: the generation of ``request.context`` prompt +
    ``output_tokens`` tokens at its batch on its measured step (and its complete measured prefill, one
    prompt of ``request.context`` tokens, for TTFT), beside the predicted one on ``spec``."""
    cfg, ctx, dt = request.model, request.context, request.dtype
    predicted: dict[tuple[int, object], Generation] = {}

    def predict(batch: int, dtype: object) -> Generation:
        key = (batch, dtype)
        if key not in predicted:
            predicted[key] = generation(cfg, spec, dtype, batch, ctx, output_tokens)
        return predicted[key]

    out = []
    for provider in sorted({r.provider for r in rows}):
        prefill = next((r for r in rows if r.phase == "prefill" and r.provider == provider and r.complete),
                       None)
        for r in sorted((r for r in rows if r.phase == "decode" and r.provider == provider and r.complete),
                        key=lambda r: r.batch):
            pred = predict(r.batch, dt)
            on_measured = anchored(pred, cfg, spec, dt, decode_s=r.measured_total_s, decode_context=ctx,
                                   prefill_s=None if prefill is None else prefill.measured_total_s,
                                   prefill_batch=1, prefill_prompt=ctx)
            quant = None if request.precision is None else predict(r.batch, request.precision)
            out.append(GenerationRow(provider, on_measured, pred, quant))
    return out


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
           "roofline floor of the same calls (`roofline.model.cost` of the same shapes); fraction = floor / "
           "measured. The measured total is the sum of the measured components; ops without a kernel are "
           "listed with their memory floor, outside the total. The analytic lower bound is "
           "`python -m roofline model`'s (predicted, whole step incl. those ops, on the same ceilings).", "",
           "## Steps", "",
           "| step | provider | measured total | floor (measured parts) | fraction | not-measured ops' floor "
           "| analytic lower bound (predicted) | complete |",
           "|---|---|---|---|---|---|---|---|"]
    for r in report.rows:
        step = _step_name(r, req.context)
        out.append(f"| {step} | {r.provider} | {_t(r.measured_total_s)} | {_t(r.floor_total_s)} | "
                   f"{r.fraction:.1%} | {_t(r.unmeasured_floor_s)} | {_t(r.analytic_s)} | "
                   + ("yes" if r.complete else "missing: " + ", ".join(r.missing)) + " |")
    for r in report.rows:
        step = _step_name(r, req.context)
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
    out += _precision_markdown(report) + _generation_markdown(report)
    verdict = report.claim()
    out += ["", "## Claim: decode latency flat up to the ridge batch, then linear (seed 004)", "",
            f"**{status_label(verdict)}**: {verdict.summary}", *[f"- {d}" for d in verdict.details]]
    return "\n".join(out) + "\n"


def _rate(tokens_per_s: float) -> str:
    return f"{tokens_per_s:,.0f}" if tokens_per_s >= 100 else f"{tokens_per_s:.3g}"


def _step_name(r: StepRow, context: int) -> str:
    return f"decode B={r.batch}" if r.phase == "decode" else f"prefill {context}"


def _precision_markdown(report: StepReport) -> list[str]:
    req, p = report.request, report.request.precision
    if p is None:
        return []
    aspec = report.analytic_spec
    used = resolve_math(aspec, p.matmul_math)[0]
    math = f"the blocks' matmuls on {used}"
    if p.matmul_math in LOW_PRECISION_MATH and used != p.matmul_math:
        math += (f" ({p.matmul_math} math asked for, but no {p.matmul_math} ceiling was measured: predicted "
                 f"on the measured {used} roof, too slow where the step is compute-bound)")
    ridge, ridge0 = ("never" if b is None else b for b in (report.ridge_batch_precision, report.ridge_batch))
    out = ["", f"## Requested precision: {p.label} (PREDICTED: quantized kernels were not measured)", "",
           f"The kernels ran {req.dtype} only. Predicted on the same measured ceilings with "
           f"`roofline.model.precision` and the accounting ({math}): the analytic lower bound of each step "
           f"in {p.label} and its ratio to the {req.dtype} bound; \"measured x ratio\" assumes quantized "
           "kernels reach the fraction of their floor the measured ones did. Predicted ridge batch in "
           f"{p.label}: {ridge} ({req.dtype}: {ridge0}).", "",
           f"| step | provider | measured ({req.dtype}) | lower bound {req.dtype} (predicted) | lower bound "
           f"{p.label} (predicted) | ratio (predicted) | measured x ratio (predicted) |",
           "|---|---|---|---|---|---|---|"]
    for r in report.rows:
        out.append(f"| {_step_name(r, req.context)} | {r.provider} | {_t(r.measured_total_s)} | "
                   f"{_t(r.analytic_s)} | {_t(r.precision_s)} | {r.precision_ratio:.3f} | "
                   f"{_t(r.precision_projected_s)} |")
    return out


def _generation_markdown(report: StepReport) -> list[str]:
    req, n = report.request, report.output_tokens
    if not report.generations:
        return ["", "## A whole generation", "", "No complete decode step in this run: no generation."]
    ctx, m = req.context, req.model
    measured_ttft = any("ttft" in g.anchored.measured for g in report.generations)
    ttft = (f"TTFT: the measured prefill of one {ctx}-token prompt (its measured kernels), scaled to each "
            "batch by the predicted prefill's batch dependence (measured at batch 1 only)" if measured_ttft
            else "TTFT: PREDICTED (this run has no --prefill)")
    past = (f" {ctx + n - 1} tokens is past {m.name}'s {m.context_length} positions: the shapes are "
            "predicted anyway." if ctx + n - 1 > m.context_length else "")
    out = ["", f"## A whole generation: {ctx} prompt + {n} output tokens per sequence", "",
           f"{ttft}. TPOT: the decode step measured at context {ctx} at that batch (its measured "
           f"kernels) x the mean predicted step over contexts {ctx}..{ctx + n - 2} / the predicted step at "
           f"{ctx}: measured at one context, the growth with the context taken from the model "
           "(predicted). Ops without a kernel are in neither (as in the step totals). End-to-end = TTFT + "
           f"{n - 1} x TPOT; tokens/s per device = batch x {n} / end-to-end. Beside it: the generation "
           "PREDICTED on the same measured ceilings (`python -m roofline model --output-tokens`'s "
           f"lower bounds).{past}", "",
           "| provider | batch | TTFT | TPOT | end-to-end | tokens/s | predicted TTFT | predicted TPOT | "
           "predicted end-to-end | predicted tokens/s | predicted / measured end-to-end |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in report.generations:
        a, p = g.anchored, g.predicted
        first = _t(a.ttft_s) + ("" if "ttft" in a.measured else " (predicted)")
        out.append(f"| {g.provider} | {a.batch} | {first} | {_t(a.tpot_s)} | {_t(a.e2e_s)} | "
                   f"{_rate(a.tokens_per_s_per_gpu)} | {_t(p.ttft_s)} | {_t(p.tpot_s)} | {_t(p.e2e_s)} | "
                   f"{_rate(p.tokens_per_s_per_gpu)} | {p.e2e_s / a.e2e_s:.1%} |")
    if req.precision is not None:
        label = req.precision.label
        out += ["", f"PREDICTED in {label} on the same ceilings (not measured):", "",
                "| batch | TTFT | TPOT | end-to-end | tokens/s | end-to-end vs predicted "
                f"{req.dtype} |", "|---|---|---|---|---|---|"]
        seen = set()
        for g in report.generations:
            q = g.in_precision
            if q is None or q.batch in seen:
                continue
            seen.add(q.batch)
            out.append(f"| {q.batch} | {_t(q.ttft_s)} | {_t(q.tpot_s)} | {_t(q.e2e_s)} | "
                       f"{_rate(q.tokens_per_s_per_gpu)} | {q.e2e_s / g.predicted.e2e_s:.3f} |")
    return out


def figure(report: StepReport, out_dir: Path) -> list[Path]:
    """Left: measured vs floor per component, stacked, per step (first complete provider). Right: step
    time vs batch, measured per provider, the floor of the measured parts and the analytic lower bound
    (predicted), the predicted ridge batch marked."""
    from matplotlib.ticker import FuncFormatter

    from roofline.report.plot import save
    from roofline.report.plot.render import plt

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


def write_step_report(results_dir: str | Path | Results, out_dir: str | Path | None = None, *,
                      output_tokens: int = DEFAULT_OUTPUT_TOKENS, formats: dict | None = None
                      ) -> list[Path]:
    """Write ``step.md``, ``step.json`` and the figure; returns the paths. ``output_tokens``: the
    generation's. ``formats``: ``weights``/``activations``/``kv``/``group_size`` option values, each
    format defaulting to the run's dtype (:func:`roofline.model.precision.parse_precision`): the precision the
    step is predicted in, instead of the one the run recorded."""
    results = as_results(results_dir)
    request = read_request(results.directory)
    if request is None:
        raise UsageError(f"{results.directory}: no step-request.json; this run was not made with --model")
    if formats and any(v is not None for v in formats.values()):
        request = replace(request, precision=parse_precision(request.dtype, **formats))
    report = build_report(results, request, output_tokens)
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
    parser.add_argument("--output-tokens", default=str(DEFAULT_OUTPUT_TOKENS),
                        help="output tokens per sequence of the generation table (prompt: the run's "
                             f"--context; default {DEFAULT_OUTPUT_TOKENS})")
    for option, help_text in precision_options("the run's dtype").items():
        parser.add_argument(option, default=None,
                            help=f"{help_text}; predict the step in this precision instead of the one the "
                                 "run recorded (never measured)")


def run(args: argparse.Namespace) -> int:
    try:
        output_tokens = int(args.output_tokens)
    except ValueError:
        raise UsageError(f"--output-tokens: expected a positive integer, got {args.output_tokens!r}") \
            from None
    formats = dict(weights=args.weights, activations=args.activations, kv=args.kv, group_size=args.group_size)
    paths = write_step_report(args.results, args.out, output_tokens=output_tokens, formats=formats)
    print(paths[0].read_text())
    for p in paths:
        print(f"wrote {p}")
    return 0
