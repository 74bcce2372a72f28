"""The project's import graph: no cycle between its modules, lazy (function-level) imports included.

A cycle is how a split goes wrong (two modules that each need the other, patched with a late import);
the graph is read from the source with ``ast``, so it also covers imports inside functions that a plain
``import`` of every module would not execute.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kernels", "bench", "roofline")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    files += sorted((ROOT / "scripts").glob("*.py"))
    return {module_name(p): p for p in files}


_BY_NAME = {"import_module", "__import__"}
# an f-string import_module/__import__ whose literal start names no project module (a name held in a
# variable is a third-party module chosen at run time, e.g. a provider's, and is not counted)
DYNAMIC = "<a module named at run time>"


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports: ``import a.b``, ``from a import b`` (``a.b`` when ``b`` is
    a module, else ``a``) and relative imports, wherever they appear in the file; and an import by
    name, ``importlib.import_module("a.b")`` or ``__import__("a.b")``."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and _BY_NAME & {ast.unparse(node.func).split(".")[-1]} and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out |= {arg.value} & known
            elif isinstance(arg, ast.JoinedStr):  # f"kernels.{name}": the literal start's deepest module
                start = arg.values[0].value if isinstance(arg.values[0], ast.Constant) else ""
                parts = str(start).split(".")[:-1]
                prefix = next((".".join(parts[:n]) for n in range(len(parts), 0, -1)
                               if ".".join(parts[:n]) in known), None)
                out.add(prefix or DYNAMIC)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    out.add(sub)
                elif target in known:
                    out.add(target)
    out.discard(name)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


def test_project_modules_import_without_a_cycle():
    graph = import_graph()
    assert {"kernels", "bench", "roofline"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("graph, cycle", [
    ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}, ["a", "b", "c", "a"]),
    ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, None),
])
def test_find_cycle(graph, cycle):
    assert find_cycle(graph) == cycle


# Who may import whom, by prefix: the first matching rule of a module decides. ``roofline.model`` is the
# pure model, ``roofline.report`` reads results directories and draws; the model never reaches up.
LAYERS: dict[str, tuple[str, ...]] = {
    "roofline.errors": (),
    "roofline.model": ("roofline.errors", "roofline.model"),
    "roofline.rundir": ("roofline.errors", "roofline.model", "roofline.rundir"),
    "kernels": ("kernels", "roofline.errors", "roofline.model"),
    # bench writes the run (roofline.rundir) and reaches the report side through one entry point
    "bench": ("bench", "kernels", "roofline.errors", "roofline.model", "roofline.rundir",
              "roofline.report.finish"),
}


def _allowed(module: str, target: str) -> bool:
    for prefix, ok in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return any(target == o or target.startswith(o + ".") for o in ok)
    return True


def test_the_layers_hold():
    """roofline.model imports nothing of the report (lazy, importlib and by-name imports included),
    kernels reach roofline only for the model, and bench reaches the report side only through
    ``roofline.report.finish``, from ``bench.finish`` alone."""
    graph = import_graph()
    bad = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                 if (t == DYNAMIC or t.split(".")[0] in PACKAGES) and not _allowed(m, t))
    assert not bad, "imports across the layers: " + "; ".join(bad)
    entry = {m for m, targets in graph.items()
             if m.startswith("bench") and "roofline.report.finish" in targets}
    assert entry == {"bench.finish"}


def test_an_import_by_name_is_an_edge(tmp_path):
    (tmp_path / "m.py").write_text('import importlib\n'
                                   'def f():\n    return importlib.import_module("roofline.report.compare")\n'
                                   'X = __import__("roofline.report.plot")\n')
    known = {"roofline.report.compare", "roofline.report.plot", "roofline.model.cost"}
    assert imported_modules("roofline.model.m", tmp_path / "m.py", known) == {
        "roofline.report.compare", "roofline.report.plot"}
    assert not _allowed("roofline.model.m", "roofline.report.plot")
    assert _allowed("roofline.report.plot", "roofline.model.cost")
    (tmp_path / "b.py").write_text('import importlib\nX = importlib.import_module(f"roofline.report.{1}")\n')
    assert imported_modules("bench.b", tmp_path / "b.py", known) == {DYNAMIC}
    assert not _allowed("bench.b", DYNAMIC) and not _allowed("bench.b", "roofline.report.plot")
    assert _allowed("bench.b", "roofline.report.finish") and _allowed("bench.b", "roofline.rundir")


def test_lazy_and_relative_imports_count(tmp_path):
    """A function-level import is an edge too (a late import does not hide a cycle)."""
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from p import b\n")
    (pkg / "b.py").write_text("from . import a\nfrom .a import f\n")
    known = {"p", "p.a", "p.b"}
    assert imported_modules("p.a", pkg / "a.py", known) == {"p.b"}
    assert imported_modules("p.b", pkg / "b.py", known) == {"p.a"}
    assert find_cycle({"p.a": {"p.b"}, "p.b": {"p.a"}}) == ["p.a", "p.b", "p.a"]
