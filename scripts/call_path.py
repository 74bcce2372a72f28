"""How far a run's results travel between modules on their way to the plots (issue 25's call-path count).

``python scripts/call_path.py [RESULTS_DIR]`` copies a run directory (default: ``tests/data/cpu-quick``)
to a temporary folder, runs :func:`roofline.report.plot.files.plot_results` on it under
:func:`sys.setprofile`, and prints the entries into project modules along the way, by two rules.

Definitions:

- a *project module* is a source file under ``roofline/``, ``bench/`` or ``kernels/`` of this checkout;
  calls into anything else (the standard library, matplotlib, numpy) are followed through but not
  counted, and a call made from outside the project is attributed to the nearest project frame below it;
  comprehensions, lambdas and other ``<...>`` code objects are not functions of their own (neither as
  callee nor as caller: a call from a comprehension is made by the function that encloses it in the
  source, wherever the comprehension is consumed);
- an *edge* is a distinct (caller module, caller function) -> (callee module, callee function) pair whose
  modules differ, in the order of its first call (a loop over records crosses each edge once);
- rule ``issue`` (the bound applies to it): an *entry* is the first call into a distinct function of
  another module, the model's leaves (:data:`LEAVES`: the hardware table and the cost formulas, which every
  layer calls and which call nothing back on this path) not counted. On 0302c5c, the tree the issue
  measured, this gives its figures: 33 entries, 8 modules, 25 re-entries;
- rule ``strict``: every edge is an entry, leaves included;
- a *re-entry* is an entry into a module entered before (a return to a module already left).

The issue's bound: at most 12 entries, at most 4 re-entries (``--max-entries``/``--max-reentries``; the
exit status is 1 past either, under ``--rule``, default ``issue``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("roofline", "bench", "kernels")
DEFAULT_RUN = ROOT / "tests" / "data" / "cpu-quick"


LEAVES = ("roofline.model.hardware", "roofline.model.cost")
RULES = ("issue", "strict")


@dataclass(frozen=True)
class CallPath:
    """Every edge (caller module, caller function, callee module, callee function) in first-call order;
    :meth:`entries` counts them by a rule."""

    edges: tuple[tuple, ...]
    leaves: tuple[str, ...] = LEAVES

    def entries(self, rule: str = "issue") -> tuple[str, ...]:
        """The callee module of each entry, in order (see the module's docstring for the rules)."""
        if rule == "strict":
            return tuple(edge[2] for edge in self.edges)
        if rule != "issue":
            raise ValueError(f"rule: expected one of {RULES}, got {rule!r}")
        seen: set[tuple[str, str]] = set()
        out = []
        for _, _, callee, function in self.edges:
            if callee not in self.leaves and (callee, function) not in seen:
                seen.add((callee, function))
                out.append(callee)
        return tuple(out)

    def modules(self, rule: str = "issue") -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.entries(rule)))

    def reentries(self, rule: str = "issue") -> int:
        return len(self.entries(rule)) - len(self.modules(rule))

    def summary(self, rule: str = "issue") -> str:
        entries = self.entries(rule)
        counts = ", ".join(f"{m} {n}" for m, n in Counter(entries).most_common())
        return (f"rule {rule}: entries {len(entries)}, modules {len(self.modules(rule))}, "
                f"re-entries {self.reentries(rule)}\n  per module: {counts}")


def module_of(filename: str, root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> str | None:
    """The dotted project module of a source file (under one of ``packages`` of ``root``), or None."""
    try:
        rel = Path(filename).resolve().relative_to(root)
    except ValueError:
        return None
    if not rel.parts or rel.parts[0] not in packages or rel.suffix != ".py":
        return None
    return ".".join(rel.with_suffix("").parts)


def function_of(code) -> str:
    """The function a code object belongs to: its own name, or for a comprehension, generator expression or
    lambda the function that encloses it in the source (``f.<locals>.<genexpr>`` -> ``f``)."""
    parts = [p for p in getattr(code, "co_qualname", code.co_name).split(".") if not p.startswith("<")]
    return parts[-1] if parts else code.co_name


def trace(func, *args, root: Path = ROOT, packages: tuple[str, ...] = PACKAGES,
          leaves: tuple[str, ...] = LEAVES, **kwargs) -> CallPath:
    """Call ``func(*args, **kwargs)`` and return the :class:`CallPath` of the project modules it enters
    (the caller of ``func`` itself is this tool: its first call is an entry)."""
    cache: dict[str, str | None] = {}

    def mod(code) -> str | None:
        name = code.co_filename
        if name not in cache:
            cache[name] = module_of(name, root, packages)
        return cache[name]

    seen: set[tuple] = set()
    edges: list[tuple] = []

    def profile(frame, event, _arg):
        if event != "call" or frame.f_code.co_name.startswith("<"):
            return
        callee = mod(frame.f_code)
        if callee is None:
            return
        caller_frame, caller = frame.f_back, None
        while caller_frame is not None:
            caller = mod(caller_frame.f_code)
            if caller is not None:
                break
            caller_frame = caller_frame.f_back
        edge = (caller, function_of(caller_frame.f_code) if caller_frame is not None else None,
                callee, frame.f_code.co_name)
        if edge in seen:
            return
        seen.add(edge)
        if callee != caller:
            edges.append(edge)

    sys.setprofile(profile)
    try:
        func(*args, **kwargs)
    finally:
        sys.setprofile(None)
    return CallPath(tuple(edges), leaves)


def plot_call_path(run_dir: Path = DEFAULT_RUN) -> CallPath:
    """The call path of ``plot_results`` on a copy of ``run_dir`` (figures go to a temporary folder)."""
    import matplotlib

    matplotlib.use("Agg")
    from roofline.report.plot.files import plot_results

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(run_dir, run)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return trace(plot_results, run, Path(tmp) / "out")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default=str(DEFAULT_RUN), help="a results directory")
    parser.add_argument("--rule", choices=RULES, default="issue", help="the rule the bound applies to")
    parser.add_argument("--max-entries", type=int, default=12)
    parser.add_argument("--max-reentries", type=int, default=4)
    parser.add_argument("--edges", action="store_true", help="list every edge")
    args = parser.parse_args(argv)
    if not Path(args.run).is_dir():
        parser.error(f"run: {args.run} is not a directory")
    path = plot_call_path(Path(args.run))
    for rule in RULES:
        print(path.summary(rule))
    if args.edges:
        for caller, fn, callee, callee_fn in path.edges:
            print(f"  {caller}.{fn} -> {callee}.{callee_fn}")
    entries, reentries = len(path.entries(args.rule)), path.reentries(args.rule)
    ok = entries <= args.max_entries and reentries <= args.max_reentries
    print(f"bound (rule {args.rule}: <= {args.max_entries} entries, <= {args.max_reentries} re-entries): "
          f"{'met' if ok else 'NOT met'} ({entries} entries, {reentries} re-entries)")
    return 0 if ok else 1


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    sys.exit(main())
