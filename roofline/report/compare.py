"""Run-to-run comparison: is run B faster or slower than run A beyond noise, benchmark by benchmark?

``python -m roofline compare RUN_A RUN_B [--threshold 5%] [--out DIR] [--allow-missing] [--strict]``:
per benchmark in both runs (matched by name), the ratio of medians ``median(B) / median(A)`` with a
bootstrap 95% interval over the per-round times (:data:`BOOTSTRAP_RESAMPLES`, fixed seed): the noise
*within* each run. Noise *between* runs (another process on the machine, a different clock, a cold
page cache) is not in those rounds, so two more things enter the verdict:

- **run-to-run noise**, estimated from the runs themselves: the spread of the log ratios across the
  judged benchmarks (1.4826 x their median absolute deviation, a robust standard deviation that a few
  real regressions do not move; a shift common to every benchmark is not spread). The threshold ``t``
  used is ``max(--threshold, exp(NOISE_Z * spread) - 1)``: a benchmark must move further than the
  others scatter before it is called slower. Fewer than :data:`MIN_BENCHMARKS_FOR_NOISE` judged
  benchmarks: no estimate, the threshold as given (and the output says so).
- **the machine's state**: a run whose ``ceilings.json`` is suspect (a loaded machine, a wide spread),
  or two runs on one device whose measured ceilings differ beyond their own noise, make a warning
  that the machine was too noisy to tell, and a slower verdict then does not fail the comparison
  (exit 0) unless ``--strict``.

``slower``: the interval lies above ``1 + t``; ``faster``: below ``1 / (1 + t)``; else ``no significant
change``; ``too few rounds`` with fewer than :data:`MIN_ROUNDS` rounds in either run (a bootstrap of a
median over 2-4 values is not an interval: at 2 rounds it is [min B / max A, max B / min A]);
``not judged`` without per-round times. Benchmarks in only one run are listed; one that vanished
from B (it failed, or was skipped) fails the comparison unless ``--allow-missing``. Runs on different
devices compare roof fractions (each round over its own ``attainable_s``) instead of times. A run
killed before its end is read from its ``parts/`` records, as plot and claims read it. Exit 1 when a
benchmark is slower (on a quiet machine) or vanished. Also writes ``compare.png``/``.svg``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from roofline.errors import UsageError
from roofline.model.roof import MEMORY, assess_ceilings
from roofline.report.results import Results, load_results
from roofline.rundir import PARTS, unfinished_benchmarks

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261201
CONFIDENCE = 0.95
MIN_ROUNDS = 5  # fewer rounds in either run: "too few rounds" (false-slower rates: tests/test_compare.py)
NOISE_Z = 3.0  # a benchmark must move beyond 3 robust standard deviations of the runs' scatter
MIN_BENCHMARKS_FOR_NOISE = 5  # judged benchmarks needed to estimate run-to-run noise from the scatter
MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation of a normal distribution
VERDICTS = ("faster", "slower", "no significant change", "too few rounds", "not judged")


@dataclass(frozen=True)
class Timings:
    """One benchmark of one run: per-round seconds (may be empty), the recorded median and floor."""

    name: str
    device: str
    rounds_s: tuple[float, ...]
    median_s: float
    attainable_s: float | None


@dataclass(frozen=True)
class Comparison:
    """One benchmark in both runs. ``ratio`` > 1 means B is slower (or further from its roof)."""

    name: str
    ratio: float
    low: float | None
    high: float | None
    verdict: str
    rounds_a: int
    rounds_b: int
    median_a_s: float
    median_b_s: float


def parse_threshold(text: str) -> float:
    """``"5%"`` -> 0.05; ``"0.05"`` -> 0.05. :class:`UsageError` for anything else (or <= 0)."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(f"--threshold: expected a percentage like 5% or a fraction like 0.05, "
                         f"got {text!r}") from None
    if not math.isfinite(value) or value <= 0 or (not raw.endswith("%") and value >= 1):
        raise UsageError(f"--threshold: expected a percentage above 0 (5%) or a fraction in (0, 1), "
                         f"got {text!r}")
    return value


def _rounds(bench: dict, where: str) -> tuple[float, ...]:
    data = (bench.get("stats") or {}).get("data") if isinstance(bench.get("stats"), dict) else None
    if data is None:
        data = (bench.get("extra_info") or {}).get("rounds_s")
    if data is None:
        return ()
    if not isinstance(data, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for v in data):
        raise UsageError(f"{where}: per-round times (stats.data) must be a list of positive numbers")
    return tuple(float(v) for v in data)


def load_timings(path: str | Path) -> dict[str, Timings]:
    """Every benchmark of a run (a results directory, its ``benchmark.json``, or the ``parts/`` of a run
    killed before its end) by name."""
    return load_run(path)[0]


def load_run(path: str | Path) -> tuple[dict[str, Timings], Results]:
    """``(timings by name, the loaded run)``. Validation (and the one-line :class:`UsageError` on a
    corrupt or foreign file) is :func:`roofline.report.results.load_results`'s; the per-round times are read
    from the same file (or the same ``parts/*/records.jsonl``)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what was left out is in results.warnings, printed by run()
        results = load_results(path)
    return results_timings(results), results


def results_timings(results: Results) -> dict[str, Timings]:
    """The timings of a loaded run by name: from its ``benchmark.json``, or from the
    ``parts/*/records.jsonl`` of a run that never finished."""
    if results.source.name == PARTS:
        raw = unfinished_benchmarks(results.directory, []) or {"benchmarks": []}
    else:
        raw = json.loads(results.source.read_text(encoding="utf-8"))
    by_name: dict[str, dict] = {}
    for i, bench in enumerate(raw["benchmarks"]):  # named as roofline.report.results names its records
        name = str(bench.get("name") or bench.get("fullname") or f"benchmarks[{i}]")
        if name in by_name:
            raise UsageError(f"{results.source}: benchmark {name!r} appears twice in one run")
        by_name[name] = bench
    out: dict[str, Timings] = {}
    for record in results.records:
        where = f"{results.source}: benchmark {record.name!r}"
        bench = by_name.get(record.name, {})
        att = record.extra.get("attainable_s")
        att = float(att) if isinstance(att, (int, float)) and not isinstance(att, bool) and att > 0 else None
        out[record.name] = Timings(record.name, record.device, _rounds(bench, where), record.median_s, att)
    return out


def bootstrap_ratio(a: np.ndarray, b: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES,
                    seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """``(median(b)/median(a), low, high)``: the percentile bootstrap interval of the ratio of medians,
    resampling each sample with replacement; deterministic for a given ``seed``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or b.ndim != 1 or a.size < 2 or b.size < 2:
        raise ValueError(f"a, b: expected two 1-D samples of at least 2 rounds, got sizes {a.size}, {b.size}")
    rng = np.random.default_rng(seed)
    med_a = np.median(a[rng.integers(0, a.size, (resamples, a.size))], axis=1)
    med_b = np.median(b[rng.integers(0, b.size, (resamples, b.size))], axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(med_b / med_a, [tail, 100 - tail])
    return float(np.median(b) / np.median(a)), float(low), float(high)


def verdict(low: float | None, high: float | None, threshold: float, rounds: int | None = None) -> str:
    """``slower`` / ``faster`` when the interval clears the threshold band, else no significant change;
    ``too few rounds`` when ``rounds`` (the fewer of the two runs') is below :data:`MIN_ROUNDS`."""
    if low is None or high is None:
        return "not judged"
    if rounds is not None and rounds < MIN_ROUNDS:
        return "too few rounds"
    if low > 1 + threshold:
        return "slower"
    if high < 1 / (1 + threshold):
        return "faster"
    return "no significant change"


@dataclass(frozen=True)
class Report:
    """Two runs compared: ``rows`` for the benchmarks in both, the names only in one, and the
    run-to-run noise (``spread``: robust standard deviation of the log ratios; None when too few
    benchmarks were judged) with the ``threshold`` it made (>= the one asked for)."""

    mode: str
    rows: list[Comparison]
    only_a: list[str]
    only_b: list[str]
    asked_threshold: float
    threshold: float
    spread: float | None
    judged: int


def run_to_run_spread(ratios: list[float]) -> float | None:
    """Robust standard deviation of ``log(ratio)`` across benchmarks (1.4826 x median absolute
    deviation from their median), or None with fewer than :data:`MIN_BENCHMARKS_FOR_NOISE`."""
    if len(ratios) < MIN_BENCHMARKS_FOR_NOISE:
        return None
    logs = np.log(np.asarray(ratios, dtype=float))
    return float(MAD_TO_SIGMA * np.median(np.abs(logs - np.median(logs))))


def judge(a: dict[str, Timings], b: dict[str, Timings], threshold: float = 0.05) -> Report:
    """Every benchmark of two runs judged (module docstring): the intervals, the run-to-run noise and
    the threshold it makes, the verdicts; names in only one run listed."""
    mode, rows = _intervals(a, b)
    judged = [r for r in rows if r.low is not None and min(r.rounds_a, r.rounds_b) >= MIN_ROUNDS]
    spread = run_to_run_spread([r.ratio for r in judged])
    used = threshold if spread is None else max(threshold, math.exp(NOISE_Z * spread) - 1)
    rows = [dataclasses.replace(r, verdict=verdict(r.low, r.high, used, min(r.rounds_a, r.rounds_b)))
            for r in rows]
    return Report(mode, rows, sorted(set(a) - set(b)), sorted(set(b) - set(a)), threshold, used, spread,
                  len(judged))


def compare_runs(a: dict[str, Timings], b: dict[str, Timings], threshold: float = 0.05
                 ) -> tuple[str, list[Comparison]]:
    """``(mode, comparisons)`` for the benchmarks in both runs (:func:`judge`'s)."""
    report = judge(a, b, threshold)
    return report.mode, report.rows


def _intervals(a: dict[str, Timings], b: dict[str, Timings]) -> tuple[str, list[Comparison]]:
    """``(mode, comparisons without verdicts)`` for the benchmarks in both runs; ``mode`` is ``"time"``
    on one device and ``"roof fraction"`` across devices (each round divided by its own run's roofline
    floor)."""
    common = sorted(set(a) & set(b))
    if not common:
        raise UsageError("the two runs have no benchmark in common (compare runs of the same sweep)")
    devices = {t.device for t in a.values()} | {t.device for t in b.values()}
    mode = "time" if len(devices) == 1 else "roof fraction"
    rows = []
    for name in common:
        ta, tb = a[name], b[name]
        scale_a = scale_b = 1.0
        if mode == "roof fraction":
            if ta.attainable_s is None or tb.attainable_s is None:
                raise UsageError(f"benchmark {name!r}: no attainable_s recorded; runs on different devices "
                                 "are compared by roof fraction, which needs it")
            scale_a, scale_b = ta.attainable_s, tb.attainable_s
        if len(ta.rounds_s) >= 2 and len(tb.rounds_s) >= 2:
            ratio, low, high = bootstrap_ratio(np.array(ta.rounds_s) / scale_a,
                                               np.array(tb.rounds_s) / scale_b)
        else:
            ratio, low, high = (tb.median_s / scale_b) / (ta.median_s / scale_a), None, None
        rows.append(Comparison(name, ratio, low, high, "", len(ta.rounds_s), len(tb.rounds_s), ta.median_s,
                               tb.median_s))
    return mode, rows


def machine_warnings(run_a: Results, run_b: Results) -> list[str]:
    """Why the machine may have been too noisy to tell: a run's suspect ceilings, or (one device) measured
    ceilings that differ between the runs beyond the larger of their own tolerances
    (:func:`roofline.model.roof.assess_ceilings`)."""
    out: list[str] = []
    checks = {}
    for label, run in (("A", run_a), ("B", run_b)):
        raw = run.ceilings.raw if run.ceilings is not None else None
        checks[label] = check = assess_ceilings(raw)
        if check.suspect:
            out.append(f"run {label}'s ceilings are suspect: " + "; ".join(check.reasons))
    ca, cb = run_a.ceilings, run_b.ceilings
    if ca is None or cb is None or ca.measured is None or cb.measured is None or ca.device != cb.device:
        return out
    values = [(MEMORY, ca.measured.mem_bandwidth, cb.measured.mem_bandwidth, "B/s")]
    values += [(k, v, cb.measured.peak_flops[k], "FLOP/s") for k, v in ca.measured.peak_flops.items()
               if k in cb.measured.peak_flops]
    for name, va, vb, unit in values:
        if va > 0 and vb > 0:
            apart = max(va, vb) / min(va, vb) - 1
            noise = max(checks["A"].tolerance_for(name), checks["B"].tolerance_for(name))
            if apart > noise:
                out.append(f"{name} ceiling: {va:.4g} {unit} in A vs {vb:.4g} in B ({apart + 1:.2f}x apart, "
                           f"beyond the runs' own noise of {noise:.0%})")
    return out


def spell_threshold(t: float) -> str:
    """``5.0%``, or ``x3.2`` once the band is wider than a doubling (a percentage would mislead)."""
    return f"{t:.1%}" if t < 1 else f"x{1 + t:.3g}"


def table(report: Report, label_a: str, label_b: str, warnings: list[str] = ()) -> str:
    """The terminal report."""
    mode, rows, threshold = report.mode, report.rows, report.threshold
    what = ("ratio of medians B/A (per-round times)" if mode == "time" else
            "different devices: roof fraction A/B (each round over its own device's roofline floor), "
            "not times")
    if report.spread is None:
        noise = (f"run-to-run noise not estimated (fewer than {MIN_BENCHMARKS_FOR_NOISE} benchmarks with "
                 f">= {MIN_ROUNDS} rounds); threshold {spell_threshold(threshold)}")
    else:
        noise = (f"run-to-run noise: log ratios scatter {report.spread:.3f} (robust sd over {report.judged} "
                 f"benchmarks), so threshold {spell_threshold(threshold)} "
                 f"(asked: {report.asked_threshold:.1%})")
    lines = [f"A: {label_a}", f"B: {label_b}",
             f"compared: {what}; >1 means B is worse; {CONFIDENCE:.0%} bootstrap interval "
             f"({BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}); {noise}", ""]
    width = max(len("benchmark"), *(len(r.name) for r in rows))
    lines.append(f"{'benchmark':<{width}}  {'ratio':>7}  {'95% interval':>17}  verdict")
    for r in rows:
        ci = f"[{r.low:.3f}, {r.high:.3f}]" if r.low is not None else "no per-round data"
        lines.append(f"{r.name:<{width}}  {r.ratio:7.3f}  {ci:>17}  {r.verdict}")
    counts = {v: sum(r.verdict == v for r in rows) for v in VERDICTS}
    lines.append("")
    lines.append(f"{len(rows)} benchmarks in both runs: "
                 + ", ".join(f"{n} {v}" for v, n in counts.items() if n))
    if counts["too few rounds"]:
        lines.append(f"too few rounds: fewer than {MIN_ROUNDS} per-round times in a run; not judged")
    if counts["not judged"]:
        lines.append("not judged: a run lacks per-round times (stats.data in benchmark.json) for these; "
                     "the ratio shown is of the recorded medians, without an interval")
    if report.only_a:
        lines.append(f"only in A ({len(report.only_a)}; gone from B: failed or skipped there?): "
                     + ", ".join(report.only_a))
    if report.only_b:
        lines.append(f"only in B ({len(report.only_b)}, new): " + ", ".join(report.only_b))
    for w in warnings:
        lines.append(f"WARNING: {w}")
    if warnings:
        lines.append("WARNING: the machine was too noisy to tell: a slower verdict does not fail this "
                     "comparison (--strict to fail anyway); rerun both on a quiet machine")
    slower = [r.name for r in rows if r.verdict == "slower"]
    if slower:
        lines.append(f"SLOWER beyond {spell_threshold(threshold)}: " + ", ".join(slower))
    return "\n".join(lines)


def figure(mode: str, rows: list[Comparison], threshold: float, out_dir: Path) -> list[Path]:
    """Ratios with their intervals, one row per benchmark, on a log axis; PNG and SVG."""
    from matplotlib.ticker import FuncFormatter

    from roofline.report.plot import save
    from roofline.report.plot.render import plt

    colors = {"faster": "tab:green", "slower": "tab:red", "no significant change": "tab:gray",
              "too few rounds": "tab:olive", "not judged": "tab:orange"}
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.28 * len(rows)))
    ys = np.arange(len(rows))[::-1]
    for y, r in zip(ys, rows, strict=True):
        if r.low is not None:
            ax.errorbar(r.ratio, y, xerr=[[r.ratio - r.low], [r.high - r.ratio]], fmt="o",
                        color=colors[r.verdict], capsize=3)
        else:
            ax.plot(r.ratio, y, "o", mfc="none", color=colors[r.verdict])
    ax.axvspan(1 / (1 + threshold), 1 + threshold, color="0.9", zorder=0,
               label=f"threshold band ({threshold:.0%})")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ratio_ticks = FuncFormatter(lambda v, _: f"{v:.3g}")
    ax.xaxis.set_major_formatter(ratio_ticks)
    ax.xaxis.set_minor_formatter(ratio_ticks)
    ax.tick_params(axis="x", which="both", labelsize=7)
    ax.set_yticks(ys, [r.name for r in rows], fontsize=7)
    ax.set_xlabel("median ratio B/A (>1: B slower)" if mode == "time"
                  else "roof-fraction ratio A/B across devices (>1: B further from its roof)")
    ax.set_title(f"run comparison ({mode}): ratio with {CONFIDENCE:.0%} bootstrap interval", fontsize=9)
    for v, c in colors.items():
        if any(r.verdict == v for r in rows):
            ax.plot([], [], "o", color=c, label=v)
    ax.legend(fontsize=7, loc="lower right")
    fig.subplots_adjust(left=0.45, right=0.98, top=1 - 0.5 / fig.get_figheight(),
                        bottom=0.6 / fig.get_figheight())
    return save(fig, out_dir / "compare")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", help="the reference run: a results directory or its benchmark.json")
    parser.add_argument("run_b", help="the run to judge against it")
    parser.add_argument("--threshold", default="5%",
                        help="slower/faster only beyond this change, e.g. 5%% or 0.05 (default 5%%)")
    parser.add_argument("--out", default=None, help="where compare.json and the figure go (default: "
                                                     "RUN_B's directory)")
    parser.add_argument("--no-figure", action="store_true", help="do not draw the figure")
    parser.add_argument("--allow-missing", action="store_true",
                        help="a benchmark of RUN_A missing from RUN_B does not fail the comparison")
    parser.add_argument("--strict", action="store_true",
                        help="a slower benchmark fails the comparison even when the machine was noisy "
                             "(suspect ceilings, or ceilings that differ between the runs)")


def run(args: argparse.Namespace) -> int:
    """Print the comparison, write ``compare.json`` and the figure; 1 if a benchmark is slower (unless
    the machine was too noisy to tell and not ``--strict``) or vanished (unless ``--allow-missing``)."""
    threshold = parse_threshold(args.threshold)
    (a, run_a), (b, run_b) = load_run(args.run_a), load_run(args.run_b)
    report = judge(a, b, threshold)
    warnings = machine_warnings(run_a, run_b)
    for label, loaded in (("A", run_a), ("B", run_b)):
        for note in loaded.warnings:
            print(f"note (run {label}): {note}", file=sys.stderr)
    print(table(report, str(args.run_a), str(args.run_b), warnings))
    b_path = Path(args.run_b)
    out = Path(args.out) if args.out else (b_path if b_path.is_dir() else b_path.parent)
    out.mkdir(parents=True, exist_ok=True)
    slower = any(r.verdict == "slower" for r in report.rows)
    failed = (slower and (args.strict or not warnings)) or (report.only_a and not args.allow_missing)
    status = 1 if failed else 0
    doc = {"run_a": str(args.run_a), "run_b": str(args.run_b), "mode": report.mode,
           "threshold": report.threshold, "asked_threshold": report.asked_threshold,
           "run_to_run_spread": report.spread, "noise_z": NOISE_Z, "min_rounds": MIN_ROUNDS,
           "confidence": CONFIDENCE, "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED,
           "only_in_a": report.only_a, "only_in_b": report.only_b, "machine_warnings": warnings,
           "exit_status": status, "benchmarks": [asdict(r) for r in report.rows]}
    (out / "compare.json").write_text(json.dumps(doc, indent=2) + "\n")
    if not args.no_figure:
        for p in figure(report.mode, report.rows, report.threshold, out):
            print(f"figure: {p}", file=sys.stdout)
    return status
