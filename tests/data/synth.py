"""Synthetic results directories for the plot, claims and results tests (never presented as measurements).

A synthetic benchmark's time is chosen by the test: usually the roofline time on a stated spec divided by
an efficiency, so the test knows which verdict the data must produce.
"""

from __future__ import annotations

import json
from pathlib import Path

from roofline.model.cost import CONVENTIONS
from roofline.model.hardware import PRESETS, HardwareSpec, dtype_class
from roofline.model.ops import MATMUL_KERNELS, kernel_cost

A100 = PRESETS["A100-SXM4-80GB"]
# "measured" ceilings of the synthetic A100: 88% of the datasheet bandwidth, 85% of the peaks
MEASURED_A100 = {"mem_bandwidth": 0.88 * A100.mem_bandwidth,
                 "peak_flops": {c: 0.85 * v for c, v in A100.peak_flops.items()},
                 "method": "synthetic: 88% of datasheet bandwidth, 85% of datasheet peaks"}


def benchmark(kernel: str, shape: dict, dtype: str, median_s: float, *, provider: str = "triton",
              sweep: str | None = None, device: str = "NVIDIA A100-SXM4-80GB", device_kind: str = "cuda",
              spread: float = 0.05, variant: str | None = None, hardware: str = "A100-SXM4-80GB") -> dict:
    """One pytest-benchmark entry whose ``extra_info`` follows the results contract."""
    cost = kernel_cost(kernel, shape, dtype)
    cls = dtype_class(dtype, matmul=kernel in MATMUL_KERNELS)
    size = "-".join(f"{k}{v}" for k, v in shape.items())
    extra = {
        "kernel": kernel, "variant": variant, "provider": provider, "sweep": sweep or kernel, "shape": shape,
        "dtype": dtype, "device": device, "device_kind": device_kind, "flops": cost.flops,
        "bytes": cost.bytes, "intensity": cost.intensity, "achieved_flops_per_s": cost.flops / median_s,
        "achieved_bytes_per_s": cost.bytes / median_s, "median_s": median_s,
        "p20_s": median_s * (1 - spread), "p80_s": median_s * (1 + spread), "hardware": hardware,
        "dtype_class": cls, "attainable_s": None, "roof_fraction": None, "bound": None, "max_error": 1e-3,
        "tolerance": [1e-2, 1e-2], "conventions": CONVENTIONS, "timing_method": "synthetic",
        "config": None, "audit": None,
    }
    return {"group": kernel, "name": f"test_{kernel}[{provider}-{dtype}-{size}]",
            "fullname": f"bench/test_{kernel}.py::test_{kernel}[{provider}-{dtype}-{size}]",
            "params": None, "stats": {"median": median_s, "min": median_s * 0.9, "rounds": 5},
            "options": {}, "extra_info": extra}


def roofline_time(kernel: str, shape: dict, dtype: str, spec: HardwareSpec, efficiency: float = 1.0) -> float:
    """Seconds at ``efficiency`` of ``spec``'s roof (its max(compute, memory) time / efficiency)."""
    cost = kernel_cost(kernel, shape, dtype)
    cls = dtype_class(dtype, matmul=kernel in MATMUL_KERNELS)
    return cost.attainable_seconds(spec, cls if cls in spec.peak_flops else "fp32") / efficiency


def write_run(directory: Path, benchmarks: list[dict], *, measured: dict | None = None,
              datasheet: HardwareSpec | None = A100, device: str = "NVIDIA A100-SXM4-80GB") -> Path:
    """Write benchmark.json, ceilings.json, provenance.json and skipped.json; returns ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "benchmark.json").write_text(json.dumps(
        {"machine_info": {}, "commit_info": {}, "benchmarks": benchmarks, "datetime": "synthetic",
         "version": "5.3"}, indent=1))
    (directory / "ceilings.json").write_text(json.dumps(
        {"device": device, "measured": measured,
         "datasheet": datasheet.to_dict() if datasheet is not None else None}))
    (directory / "provenance.json").write_text(json.dumps({"device": device, "synthetic": True}))
    (directory / "skipped.json").write_text(json.dumps([]))
    return directory


def a100_run(directory: Path, efficiency: float = 0.7) -> Path:
    """A synthetic A100 run of every kernel, each at ``efficiency`` of the measured roof."""
    spec = HardwareSpec("synthetic", MEASURED_A100["peak_flops"], MEASURED_A100["mem_bandwidth"])
    rows = []

    def add(kernel: str, shape: dict, sweep: str, provider: str = "triton", dtype: str = "float16") -> None:
        t = roofline_time(kernel, shape, dtype, spec, efficiency)
        rows.append(benchmark(kernel, shape, dtype, t, provider=provider, sweep=sweep))

    for provider in ("triton", "torch"):
        for b in (1, 4, 16, 64, 256, 1024):
            add("gemv", dict(batch=b, n=8192, k=8192, bias=False), "gemv-batch", provider)
    for m in (1, 64, 512, 4096):
        add("qkv", dict(m=m, d_model=4096, n_heads=32, n_kv_heads=8, head_dim=128, bias=False), "qkv-tokens")
    for b in (1, 8, 64):
        add("attention", dict(batch=b, n_heads=32, n_kv_heads=32, head_dim=128, q_len=1, cache_len=4096),
            "attention-decode")
    for t in (512, 2048):
        add("attention", dict(batch=1, n_heads=32, n_kv_heads=32, head_dim=128, q_len=t, cache_len=0),
            "attention-prefill")
    for cols in (1024, 4096, 32768):
        add("softmax", dict(rows=4096, cols=cols), "softmax-cols")
    for n in (1 << 16, 1 << 22):
        add("gelu", dict(n=n, approximate="tanh", bias_len=0), "gelu-n")
    add("gemv", dict(batch=8, n=4096, k=4096, bias=False), "gemv-fp32", dtype="float32")
    return write_run(directory, rows, measured=MEASURED_A100)
