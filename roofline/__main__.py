"""``python -m roofline <command>``: hardware, model, plot, claims, step, compare.

Each command lives in its own module, which defines ``add_arguments(parser)`` and ``run(args) -> int``.
Bad input (:class:`roofline.errors.UsageError`, unknown presets) prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from roofline.errors import UsageError
from roofline.hardware import UnknownHardwareError

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "hardware": ("roofline.cli_hardware", "list the hardware presets and their ceilings"),
    "model": ("roofline.cli_model", "transformer accounting for a model preset or JSON config"),
    "plot": ("roofline.plot", "roofline plots from a results directory, or predicted for a preset"),
    "claims": ("roofline.claims", "verdicts on the memory- vs compute-bound claims"),
    "step": ("roofline.step_report", "a model step's measured components against their roofline floor"),
    "compare": ("roofline.compare", "is run B faster or slower than run A beyond noise (exit 1: slower)"),
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
    try:
        return module.run(args)
    except (UsageError, UnknownHardwareError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        print(f"python -m roofline {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
