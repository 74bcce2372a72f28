"""Installing ridgebench must not install (and so shadow) top-level ``kernels``, ``bench`` or ``roofline``
modules: those are also names of unrelated PyPI packages. The code runs from the checkout instead,
with pytest's ``pythonpath`` putting the checkout first."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from roofline.model.ops import KERNELS

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
OURS = ("kernels", "bench", "roofline")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pyproject_installs_no_packages_and_runs_from_the_checkout():
    data = pyproject()
    assert data["tool"]["setuptools"]["packages"] == []
    assert "py-modules" not in data["tool"]["setuptools"]
    assert data["tool"]["pytest"]["ini_options"]["pythonpath"] == ["."]
    assert data["project"]["requires-python"] == ">=3.10"
    deps = " ".join(data["project"]["dependencies"])
    for dep in ("torch", "triton", "numpy", "matplotlib", "pytest-benchmark"):
        assert dep in deps


def test_our_modules_are_imported_from_the_checkout():
    for name in OURS:
        if not (ROOT / name).is_dir():
            continue
        module = importlib.import_module(name)
        locations = list(getattr(module, "__path__", []))  # a namespace package has no __file__
        assert locations and all(Path(p).resolve() == ROOT / name for p in locations), (name, locations)
    site = sysconfig.get_paths()["purelib"]
    entries = [str(Path(p).resolve()) for p in sys.path if p]
    assert str(ROOT) in entries
    if site in sys.path:
        assert entries.index(str(ROOT)) < sys.path.index(site)  # ours before anything installed


def test_built_wheel_contains_no_top_level_module(tmp_path):
    """Build the wheel from a copy of the project (no build outputs land in the checkout) and check it
    holds metadata only."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in OURS:  # the packages setuptools could find, with an __init__ each
        (src / pkg).mkdir()
        (src / pkg / "__init__.py").write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    # This python's setuptools cannot build wheels (missing, or < 70.1 without the `wheel` package, as
    # in a fresh venv that reuses a host's packages): not a property of the project.
    for cause in ("No module named", "invalid command 'bdist_wheel'"):
        if proc.returncode and cause in proc.stderr:
            pytest.skip(f"cannot build a wheel with this python's setuptools: {cause}")
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("ridgebench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert names and all(n.startswith("ridgebench-") and ".dist-info/" in n for n in names), names
    top_level = [n for n in names if n.endswith("top_level.txt")]
    for entry in top_level:
        assert zipfile.ZipFile(wheel).read(entry).decode().split() == []


def _imported_top_levels(path: Path) -> set[str]:
    """Top-level package of every import in ``path``, lazy (function-level) imports included."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_data_flows_one_way_roofline_imports_neither_bench_nor_kernels():
    """The README's layering: kernels -> bench -> results -> roofline; roofline stays importable (and
    usable on a results directory) without the benchmark harness or the Triton kernels."""
    offenders = {str(p.relative_to(ROOT)): sorted(_imported_top_levels(p) & {"bench", "kernels"})
                 for p in sorted((ROOT / "roofline").rglob("*.py"))}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_cpu_sweep_dtype_without_the_bench_is_the_conservative_fp32():
    """Standalone roofline (no CPU detector registered) must not guess native bf16 (no machine forced:
    RIDGEBENCH_MACHINE would decide instead)."""
    code = ("import sys, roofline.model.sweeps as s; assert 'bench' not in sys.modules; "
            "print(s.sweep_dtype('cpu')[0], s.sweep_points('smoke', 'cpu')[0].dtype)")
    env = {k: v for k, v in os.environ.items() if k != "RIDGEBENCH_MACHINE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=env)
    assert out.stdout.split() == ["float32", "float32"]


RECIPE = ROOT / "docs" / "adding-a-kernel.md"  # the "Adding a kernel" recipe (was in the README)
# Every file adding an op touches: the recipe names exactly these, and every op of the table has each.
RECIPE_FILES = ("kernels/{op}/__init__.py", "kernels/{op}/kernels.py", "kernels/{op}/configs.py",
                "kernels/{op}/cases.py", "kernels/{op}/spec.py", "kernels/{op}/DESIGN.md",
                "roofline/model/cost.py", "roofline/model/ops.py", "roofline/model/sweeps.py",
                "tests/test_{op}.py")
RECIPE_NAMES = ('KERNEL = "rmsnorm"', "`rmsnorm_ref`", "`VARIANTS`", "`TOLERANCES`", "`compile_cases(arch)`",
                "`REQUIRED_GATES`", "`GATE_EXCEPTIONS`", "`SPEC = OpSpec(...)`",
                "`rmsnorm_cost(**shape, dtype)`", '`Op("rmsnorm", ...)`')


def _recipe_steps() -> str:
    """The numbered steps of the recipe: from its first step to the optional extras."""
    text = RECIPE.read_text()
    return text[text.index("\n1. "):text.index("\nOptional:")]


def test_the_recipe_names_exactly_the_files_the_test_below_checks():
    import re

    steps = _recipe_steps()
    named = re.findall(r"^\s*\d+\. `([^`]+)`", steps, flags=re.M)  # each step starts with its file
    assert named == [f.format(op="rmsnorm") for f in RECIPE_FILES]
    assert f"these {len(RECIPE_FILES)} files and no others" in " ".join(RECIPE.read_text().split())
    assert [name for name in RECIPE_NAMES if name not in steps] == []


@pytest.mark.parametrize("op", KERNELS)
def test_every_op_has_the_files_the_readme_recipe_names(op):
    """docs/adding-a-kernel.md: every file it names, with what it says each holds; so the recipe stays
    true for every op in the table."""
    from kernels._lib.spec import OpSpec, op_spec
    from roofline.model.ops import OPS
    from roofline.model.sweeps import sweep_points

    for path in RECIPE_FILES:
        assert (ROOT / path.format(op=op)).is_file(), path.format(op=op)
    module = importlib.import_module(f"kernels.{op}")
    assert isinstance(module.VARIANTS, dict) and module.VARIANTS
    assert isinstance(module.TOLERANCES, dict) and module.TOLERANCES
    assert any(name.endswith("_ref") and callable(getattr(module, name)) for name in dir(module))
    assert importlib.import_module(f"kernels.{op}.configs").KERNEL == op
    cases = importlib.import_module(f"kernels.{op}.cases")
    assert callable(cases.compile_cases) and isinstance(cases.REQUIRED_GATES, dict)
    assert isinstance(cases.GATE_EXCEPTIONS, dict)
    spec = op_spec(op)
    assert isinstance(spec, OpSpec) and spec.kernel == op and spec.gpu_cases and spec.baseline.variant
    assert OPS[op].cost.__module__ == "roofline.model.cost"
    for preset in ("smoke", "quick", "full"):
        assert any(p.kernel == op for p in sweep_points(preset, "cpu")), preset


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "scripts").glob("*.py")))
def test_each_script_runs_as_a_file_from_anywhere(tmp_path, script):
    """The scripts are run as files (``python scripts/x.py``, as gpu-check.sh and the docs do), so the
    project is not on ``sys.path`` unless the script puts it there before its first project import: a
    module-level ``from roofline...`` above that line broke gpu-check's every Python step."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 2), proc.stderr[-2000:]
    assert (proc.stdout + proc.stderr).strip()  # its usage, whatever its form
