"""scripts/call_path.py: the issue-25 count of module entries along plot_results' call path, and its bound."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "call_path.py"


def _tool():
    spec = importlib.util.spec_from_file_location("call_path", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("call_path", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _write_package(root: Path) -> None:
    pkg = root / "toy_callpath"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from toy_callpath import b\n"
        "def f():\n"
        "    for _ in range(3):\n"  # the same edges three times: counted once each
        "        b.g()\n"
        "    return h()\n"
        "def h():\n"
        "    return [b.k() for _ in range(2)]\n"  # from a comprehension: attributed to h
        "def back():\n"
        "    return 1\n")
    (pkg / "b.py").write_text(
        "import json\n"
        "def g():\n"
        "    from toy_callpath import a\n"
        "    return json.loads('1', object_hook=None) + a.back()\n"
        "def k():\n"
        "    return 2\n")


def test_counts_entries_and_reentries(tmp_path, monkeypatch):
    tool = _tool()
    _write_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from toy_callpath import a

    path = tool.trace(a.f, root=tmp_path, packages=("toy_callpath",))
    # tool -> a.f, a.f -> b.g, b.g -> a.back, a.h -> b.k (a.f -> a.h stays in a: not an entry)
    assert path.entries == ("toy_callpath.a", "toy_callpath.b", "toy_callpath.a", "toy_callpath.b")
    assert path.modules == ("toy_callpath.a", "toy_callpath.b")
    assert path.reentries == 2
    assert path.edges[-1] == ("toy_callpath.a", "h", "toy_callpath.b", "k")  # the comprehension's caller


def test_module_of_outside_the_project(tmp_path):
    tool = _tool()
    assert tool.module_of(str(tmp_path / "x.py"), tmp_path) is None
    assert tool.module_of(str(tmp_path / "scripts" / "x.py"), tmp_path) is None
    assert tool.module_of(str(tmp_path / "bench" / "runner.py"), tmp_path) == "bench.runner"


def _measure() -> tuple[int, str]:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_plot_path_is_measured():
    rc, out = _measure()
    assert "entries" in out and "re-entries" in out, out
    entries = int(out.split("entries ")[1].split(",")[0])
    assert entries > 0 and rc in (0, 1), out


@pytest.mark.xfail(strict=True, reason="issue 25: plot_results' path not restructured yet "
                                       "(53 entries, 42 re-entries at ea22d62); remove this mark when it is")
def test_plot_path_within_the_issue_bound():
    rc, out = _measure()
    assert rc == 0, out
