"""The claims report: every declared claim's two verdicts and ``claims.md``.

``python -m roofline claims [RESULTS] [--hardware PRESET] [--dtype DTYPE]`` prints a terminal table and,
given a results directory, writes ``claims.md`` beside the results; :func:`write_report` does the same
for the benchmark suite. **model**: the checks on a hardware preset's datasheet ceilings; **measured**:
the run's benchmarks against the run's measured ceilings (on a CPU, the CPU's roof). With suspect
ceilings every roof-dependent measured verdict is *inconclusive (ceilings suspect)*. A check that raises
:class:`~roofline.model.verdict.CannotJudge` is inconclusive with its reason; any other exception fails the
run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from roofline.errors import UsageError
from roofline.model.cost import dtype_name
from roofline.model.hardware import DEFAULT_HARDWARE, MIG_NOTE, HardwareSpec, get_preset, is_mig
from roofline.model.roof import RunRoofs
from roofline.model.verdict import INCONCLUSIVE, MEMORY_EVIDENCE, CannotJudge, Verdict, status_label, withhold
from roofline.report.claims.registry import DECLARED, Claim
from roofline.report.results import Results, as_results, load_results

DEFAULT_DTYPE = "bfloat16"
# The dtypes the kernels and the model checks handle (float activations; int8 and float64 are known to
# the cost model for byte counts only).
CLAIM_DTYPES = ("float16", "bfloat16", "float32")


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    model: Verdict | None  # None: the claim is about measurements only
    measured: Verdict | None  # None: no results given, or no benchmark measures this claim


def judge(check, *args) -> Verdict:
    """Run one check. :class:`CannotJudge` (the check's documented "this cannot decide it") is an
    inconclusive verdict with its reason; any other exception is a bug and propagates."""
    try:
        return check(*args)
    except CannotJudge as exc:
        return Verdict(INCONCLUSIVE, f"cannot judge: {exc}")


def default_hardware(results: Results | None) -> HardwareSpec:
    """The model column's spec: the run's datasheet spec when it has one, else the A100 80GB SXM4."""
    if results is not None and results.ceilings is not None and results.ceilings.datasheet is not None:
        return results.ceilings.datasheet
    return get_preset(DEFAULT_HARDWARE)


def _withhold(verdict: Verdict, run: RunRoofs, claim: Claim) -> Verdict:
    """A roof-dependent verdict on suspect ceilings: inconclusive (:func:`roofline.model.verdict.withhold`).
    ``no-point-above-roof`` stays refuted when the only suspicion is the ceilings its points beat."""
    if not claim.roof_dependent:
        return verdict
    if claim.id == "no-point-above-roof" and not run.check.suspect:
        return verdict  # beaten ceilings: the verdict itself names them
    return withhold(verdict, run.suspect, run.reasons)


def evaluate(results: Results | None = None, hardware: HardwareSpec | None = None,
             dtype: str = DEFAULT_DTYPE, claims: tuple[Claim, ...] | None = None) -> list[ClaimResult]:
    """Evaluate ``claims`` (default: every declared one) on the model (``hardware``, default
    :func:`default_hardware`) and, when ``results`` are given, on the measurements against the run's roof
    (:attr:`Results.judged`); with suspect ceilings every roof-dependent measured verdict is
    *inconclusive (ceilings suspect)*."""
    spec = hardware or default_hardware(results)
    dtype = dtype_name(dtype)
    roof = results.roof if results is not None else None
    run = results.judged if results is not None else None
    out = []
    for claim in DECLARED.values() if claims is None else claims:
        model = judge(claim.model_check, spec, dtype) if claim.model_check else None
        measured = None
        if results is not None and claim.measured_check is not None:
            measured = (_withhold(judge(claim.measured_check, results, roof), run, claim) if roof is not None
                        else Verdict("inconclusive", "the run has no ceilings.json and no known hardware: "
                                                     "no roof"))
        out.append(ClaimResult(claim, model, measured))
    return out


def status_text(v: Verdict | None) -> str:
    """A verdict as the report's tables (and the page) show it:
    :func:`roofline.model.verdict.status_label`."""
    return status_label(v)


def ceiling_lines(results: Results) -> list[str]:
    """What the report says about the run's roof: MIG, dtype choice, tolerance, warnings (Markdown-free)."""
    run = results.judged
    lines = []
    if is_mig(results.device):
        lines.append(f"{results.device}: {MIG_NOTE}.")
    choice = results.provenance.get("sweep_dtype") if isinstance(results.provenance, dict) else None
    if isinstance(choice, dict) and choice.get("dtype"):
        lines.append(f"Sweep dtype {choice['dtype']}: {choice.get('reason', '')}.")
    if run is None:
        return lines
    lines.append(f"Above-roof tolerance: {run.tolerance_text()} ({run.check.method}).")
    lines += [f"{n}." for n in run.notes]
    if run.suspect:
        lines.append("WARNING, CEILINGS SUSPECT: " + "; ".join(run.reasons) + ". Every measured verdict that "
                     "depends on the roof is inconclusive (ceilings suspect).")
    for a in run.above:
        lines.append("ABOVE ROOF: " + a.describe(run.spec))
    return lines


def launch_lines(results: Results) -> list[str]:
    """What the run says about host launch cost: on a GPU, the points whose device time is below their
    host launch time per call (launch-bound); on a CPU, that no launch cost is measured apart."""
    if results.device_kind == "cpu":
        return ["Host launch cost: n/a on the CPU (the call runs on the host); a point moving under "
                f"{MEMORY_EVIDENCE:.0%} of the measured bandwidth is labelled launch-bound in the verdicts."]
    timed = [r for r in results.records if r.host_launch_s is not None]
    if not timed:
        return []
    bound = [r for r in timed if r.launch_bound]
    return [f"Launch-bound points (device time below the host's launch time per call; a loop that launches "
            f"them without CUDA graphs cannot reach their roof): {len(bound)} of {len(timed)}"
            + (": " + ", ".join(f"{r.name} ({r.median_s * 1e6:.3g} < {r.host_launch_s * 1e6:.3g} us)"
                                for r in bound[:8]) + (" ..." if len(bound) > 8 else "") if bound else "")]


def terminal_table(rows: list[ClaimResult], spec_name: str, width: int = 110) -> str:
    """A fixed-width table: id, model verdict, measured verdict, and the model's summary, clipped."""
    head = f"{'claim':36} {'model':12} {'measured':12} numbers (model on {spec_name})"
    lines = [head, "-" * min(width, len(head) + 20)]
    for r in rows:
        summary = (r.model or r.measured).summary if (r.model or r.measured) else ""
        text = f"{r.claim.id:36} {status_text(r.model):12} {status_text(r.measured):12} {summary}"
        lines.append(text if len(text) <= width else text[: width - 3] + "...")
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_report(rows: list[ClaimResult], spec: HardwareSpec, results: Results | None, dtype: str) -> str:
    """The Markdown report: context, a summary table, then every claim with its numbers."""
    out = ["# ridgebench claims report", ""]
    out.append(f"Model verdicts: the cost model and transformer accounting on **{spec.name}** "
               f"({spec.source} ceilings: {spec.mem_bandwidth / 1e9:,.0f} GB/s, "
               + ", ".join(f"{c} {v / 1e12:.3g} TFLOP/s" for c, v in spec.peak_flops.items())
               + f"), dtype {dtype}. Model verdicts are predictions, not measurements.")
    if results is not None:
        roof = results.roof
        out.append("")
        out.append(f"Measured verdicts: {len(results.records)} benchmarks from `{results.source}` on "
                   f"**{results.device}** ({results.device_kind}), judged against "
                   + (f"its measured ceilings ({roof.mem_bandwidth / 1e9:,.1f} GB/s; "
                      + ", ".join(f"{c} {v / 1e9:,.1f} GFLOP/s" for c, v in roof.peak_flops.items()) + ")"
                      if roof is not None and roof.source == "measured" else
                      f"the {roof.name} datasheet" if roof is not None else "no roof (no ceilings.json)")
                   + (f"; method: {results.ceilings.method}" if results.ceilings and results.ceilings.method
                      else "")
                   + ".")
        for line in ceiling_lines(results):
            out += ["", (f"> **{line}**" if line.startswith(("WARNING", "ABOVE")) else line)]
        for line in launch_lines(results):
            out += ["", line]
        if results.device_kind == "cpu":
            out.append("")
            out.append("> **This run is on a CPU.** Its measured verdicts are judged against the CPU's "
                       "measured "
                       "roof and say what this CPU does; GPU verdicts come from the model column.")
    out += ["", "| claim | source | model | measured | numbers |", "|---|---|---|---|---|"]
    for r in rows:
        v = r.model or r.measured
        out.append(f"| `{r.claim.id}` | {_md_cell(r.claim.source)} | {status_text(r.model)} | "
                   f"{status_text(r.measured)} "
                   f"| {_md_cell(v.summary) if v else ''} |")
    from roofline.report.speedup import table_lines, versus_lines

    provider_table = table_lines(results.records) if results is not None else []
    if provider_table:
        out += ["", "## Providers vs the torch baseline", ""] + provider_table
    versus = versus_lines(results.records) if results is not None else []
    if versus:
        out += [""] + versus
    out += ["", "## Claims", ""]
    for r in rows:
        out.append(f"### `{r.claim.id}`")
        out.append("")
        out.append(f"**Claim:** {r.claim.statement}  ")
        out.append(f"**Source:** {r.claim.source}" + (f' ("{r.claim.quote}")' if r.claim.quote else ""))
        out.append("")
        for label, v in ((f"Model ({spec.name})", r.model), ("Measured", r.measured)):
            if v is None:
                continue
            out.append(f"- {label}: **{v.status}**: {v.summary}")
            out += [f"  - {line}" for line in v.details]
        out.append("")
    out += ["## What the verdicts mean", "",
            "- **supported**: the numbers agree with the statement (within the stated tolerance).",
            "- **refuted**: the numbers contradict it; the line says by how much.",
            "- **inconclusive**: nothing here measures it, or the sweep stops before it can decide.",
            "- **inconclusive (ceilings suspect)**: the measured ceilings were unstable (a wide best/median "
            "spread or before/after drift), the machine was loaded, or a point beat a ceiling; a verdict "
            "that depends on the roof is withheld and its unjudged reading shown.",
            "- A measured point above its roof (past the tolerance stated above) means the ceiling it beats "
            "was measured wrong, or a counting or caching error (wrong byte count, a warm cache), never a "
            "result; `no-point-above-roof` lists them with the ceiling each beats.", ""]
    return "\n".join(out)


def write_report(results_dir: str | Path | Results, hardware: str | HardwareSpec | None = None,
                 dtype: str = DEFAULT_DTYPE, out: str | Path | None = None) -> Path:
    """Evaluate the claims on a run (a results directory, a benchmark JSON, or a run already loaded) and
    write ``claims.md`` beside it (or to ``out``); returns the path."""
    results = as_results(results_dir)
    spec = get_preset(hardware) if isinstance(hardware, str) else hardware or default_hardware(results)
    return write_rows(evaluate(results, spec, dtype), spec, results, dtype, out)


def write_rows(rows: list[ClaimResult], spec: HardwareSpec, results: Results, dtype: str = DEFAULT_DTYPE,
               out: str | Path | None = None) -> Path:
    """Write claims already evaluated (:func:`evaluate` on ``results`` and ``spec``) as ``claims.md``
    beside the run (or to ``out``); returns the path."""
    path = Path(out) if out is not None else results.directory / "claims.md"
    path.write_text(markdown_report(rows, spec, results, dtype_name(dtype)))
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="?", help="a results directory or pytest-benchmark JSON (optional: "
                                                   "without it only the model verdicts are printed)")
    parser.add_argument("--hardware", "--predict", metavar="PRESET", dest="hardware",
                        help="hardware preset for the model verdicts, predicted (default: the run's "
                             f"datasheet, else {DEFAULT_HARDWARE}); --predict MI300X is the same")
    parser.add_argument("--dtype", default=DEFAULT_DTYPE, help="dtype of the model checks: "
                        f"{', '.join(CLAIM_DTYPES)} or an alias (default {DEFAULT_DTYPE})")
    parser.add_argument("--out", help="where to write the Markdown report (default: claims.md beside the "
                                      "results)")


def run(args: argparse.Namespace) -> int:
    try:
        dtype = dtype_name(args.dtype)
    except ValueError as exc:
        raise UsageError(f"--dtype: {exc}") from None
    if dtype not in CLAIM_DTYPES:
        raise UsageError(f"--dtype {args.dtype}: expected one of {', '.join(CLAIM_DTYPES)} (the kernels' "
                         "dtypes)")
    results = load_results(args.results) if args.results else None
    spec = get_preset(args.hardware) if args.hardware else default_hardware(results)
    rows = evaluate(results, spec, dtype)
    print(terminal_table(rows, spec.name))
    if results is not None or args.out:
        path = Path(args.out) if args.out else results.directory / "claims.md"
        path.write_text(markdown_report(rows, spec, results, dtype))
        print(f"\nwrote {path}")
    return 0
