"""The memory- vs compute-bound claims and their verdicts.

Each claim is declared beside its checks (:mod:`roofline.claims.registry`): the kernel claims in
:mod:`.kernels`, whole-model accounting in :mod:`.accounting`, the decode-step knee in
:mod:`.decode_step`, the above-roof check in :mod:`.roof`. :mod:`.report` evaluates them and writes
``claims.md``; ``python -m roofline claims`` runs it.
"""

from __future__ import annotations

# Importing the check modules declares their claims; the report lists them in this order.
# isort: off
from roofline.claims import kernels  # noqa: F401
from roofline.claims import accounting  # noqa: F401
from roofline.claims import decode_step  # noqa: F401
from roofline.claims import roof  # noqa: F401
# isort: on
from roofline.claims.registry import DECLARED, Claim
from roofline.claims.report import (
    CLAIM_DTYPES,
    DEFAULT_DTYPE,
    DEFAULT_HARDWARE,
    ClaimResult,
    add_arguments,
    ceiling_lines,
    default_hardware,
    evaluate,
    judge,
    markdown_report,
    run,
    terminal_table,
    write_report,
)
from roofline.verdict import INCONCLUSIVE, REFUTED, STATUSES, SUPPORTED, CannotJudge, Verdict

CLAIMS: tuple[Claim, ...] = tuple(DECLARED.values())
BY_ID: dict[str, Claim] = dict(DECLARED)

__all__ = ["BY_ID", "CLAIMS", "CLAIM_DTYPES", "DEFAULT_DTYPE", "DEFAULT_HARDWARE", "INCONCLUSIVE", "REFUTED",
           "STATUSES", "SUPPORTED", "CannotJudge", "Claim", "ClaimResult", "Verdict", "add_arguments",
           "ceiling_lines", "default_hardware", "evaluate", "judge", "markdown_report", "run",
           "terminal_table", "write_report"]
