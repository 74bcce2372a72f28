"""The memory- vs compute-bound claims and their verdicts.

Each claim is declared beside its checks (:mod:`roofline.report.claims.registry`): the kernel claims in
:mod:`.kernels`, whole-model accounting in :mod:`.accounting`, the decode-step knee in
:mod:`.decode_step`, bit-widths and capacity in :mod:`.deployment`, the above-roof
check in :mod:`.roof`. :mod:`.report` evaluates them and writes
``claims.md``; ``python -m roofline claims`` runs it.
"""

from __future__ import annotations

# Importing the check modules declares their claims; the report lists them in this order.
# isort: off
from roofline.report.claims import kernels  # noqa: F401
from roofline.report.claims import accounting  # noqa: F401
from roofline.report.claims import decode_step  # noqa: F401
from roofline.report.claims import deployment  # noqa: F401
from roofline.report.claims import roof  # noqa: F401
# isort: on
from roofline.report.claims.registry import DECLARED, Claim
from roofline.report.claims.report import (
    add_arguments,
    ceiling_lines,
    evaluate,
    markdown_report,
    run,
    status_text,
    terminal_table,
    write_report,
)

CLAIMS: tuple[Claim, ...] = tuple(DECLARED.values())
BY_ID: dict[str, Claim] = dict(DECLARED)

__all__ = ["BY_ID", "CLAIMS", "add_arguments", "ceiling_lines", "evaluate", "markdown_report", "run",
           "status_text", "terminal_table", "write_report"]
