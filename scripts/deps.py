"""What scripts/env.sh must install: the project's requirements (pyproject.toml) that the running python
does not already satisfy. Reads installed versions from package metadata, so it never imports torch and
never needs the network.

    python scripts/deps.py missing [--ci]   # one requirement per line, for pip; torch first if missing
    python scripts/deps.py check [--ci]     # after pip ran: one line per unmet floor; exit 1 if a hard
                                            # one is unmet, 0 with warnings if only soft ones are (their
                                            # summary on stdout: env.sh exports it as
                                            # RIDGEBENCH_SOFT_FLOORS, and provenance.json records it)
    python scripts/deps.py explain [--ci]   # what check would decide, without failing (the dry run)

Decisions (the same in both commands, in :func:`plan`):
- a requirement whose package is installed at an allowed version is left alone;
- torch, when present at any allowed version (a CUDA or CPU build), is never reinstalled; when it is
  present but too old, that is a problem to fix by hand (reinstalling torch over a machine's CUDA
  build is not something a set-up script should do);
- ruff is needed only in CI (``CI=true`` or ``--ci``): elsewhere ``scripts/test.sh`` skips the lint;
- optional extras other than ``dev`` (``gpu``: nvidia-ml-py) are never installed;
- when pip cannot install something (offline, no pip), each floor is hard or soft (:data:`FLOORS`): a
  hard one stops the set-up with one line naming the package, the installed and the wanted version; a
  soft one is a warning, and the run goes on, marked in provenance.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

try:  # the real thing where present; pip vendors the same modules
    from packaging.requirements import Requirement
    from packaging.version import InvalidVersion, Version
except ImportError:  # pragma: no cover - packaging is almost always there
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib
    except ImportError:
        from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
LINT_ONLY = {"ruff"}  # needed in CI only
KEEP_IF_PRESENT = {"torch"}  # never reinstalled over what the machine has
# Distributions that provide the same import under another name (PyTorch nightlies ship "pytorch-triton").
ALIASES = {"triton": ("triton", "pytorch-triton")}


# Per requirement: is it a hard floor (nothing runs right below it) and why. A package not listed is
# hard. The reasons are what the set-up prints when pip could not meet the floor.
FLOORS: dict[str, tuple[bool, str]] = {
    "torch": (True, "the benchmark and the kernels' tensors"),
    "triton": (True, "3.3-3.5 spill shipped configs on sm_80 and 3.3's autotuner needs a GPU driver; the "
                     "kernels need >= 3.6"),
    "numpy": (True, "the Triton interpreter and the references compute with it"),
    "pytest": (True, "both commands are pytest runs"),
    "pytest-benchmark": (True, "< 5.3 does not run under pytest 9 and takes --benchmark-json as an open "
                               "file; the benchmark would fail at its first case"),
    "matplotlib": (False, "only the figures need it: without it (or below its floor) the run measures, "
                          "writes its JSON and claims, and says the figures were not drawn"),
    "hypothesis": (False, "only the property tests import it (they fail to import without it); the "
                          "benchmark does not"),
    "pytest-xdist": (False, "only -n (several GPUs) needs it"),
    "ruff": (False, "only the lint needs it"),
    "tomli": (False, "only Python 3.10's deps.py reads pyproject.toml with it, and falls back to pip's copy"),
}


def is_hard(name: str) -> bool:
    """Whether an unmet floor of ``name`` stops the set-up (see :data:`FLOORS`)."""
    return FLOORS.get(name, (True, ""))[0]


@dataclass
class Plan:
    install: list[str] = field(default_factory=list)  # requirement strings for pip, torch first
    problems: list[str] = field(default_factory=list)  # what the script must not fix by itself
    skipped: list[str] = field(default_factory=list)  # optional here (ruff outside CI)


def requirements(pyproject: Path = ROOT / "pyproject.toml",
                 extras: Iterable[str] = ("dev",)) -> list[Requirement]:
    """The project's dependencies plus the given extras, with environment markers applied."""
    project = tomllib.loads(pyproject.read_text())["project"]
    raw = list(project["dependencies"])
    for extra in extras:
        raw += project.get("optional-dependencies", {}).get(extra, [])
    reqs = [Requirement(r) for r in raw]
    return [r for r in reqs if r.marker is None or r.marker.evaluate()]


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (or an alias of it), None if absent."""
    for dist in ALIASES.get(name, (name,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _allowed(req: Requirement, version: str) -> bool:
    try:
        v = Version(version)
    except InvalidVersion:
        return False
    # "2.11.0+cu130" satisfies ">=2.11"; pre-releases (a nightly torch) count as installed versions
    return req.specifier.contains(Version(v.public), prereleases=True)


def plan(reqs: Iterable[Requirement], version_of: Callable[[str], str | None], *, ci: bool) -> Plan:
    """Decide what to install; ``version_of(name)`` gives an installed version or None."""
    out = Plan()
    for req in reqs:
        name = _name(req)
        if name in LINT_ONLY and not ci:
            if version_of(name) is None:
                out.skipped.append(f"{name}: not installed; lint skipped outside CI")
            continue
        have = version_of(name)
        if have is not None and _allowed(req, have):
            continue
        if have is not None and name in KEEP_IF_PRESENT:
            out.problems.append(f"{name} {have} is installed but ridgebench needs {req}; upgrade it "
                                "yourself (with the build for your CUDA), or set PYTHON to another python")
            continue
        out.install.append(str(req))
    out.install.sort(key=lambda r: not r.startswith("torch"))  # torch first: it pins triton
    return out


@dataclass
class Floor:
    """One requirement the environment does not meet."""

    name: str
    have: str | None  # installed version, None when absent
    want: str         # the requirement, e.g. "pytest-benchmark>=5.3"
    hard: bool

    def line(self) -> str:
        have = f"{self.name} {self.have} is installed" if self.have else f"{self.name} is not installed"
        kind, why = ("hard", FLOORS.get(self.name, (True, "a project requirement"))[1]) if self.hard else (
            "soft", FLOORS[self.name][1])
        return f"{have}; ridgebench wants {self.want} ({kind} floor: {why})"

    def short(self) -> str:
        return f"{self.name} {self.have or 'absent'} (wants {self.want})"


def unmet(reqs: Iterable[Requirement], version_of: Callable[[str], str | None], *, ci: bool) -> list[Floor]:
    """Every requirement still unmet (after pip ran, or could not), with its hard/soft decision."""
    out = []
    for req in reqs:
        name = _name(req)
        if name in LINT_ONLY and not ci:
            continue
        have = version_of(name)
        if have is None or not _allowed(req, have):
            out.append(Floor(name, have, str(req), is_hard(name)))
    return out


def _name(req: Requirement) -> str:
    return re.sub(r"[-_.]+", "-", req.name).lower()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("missing", "check", "explain"):
        print("usage: deps.py missing|check|explain [--ci]", file=sys.stderr)
        return 2
    ci = "--ci" in argv[1:] or os.environ.get("CI", "").lower() in ("1", "true", "yes")
    reqs = requirements()
    if argv[0] == "missing":
        result = plan(reqs, installed_version, ci=ci)
        for line in result.problems:
            print(f"ridgebench: {line}", file=sys.stderr)
        print("\n".join(result.install))
        return 1 if result.problems else 0
    floors = unmet(reqs, installed_version, ci=ci)
    hard = [f for f in floors if f.hard]
    for f in floors:
        if argv[0] == "explain":
            print(f"ridgebench: if pip cannot install it: {'stop' if f.hard else 'warn and go on'}: "
                  f"{f.line()}", file=sys.stderr)
        elif f.hard:
            print(f"ridgebench: set-up stopped: {f.line()}", file=sys.stderr)
        else:
            print(f"ridgebench: warning, going on: {f.line()}", file=sys.stderr)
    if argv[0] == "check":
        print("; ".join(f.short() for f in floors if not f.hard))
    return 1 if hard and argv[0] == "check" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
