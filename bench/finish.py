"""The end of a ``pytest --benchmark`` session: signals, each process's part closed, the run merged, the
reports drawn and the summary written.

- signals (:data:`SIGNALS`): SIGTERM and SIGINT become one orderly stop (a KeyboardInterrupt), so the
  session end below still runs and writes the run directory;
- every process that benchmarked closes its part (:func:`close_part`): the ceilings' second pass, the
  pytest-benchmark header, the end state in its ``provenance.json``;
- the process that owns the run (the only one, or a controller) merges the parts into the run's files
  (:func:`roofline.rundir.merge_parts`) and hands the run to the report side's one entry point,
  :func:`roofline.report.finish.finish`, which loads it once for the roof lines, plots, claims, report.html
  and
  step report; :func:`summary_lines` is what the ridgebench section at the very end of the output says.
"""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import sys
import threading
from pathlib import Path

import pytest

from bench import ceilings as ceilings_mod
from bench import provenance, step_options, timing
from bench.session import BenchSession
from roofline.report.finish import finish
from roofline.rundir import (
    BENCHMARK,
    HEADER,
    PROVENANCE,
    SKIPPED,
    EndState,
    merge_parts,
    read_json,
    write_json,
)


class Signals:
    """SIGTERM (and SIGINT) raise KeyboardInterrupt once, so pytest stops in order: the current case is
    abandoned, session finish still runs and the run directory is written. Later signals while that
    happens are noted, not raised, so they cannot cut the writing short."""

    def __init__(self) -> None:
        self.received: str | None = None
        self.previous: dict[int, object] = {}

    def handler(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name
            raise KeyboardInterrupt(self.received)
        sys.stderr.write(f"\nridgebench: {signal.Signals(signum).name} again; still writing the results\n")

    def install(self) -> None:
        if self.previous or threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler):
                self.previous[sig] = signal.signal(sig, self.handler)

    def restore(self) -> None:
        for sig, old in self.previous.items():
            signal.signal(sig, old)
        self.previous.clear()


SIGNALS = Signals()


def interrupted(exitstatus: int) -> bool:
    return exitstatus == pytest.ExitCode.INTERRUPTED or SIGNALS.received is not None


def end_state(exitstatus: int, families: dict | None = None) -> dict:
    """How the session ended, as ``provenance.json`` records it (:class:`roofline.rundir.EndState`)."""
    if SIGNALS.received is not None:
        exitstatus = int(pytest.ExitCode.INTERRUPTED)  # what pytest_sessionfinish makes pytest exit with
    return EndState(exit_status=exitstatus, interrupted=interrupted(exitstatus), signal=SIGNALS.received,
                    finished_utc=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    families=families).to_dict()


def close_part(config: pytest.Config, bsession: BenchSession, exitstatus: int) -> None:
    """This process's last words in its part: the ceilings again (after the sweep: the best of both
    passes kept and this part's records re-judged against them), the pytest-benchmark header and the
    end state."""
    after_error = None
    if not interrupted(exitstatus) and bsession.fatal is None:
        try:
            ceilings_mod.after_sweep(bsession, budget_s=config.getoption("--ceilings-budget"))
        except KeyboardInterrupt:  # a signal during the second pass: keep the first, write the part
            after_error = f"interrupted ({SIGNALS.received or 'KeyboardInterrupt'}); the first pass is kept"
        except Exception as exc:  # noqa: BLE001 - the records and the first pass are already on disk
            after_error = f"{type(exc).__name__}: {exc}"
    try:
        machine_info = config.hook.pytest_benchmark_generate_machine_info(config=config)
        config.hook.pytest_benchmark_update_machine_info(config=config, machine_info=machine_info)
        header = config.hook.pytest_benchmark_generate_json(
            config=config, benchmarks=[], include_data=True, machine_info=machine_info,
            commit_info=config.hook.pytest_benchmark_generate_commit_info(config=config))
    except Exception as exc:  # noqa: BLE001 - the header is descriptive; the records are what matter
        header = {"machine_info": {"error": f"{type(exc).__name__}: {exc}"}, "commit_info": {}}
    header.pop("benchmarks", None)
    write_json(bsession.part_dir / HEADER, header)
    doc_path = bsession.part_dir / PROVENANCE
    doc = read_json(doc_path)
    if isinstance(doc, dict):
        if bsession.device_kind == "cuda":
            doc["nvml_end"] = provenance.nvml_info(doc.get("device", {}).get("uuid"))
        doc.update(end_state(exitstatus), timed=bsession.timed, fatal=bsession.fatal)
        if after_error:
            doc["ceilings_after_sweep_error"] = after_error
        write_json(doc_path, doc)


def write_run(config: pytest.Config, run_dir: Path, exitstatus: int, families: dict,
              user_json: object) -> list[str]:
    """The owner of the run (the only process, or a controller): merge the parts into the run's files and
    return the summary's lines (an empty run's directory is removed)."""
    run_info = end_state(exitstatus, families)
    written = merge_parts(run_dir, run_info) if run_dir.is_dir() else {}
    return summary_lines(config, run_dir, written, run_info, user_json)


def summary_lines(config: pytest.Config, run_dir: Path, written: dict, run_info: dict,
                  user_json: object = None) -> list[str]:
    """What the ridgebench section at the very end of the output says (and removes an empty run).
    ``user_json``: the ``--benchmark-json`` path, where benchmark.json is copied."""
    has_bench = BENCHMARK in written
    skipped = read_json(run_dir / SKIPPED)
    skipped = skipped if isinstance(skipped, list) else []
    disabled = bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")
    if disabled or (not has_bench and not skipped):
        shutil.rmtree(run_dir, ignore_errors=True)
        if disabled:
            return ["--benchmark-disable: every case ran once and was checked; nothing was timed, so no "
                    "results directory was kept"]
        if run_info["interrupted"]:
            return [f"INTERRUPTED ({run_info['signal'] or 'KeyboardInterrupt'}) before any benchmark "
                    "finished; no results directory kept"]
        return ["no benchmark ran; no results directory kept"]
    lines: list[str] = []
    if has_bench and user_json:
        shutil.copyfile(written[BENCHMARK], user_json)
    draw = has_bench and not config.getoption("--no-report") and not run_info["interrupted"]
    # The run loaded once, for the counts below, the roof lines and every report.
    run = finish(run_dir, draw=draw, step=draw and step_options.requested(config)) if has_bench else None
    records = run.benchmarks if run is not None else []
    by_cat: dict[str, int] = {}
    for s in skipped:
        category = s.get("category", "?") if isinstance(s, dict) else "?"
        by_cat[category] = by_cat.get(category, 0) + 1
    lines.append(f"results: {run_dir}")
    if has_bench:
        lines.append(f"benchmark data: {written[BENCHMARK]}"
                     + (f" (copied to {user_json})" if user_json else ""))
    unknown = "? (the run could not be loaded)" if run is not None and run.results is None else None
    lines.append(f"timed benchmarks: {unknown or len(records)}; skipped: "
                 + (", ".join(f"{n} {c}" for c, n in sorted(by_cat.items())) or "none") + " (skipped.json)")
    above = [r for r in records if (r.get("extra_info") or {}).get("above_roof")]
    if run is not None:
        lines.append(f"above the roof (past the ceilings' noise tolerance; a counting error or a ceiling "
                     f"measured wrong): {unknown or len(above)}"
                     + (": " + ", ".join(r.get("name", "?") for r in above[:5]) if above else ""))
        lines += run.roof
        lines += timing.launch_summary(records)
    if by_cat.get("not-timed"):
        lines.append(f"NO GPU: {by_cat['not-timed']} Triton benchmarks were checked under the Triton "
                     "interpreter (TRITON_INTERPRET=1) on the CPU and NOT timed; only the torch provider "
                     "was timed, on the CPU")
    families = run_info.get("families", {})
    if families:
        lines.append("kernel families, one pytest process each: " + ", ".join(
            f"{f} {'ok' if st.get('exit_status') in (0, 5) else 'FAILED'}" for f, st in families.items())
            + " (each printed its own pass/fail counts above; this controlling process ran no test itself)")
    for family, state in families.items():
        if state.get("exit_status") not in (0, 5):
            lines.append(f"kernel family {family}: its pytest exited {state.get('exit_status')}"
                         + (f" ({state['fatal']}; the rest of the family did not run)" if state.get("fatal")
                            else ""))
    if run_info["interrupted"]:
        lines.append(f"INTERRUPTED ({run_info['signal'] or 'KeyboardInterrupt'}): the {len(records)} "
                     "finished benchmarks are kept (a case stopped part-way is dropped; cases not reached "
                     'did not run); provenance.json says "interrupted": true')
    if has_bench and not config.getoption("--no-report"):
        if run_info["interrupted"]:
            lines.append("reports not drawn (interrupted): " + "; ".join([
                f"python -m roofline plot {run_dir}", f"python -m roofline claims {run_dir}",
                f"python -m roofline report {run_dir}", *step_options.report_commands(config, run_dir)]))
        else:
            lines += run.reports
    return lines
