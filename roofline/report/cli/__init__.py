"""``python -m roofline <command>``: hardware, model, plot, claims, step, compare, report.

This package holds the dispatch and the two commands that are only a command (:mod:`.hardware`,
:mod:`.model`); the others live beside what they run (:mod:`roofline.report.plot`,
:mod:`roofline.report.claims`,
:mod:`roofline.report.step_report`, :mod:`roofline.report.compare`, :mod:`roofline.report.page`).

Each command lives in its own module, which defines ``add_arguments(parser)`` and ``run(args) -> int``.
Bad input (:class:`roofline.errors.UsageError`, unknown presets) prints one line and exits 2. Part of a
run left out while loading it (:class:`roofline.report.results.ResultsWarning`: an unusable record, a corrupt
``skipped.json``) prints one ``warning:`` line each to stderr; the command goes on and exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from roofline.errors import UsageError
from roofline.model.hardware import UnknownHardwareError

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "hardware": ("roofline.report.cli.hardware", "list the hardware presets and their ceilings"),
    "model": ("roofline.report.cli.model", "transformer accounting for a model preset or JSON config"),
    "plot": ("roofline.report.plot", "roofline plots from a results directory, or predicted for a preset"),
    "claims": ("roofline.report.claims", "verdicts on the memory- vs compute-bound claims"),
    "step": ("roofline.report.step_report",
             "a model step's measured components against their roofline floor"),
    "compare": ("roofline.report.compare",
                "is run B faster or slower than run A beyond noise (exit 1: slower)"),
    "report": ("roofline.report.page",
               "one self-contained HTML page of one run or several (interactive roofline)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m roofline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # import only the command that runs: one broken module can't take down others
            importlib.import_module(module_name).add_arguments(command_parser)
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        from roofline.report.results import ResultsWarning

        if issubclass(category, ResultsWarning):
            print(f"python -m roofline {args.command}: warning: {message}", file=sys.stderr)
        else:
            previous(message, category, filename, lineno, file, line)

    try:
        warnings.showwarning = show
        return module.run(args)
    except (UsageError, UnknownHardwareError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        print(f"python -m roofline {args.command}: error: {msg}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = previous
