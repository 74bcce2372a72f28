"""A claim check's outcome, :class:`Verdict`, and the one way a check says it cannot judge,
:class:`CannotJudge`. Shared by :mod:`roofline.report.claims` and :mod:`roofline.report.step_report` (whose
decode-knee
reading is a claim's measured check), so neither imports the other for it."""

from __future__ import annotations

from dataclasses import dataclass

SUPPORTED, REFUTED, INCONCLUSIVE = "supported", "refuted", "inconclusive"
STATUSES = (SUPPORTED, REFUTED, INCONCLUSIVE)
CROSSOVER_AGREEMENT = 2.0  # measured vs predicted crossover batch: within this factor is "about"
CROSSOVER_GROWTH = 1.5  # the largest size must take this much longer than the smallest to read a crossover
# A point's time says something about memory only if it moves a fair share of the measured bandwidth;
# below this fraction its time is overhead (launch, threading, a busy machine) and the check abstains.
MEMORY_EVIDENCE = 0.25


@dataclass(frozen=True)
class Verdict:
    """A check's outcome: ``status`` (one of :data:`STATUSES`), a one-line ``summary`` with the key
    numbers, ``details`` (more lines) and the ``numbers`` themselves for programs."""

    status: str
    summary: str
    details: tuple[str, ...] = ()
    numbers: dict | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status: expected one of {STATUSES}, got {self.status!r}")


class CannotJudge(Exception):
    """Raised by a check whose inputs cannot decide its claim (the message says why). The claims run
    records it as an inconclusive verdict with that reason; any other exception from a check is a bug and
    fails the run."""


def overhead_label(device_s: float, host_launch_s: float | None, bandwidth_share: float) -> str | None:
    """Why a point's time says little about the kernel's memory traffic, or None when it does.

    ``launch-bound``: its device time is below the host's launch cost per call (``host_launch_s``,
    measured on a GPU), so a loop that launches it without CUDA graphs waits on the host; on a CPU,
    where the call runs on the host and no launch cost is measured apart, a point moving under
    :data:`MEMORY_EVIDENCE` of the bandwidth is labelled the same. ``overhead-bound``: a GPU point
    that launches faster than it runs yet moves little of the bandwidth (latency, a tail inside the
    kernel)."""
    if host_launch_s is not None and device_s < host_launch_s:
        return (f"launch-bound: {device_s * 1e6:.3g} us on the device < {host_launch_s * 1e6:.3g} us of "
                "host launch per call")
    if bandwidth_share >= MEMORY_EVIDENCE:
        return None
    if host_launch_s is None:
        return (f"launch-bound: it moves only {bandwidth_share:.1%} of the measured bandwidth, so per-call "
                "overhead sets its time")
    return (f"overhead-bound: it moves only {bandwidth_share:.1%} of the measured bandwidth although its "
            f"launch ({host_launch_s * 1e6:.3g} us) is shorter than its device time")


SUSPECT = "ceilings_suspect"  # key in Verdict.numbers of a verdict withheld because the ceilings are suspect


def withhold(verdict: Verdict, suspect: bool, reasons: tuple[str, ...] | list[str]) -> Verdict:
    """A roof-dependent verdict on suspect ceilings: inconclusive, saying what it would have been and why
    (the one rule ``claims.md`` and ``step.md`` both apply, so they agree)."""
    if not suspect or verdict.status == INCONCLUSIVE:
        return verdict
    return Verdict(INCONCLUSIVE, f"ceilings suspect ({'; '.join(reasons)}); unjudged reading: "
                                 f"{verdict.status}: {verdict.summary}", verdict.details,
                   {**(verdict.numbers or {}), SUSPECT: True, "unjudged_status": verdict.status})


def status_label(v: Verdict | None) -> str:
    """How a report spells a verdict's status: ``inconclusive (ceilings suspect)`` for a withheld one."""
    if v is None:
        return "-"
    return "inconclusive (ceilings suspect)" if (v.numbers or {}).get(SUSPECT) else v.status


def combine(statuses: list[str]) -> str:
    """Refuted if any is; supported if all are (and there is one); else inconclusive."""
    if REFUTED in statuses:
        return REFUTED
    return SUPPORTED if statuses and all(s == SUPPORTED for s in statuses) else INCONCLUSIVE
