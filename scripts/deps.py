"""What scripts/env.sh must install: the project's requirements (pyproject.toml) that the running python
does not already satisfy. Reads installed versions from package metadata, so it never imports torch and
never needs the network.

    python scripts/deps.py missing [--ci]   # one requirement per line, for pip; torch first if missing
    python scripts/deps.py check [--ci]     # exit 1 with one line per problem if anything is missing

Decisions (the same in both commands, in :func:`plan`):
- a requirement whose package is installed at an allowed version is left alone;
- torch, when present at any allowed version (a CUDA or CPU build), is never reinstalled; when it is
  present but too old, that is a problem to fix by hand (reinstalling torch over a machine's CUDA
  build is not something a set-up script should do);
- ruff is needed only in CI (``CI=true`` or ``--ci``): elsewhere ``scripts/test.sh`` skips the lint;
- optional extras other than ``dev`` (``gpu``: nvidia-ml-py) are never installed.
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
        name = re.sub(r"[-_.]+", "-", req.name).lower()
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


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("missing", "check"):
        print("usage: deps.py missing|check [--ci]", file=sys.stderr)
        return 2
    ci = "--ci" in argv[1:] or os.environ.get("CI", "").lower() in ("1", "true", "yes")
    result = plan(requirements(), installed_version, ci=ci)
    for line in result.problems:
        print(f"ridgebench: {line}", file=sys.stderr)
    if argv[0] == "missing":
        print("\n".join(result.install))
        return 1 if result.problems else 0
    for req in result.install:
        print(f"ridgebench: missing {req}", file=sys.stderr)
    return 1 if (result.problems or result.install) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
