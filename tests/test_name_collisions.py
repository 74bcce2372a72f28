"""ridgebench's packages ``kernels`` and ``bench`` share their names with PyPI packages; Hugging Face's
``kernels`` (a kernel hub) is the one a GPU machine is likely to have. Every documented way of running
ridgebench must import ridgebench's own, with the other one installed ahead of it (on PYTHONPATH, which
comes before site-packages); a user's code that picks up the other one gets a clear error.

Two impostors: a fake ``kernels`` and ``bench`` (always), and the real PyPI ``kernels`` when
``RIDGEBENCH_PYPI_KERNELS`` names a folder it was installed into (``pip install --target DIR kernels``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_docs import script_env

ROOT = Path(__file__).resolve().parents[1]

PROBE = '''
import json, os, kernels, bench
with open(os.environ["PROBE_OUT"], "w") as f:
    json.dump({"kernels": kernels.__file__, "bench": bench.__file__}, f)
PROVIDERS = {"probe": {"softmax": lambda x: x.softmax(-1)}}
'''


@pytest.fixture(params=["fake", "pypi"])
def foreign(request, tmp_path) -> Path:
    """A site folder whose ``kernels`` is not ridgebench's."""
    if request.param == "pypi":
        folder = os.environ.get("RIDGEBENCH_PYPI_KERNELS")
        if not folder or not (Path(folder) / "kernels" / "__init__.py").is_file():
            pytest.skip("the PyPI kernels package is not at hand: set RIDGEBENCH_PYPI_KERNELS=DIR after "
                        "`pip install --target DIR kernels`")
        return Path(folder)
    site = tmp_path / "site"
    for name in ("kernels", "bench"):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text(f"IMPOSTOR = {name!r}\n")
    return site


def run(args, foreign: Path, cwd: Path = ROOT, extra_path: tuple[Path, ...] = (), **env):
    environ = dict(script_env(), **env)
    environ["PYTHONPATH"] = os.pathsep.join(str(p) for p in (foreign, *extra_path))
    return subprocess.run(args, cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)


def test_the_impostor_really_comes_first(foreign):
    proc = run([sys.executable, "-c", "import kernels; print(kernels.__file__)"], foreign, cwd=foreign.parent)
    assert proc.returncode == 0 and proc.stdout.strip().startswith(str(foreign)), proc.stderr


def test_pytest_imports_ours(foreign):
    proc = run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/test_packaging.py",
                "-k", "imported_from_the_checkout"], foreign)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_the_bench_script_and_a_users_provider_module_import_ours(foreign, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "probe_provider.py").write_text(PROBE)
    out = tmp_path / "probe.json"
    proc = run(["./scripts/bench.sh", "--provider-module", "probe_provider", "--providers", "torch,probe",
                "--kernels", "softmax", "--sweep", "smoke", "--collect-only", "-q"],
               foreign, extra_path=(user,), PROBE_OUT=str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seen = json.loads(out.read_text())
    assert seen == {name: str(ROOT / name / "__init__.py") for name in ("kernels", "bench")}


def test_python_m_audit_and_roofline_import_ours(foreign):
    audit = run([sys.executable, "-m", "kernels.audit", "--help"], foreign)
    assert audit.returncode == 0 and "--arch" in audit.stdout, audit.stderr[-3000:]
    roofline = run([sys.executable, "-m", "roofline", "hardware", "A100-SXM4-80GB"], foreign)
    assert roofline.returncode == 0 and "A100" in roofline.stdout, roofline.stderr[-3000:]


@pytest.mark.parametrize("script", ["scripts/launch_cost.py", "scripts/timing_crosscheck.py"])
def test_python_scripts_put_the_checkout_first(foreign, script):
    code = (f"import runpy, sys; sys.argv = [{script!r}, '--help']\n"
            f"try:\n    runpy.run_path({script!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "import kernels; print(kernels.__file__)")
    proc = run([sys.executable, "-c", code], foreign)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(ROOT / "kernels" / "__init__.py")


def test_a_users_code_that_picks_up_the_other_kernels_gets_a_clear_error(foreign, tmp_path):
    # the other kernels ahead of the checkout, outside it: `import kernels` finds it first, and ridgebench's
    # bench then refuses to run on it (a foreign `bench` as well would leave none of our code to speak)
    if (foreign / "bench").exists():
        foreign = tmp_path / "kernels-only"
        (foreign / "kernels").mkdir(parents=True)
        (foreign / "kernels" / "__init__.py").write_text("IMPOSTOR = 'kernels'\n")
    proc = run([sys.executable, "-c", "import kernels, bench"], foreign, cwd=tmp_path, extra_path=(ROOT,))
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("ImportError: ridgebench: the package `kernels` is " + str(foreign)), message
    assert f"put {ROOT} first on PYTHONPATH" in message and "pip install kernels" in message
    # the other order on the same path: no error, ours imported (the check does not misfire)
    proc = run([sys.executable, "-c", "import bench, kernels; print(kernels.__file__)"], ROOT, cwd=tmp_path,
               extra_path=(foreign,))
    assert proc.returncode == 0 and proc.stdout.strip() == str(ROOT / "kernels" / "__init__.py"), proc.stderr
