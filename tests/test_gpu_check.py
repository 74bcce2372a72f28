"""scripts/gpu-check.sh without a GPU: its time boxes fit its budget by construction (--plan, in both
modes), the real run and the dry run share one sweep command (one ``pytest --benchmark`` run, each kernel
family in its own process), every step the script runs has a box, and a set-up that stops at a hard
floor is a FAILED step in the summary (nothing else runs). The dry run itself runs in CI (.ci/run)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.test_env_setup import _offline_env

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu-check.sh"


def _plan(*args: str) -> dict:
    proc = subprocess.run(["bash", str(SCRIPT), "--plan", *args], capture_output=True, text=True, timeout=30)
    out = proc.stdout
    budget, reserve, grace = map(int, re.search(
        r"budget: (\d+)s \(reserve (\d+)s for the summary, grace (\d+)s", out).groups())
    boxes = {m[0]: int(m[1]) for m in re.findall(r"^step (\S+)\s+(\d+)s$", out, re.M)}
    return {"rc": proc.returncode, "budget": budget, "reserve": reserve, "grace": grace, "boxes": boxes,
            "fits": re.search(r"fits: (\w+)", out)[1]}


@pytest.mark.parametrize("mode", [(), ("--dry-run",)], ids=["gpu", "dry-run"])
def test_the_time_boxes_fit_the_budget(mode):
    plan = _plan(*mode)
    total = sum(plan["boxes"].values())
    assert total + plan["grace"] + plan["reserve"] <= plan["budget"], plan
    assert plan["fits"] == "yes" and plan["rc"] == 0
    assert all(b > 0 for b in plan["boxes"].values())
    if not mode:
        assert plan["budget"] <= 480  # the 8 minutes the GPU machine is lent for


def test_every_step_the_script_runs_has_a_box():
    text = SCRIPT.read_text()
    called = set(re.findall(r"^\s*step ([a-z0-9-]+) ", text, re.M)) | {"setup"}
    assert called == set(_plan()["boxes"]) == set(_plan("--dry-run")["boxes"])


def test_one_sweep_run_in_the_per_family_layout_in_both_modes():
    text = SCRIPT.read_text()
    sweeps = re.findall(r"^step sweep (.*(?:\\\n.*)*)", text, re.M)
    assert len(sweeps) == 1, "one sweep command for the real run and the dry run"
    command = sweeps[0]
    assert "--benchmark" in command and "--isolate=on" in command and "--kernels" not in command
    assert "timeout -s INT" in text  # pytest gets KeyboardInterrupt and still writes its reports
    assert "RIDGEBENCH_AUTOTUNE=0" in text


def test_a_hard_floor_stops_the_check_at_set_up_and_the_summary_says_why(tmp_path):
    env = _offline_env(tmp_path, {"pytest-benchmark": "5.2.0"})
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = (out / "summary.txt").read_text()
    assert re.search(r"^setup\s+FAILED", summary, re.M), summary
    assert "set-up stopped: pytest-benchmark 5.2.0 is installed" in summary
    assert "gpu-check: FAILED" in summary and "compiled-tests" not in summary


def test_bad_arguments_are_exit_2():
    proc = subprocess.run(["bash", str(SCRIPT), "--sweep"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "unknown argument --sweep" in proc.stderr
