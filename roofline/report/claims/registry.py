"""How a claim is declared: :func:`claim` registers its statement and source, and the checks beside it
attach themselves with ``@<claim>.model`` (``(spec, dtype) -> Verdict``, on the analytic model) and
``@<claim>.measured`` (``(results, roof) -> Verdict``, on a run). The report lists claims in the order
they are declared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from roofline.model.hardware import HardwareSpec
from roofline.model.verdict import Verdict
from roofline.report.results import Results

SEED_000 = "000_997912504fe949f9.txt"  # FLOPs per token from the scaling-laws paper (forum thread)
SEED_001 = "001_73c622d9138b535f.txt"  # "How many FLOPs" blog (GPT-4o / Grok answers)
SEED_002 = "002_8eaabdfaba62962c.txt"  # GPT-2 XL resource accounting
SEED_003 = "003_2fdff13b4af33bc8.txt"  # decoder-only transformer notes (App. D: compute vs memory)
SEED_004 = "004_9e198411fc46d055.txt"  # transformer inference arithmetic

ModelCheck = Callable[[HardwareSpec, str], Verdict]
MeasuredCheck = Callable[[Results, HardwareSpec], Verdict]


@dataclass(eq=False)
class Claim:
    """A statement, its source (a seed document's file name under ``shared/seeds/``, or
    ``"ridgebench"``), a quote from it, and its checks (None: not checked that way)."""

    id: str
    statement: str
    source: str
    quote: str = ""
    # The measured verdict reads the run's roof (ridge, peak, bandwidth share): with suspect ceilings it
    # becomes "inconclusive (ceilings suspect)". Every measured check here does.
    roof_dependent: bool = True
    model_check: ModelCheck | None = None
    measured_check: MeasuredCheck | None = None

    def model(self, check: ModelCheck) -> ModelCheck:
        """Decorator: ``check`` is this claim's verdict on the analytic model."""
        if self.model_check is not None:
            raise ValueError(f"claim {self.id!r}: a model check is already declared")
        self.model_check = check
        return check

    def measured(self, check: MeasuredCheck) -> MeasuredCheck:
        """Decorator: ``check`` is this claim's verdict on a run's measurements."""
        if self.measured_check is not None:
            raise ValueError(f"claim {self.id!r}: a measured check is already declared")
        self.measured_check = check
        return check


DECLARED: dict[str, Claim] = {}  # id -> claim, in declaration order


def claim(claim_id: str, statement: str, source: str, *, quote: str = "", roof_dependent: bool = True
          ) -> Claim:
    """Declare a claim (its checks attach with the decorators above); ids are unique."""
    if claim_id in DECLARED:
        raise ValueError(f"claim {claim_id!r}: declared twice")
    DECLARED[claim_id] = declared = Claim(claim_id, statement, source, quote, roof_dependent)
    return declared
