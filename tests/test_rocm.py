"""The ROCm runtime path, run on this CPU with an AMD Instinct's device facts forced (issue 24): a ROCm
build of torch (``torch.version.hip`` set), a ``"cuda"`` device named "AMD Instinct MI300X" whose
``gcnArchName`` is gfx942 and whose L2 is 4 MB, and no nvidia-smi. Checked: the device's architecture and
launch plan, the run directory's device slug, the flush sized from the Infinity Cache, provenance with
amd-smi / rocm-smi or the reason, SDPA's backends, and gpu-check's plan. Simulation only: no ROCm machine
has run this."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import types
from pathlib import Path

import pytest
import torch

from bench import provenance, rocm, session
from bench.providers import BUILTIN
from bench.timing import flush_bytes
from kernels._lib import device
from kernels.attention.configs import HIP_PREFILL_CONFIGS, PREFILL_CONFIGS, prefill_config
from roofline.model.hardware import MiB
from roofline.rundir import device_slug

ROOT = Path(__file__).resolve().parents[1]
HIP = "6.2.41133-dd7f95766"
MI300X = types.SimpleNamespace(name="AMD Instinct MI300X", gcnArchName="gfx942:sramecc+:xnack-", major=9,
                               minor=4, multi_processor_count=304, L2_cache_size=4 * MiB,
                               total_memory=192 * 1024**3, uuid="")


@pytest.fixture
def on_rocm(monkeypatch):
    """This process as a ROCm torch with one MI300X visible (device facts only: tensors stay on the CPU)."""
    monkeypatch.delenv("RIDGEBENCH_MACHINE", raising=False)
    monkeypatch.setattr(torch.version, "hip", HIP, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: None)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index=0: MI300X)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda dev=None: (9, 4))
    monkeypatch.setattr(rocm.shutil, "which", lambda tool: None)  # no nvidia-smi, amd-smi or rocm-smi
    return MI300X


def test_rocm_is_told_apart_by_torch_version_hip(on_rocm, monkeypatch):
    assert rocm.is_rocm() and rocm.hip_version() == HIP
    assert rocm.gcn_arch(on_rocm) == "gfx942"
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    assert not rocm.is_rocm() and rocm.gcn_arch(types.SimpleNamespace(name="NVIDIA H100")) is None


def test_the_device_arch_is_the_amd_target_and_picks_the_hip_configs(on_rocm):
    dev = torch.device("cuda", 0)
    assert device.arch(dev) == "gfx942" and device.is_hip(device.arch(dev))
    assert device.num_sms(dev) == 304  # compute units
    cfg = prefill_config(128, 4096, 2, device.arch(dev))
    assert cfg in HIP_PREFILL_CONFIGS[128] and cfg.kwargs["waves_per_eu"] == 2
    assert prefill_config(128, 4096, 2, 90) in PREFILL_CONFIGS[128]  # NVIDIA unchanged


def test_device_slug():
    assert device_slug("AMD Instinct MI300X") == "amd-instinct-mi300x"
    assert device_slug("AMD Instinct MI300X VF") == "amd-instinct-mi300x-vf"


@pytest.mark.parametrize("name, l2, expected", [
    ("AMD Instinct MI300X", 4 * MiB, 256 * MiB),   # the preset's Infinity Cache, not the reported L2
    ("AMD Instinct MI250X", 8 * MiB, 256 * MiB),   # a preset without one: the CDNA3/4 figure, with why
    ("AMD Instinct MI400", None, 256 * MiB),       # no preset at all
    ("AMD Instinct MI300X", 512 * MiB, 512 * MiB),  # a larger reported cache always wins
])
def test_flush_covers_the_infinity_cache(name, l2, expected):
    nbytes, why = rocm.flush_cache_bytes(name, l2)
    assert nbytes == expected and why
    assert flush_bytes(nbytes) >= 2 * expected


def test_the_session_flushes_twice_the_infinity_cache(on_rocm, tmp_path):
    s = session.open_session(run_dir=tmp_path, worker_id=None, sweep="smoke",
                             started=dt.datetime.now(dt.timezone.utc), force_interpreter=True)
    assert s.device == torch.device("cuda", 0) and s.device_name == "AMD Instinct MI300X"
    assert s.cache_bytes == 256 * MiB and s.cache_name == "Infinity Cache"
    assert s.flush_nbytes == 512 * MiB  # the 4 MB L2 alone would have flushed 8 MiB


def _collect(tmp_path) -> dict:
    return provenance.collect(root=ROOT, device=torch.device("cuda", 0), device_name="AMD Instinct MI300X",
                              command_line=["pytest"], sweep="smoke",
                              started=dt.datetime.now(dt.timezone.utc))


def test_provenance_without_an_amd_tool_says_so(on_rocm, tmp_path):
    doc = _collect(tmp_path)
    assert doc["versions"]["hip_runtime"] == HIP and "nvml_start" not in doc
    assert doc["device"]["gcn_arch"] == "gfx942" and doc["device"]["sm_count"] == 304
    assert doc["device"]["flush_cache_bytes"] == 256 * MiB and "Infinity Cache" in doc["device"][
        "flush_cache_reason"]
    assert doc["smi_start"] == {"available": False, "reason": "neither amd-smi nor rocm-smi is on PATH: no "
                                "clocks, power or driver version recorded"}


@pytest.mark.parametrize("tool", ["amd-smi", "rocm-smi"])
def test_provenance_with_amd_smi_or_rocm_smi(on_rocm, monkeypatch, tmp_path, tool):
    calls, real_run = [], subprocess.run

    def run(command, **kw):  # the AMD tool answers; git (provenance's commit) runs for real
        if command[0] != tool:
            return real_run(command, **kw)
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, stdout='{"gpu": 0}', stderr="")

    monkeypatch.setattr(rocm.shutil, "which", lambda t: f"/opt/rocm/bin/{t}" if t == tool else None)
    monkeypatch.setattr(rocm.subprocess, "run", run)
    doc = _collect(tmp_path)
    assert doc["smi_start"]["available"] and doc["smi_start"]["tool"] == tool
    assert calls == [rocm.SMI_SNAPSHOT[tool]] and doc["smi_start"]["output"] == '{"gpu": 0}'


def test_a_failing_amd_tool_is_recorded_not_raised(monkeypatch):
    def run(command, **kw):
        return subprocess.CompletedProcess(command, 2, stdout="", stderr="amdgpu driver not loaded")

    info = rocm.smi_info(which=lambda t: "/usr/bin/amd-smi", run=run)
    assert not info["available"] and "exited 2: amdgpu driver not loaded" in info["reason"]


def test_sdpa_on_rocm_has_no_cudnn_backend(on_rocm):
    assert "does not exist on ROCm" in BUILTIN["sdpa-cudnn"].unavailable("cuda")
    assert BUILTIN["sdpa-flash"].unavailable("cuda") is None  # AOTriton / CK flash attention
    assert BUILTIN["sdpa-efficient"].unavailable("cuda") is None


def test_sdpa_cudnn_on_a_cuda_build_is_untouched(monkeypatch):
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    assert rocm.cudnn_missing() is None


def _fake_tools(tmp_path: Path, *tools: str) -> dict:
    """An environment whose PATH holds stand-ins for ``tools`` and the system's own commands."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).write_text("#!/bin/sh\necho fake\n")
        (bin_dir / tool).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}


@pytest.mark.parametrize("tools, chosen", [
    (("amd-smi", "rocm-smi"), "amd-smi"),
    (("rocm-smi",), "rocm-smi"),
    (("nvidia-smi", "amd-smi"), "nvidia-smi"),
    ((), "none"),
])
def test_gpu_check_plan_picks_the_gpu_tool(tmp_path, tools, chosen):
    if any(Path(d, "nvidia-smi").exists() for d in ("/usr/bin", "/bin")):
        pytest.skip("this machine has a real nvidia-smi on /usr/bin")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh"), "--plan"], capture_output=True,
                          text=True, timeout=30, env=_fake_tools(tmp_path, *tools))
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("smi: "))
    assert line.startswith(f"smi: {chosen} (")
    if chosen == "none":
        assert "snapshots and clocks skipped" in line
    assert "step smi-before" in proc.stdout and "step smi-after" in proc.stdout


def test_ceilings_keep_the_presets_l2_on_rocm(on_rocm):
    """The memory probes size from the Infinity Cache (16x it), and the datasheet keeps its own L2 (the
    session's cache figure on ROCm is the Infinity Cache, not an L2 the device reported)."""
    from bench.ceilings import roofs_and_document

    measured = {"mem_bandwidth": 4.0e12, "peak_flops": {"tensor16": 9.0e14}, "method": "simulated"}
    roofs, doc = roofs_and_document(torch.device("cuda", 0), "AMD Instinct MI300X", 256 * MiB, measured)
    assert doc["datasheet"]["name"] == "MI300X" and doc["datasheet"]["l2_bytes"] == 4 * MiB
    assert doc["datasheet"]["infinity_cache_bytes"] == 256 * MiB


def test_gpu_check_versions_name_the_amd_target(on_rocm, tmp_path, capsys):
    """gpu-check's step 1 (versions.json) records the HIP runtime and the device's gfx target."""
    import importlib.util
    import json

    path = ROOT / "scripts" / "gpu_check_summary.py"
    spec = importlib.util.spec_from_file_location("gpu_check_summary", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.versions(tmp_path / "versions.json") == 0
    doc = json.loads((tmp_path / "versions.json").read_text())
    assert doc["hip_runtime"] == HIP and doc["devices"][0]["gcn_arch"] == "gfx942"
    assert doc["devices"][0]["name"] == "AMD Instinct MI300X" and doc["devices"][0]["sm_count"] == 304
