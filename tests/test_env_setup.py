"""scripts/env.sh's install decisions (scripts/deps.py) with fake installed versions, and env.sh itself
on an environment that already has everything: it must finish without pip and without the network."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("ridgebench_deps", ROOT / "scripts" / "deps.py")
deps = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = deps  # dataclasses look their module up while the class is built
_spec.loader.exec_module(deps)

# What the GPU machine had: CUDA torch, the triton it pins, no ruff.
GPU_MACHINE = {"torch": "2.11.0+cu130", "triton": "3.6.0", "numpy": "2.4.1", "matplotlib": "3.10.0",
               "pytest": "8.4.2", "pytest-benchmark": "5.3.1", "pytest-xdist": "3.8.0",
               "hypothesis": "6.140.0", "tomli": "2.2.1"}


def _plan(installed: dict[str, str], ci: bool = False):
    return deps.plan(deps.requirements(), installed.get, ci=ci)


def test_requirements_are_the_projects_and_dev_extras_only():
    names = {r.name for r in deps.requirements()}
    assert {"torch", "triton", "numpy", "pytest-benchmark", "hypothesis", "ruff", "pytest-xdist"} <= names
    assert "nvidia-ml-py" not in names  # the gpu extra is never installed by the set-up


def test_a_complete_gpu_machine_installs_nothing_and_skips_lint_outside_ci():
    plan = _plan(GPU_MACHINE)
    assert plan.install == [] and plan.problems == []
    assert plan.skipped == ["ruff: not installed; lint skipped outside CI"]


def test_ci_requires_ruff():
    assert [r.split(">")[0] for r in _plan(GPU_MACHINE, ci=True).install] == ["ruff"]
    assert _plan({**GPU_MACHINE, "ruff": "0.17.6"}, ci=True).install == []


def test_torch_is_never_reinstalled_when_present_but_installed_first_when_absent():
    without_torch = {k: v for k, v in GPU_MACHINE.items() if k not in ("torch", "triton")}
    plan = _plan(without_torch)
    assert plan.install[0].startswith("torch>=") and any(r.startswith("triton") for r in plan.install)
    old = _plan({**GPU_MACHINE, "torch": "2.6.0+cu124"})
    assert old.install == [] and len(old.problems) == 1 and "torch 2.6.0+cu124" in old.problems[0]


@pytest.mark.parametrize("name,version", [("pytest-benchmark", "5.2.3"), ("triton", "3.5.1"),
                                          ("numpy", "1.23.5"), ("hypothesis", None)])
def test_too_old_or_missing_packages_are_installed(name, version):
    installed = {**GPU_MACHINE, name: version}
    assert [r for r in _plan(installed).install if r.startswith(name)], _plan(installed)


def test_nightly_triton_and_prerelease_torch_count_as_installed(monkeypatch):
    assert _plan({**GPU_MACHINE, "torch": "2.12.0.dev20260301+cu130"}).install == []
    real_version = deps.metadata.version

    def fake_version(dist):
        if dist == "triton":
            raise deps.metadata.PackageNotFoundError(dist)
        return "3.7.0+git1234" if dist == "pytorch-triton" else real_version(dist)

    monkeypatch.setattr(deps.metadata, "version", fake_version)
    assert deps.installed_version("triton") == "3.7.0+git1234"


def test_cli_usage_and_check(capsys):
    assert deps.main([]) == 2
    assert deps.main(["check"]) == 0  # this test environment has everything


def _fake_venv(tmp_path: Path, env_prefix: str = "") -> Path:
    """A folder env.sh takes for an existing venv, whose python is this test run's python."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\n{env_prefix}exec "{sys.executable}" "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    return venv


def test_env_sh_on_a_complete_environment_needs_no_network(tmp_path):
    """A venv that already exists and has everything (here: this python, linked as the venv's): env.sh
    sets $PY and runs no pip, with every index unreachable."""
    venv = _fake_venv(tmp_path)
    env = {**os.environ, "RIDGEBENCH_VENV": str(venv), "PIP_CONFIG_FILE": os.devnull,
           "RIDGEBENCH_DRY_RUN": "1",  # safety net: if anything were missing, fail without installing
           "PIP_INDEX_URL": "http://127.0.0.1:9/", "PIP_NO_INDEX": "1"}
    env.pop("PIP_FIND_LINKS", None)
    env.pop("CI", None)
    proc = subprocess.run(["bash", "-c", 'source scripts/env.sh && echo "PY=$PY"'], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"PY={venv}/bin/python"
    assert "installing" not in proc.stderr


def test_env_sh_dry_run_names_what_it_would_install(tmp_path):
    """CI=true on an environment without ruff: the dry run says it would install ruff, and installs
    nothing. (A fake python hides ruff from the package metadata.)"""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import importlib.metadata as m\n_real = m.version\n"
        "def version(name):\n    if name == 'ruff':\n        raise m.PackageNotFoundError(name)\n"
        "    return _real(name)\nm.version = version\n")
    venv = _fake_venv(tmp_path, f'PYTHONPATH="{hide}" ')
    env = {**os.environ, "RIDGEBENCH_VENV": str(venv), "RIDGEBENCH_DRY_RUN": "1", "CI": "true",
           "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/"}
    proc = subprocess.run(["bash", "-c", "source scripts/env.sh"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "installing what is missing: ruff>=" in proc.stderr and "dry run, nothing installed" in proc.stderr


# ------------------------------------------------------------------------------------------------
# Offline: pip cannot reach an index; each unmet floor is hard (stop, one line) or soft (warn, go on)
# ------------------------------------------------------------------------------------------------

def test_every_requirement_has_a_floor_decision_with_a_reason():
    names = {deps._name(r) for r in deps.requirements(extras=("dev", "gpu"))} - {"nvidia-ml-py"}
    assert names <= set(deps.FLOORS), names - set(deps.FLOORS)
    assert all(why for _, why in deps.FLOORS.values())
    assert deps.is_hard("pytest-benchmark") and deps.is_hard("triton") and not deps.is_hard("matplotlib")


def test_a_set_at_the_floors_needs_nothing():
    floors = {deps._name(r): str(next(iter(r.specifier))).lstrip(">=") for r in deps.requirements()
              if r.specifier}
    assert _plan(floors).install == [] and deps.unmet(deps.requirements(), floors.get, ci=False) == []


def _offline_env(tmp_path: Path, fake_versions: dict[str, str | None]) -> dict:
    """A venv whose python is this one, with ``fake_versions`` in place of the installed ones (None:
    absent), and pip pointed at an unreachable index with no config files: pip fails at once and
    installs nothing."""
    hide = tmp_path / "fake"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import importlib.metadata as m\n_real = m.version\n"
        f"FAKE = {fake_versions!r}\n"
        "def version(name):\n    if name in FAKE:\n        if FAKE[name] is None:\n"
        "            raise m.PackageNotFoundError(name)\n        return FAKE[name]\n"
        "    return _real(name)\nm.version = version\n")
    venv = _fake_venv(tmp_path, f'PYTHONPATH="{hide}" ')
    env = {**os.environ, "RIDGEBENCH_VENV": str(venv), "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
           "PIP_INDEX_URL": "http://127.0.0.1:9/", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for key in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "CI", "RIDGEBENCH_DRY_RUN"):
        env.pop(key, None)
    return env


def _source_env_sh(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", 'source scripts/env.sh && echo "PY=$PY" && '
                           'echo "SOFT=$RIDGEBENCH_SOFT_FLOORS" && echo "STEP RAN"'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_offline_hard_floor_stops_before_any_step_with_one_line(tmp_path):
    proc = _source_env_sh(_offline_env(tmp_path, {"pytest-benchmark": "5.2.0"}))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "STEP RAN" not in proc.stdout
    stops = [line for line in proc.stderr.splitlines() if line.startswith("ridgebench: set-up stopped: ")]
    assert len(stops) == 1, proc.stderr
    assert ("pytest-benchmark 5.2.0 is installed; ridgebench wants pytest-benchmark>=5.3 (hard floor"
            in stops[0])


def test_offline_soft_floor_warns_goes_on_and_is_marked_for_provenance(tmp_path):
    proc = _source_env_sh(_offline_env(tmp_path, {"matplotlib": "3.6.0", "pytest-xdist": None}))
    assert proc.returncode == 0, proc.stderr
    assert "STEP RAN" in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if "warning, going on" in line]
    assert len(warnings) == 2 and any("matplotlib 3.6.0 is installed" in w for w in warnings), proc.stderr
    soft = next(line for line in proc.stdout.splitlines() if line.startswith("SOFT="))
    assert "matplotlib 3.6.0 (wants matplotlib>=3.7)" in soft and "pytest-xdist absent" in soft


def test_dry_run_shows_the_decision_for_each_unmet_floor(tmp_path):
    env = _offline_env(tmp_path, {"pytest-benchmark": "5.2.0", "matplotlib": None})
    env["RIDGEBENCH_DRY_RUN"] = "1"
    proc = _source_env_sh(env)
    assert proc.returncode == 0, proc.stderr
    assert "if pip cannot install it: stop: pytest-benchmark 5.2.0" in proc.stderr
    assert "if pip cannot install it: warn and go on: matplotlib is not installed" in proc.stderr


def test_a_python_without_ensurepip_still_sets_up(tmp_path):
    """A host python whose ``-m venv`` fails for want of ensurepip (Debian without python3-venv): the
    venv is made without pip and reuses the host's packages; nothing is missing, so nothing installs."""
    host = tmp_path / "host-python"
    host.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "venv" ] && [ "$3" != "--without-pip" ]; then\n'
        '  echo "Error: ensurepip is not available" >&2; exit 1\nfi\n'
        f'exec "{sys.executable}" "$@"\n')
    host.chmod(0o755)
    venv = tmp_path / "venv"
    env = {**os.environ, "RIDGEBENCH_VENV": str(venv), "PYTHON": str(host), "RIDGEBENCH_DRY_RUN": "1",
           "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}
    env.pop("CI", None)
    proc = _source_env_sh(env)
    assert proc.returncode == 0, proc.stderr
    assert "no ensurepip" in proc.stderr and (venv / "bin" / "python").exists()
    assert f"PY={venv}/bin/python" in proc.stdout and "installing" not in proc.stderr
