"""The end of a ``pytest --benchmark`` run, on the report side: :func:`finish`, bench's one way in.

``bench/finish.py`` calls :func:`finish` once, after the parts are merged. The run directory is loaded
once (:func:`roofline.report.results.load_results`) and that one :class:`~roofline.report.results.Results` is
handed to
everything drawn from it: the summary's lines on the roof, the roofline plots, the claims (evaluated once,
for ``claims.md`` and the verdict tally), ``report.html`` and the step report of a ``--model`` run; its
records are what the summary counts. Nothing else of the report side is imported by bench
(``tests/test_bench_finish.py`` scans for it, function-level, ``importlib`` and ``__import__`` imports
included). ``scripts/gpu_check_summary.py --report`` calls it too, on a run made with ``--no-report``.

Each report is one line (its paths), or one line saying why it failed: the measurements are saved
whatever happens here. A run that cannot be loaded fails every report with the loader's one-line reason.
A report whose module cannot be imported (matplotlib missing) is skipped with a line saying so.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from roofline.errors import UsageError
from roofline.model.roof import MEMORY
from roofline.report.results import Results, load_results

__all__ = ["Finished", "finish"]

# Each report drawn from the run, in the order its line is printed: (label, module, function). The claims
# are written by ``write_rows`` from rows evaluated here once, which the verdict tally reuses.
REPORTS = (("roofline.report.plot.plot_results", "roofline.report.plot", "plot_results"),
           ("roofline.report.claims.write_report", "roofline.report.claims.report", "write_rows"),
           ("roofline.report.page.write_page", "roofline.report.page", "write_page"))


@dataclass
class Finished:
    """What :func:`finish` hands back: the run as loaded (or why it could not be) and the summary's lines."""

    directory: Path
    results: Results | None
    error: str | None  # the loader's one-line reason when ``results`` is None
    roof: list[str] = field(default_factory=list)  # the ceilings, sweep dtype, tolerance, warnings
    reports: list[str] = field(default_factory=list)  # one line per report written or failed; the tally

    @property
    def benchmarks(self) -> list[dict]:
        """The run's benchmarks as the summary counts them (``name`` and ``extra_info``); none when the run
        could not be loaded."""
        records = self.results.records if self.results is not None else []
        return [{"name": r.name, "extra_info": r.extra} for r in records]


def finish(run_dir: str | Path, *, draw: bool = True, step: bool = False) -> Finished:
    """Load ``run_dir`` once; the summary's roof lines, and with ``draw`` the plots, ``claims.md`` (with
    its verdict tally) and ``report.html``, and with ``step`` too the step report (``step.md``)."""
    directory = Path(run_dir)
    try:
        results, error = load_results(directory), None
    except UsageError as exc:
        results, error = None, str(exc)
    done = Finished(directory, results, error)
    done.roof = roof_lines(results) if results is not None else [f"ceilings: not judged ({error})"]
    if draw:
        done.reports = draw_reports(results, error)
    if step:
        done.reports += step_report(results, error)
    return done


def roof_lines(results: Results) -> list[str]:
    """The terminal summary's lines about the roof: the ceilings, the sweep dtype and why, the above-roof
    tolerance, and a warning when the ceilings are suspect or a point beats one."""
    from roofline.report.claims import ceiling_lines

    lines = []
    raw = results.ceilings.raw if results.ceilings is not None else None
    if isinstance(raw, dict) and isinstance(raw.get("ceilings"), dict):
        parts = []
        for name, c in raw["ceilings"].items():
            unit, scale = ("GB/s", 1e9) if name == MEMORY else ("GFLOP/s", 1e9)
            parts.append(f"{name} {c['best'] / scale:,.1f} {unit} [{c.get('probe', '')}]")
        lines.append("ceilings (best of before/after the sweep): " + "; ".join(parts))
    return lines + ceiling_lines(results)


def draw_reports(results: Results | None, error: str | None = None) -> list[str]:
    """The roofline plots, ``claims.md`` and ``report.html`` of a loaded run, and the claims' verdict
    tally: one line per output, or per failure (``... FAILED: ...``). ``results`` None: the run could not
    be loaded (``error`` says why), so each report fails with that reason."""
    lines: list[str] = []
    rows = None  # the claims, evaluated once: claims.md and the tally
    for label, module_name, func_name in REPORTS:
        try:
            module = importlib.import_module(module_name)
            func = getattr(module, func_name)
        except (ImportError, AttributeError) as exc:
            lines.append(f"{label} not available ({exc}); skipped")
            continue
        try:
            if results is None:
                raise UsageError(error)
            if func_name == "write_rows":
                spec = module.default_hardware(results)
                rows = module.evaluate(results, spec)
                out = func(rows, spec, results)
            else:
                out = func(results)
        except Exception as exc:  # noqa: BLE001 - the measurements are saved; say what failed
            lines.append(f"{label} FAILED: {type(exc).__name__}: {exc}")
            continue
        paths = out if isinstance(out, (list, tuple)) else [out]
        lines += [f"{label}: {p}" for p in paths]
    try:
        if results is None:
            raise UsageError(error)
        if rows is None:  # claims.md failed or was skipped: the tally evaluates them itself
            from roofline.report.claims.report import default_hardware, evaluate

            rows = evaluate(results, default_hardware(results))
        lines.append("claims: " + verdict_tally(rows))
    except Exception as exc:  # noqa: BLE001 - the tally is a summary of claims.md, which is written
        lines.append(f"claims tally unavailable: {type(exc).__name__}: {exc}")
    return lines


def verdict_tally(rows: list) -> str:
    """``"measured: 3 supported, 1 inconclusive; model: ..."`` for the claims' rows."""
    parts = []
    for column in ("measured", "model"):
        counts: dict[str, int] = {}
        for row in rows:
            verdict = getattr(row, column)
            if verdict is not None:
                counts[verdict.status] = counts.get(verdict.status, 0) + 1
        parts.append(f"{column}: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"))
    return "; ".join(parts) + " (claims.md)"


def step_report(results: Results | None, error: str | None = None) -> list[str]:
    """``step.md``, ``step.json`` and the figure of a ``--model`` run: its lines for the summary."""
    try:
        from roofline.report.step_report import write_step_report

        if results is None:
            raise UsageError(error)
        paths = write_step_report(results)
    except Exception as exc:  # noqa: BLE001 - the measurements are saved; say what failed
        return [f"roofline.report.step_report FAILED: {type(exc).__name__}: {exc}"]
    return [f"roofline.report.step_report: {p}" for p in paths]
