"""One self-contained HTML page per run, or across runs: ``python -m roofline report RUN [RUN...]``.

The page (``report.html``; ``pytest --benchmark`` writes one into every finished run directory) holds an
interactive roofline drawn by a small inline script (:file:`page.js`: SVG, log axes, measured and
datasheet roofs and ridges, each point's predicted position; hover or tap a point for its numbers;
kernels and providers toggled on and off), the fraction of the roof of every benchmark, the speedup
tables and figures, the claims with their verdicts and evidence (the same
:func:`roofline.report.claims.evaluate` rows as ``claims.md``), the step report of a ``--model`` run,
provenance and the ceilings with their probes.
With several runs: each run's points against its own roofs side by side, fractions run by run, and the
compare table of the first two. History (each benchmark's median and roof fraction across runs, in time
order, with commits): of the runs beside a single run in ``results/<device>/`` when there are several
(so the page ``pytest --benchmark`` writes has it), of a device directory's runs (the page shows its
newest), or of the given runs with ``--history``.

No network, no CDN: styles, script and data are inside the file, which works from ``file://``.
Bad input: a missing run or one that cannot be read exits 2 with one line; what can be left out (a run
read from its ``parts/``, runs of different sweeps, a compare table two runs cannot have) is a warning,
printed and listed at the top of the page.
"""

from __future__ import annotations

import argparse
import warnings
from datetime import datetime, timezone
from pathlib import Path

from roofline.errors import UsageError
from roofline.report.page.build import (
    Run,
    ceilings_section,
    claims_section,
    compare_section,
    esc,
    fraction_section,
    history_section,
    provenance_section,
    runs_json,
    speedup_section,
    step_section,
)
from roofline.report.results import Results, ResultsWarning, load_results
from roofline.rundir import BENCHMARK, PARTS

__all__ = ["add_arguments", "build_page", "expand_runs", "load_runs", "make_page", "run", "write_page"]

ASSETS = Path(__file__).parent
PAGE_NAME = "report.html"


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / BENCHMARK).is_file() or (path / PARTS).is_dir())


def device_runs(directory: Path) -> list[Path]:
    """The run directories directly under ``directory`` (``results/<device>/``), by name (= UTC time)."""
    return sorted(p for p in directory.iterdir() if is_run_dir(p)) if directory.is_dir() else []


def by_time(runs: list[Run]) -> list[Run]:
    return sorted(runs, key=lambda r: r.timestamp)


def expand_runs(paths: list[str | Path], history: bool) -> tuple[list[Path], list[Path] | None]:
    """``(runs shown, runs of the history or None)`` for the command line's paths.

    A device directory (runs under it, none in it) shows its newest run and the history of all of them.
    One run alone brings the history of the runs beside it in ``results/<device>/`` when there are
    several (and ``history`` asks for it even when there are not). Several runs: their history when
    ``history``, else none."""
    shown: list[Path] = []
    implied: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{path}: no such run directory or file")
        if path.is_dir() and not is_run_dir(path) and device_runs(path):
            implied += device_runs(path)
            shown.append(device_runs(path)[-1])
        else:
            shown.append(path)
    shown = list(dict.fromkeys(shown))
    if implied:
        return shown, list(dict.fromkeys(implied))
    if len(shown) == 1 and is_run_dir(shown[0]):
        siblings = device_runs(shown[0].parent)
        return shown, (siblings if len(siblings) >= 2 or history else None)
    return shown, (shown if history else None)


def loaded_path(results: Results) -> Path:
    """The path a loaded run was loaded from: its directory, or the benchmark JSON file given alone."""
    return results.directory if results.source.name in (BENCHMARK, PARTS) else results.source


def load_runs(paths: list[Path], prefix: str = "run", dropped: list[str] | None = None,
              loaded: Results | None = None) -> list[Run]:
    """Load every run (``run0``, ``run1``... in the given order). A run that cannot be read raises, or,
    given a ``dropped`` list (runs found beside the one asked for), is left out with a line there.
    ``loaded``: a run already loaded, taken as it is for its path (its directory) instead of loaded again."""
    runs: list[Run] = []
    for path in paths:
        if loaded is not None and Path(path) == loaded_path(loaded):
            runs.append(Run(f"{prefix}{len(runs)}", str(path), loaded, list(loaded.warnings)))
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResultsWarning)
            try:
                results = load_results(path)
            except UsageError as exc:
                if dropped is None:
                    raise
                dropped.append(f"history: {exc.args[0]}; that run is left out")
                continue
        runs.append(Run(f"{prefix}{len(runs)}", str(path), results, [str(w.message) for w in caught]))
    return runs


def _check_sweeps(runs: list[Run]) -> list[str]:
    sweeps = {run.sweep for run in runs}
    if len(sweeps) < 2:
        return []
    names = [{r.name for r in run.results.records} for run in runs]
    common = set.intersection(*names)
    return [f"runs of different sweeps ({', '.join(f'{run.key} {run.sweep}' for run in runs)}): "
            f"{len(common)} benchmarks in all of them; the rest show in their own run only"]


def build_page(runs: list[Run], history: list[Run] | None = None, notes: list[str] | None = None) -> str:
    """The HTML of the page for ``runs`` (each run's roofline, fractions, claims...; the compare table of
    the first two), with the history of ``history`` (any order; shown oldest first) when given.
    ``notes``: warnings to show beside the page's own."""
    if not runs:
        raise UsageError("no run to report")
    notes = list(notes or []) + _check_sweeps(runs)
    sections: list[tuple[str, str, str]] = []  # (id, title, html)
    for run in runs:
        if run.results.judged is None:
            notes.append(f"{run.key}: no ceilings.json and no known hardware preset: no roofline and no "
                         "fractions")
    sections.append(("roofline", "Roofline", '<div id="controls"></div><div id="panels"></div>'
                     '<div id="tip" role="tooltip" hidden></div>'
                     "<p class='note'>Filled markers: measured (median, p20-p80 bar); hollow circles: "
                     "the cost model's predicted position on the roof, joined to its measured point. Solid "
                     "roofs: measured ceilings; dashed: datasheet; diamonds: ridges. Each run against its "
                     "own roofs. Hover or tap a point for its numbers; the boxes above hide kernels and "
                     "providers.</p>"))
    sections.append(("fractions", "Fraction of the roof", fraction_section(runs)))
    if len(runs) >= 2:
        compare = compare_section(runs[0], runs[1])
        if compare:
            sections.append(("compare", "Compare: run0 vs run1", compare))
    if history is not None:
        if len(history) >= 2:
            sections.append(("history", "History", history_section(by_time(history))))
        else:
            notes.append(f"history: {len(history)} run(s) found; it needs two or more")
        notes += [w for run in history for w in run.warnings if run.path not in {r.path for r in runs}]
    several = len(runs) > 1
    for run in runs:
        tag = f" ({run.key})" if several else ""
        sections.append((f"speedups-{run.key}", f"Speedups{tag}", speedup_section(run)))
        sections.append((f"claims-{run.key}", f"Claims{tag}", claims_section(run)))
        step = step_section(run)
        if step:
            sections.append((f"step-{run.key}", f"Step report{tag}", step))
    for run in runs:
        body = provenance_section(run) + "<h3>Ceilings and their probes</h3>" + ceilings_section(run)
        title = f"Provenance ({run.key})" if several else "Provenance"
        sections.append((f"provenance-{run.key}", title, body))
    notes = [w for run in runs for w in run.warnings] + notes
    for note in notes:
        warnings.warn(note, ResultsWarning, stacklevel=2)
    title = ("ridgebench report: " + runs[0].label if len(runs) == 1
             else f"ridgebench report: {len(runs)} runs")
    nav = " · ".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t, _ in sections)
    runs_list = "".join(f"<li><b>{esc(run.key)}</b>: {esc(run.label)} <span class='note'>({esc(run.path)})"
                        "</span></li>" for run in runs)
    warn = ("<ul class='warnings'>" + "".join(f"<li>warning: {esc(n)}</li>" for n in notes) + "</ul>"
            if notes else "")
    cpu = any(run.results.device_kind == "cpu" for run in runs)
    body = "".join(f'<section id="{sid}"><h2>{esc(t)}</h2>{h}</section>' for sid, t, h in sections)
    made = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{esc(title)}</title>"
            f"<style>{(ASSETS / 'page.css').read_text()}</style></head><body>"
            f"<h1>{esc(title)}</h1><ul class='runs'>{runs_list}</ul>"
            + ("<p class='note'>CPU run: measured verdicts say what this CPU does, judged against its own "
               "measured roof; GPU numbers come only from the model column (predicted).</p>" if cpu else "")
            + f"{warn}<nav>{nav}</nav>{body}"
            f"<footer>Made by <code>python -m roofline report</code> at {made}. One file, no network: "
            "open it in a browser or send it as it is.</footer>"
            f'<script type="application/json" id="data">{runs_json(runs)}</script>'
            f"<script>{(ASSETS / 'page.js').read_text()}</script></body></html>\n")


def make_page(paths: list[str | Path], history: bool = False, loaded: Results | None = None
              ) -> tuple[str, list[Run]]:
    """The page for command-line ``paths`` (see :func:`expand_runs`) and the runs it shows; ``loaded``:
    one of them already loaded (:func:`load_runs`)."""
    shown, past = expand_runs(paths, history)
    runs = load_runs(shown, loaded=loaded)
    by_path = {run.path: run for run in runs}
    old, dropped = None, []
    if past is not None:
        # runs found beside the one asked for may be broken; runs named on the command line may not
        rest = load_runs([p for p in past if str(p) not in by_path], prefix="h",
                         dropped=dropped if len(paths) == 1 else None)
        if len(paths) == 1:  # found, not named: only the runs of the shown run's device
            device = runs[-1].results.device
            other = [run for run in rest if run.results.device != device]
            if other:
                dropped.append(f"history: {len(other)} run(s) beside it of another device left out "
                               f"({', '.join(sorted({run.results.device for run in other}))})")
            rest = [run for run in rest if run.results.device == device]
        loaded = {run.path: run for run in rest} | by_path
        old = [loaded[str(p)] for p in past if str(p) in loaded]
        if len(old) < 2 and not history:
            old = None  # found, not asked for: no history section and nothing to say about it
    return build_page(runs, old, dropped), runs


def write_page(run_dir: str | Path | Results, out: str | Path | None = None) -> Path:
    """Write ``report.html`` into a run directory (what ``pytest --benchmark`` calls, with the run already
    loaded), with the history of the runs beside it when ``results/<device>/`` holds several; returns its
    path."""
    loaded = run_dir if isinstance(run_dir, Results) else None
    page, runs = make_page([loaded_path(loaded) if loaded is not None else run_dir], loaded=loaded)
    path = Path(out) if out is not None else runs[0].results.directory / PAGE_NAME
    path.write_text(page, encoding="utf-8")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="results directories (or benchmark JSON files); a device directory "
                             "results/<device>/ stands for its runs and shows their history")
    parser.add_argument("-o", "--out", help="the HTML file to write (default: report.html in the run "
                                            "directory for one run, else ./ridgebench-report.html)")
    parser.add_argument("--history", action="store_true",
                        help="each benchmark's median and roof fraction across the given runs, in time "
                             "order (one RUN alone: the runs beside it under results/<device>/, which it "
                             "shows without --history too when there are several)")


def run(args: argparse.Namespace) -> int:
    page, runs = make_page(args.runs, args.history)
    if args.out:
        out = Path(args.out)
    elif len(runs) == 1:
        out = runs[0].results.directory / PAGE_NAME
    else:
        out = Path("ridgebench-report.html")
    if not out.parent.is_dir():
        raise UsageError(f"-o {out}: no such directory {out.parent}")
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"-o {out}: cannot write ({exc.strerror or exc})") from None
    print(f"{out} ({out.stat().st_size / 1024:.0f} KiB, {len(runs)} run(s); open it in a browser)")
    return 0
