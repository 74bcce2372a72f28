"""What ran where: device, drivers, library versions, clocks, CPU, git commit, time and command line.

Everything here is best effort and never fails a run: a field that cannot be read holds the reason.
NVML (``pynvml``, from the ``nvidia-ml-py`` package) is optional; without it the clocks and throttle
reasons are recorded as unavailable.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

from bench import rocm
from roofline.model import machine

# NVML's clock-event ("throttle") reason bits, nvml.h.
THROTTLE_REASONS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def decode_throttle_reasons(mask: int) -> list[str]:
    """Names of the reason bits set in an NVML throttle mask (unknown bits as hex)."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    unknown = mask & ~sum(THROTTLE_REASONS)
    if unknown:
        names.append(hex(unknown))
    return names


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_info(root: Path) -> dict:
    """Commit, branch and whether the working tree had changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    try:
        return {"commit": git("rev-parse", "HEAD"), "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": f"git unavailable: {exc}"}


CPU_FLAGS: tuple[str, ...] = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile",
                               "amx_fp16")


def parse_cpuinfo(text: str) -> dict:
    """Model name, vendor, family, model, stepping and the flags of the first processor in ``text``
    (the contents of ``/proc/cpuinfo``)."""
    out: dict = {"flags": []}
    keys = {"model name": "model_name", "vendor_id": "vendor", "cpu family": "family", "model": "model",
            "stepping": "stepping", "flags": "flags", "features": "flags"}  # "Features": aarch64
    for line in text.splitlines():
        if not line.strip():
            if out.get("flags"):
                break  # the first processor is enough
            continue
        key, _, value = line.partition(":")
        name = keys.get(key.strip().lower())
        if name is None or (name in out and name != "flags"):
            continue
        value = value.strip()
        if name == "flags":
            out["flags"] = value.split()
        else:
            out[name] = int(value) if name in ("family", "model", "stepping") and value.isdigit() else value
    return out


def torch_cpu_report() -> dict:
    """torch's own view of the CPU: its kernel capability (AVX2, AVX512, ...) and oneDNN's bf16/fp16."""
    report: dict = {}

    def ask(key: str, fn) -> None:
        try:
            report[key] = fn()
        except Exception as exc:  # noqa: BLE001 - an older torch lacks some of these: record why
            report[key] = f"unavailable: {type(exc).__name__}: {exc}"

    ask("capability", lambda: torch.backends.cpu.get_cpu_capability())
    ask("mkldnn_available", lambda: bool(torch.backends.mkldnn.is_available()))
    ask("mkldnn_bf16", lambda: bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))
    ask("mkldnn_fp16", lambda: bool(torch.ops.mkldnn._is_mkldnn_fp16_supported()))
    for key in ("mkldnn_bf16", "mkldnn_fp16"):
        if isinstance(report[key], str):
            report[key] = None  # unknown, not False
    return report


def cpu_features(cpuinfo: str | None = None, torch_report: dict | None = None) -> dict:
    """The CPU features that decide its roofs and sweep dtype: ``flags`` (those of :data:`CPU_FLAGS` it
    has), ``family``/``model``/``vendor``, ``torch`` (:func:`torch_cpu_report`) and ``native``
    (:func:`roofline.model.roof.native_math`). Both inputs are injectable so that tests can fake other
    CPUs."""
    from roofline.model.roof import native_math

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    parsed = parse_cpuinfo(cpuinfo)
    have = set(parsed.get("flags") or ())
    doc = {"flags": [f for f in CPU_FLAGS if f in have],
           "flags_missing": [f for f in CPU_FLAGS if f not in have],
           **{k: parsed.get(k) for k in ("vendor", "family", "model", "stepping", "model_name")},
           "torch": torch_cpu_report() if torch_report is None else dict(torch_report)}
    if not cpuinfo:
        doc["note"] = "/proc/cpuinfo unreadable: no flags known"
    doc["native"] = native_math(doc)
    return doc


_FEATURES: dict | None = None


def this_cpu_features() -> dict:
    """:func:`cpu_features` of this machine, read once per process."""
    global _FEATURES
    if _FEATURES is None:
        _FEATURES = cpu_features()
    return _FEATURES


def cpu_info() -> dict:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"model": model, "logical_cores": os.cpu_count(), "usable_cores": usable,
            "torch_threads": torch.get_num_threads(), "machine": platform.machine()}


def cuda_device_info(index: int, props: object | None = None) -> dict:
    """The device's properties (``props``: ``torch.cuda.get_device_properties(index)`` by default). On
    ROCm (:mod:`bench.rocm`) ``sm_count`` counts compute units, ``gcn_arch`` names the target
    (``gfx942``) and ``flush_cache_bytes`` the Infinity Cache the flush covers."""
    props = torch.cuda.get_device_properties(index) if props is None else props
    info = {
        "index": index,
        "name": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "sm_count": props.multi_processor_count,
        "l2_bytes": getattr(props, "L2_cache_size", None),
        "total_memory_bytes": props.total_memory,
        "uuid": str(getattr(props, "uuid", "")) or None,
    }
    if rocm.is_rocm():
        info["gcn_arch"] = rocm.gcn_arch(props)
        info["flush_cache_bytes"], info["flush_cache_reason"] = rocm.flush_cache_bytes(props.name,
                                                                                      info["l2_bytes"])
    return info


def nvml_info(uuid: str | None) -> dict:
    """Clocks (MHz), throttle reasons, temperature and power of the GPU with ``uuid``, via NVML."""
    try:
        import pynvml
    except ImportError:
        return {"available": False, "reason": "pynvml not importable (pip install nvidia-ml-py)"}
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - any NVML failure means "not available", recorded
        return {"available": False, "reason": f"nvmlInit failed: {exc}"}
    out: dict = {"available": True}
    try:
        if uuid:
            key = uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"
            handle = pynvml.nvmlDeviceGetHandleByUUID(key)
        else:
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            out["note"] = "device matched by NVML index 0 (no UUID)"

        def field(name: str, fn, *args) -> None:
            try:
                value = fn(handle, *args)
                out[name] = value.decode() if isinstance(value, bytes) else value
            except Exception as exc:  # noqa: BLE001
                out[name] = f"unavailable: {exc}"

        field("sm_clock_mhz", pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_SM)
        field("mem_clock_mhz", pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_MEM)
        field("max_sm_clock_mhz", pynvml.nvmlDeviceGetMaxClockInfo, pynvml.NVML_CLOCK_SM)
        field("max_mem_clock_mhz", pynvml.nvmlDeviceGetMaxClockInfo, pynvml.NVML_CLOCK_MEM)
        field("temperature_c", pynvml.nvmlDeviceGetTemperature, pynvml.NVML_TEMPERATURE_GPU)
        field("power_mw", pynvml.nvmlDeviceGetPowerUsage)
        field("power_limit_mw", pynvml.nvmlDeviceGetEnforcedPowerLimit)
        reasons_fn = (getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
                      or pynvml.nvmlDeviceGetCurrentClocksThrottleReasons)
        field("throttle_mask", reasons_fn)
        if isinstance(out.get("throttle_mask"), int):
            out["throttle_reasons"] = decode_throttle_reasons(out["throttle_mask"])
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            out["driver_version"] = version.decode() if isinstance(version, bytes) else version
        except Exception as exc:  # noqa: BLE001
            out["driver_version"] = f"unavailable: {exc}"
    except Exception as exc:  # noqa: BLE001
        out = {"available": False, "reason": f"NVML query failed: {exc}"}
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001, S110
            pass
    return out


def collect(*, root: Path, device: torch.device, device_name: str, command_line: list[str],
            sweep: str, started: dt.datetime, sweep_dtype: dict | None = None) -> dict:
    """The ``provenance.json`` of one process (one device). ``sweep_dtype``: the dtype the sweep runs in
    and why (``{"dtype", "reason"}``)."""
    cuda = device.type == "cuda"
    doc: dict = {
        "timestamp_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command_line": command_line,
        "cwd": os.getcwd(),
        "sweep": sweep,
        "device_kind": device.type,
        "device_name": device_name,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "triton": _version("triton"),
            "pytest": _version("pytest"),
            "pytest-benchmark": _version("pytest-benchmark"),
            "numpy": _version("numpy"),
            "cuda_runtime": torch.version.cuda,
            "hip_runtime": rocm.hip_version(),
            "cudnn": torch.backends.cudnn.version() if cuda else None,
        },
        "platform": platform.platform(),
        "cpu": {**cpu_info(), "features": this_cpu_features()},
        "sweep_dtype": sweep_dtype,
        "machine_forced": machine.describe(),
        "git": git_info(root),
        "env": {k: os.environ.get(k) for k in ("TRITON_INTERPRET", "RIDGEBENCH_AUTOTUNE",
                                               "CUDA_VISIBLE_DEVICES", "PYTEST_XDIST_WORKER",
                                               "RIDGEBENCH_CPU_WORKERS", machine.ENV,
                                               "RIDGEBENCH_SOFT_FLOORS")},
        "executable": sys.executable,
    }
    if cuda and rocm.is_rocm():  # an AMD GPU: amd-smi or rocm-smi instead of NVML, or the reason
        doc["device"] = cuda_device_info(device.index or 0)
        doc["smi_start"] = rocm.smi_info()
    elif cuda:
        doc["device"] = cuda_device_info(device.index or 0)
        doc["nvml_start"] = nvml_info(doc["device"]["uuid"])
        doc["versions"]["driver"] = doc["nvml_start"].get("driver_version")
    else:
        doc["device"] = {"name": device_name, "note": "no CUDA device: torch on the CPU, Triton under its "
                         "interpreter (checked, never timed)"}
    return doc
