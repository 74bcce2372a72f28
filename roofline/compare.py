"""Run-to-run comparison: is run B faster or slower than run A beyond noise, benchmark by benchmark?

``python -m roofline compare RUN_A RUN_B [--threshold 5%] [--out DIR]``: per benchmark in both runs
(matched by name), the ratio of medians ``median(B) / median(A)`` with a bootstrap 95% interval over
the per-round times (:data:`BOOTSTRAP_RESAMPLES`, fixed seed). ``slower``: the interval lies above
``1 + t``; ``faster``: below ``1 / (1 + t)``; else ``no significant change``; ``not judged`` without
per-round times. Runs on different devices compare roof fractions (each round over its own
``attainable_s``) instead of times. Exit 1 when any benchmark is slower. Also writes ``compare.png``/
``.svg`` (each ratio with its interval, the threshold band shaded).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from roofline.errors import UsageError
from roofline.results import Results, load_results

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261201
CONFIDENCE = 0.95
VERDICTS = ("faster", "slower", "no significant change", "not judged")


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
    """Every benchmark of a run (a results directory or its ``benchmark.json``) by name.

    Validation (and the one-line :class:`UsageError` on a corrupt or foreign file) is
    :func:`roofline.results.load_results`'s; the per-round times are read from the same file.
    """
    return results_timings(load_results(path))


def results_timings(results: Results) -> dict[str, Timings]:
    """:func:`load_timings` of a loaded run. A run read from its ``parts/`` (it never finished) has no
    per-round times here: its benchmarks compare by median only (``not judged``)."""
    by_name: dict[str, dict] = {}
    if results.source.is_file():
        raw = json.loads(results.source.read_text(encoding="utf-8"))
        for i, bench in enumerate(raw["benchmarks"]):  # named as roofline.results names its records
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


def verdict(low: float | None, high: float | None, threshold: float) -> str:
    """``slower`` / ``faster`` when the interval clears the threshold band, else no significant change."""
    if low is None or high is None:
        return "not judged"
    if low > 1 + threshold:
        return "slower"
    if high < 1 / (1 + threshold):
        return "faster"
    return "no significant change"


def compare_runs(a: dict[str, Timings], b: dict[str, Timings], threshold: float = 0.05
                 ) -> tuple[str, list[Comparison]]:
    """``(mode, comparisons)`` for the benchmarks in both runs; ``mode`` is ``"time"`` on one device and
    ``"roof fraction"`` across devices (each round divided by its own run's roofline floor)."""
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
        rows.append(Comparison(name, ratio, low, high, verdict(low, high, threshold), len(ta.rounds_s),
                               len(tb.rounds_s), ta.median_s, tb.median_s))
    return mode, rows


def table(mode: str, rows: list[Comparison], threshold: float, label_a: str, label_b: str) -> str:
    """The terminal report."""
    what = ("ratio of medians B/A (per-round times)" if mode == "time" else
            "different devices: roof fraction A/B (each round over its own device's roofline floor), "
            "not times")
    lines = [f"A: {label_a}", f"B: {label_b}",
             f"compared: {what}; >1 means B is worse; {CONFIDENCE:.0%} bootstrap interval "
             f"({BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}); threshold {threshold:.1%}", ""]
    width = max(len("benchmark"), *(len(r.name) for r in rows))
    lines.append(f"{'benchmark':<{width}}  {'ratio':>7}  {'95% interval':>17}  verdict")
    for r in rows:
        ci = f"[{r.low:.3f}, {r.high:.3f}]" if r.low is not None else "no per-round data"
        lines.append(f"{r.name:<{width}}  {r.ratio:7.3f}  {ci:>17}  {r.verdict}")
    counts = {v: sum(r.verdict == v for r in rows) for v in VERDICTS}
    lines.append("")
    lines.append(f"{len(rows)} benchmarks in both runs: "
                 + ", ".join(f"{n} {v}" for v, n in counts.items() if n))
    if counts["not judged"]:
        lines.append("not judged: a run lacks per-round times (stats.data in benchmark.json) for these; "
                     "the ratio shown is of the recorded medians, without an interval")
    slower = [r.name for r in rows if r.verdict == "slower"]
    if slower:
        lines.append(f"SLOWER beyond {threshold:.1%}: " + ", ".join(slower))
    return "\n".join(lines)


def figure(mode: str, rows: list[Comparison], threshold: float, out_dir: Path) -> list[Path]:
    """Ratios with their intervals, one row per benchmark, on a log axis; PNG and SVG."""
    from matplotlib.ticker import FuncFormatter

    from roofline.plot import save
    from roofline.plot.layout import plt

    colors = {"faster": "tab:green", "slower": "tab:red", "no significant change": "tab:gray",
              "not judged": "tab:orange"}
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


def run(args: argparse.Namespace) -> int:
    """Print the comparison, write ``compare.json`` and the figure; 1 if anything is slower."""
    threshold = parse_threshold(args.threshold)
    a, b = load_timings(args.run_a), load_timings(args.run_b)
    mode, rows = compare_runs(a, b, threshold)
    print(table(mode, rows, threshold, str(args.run_a), str(args.run_b)))
    run_b = Path(args.run_b)
    out = Path(args.out) if args.out else (run_b if run_b.is_dir() else run_b.parent)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"run_a": str(args.run_a), "run_b": str(args.run_b), "mode": mode, "threshold": threshold,
           "confidence": CONFIDENCE, "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED,
           "benchmarks": [asdict(r) for r in rows]}
    (out / "compare.json").write_text(json.dumps(doc, indent=2) + "\n")
    if not args.no_figure:
        for p in figure(mode, rows, threshold, out):
            print(f"figure: {p}", file=sys.stdout)
    return 1 if any(r.verdict == "slower" for r in rows) else 0
