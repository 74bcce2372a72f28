"""What the page shows, as data and HTML: each run's points against its own roofs (for the inline script
that draws the interactive roofline), and the tables: roof fractions, speedups, claims, the step report,
the compare table, history, provenance and the ceilings with their probes.

Every number comes from the module that owns it: placement and fractions from :mod:`roofline.model.roof`
(:attr:`~roofline.report.results.Results.judged`), verdicts from :func:`roofline.report.claims.evaluate`
(the call
``claims.md`` is written from), speedups from :mod:`roofline.report.speedup`, the step report from
:mod:`roofline.report.step_report`, the comparison from :mod:`roofline.report.compare`.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field

from roofline.errors import UsageError
from roofline.model.hardware import HardwareSpec
from roofline.model.roof import MEMORY
from roofline.report.claims import ceiling_lines, evaluate, status_text
from roofline.report.claims.report import default_hardware
from roofline.report.compare import compare_runs, results_timings
from roofline.report.plot.render import KERNEL_ORDER, kernel_color, si
from roofline.report.results import Record, Results, size_label
from roofline.report.speedup import BASELINE, speedups, table_lines, versus_lines

MARKERS = ("square", "circle", "triangle", "diamond", "down", "cross")  # drawn by page.js, by provider
PROVIDER_ORDER = ("torch", "triton", "inductor", "sdpa-flash", "sdpa-efficient", "sdpa-cudnn", "sdpa-math")


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def seconds_text(seconds: float | None) -> str:
    """``0.00624`` -> ``"6.24 ms"``."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fraction_text(fraction: float | None) -> str:
    if fraction is None:
        return "-"
    return f"{fraction:.1%}" if fraction >= 0.001 else f"{fraction:.1e}"


# ----------------------------------------------------------------------------------------- runs

@dataclass
class Run:
    """One loaded run as the page names it: ``label`` (device, time, commit) and ``key`` (``run0``...)."""

    key: str
    path: str
    results: Results
    warnings: list[str] = field(default_factory=list)

    @property
    def provenance(self) -> dict:
        return self.results.provenance if isinstance(self.results.provenance, dict) else {}

    @property
    def timestamp(self) -> str:
        return str(self.provenance.get("timestamp_utc") or self.results.directory.name)

    @property
    def commit(self) -> str:
        git = self.provenance.get("git") if isinstance(self.provenance.get("git"), dict) else {}
        commit = str(git.get("commit") or "unknown")[:10]
        return commit + ("+dirty" if git.get("dirty") else "")

    @property
    def sweep(self) -> str:
        return str(self.provenance.get("sweep") or "unknown")

    @property
    def label(self) -> str:
        return f"{self.results.device}, {self.timestamp}, commit {self.commit}"


def provider_order(providers) -> list[str]:
    return sorted(set(providers), key=lambda p: (PROVIDER_ORDER.index(p) if p in PROVIDER_ORDER else 99, p))


def kernel_order(kernels) -> list[str]:
    return sorted(set(kernels), key=lambda k: (KERNEL_ORDER.index(k) if k in KERNEL_ORDER else 99, k))


def _roof_value(spec: HardwareSpec, ceiling: str) -> str:
    return si(spec.mem_bandwidth, "B/s") if ceiling == MEMORY else si(spec.peak_flops[ceiling], "FLOP/s")


def roofline_data(run: Run) -> dict | None:
    """What page.js draws for one run: its roofs (measured solid, datasheet dashed), ridges, and every
    point with its predicted position and the tooltip's lines. None when the run has no roof."""
    res = run.results
    judged = res.judged
    if judged is None:
        return None
    spec = judged.spec
    roofs = [(spec, "measured" if spec.source == "measured" else "datasheet")]
    if judged.datasheet is not None:
        roofs.append((judged.datasheet, "datasheet"))
    classes = list(dict.fromkeys(p.dtype_class for p in judged.points))
    points = []
    for i, r in enumerate(res.records):
        where = judged.placements[i]
        p = where.roof
        lo, hi = where.band
        sheet = judged.datasheet_points[i]
        tip = [["kernel", r.kernel + (f" ({r.variant})" if r.variant else "")],
               ["shape", size_label(r.shape)], ["provider", r.provider], ["dtype", r.dtype],
               ["median", seconds_text(r.median_s)],
               ["p20-p80", f"{seconds_text(r.p20_s)} - {seconds_text(r.p80_s)}"],
               ["intensity", f"{r.intensity:.3g} FLOP/B"],
               ["achieved", f"{si(r.achieved_flops_per_s, 'FLOP/s')}, {si(r.achieved_bytes_per_s, 'B/s')}"],
               ["roof fraction", fraction_text(p.fraction)],
               ["bound", f"{p.bound} (ridge {p.ridge:.3g} FLOP/B)"],
               ["ceiling", f"{p.ceiling} {_roof_value(spec, p.ceiling)} ({p.source})"],
               ["predicted", f"{where.predicted_intensity:.3g} FLOP/B, "
                             f"{si(where.predicted_flops_per_s, 'FLOP/s')} on the roof (cost model)"]]
        if sheet is not None:
            tip.append(["datasheet fraction", f"{fraction_text(sheet.fraction)} of {sheet.hardware}"])
        if judged.is_above(i):
            tip.append(["ABOVE ROOF",
                        f"past the {where.tolerance:.0%} tolerance: {p.ceiling} ceiling suspect"])
        points.append({"name": r.name, "kernel": r.kernel, "provider": r.provider, "dtype": r.dtype,
                       "sweep": r.sweep, "x": p.intensity, "y": r.achieved_flops_per_s, "lo": lo, "hi": hi,
                       "px": where.predicted_intensity, "py": where.predicted_flops_per_s,
                       "fraction": p.fraction, "above": judged.is_above(i), "tip": tip})
    return {"key": run.key, "label": run.label,
            "roofs": [{"name": s.name, "kind": kind, "bandwidth": s.mem_bandwidth,
                       "peaks": {c: s.peak_flops[c] for c in classes if c in s.peak_flops},
                       "text": {c: f"{c} {si(s.peak_flops[c], 'FLOP/s')} {kind}" for c in classes
                                if c in s.peak_flops} | {MEMORY: f"{si(s.mem_bandwidth, 'B/s')} {kind}"}}
                      for s, kind in roofs],
            "points": points}


def legend_data(runs: list[Run]) -> dict:
    records = [r for run in runs for r in run.results.records]
    kernels = kernel_order(r.kernel for r in records)
    providers = provider_order(r.provider for r in records)
    return {"kernels": {k: kernel_color(k, kernels) for k in kernels},
            "providers": {p: MARKERS[i % len(MARKERS)] for i, p in enumerate(providers)}}


# ----------------------------------------------------------------------------------------- Markdown

_INLINE = [(re.compile(r"`([^`]+)`"), r"<code>\1</code>"), (re.compile(r"\*\*(.+?)\*\*"), r"<b>\1</b>")]


def _inline(text: str) -> str:
    out = esc(text)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def markdown_html(text: str) -> str:
    """The Markdown the project's reports write (headings, pipe tables, lists, quotes, bold, code) as
    HTML, so the page shows the same text as ``step.md`` and ``claims.md``'s tables."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                raw = re.split(r"(?<!\\)\|", lines[i].strip())[1:-1]
                cells = [c.strip().replace("\\|", "|") for c in raw]
                if not all(re.fullmatch(r"-+", c) for c in cells):
                    rows.append(cells)
                i += 1
            head, body = rows[0], rows[1:]
            out.append(_table([_inline(c) for c in head], [[_inline(c) for c in r] for r in body], raw=True))
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 2, 6)
            out.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
        elif line.lstrip().startswith("- "):
            items = []
            while i < len(lines) and lines[i].lstrip().startswith("- "):
                items.append(f"<li>{_inline(lines[i].lstrip()[2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.startswith(">"):
            out.append(f"<blockquote>{_inline(line.lstrip('> '))}</blockquote>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(out)


# ----------------------------------------------------------------------------------------- sections

def _table(head: list[str] | None, rows: list[list[str]], cls: str = "", row_attrs: list[str] | None = None,
           raw: bool = False) -> str:
    """An HTML table (no header row when ``head`` is None); ``rows`` hold HTML already escaped, and so
    does ``head`` when ``raw``."""
    attrs = row_attrs or [""] * len(rows)
    thead = ("<thead><tr>" + "".join(f"<th>{h if raw else esc(h)}</th>" for h in head) + "</tr></thead>"
             if head else "")
    return (f'<table class="{cls}">{thead}<tbody>'
            + "".join(f"<tr{a}>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>"
                      for r, a in zip(rows, attrs, strict=True))
            + "</tbody></table>")


def _bar(fraction: float | None, above: bool) -> str:
    if fraction is None:
        return "-"
    width = min(100.0, max(0.5, 100 * fraction))
    return (f'<span class="bar{" above" if above else ""}"><span style="width:{width:.1f}%"></span></span> '
            f"{fraction_text(fraction)}" + (" ABOVE ROOF" if above else ""))


def fraction_section(runs: list[Run]) -> str:
    """One row per benchmark, one column per run: its fraction of its own run's roof (runs on different
    devices are compared by this, never by time)."""
    per_run: list[dict[str, tuple[Record, float, bool]]] = []
    for run in runs:
        judged = run.results.judged
        records = run.results.records
        per_run.append({} if judged is None else {
            r.name: (r, judged.points[i].fraction, judged.is_above(i)) for i, r in enumerate(records)})
    names: dict[str, Record] = {}
    for table in per_run:
        for name, (r, _, _) in table.items():
            names.setdefault(name, r)
    order = sorted(names.values(), key=lambda r: (kernel_order([r.kernel, *KERNEL_ORDER]).index(r.kernel),
                                                  r.sweep, r.provider, r.flops))
    rows, attrs = [], []
    for r in order:
        cells = [esc(r.kernel), esc(r.provider), esc(r.sweep), esc(size_label(r.shape)), esc(r.dtype)]
        for table in per_run:
            hit = table.get(r.name)
            cells.append(_bar(hit[1], hit[2]) if hit else "not in this run")
        rows.append(cells)
        attrs.append(_row_attrs(r))
    head = ["kernel", "provider", "sweep", "shape", "dtype"] + [f"fraction of roof: {r.key}" for r in runs]
    return _table(head, rows, "fractions", attrs)


def _row_attrs(r: Record) -> str:
    """What page.js's kernel and provider toggles select a table row by."""
    return f' data-kernel="{esc(r.kernel)}" data-provider="{esc(r.provider)}" data-name="{esc(r.name)}"'


def speedup_figure(points: list, legend: dict) -> str:
    """One (kernel, sweep, dtype)'s speedups over the baseline along its sweep: an SVG with a line per
    provider on a log axis, the baseline at 1; each point's title says its size and value."""
    width, height, left, pad = 420, 170, 44, 14
    labels = list(dict.fromkeys(s.label for s in sorted(points, key=lambda s: s.flops)))
    values = [s.speedup for s in points]
    lo, hi = min(values + [1.0]) / 1.3, max(values + [1.0]) * 1.3
    step = (width - left - pad) / max(1, len(labels) - 1)

    def y(v: float) -> float:
        return pad + (math.log(hi) - math.log(v)) / (math.log(hi) - math.log(lo)) * (height - 2 * pad - 12)

    out = [f'<svg class="speedup" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           f'<line x1="{left}" x2="{width - pad}" y1="{y(1):.1f}" y2="{y(1):.1f}" stroke="#999" '
           'stroke-dasharray="4 3"/>',
           f'<text x="{left - 4}" y="{y(1) + 4:.1f}" text-anchor="end">1x</text>',
           f'<text x="{left - 4}" y="{y(hi) + 8:.1f}" text-anchor="end">{hi:.2g}x</text>',
           f'<text x="{left - 4}" y="{y(lo):.1f}" text-anchor="end">{lo:.2g}x</text>',
           f'<text x="{left}" y="{height - 4}">{esc(_clip(labels[0]))}</text>']
    if len(labels) > 1:
        last = esc(_clip(labels[-1]))
        out.append(f'<text x="{width - pad}" y="{height - 4}" text-anchor="end">{last}</text>')
    for provider in provider_order(s.provider for s in points):
        mine = sorted((s for s in points if s.provider == provider), key=lambda s: labels.index(s.label))
        xy = [(left + labels.index(s.label) * step, y(s.speedup), s) for s in mine]
        color = "#555" if provider == BASELINE else legend["kernels"].get(mine[0].kernel, "#1f77b4")
        dash = ' stroke-dasharray="2 2"' if provider == BASELINE else ""
        out.append(f'<g data-provider="{esc(provider)}" data-kernel="{esc(mine[0].kernel)}">'
                   f'<polyline fill="none" stroke="{color}"{dash} points="'
                   + " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in xy) + '"/>'
                   + "".join(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}">'
                             f"<title>{esc(provider)}, {esc(s.label)}: {s.speedup:.2f}x</title></circle>"
                             for px, py, s in xy)
                   + "</g>")
    return "".join(out) + "</svg>"


def _clip(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def speedup_figures(run: Run, legend: dict) -> str:
    groups: dict[tuple, list] = {}
    for s in speedups(run.results.records):
        groups.setdefault((s.kernel, s.sweep, s.dtype), []).append(s)
    groups = {k: v for k, v in groups.items() if any(s.provider != BASELINE for s in v)}
    return "".join(f'<figure class="speedup"><figcaption>{esc(k)} · {esc(sw)} · {esc(dt)}: speedup over '
                   f"{BASELINE} (log)</figcaption>{speedup_figure(v, legend)}</figure>"
                   for (k, sw, dt), v in sorted(groups.items()))


def speedup_section(run: Run) -> str:
    lines = table_lines(run.results.records)
    versus = versus_lines(run.results.records)
    if not lines and not versus:
        providers = ", ".join(provider_order(r.provider for r in run.results.records))
        return ("<p>No speedup table: no provider shares a point with the torch baseline in this run "
                f"(providers: {esc(providers)}).</p>")
    figures = speedup_figures(run, legend_data([run]))
    return markdown_html("\n".join(lines + [""] + versus)) + (f'<div class="figures">{figures}</div>'
                                                               if figures else "")


def claims_section(run: Run) -> str:
    """The claims of ``run``: the same :func:`roofline.report.claims.evaluate` rows and verdict text as
    ``claims.md`` (:func:`roofline.report.claims.write_report`), evidence under each."""
    res = run.results
    spec = default_hardware(res)
    rows = evaluate(res, spec)
    context = "".join(f"<p class='{'warn' if line.startswith(('WARNING', 'ABOVE')) else ''}'>{esc(line)}</p>"
                      for line in ceiling_lines(res))
    body = []
    for r in rows:
        evidence = []
        for label, v in ((f"model ({spec.name})", r.model), ("measured", r.measured)):
            if v is None:
                continue
            evidence.append(f"<div><b>{esc(label)}: {esc(status_text(v))}</b>: {esc(v.summary)}"
                            + ("<ul>" + "".join(f"<li>{esc(d)}</li>" for d in v.details) + "</ul>"
                               if v.details else "") + "</div>")
        summary = (r.model or r.measured).summary if (r.model or r.measured) else ""
        body.append(f'<tr class="claim" data-claim="{esc(r.claim.id)}">'
                    f"<td><code>{esc(r.claim.id)}</code></td>"
                    f"<td>{esc(r.claim.source)}</td>"
                    f'<td class="v-model {_vclass(r.model)}">{esc(status_text(r.model))}</td>'
                    f'<td class="v-measured {_vclass(r.measured)}">{esc(status_text(r.measured))}</td>'
                    f"<td>{esc(summary)}<details><summary>statement and evidence</summary>"
                    f"<p>{esc(r.claim.statement)}</p>{''.join(evidence)}</details></td></tr>")
    return (context + f'<table class="claims" data-run="{run.key}"><thead><tr><th>claim</th><th>source</th>'
            "<th>model</th><th>measured</th><th>numbers</th></tr></thead><tbody>" + "".join(body)
            + "</tbody></table>"
            "<p class='note'>model: the checks on the datasheet's ceilings (predictions); measured: this "
            "run's benchmarks against its roof. Verdicts as in claims.md, from the same evaluation.</p>")


def _vclass(verdict) -> str:
    return f"v-{verdict.status}" if verdict is not None else ""


def step_section(run: Run) -> str | None:
    """The step report (``step.md``'s text) of a run made with ``--model``; None for another run."""
    from roofline.model.step import read_request
    from roofline.report.step_report import build_report, markdown

    request = read_request(run.results.directory)
    if request is None:
        return None
    try:
        return markdown_html(markdown(build_report(run.results, request)))
    except UsageError as exc:
        run.warnings.append(f"{run.path}: step report not shown ({exc.args[0]})")
        return None


def compare_section(a: Run, b: Run, threshold: float = 0.05) -> str | None:
    """:func:`roofline.report.compare.compare_runs` of the first two runs as a table; None (with a warning)
    when
    they share no benchmark or cannot be compared."""
    try:
        mode, rows = compare_runs(results_timings(a.results), results_timings(b.results), threshold)
    except UsageError as exc:
        a.warnings.append(f"no compare table between {a.key} and {b.key}: {exc.args[0]}")
        return None
    what = ("ratio of medians B/A (>1: B slower)" if mode == "time" else
            "different devices: ratio of roof fractions A/B (>1: B further from its roof), not times")
    body = [[esc(r.name), f"{r.ratio:.3f}",
             f"[{r.low:.3f}, {r.high:.3f}]" if r.low is not None else "no per-round data",
             f'<span class="c-{r.verdict.replace(" ", "-")}">{esc(r.verdict)}</span>',
             seconds_text(r.median_a_s), seconds_text(r.median_b_s)] for r in rows]
    return (f"<p>A = {esc(a.key)}, B = {esc(b.key)}; {esc(what)}; 95% bootstrap interval; threshold "
            f"{threshold:.0%} (as <code>python -m roofline compare</code>).</p>"
            + _table(["benchmark", "ratio", "95% interval", "verdict", "median A", "median B"], body,
                     "compare"))


def _sparkline(values: list[float | None], log: bool, fmt, labels: list[str]) -> str:
    """A small SVG of one benchmark's values across runs (None: not in that run), one circle per run."""
    width, height, pad = 150, 34, 5
    have = [v for v in values if v is not None and v > 0]
    if not have:
        return ""
    tr = (lambda v: math.log10(v)) if log else (lambda v: v)
    lo, hi = tr(min(have)), tr(max(have))
    span = hi - lo or 1.0
    step = (width - 2 * pad) / max(1, len(values) - 1)
    pts = [(pad + i * step, height - pad - (tr(v) - lo) / span * (height - 2 * pad), v, i)
           for i, v in enumerate(values) if v is not None and v > 0]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in pts)
    dots = "".join(f'<circle class="hist-pt" data-run="{i}" cx="{x:.1f}" cy="{y:.1f}" r="2.6">'
                   f"<title>{esc(labels[i])}: {esc(fmt(v))}</title></circle>" for x, y, v, i in pts)
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<polyline points="{line}"/>{dots}</svg>')


def history_section(runs: list[Run]) -> str:
    """Each benchmark's median and roof fraction across ``runs`` (oldest first), with commits."""
    labels = [f"{run.timestamp} {run.commit}" for run in runs]
    fractions: list[dict[str, tuple[float, float | None]]] = []
    for run in runs:
        judged = run.results.judged
        fractions.append({r.name: (r.median_s, judged.points[i].fraction if judged else None)
                          for i, r in enumerate(run.results.records)})
    records: dict[str, Record] = {}
    for run in runs:
        for r in run.results.records:
            records.setdefault(r.name, r)
    order = sorted(records.values(), key=lambda r: (kernel_order([r.kernel, *KERNEL_ORDER]).index(r.kernel),
                                                    r.sweep, r.provider, r.flops))
    head_runs = "".join(f"<li>{esc(run.timestamp)}, commit <code>{esc(run.commit)}</code>, "
                        f"{esc(run.results.device)}, sweep {esc(run.sweep)} ({esc(run.path)})</li>"
                        for i, run in enumerate(runs))
    rows, attrs = [], []
    for r in order:
        medians = [f.get(r.name, (None, None))[0] for f in fractions]
        fracs = [f.get(r.name, (None, None))[1] for f in fractions]
        cells = [esc(r.name), _sparkline(medians, True, seconds_text, labels),
                 _sparkline(fracs, False, fraction_text, labels)]
        cells.append(" → ".join(f"{seconds_text(m)} / {fraction_text(f)}" if m is not None else "absent"
                                for m, f in zip(medians, fracs, strict=True)))
        rows.append(cells)
        attrs.append(' class="hist"' + _row_attrs(r))
    return (f"<p>{len(runs)} runs of {esc(runs[-1].results.device)} in time order (oldest first):</p>"
            f"<ol>{head_runs}</ol>"
            + _table(["benchmark", "median (log scale)", "roof fraction", "median / fraction, run by run"],
                     rows, "history", attrs))


def provenance_section(run: Run) -> str:
    prov = run.provenance
    res = run.results
    versions = prov.get("versions") if isinstance(prov.get("versions"), dict) else {}
    choice = prov.get("sweep_dtype") if isinstance(prov.get("sweep_dtype"), dict) else {}
    dtypes = ", ".join(sorted({r.dtype for r in res.records}))
    interrupted = prov.get("interrupted")
    rows = [["run", esc(run.path)], ["device", f"{esc(res.device)} ({esc(res.device_kind)})"],
            ["when (UTC)", esc(run.timestamp)], ["commit", f"<code>{esc(run.commit)}</code>"],
            ["sweep", esc(run.sweep)],
            ["sweep dtype", esc(f"{choice.get('dtype')}: {choice.get('reason', '')}" if choice.get("dtype")
                                else f"{dtypes} (no sweep_dtype recorded)")],
            ["benchmarks", f"{len(res.records)} timed; {len(res.skipped)} skipped (skipped.json)"],
            ["interrupted", "unknown (not recorded)" if interrupted is None
             else ("YES: only the finished benchmarks are here" if interrupted else "no")],
            ["read from", esc(res.source)],
            ["versions", esc(", ".join(f"{k} {v}" for k, v in versions.items() if v)) or "not recorded"],
            ["platform", esc(prov.get("platform", "not recorded"))],
            ["command", esc(" ".join(map(str, prov.get("command_line") or [])) or "not recorded")]]
    device = prov.get("device") if isinstance(prov.get("device"), dict) else {}
    if device.get("note"):
        rows.append(["note", esc(device["note"])])
    return _table(None, rows, "kv")


def ceilings_section(run: Run) -> str:
    """The roofs a run is judged against, and the probes that measured them (``ceilings.json``)."""
    res = run.results
    judged = res.judged
    ceilings = res.ceilings
    if judged is None:
        return "<p>No ceilings.json and no known hardware preset: no roof.</p>"
    out = []
    specs = [judged.spec] + ([judged.datasheet] if judged.datasheet is not None else [])
    rows = [[esc(s.name), esc(s.source), si(s.mem_bandwidth, "B/s"),
             esc(", ".join(f"{c} {si(v, 'FLOP/s')}" for c, v in s.peak_flops.items())),
             esc(", ".join(f"{c} {v / s.mem_bandwidth:.3g}" for c, v in s.peak_flops.items()))]
            for s in specs]
    out.append(_table(["roof", "source", "memory bandwidth", "peaks", "ridges (FLOP/B)"], rows, "ceil"))
    raw = ceilings.raw if ceilings is not None and isinstance(ceilings.raw, dict) else {}
    probes = []
    bw = raw.get("bandwidth") if isinstance(raw.get("bandwidth"), dict) else None
    if bw:
        probes.append(["bandwidth (copy)", si(bw.get("best") or 0, "B/s"), si(bw.get("median") or 0, "B/s"),
                       esc(f"{bw.get('buffer_bytes', '?')} B buffer, {bw.get('repeats', '?')} repeats")])
    for dtype, m in (raw.get("matmul") or {}).items():
        if isinstance(m, dict):
            probes.append([f"matmul {esc(dtype)}", si(m.get("best") or 0, "FLOP/s"),
                           si(m.get("median") or 0, "FLOP/s"), esc(f"n={m.get('n', '?')}, "
                                                                   f"{m.get('repeats', '?')} repeats")])
    for name, c in (raw.get("ceilings") or {}).items():
        if isinstance(c, dict):
            probes.append([f"ceiling {esc(name)}", esc(f"{c.get('best', '-'):.4g}" if c.get("best") else "-"),
                           esc(f"{c.get('median'):.4g}" if c.get("median") else "-"),
                           esc(f"before {c.get('before', '-')}, after {c.get('after', '-')}")])
    if probes:
        out.append(_table(["probe", "best", "median", "how"], probes, "probes"))
    if ceilings is not None and ceilings.method:
        out.append(f"<p>Method: {esc(ceilings.method)}</p>")
    out.append(f"<p>Above-roof tolerance: {esc(judged.tolerance_text())} ({esc(judged.check.method)}).</p>")
    out += [f"<p class='warn'>CEILINGS SUSPECT: {esc(r)}</p>" for r in judged.reasons]
    out += [f"<p class='note'>{esc(n)}</p>" for n in judged.notes]
    return "".join(out)


def runs_json(runs: list[Run]) -> str:
    """The data page.js reads, safe inside a ``<script>`` element."""
    doc = {"runs": [d for d in (roofline_data(run) for run in runs) if d is not None],
           "legend": legend_data(runs)}
    # No "<" at all inside the element: neither "</script>" nor "<!--" can end or bend it.
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
