"""The facts of a ROCm run (AMD Instinct under a ROCm build of torch), read in one place.

On ROCm, torch keeps the CUDA spelling: the device is ``"cuda"``, ``torch.cuda`` works (HIP graphs behind
``torch.cuda.CUDAGraph``, events, streams), and what tells the vendor apart is ``torch.version.hip`` (a
version string; ``None`` on a CUDA or CPU build). The device name reads "AMD Instinct MI300X"; its
properties carry ``gcnArchName`` ("gfx942:sramecc+:xnack-"), and its ``L2_cache_size`` is one XCD's L2,
not the 256 MB Infinity Cache behind it. nvidia-smi is absent: ``amd-smi`` (ROCm 6 and later) or
``rocm-smi`` (older) stand in.

Everything here takes what it reads as arguments with defaults (``hip``, ``which``, ``run``), so the tests
run the ROCm path on a CPU with the device facts forced (tests/test_rocm.py). **Checked by simulation
only: no ROCm machine has run it yet.**
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import torch

from roofline.model.arch import hip_target
from roofline.model.hardware import MiB, UnknownHardwareError, lookup_device

# What a flush must cover on an AMD part with no preset: the Infinity Cache of every CDNA3/CDNA4 part
# (MI300X, MI325X, MI355X: 256 MB), larger than any L2 a device reports.
DEFAULT_INFINITY_CACHE_BYTES = 256 * MiB
# The GPU's own tool, first found wins: amd-smi (ROCm 6+), rocm-smi (older ROCm).
SMI_TOOLS = ("amd-smi", "rocm-smi")
# What each tool prints for a device snapshot (provenance, gpu-check's before/after).
SMI_SNAPSHOT = {"amd-smi": ["amd-smi", "static", "--json"],
                "rocm-smi": ["rocm-smi", "--showallinfo", "--json"]}


def hip_version(hip: str | None | object = ...) -> str | None:
    """``torch.version.hip`` (None on a CUDA or CPU build of torch); ``hip`` overrides it (tests)."""
    return getattr(torch.version, "hip", None) if hip is ... else hip  # type: ignore[return-value]


def is_rocm(hip: str | None | object = ...) -> bool:
    """Whether this torch is a ROCm build (its ``"cuda"`` devices are AMD GPUs)."""
    return bool(hip_version(hip))


def gcn_arch(props: object) -> str | None:
    """The AMD target of a device's properties: ``"gfx942"`` from ``gcnArchName``
    ``"gfx942:sramecc+:xnack-"``; None when the properties have none (an NVIDIA device)."""
    return hip_target(getattr(props, "gcnArchName", None))


def flush_cache_bytes(device_name: str, reported_l2: int | None) -> tuple[int, str]:
    """``(bytes, why)``: the cache a timed call's flush must cover on an AMD device: the preset's
    Infinity Cache when the name matches one (:func:`roofline.model.hardware.lookup_device`), else
    :data:`DEFAULT_INFINITY_CACHE_BYTES`; never less than the L2 the device reports."""
    try:
        spec = lookup_device(device_name)
        infinity, source = spec.infinity_cache_bytes, f"the {spec.name} preset's Infinity Cache"
    except UnknownHardwareError:
        infinity, source = None, None
    if not infinity:
        infinity = DEFAULT_INFINITY_CACHE_BYTES
        source = "no preset for this AMD device: the 256 MB Infinity Cache of CDNA3/CDNA4 parts assumed"
    if reported_l2 and reported_l2 > infinity:
        return int(reported_l2), "the L2 the device reports"
    return infinity, f"{source} ({infinity // MiB} MiB; the device reports only its L2: {reported_l2} B)"


def smi_tool(which: Callable[[str], str | None] | None = None) -> tuple[str | None, str]:
    """``(tool, why)``: the AMD GPU tool on PATH (``amd-smi`` before ``rocm-smi``), or ``(None, reason)``.
    ``which``: :func:`shutil.which` by default."""
    which = which or shutil.which
    for tool in SMI_TOOLS:
        if which(tool):
            return tool, f"{tool} found on PATH"
    return None, f"neither {' nor '.join(SMI_TOOLS)} is on PATH: no clocks, power or driver version recorded"


def smi_info(which: Callable[[str], str | None] | None = None,
             run: Callable[..., subprocess.CompletedProcess] | None = None) -> dict:
    """The AMD tool's device snapshot for provenance: ``{"available": True, "tool", "command", "output"}``
    (its JSON text, cut to 20,000 characters), or ``{"available": False, "reason"}``. ``which`` and
    ``run``: :func:`shutil.which` and :func:`subprocess.run` by default."""
    run = run or subprocess.run
    tool, why = smi_tool(which)
    if tool is None:
        return {"available": False, "reason": why}
    command = SMI_SNAPSHOT[tool]
    try:
        proc = run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"available": False, "tool": tool, "reason": f"{' '.join(command)} failed: {exc}"}
    if proc.returncode != 0:
        return {"available": False, "tool": tool,
                "reason": f"{' '.join(command)} exited {proc.returncode}: {proc.stderr.strip()[:300]}"}
    return {"available": True, "tool": tool, "command": " ".join(command), "output": proc.stdout[:20000]}


def cudnn_missing(hip: str | None | object = ...) -> str | None:
    """Why SDPA's cuDNN backend cannot run here: it does not exist on ROCm (flash and memory-efficient
    attention do: AOTriton / Composable Kernel builds); None on a CUDA build."""
    if is_rocm(hip):
        return f"sdpa-cudnn: cuDNN attention does not exist on ROCm (torch.version.hip = {hip_version(hip)})"
    return None
