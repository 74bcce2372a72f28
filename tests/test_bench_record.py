"""bench.session / bench.record / bench.runner without a GPU: device pinning from xdist worker ids, the
worker-count rule, the extra_info schema and its roofline arithmetic, skip records and error classes,
and the comparison that gates every timing."""

from __future__ import annotations

import pytest
import torch

from bench.isolation import check_worker_count
from bench.record import (
    EXTRA_INFO_FIELDS,
    SKIP_CATEGORIES,
    Roofs,
    extra_info,
    reroof_benchmark_doc,
    roof_class,
    skip_record,
)
from bench.runner import classify as classify_error
from bench.session import pinned_device_index, worker_index
from bench.timing import Summary
from roofline.model.cost import CONVENTIONS
from roofline.model.hardware import PRESETS, dtype_class, from_measured
from roofline.model.ops import kernel_cost
from roofline.model.roof import CeilingCheck
from roofline.model.sweeps import SweepPoint

POINT = SweepPoint("gemv", "gemv/decode.llama2-7b.mlp_up", dict(batch=16, n=11008, k=4096, bias=False),
                   "bfloat16", "B16")
CPU = from_measured("cpu: test", 20e9, {"tensor16": 400e9, "fp32": 80e9})


@pytest.mark.parametrize("worker, index", [(None, 0), ("master", 0), ("gw0", 0), ("gw1", 1), ("gw7", 7)])
def test_worker_ids_map_to_device_indices(worker, index):
    assert worker_index(worker) == index
    assert pinned_device_index(worker, 8) == index


def test_more_workers_than_gpus_is_refused():
    with pytest.raises(RuntimeError, match="CUDA device 2.*only 2"):
        pinned_device_index("gw2", 2)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        pinned_device_index("gw0", 0)
    with pytest.raises(ValueError, match="worker_id"):
        worker_index("node-1")


def test_worker_count_rule():
    assert check_worker_count(None, 0, cuda=False) is None
    assert check_worker_count(0, 0, cuda=False) is None
    assert check_worker_count(4, 4, cuda=True) is None
    assert "only 4 CUDA" in check_worker_count(8, 4, cuda=True)
    assert "time each" in check_worker_count(2, 0, cuda=False)
    assert "explicitly" in check_worker_count("auto", 4, cuda=True)


def test_extra_info_holds_every_contract_field_with_consistent_arithmetic():
    summary = Summary(median_s=2e-4, p20_s=1.9e-4, p80_s=2.3e-4, rounds=50)
    measured = from_measured("NVIDIA H100 80GB HBM3", 3.0e12, {"tensor16": 800e12, "tf32": 400e12,
                                                               "fp32": 50e12}, base=PRESETS["H100-SXM5"])
    info = extra_info(point=POINT, provider="triton", variant="tiled", config="BLOCK_M=16,num_warps=4",
                      device_name="NVIDIA H100 80GB HBM3", device_kind="cuda", summary=summary,
                      roofs=Roofs(measured, PRESETS["H100-SXM5"]), max_error=1e-3, tolerance=(1.6e-2, 1.6e-2),
                      timing_method="cuda events", audit={"registers": 96})
    assert set(EXTRA_INFO_FIELDS) <= set(info)
    cost = kernel_cost("gemv", POINT.shape, "bfloat16")
    assert (info["flops"], info["bytes"], info["intensity"]) == (cost.flops, cost.bytes, cost.intensity)
    assert info["achieved_bytes_per_s"] == pytest.approx(cost.bytes / 2e-4)
    assert info["achieved_flops_per_s"] == pytest.approx(cost.flops / 2e-4)
    # attainable_s and roof_fraction use the measured roof (roofline.model.roof); the datasheet's fraction
    # sits
    # beside it under its own name
    assert info["roof_source"] == "measured" and info["hardware"] == "NVIDIA H100 80GB HBM3"
    assert info["attainable_s"] == pytest.approx(cost.bytes / 3.0e12)  # B=16: far below the ridge
    assert info["roof_fraction"] == pytest.approx(info["attainable_s"] / 2e-4)
    assert info["datasheet_roof_fraction"] == pytest.approx(cost.bytes / 3350e9 / 2e-4)
    assert info["roofs"]["datasheet"]["hardware"] == "H100-SXM5"
    assert info["roofs"]["measured"]["roof_fraction"] == info["roof_fraction"]
    assert info["bound"] == "memory" and info["dtype_class"] == "tensor16"
    assert info["roof_ceiling"] == "memory"
    assert info["ridge"] == pytest.approx(800e12 / 3.0e12)
    assert info["above_roof"] is (info["roof_fraction"] > 1 + info["above_roof_tolerance"])
    assert info["conventions"] == CONVENTIONS and info["tolerance"] == [1.6e-2, 1.6e-2]
    assert (info["median_s"], info["p20_s"], info["p80_s"]) == (2e-4, 1.9e-4, 2.3e-4)
    assert info["shape"] == POINT.shape and info["shape"] is not POINT.shape


def test_cpu_records_use_the_measured_roof_and_fall_back_from_tf32():
    point = SweepPoint("qkv", "qkv/decode.gpt2-small", dict(m=64, d_model=768, n_heads=12, n_kv_heads=12,
                                                           head_dim=64, bias=True), "float32", "M64")
    info = extra_info(point=point, provider="torch", variant="unfused", config=None, device_name="cpu: test",
                      device_kind="cpu", summary=Summary(1e-3, 1e-3, 1e-3, 5), roofs=Roofs(CPU, None),
                      max_error=0.0, tolerance=(1e-3, 1e-3), timing_method="perf_counter")
    assert info["roof_source"] == "measured" and info["roofs"]["datasheet"] is None
    assert info["datasheet_roof_fraction"] is None
    assert info["dtype_class"] == "fp32"  # a CPU has no TF32 roof: fp32 matmuls run on FMA units
    cost = kernel_cost("qkv", point.shape, "float32")
    assert info["attainable_s"] == pytest.approx(max(cost.flops / 80e9, cost.bytes / 20e9))
    assert roof_class(CPU, "gemv", "bfloat16") == "tensor16"
    assert roof_class(CPU, "softmax", "bfloat16") == dtype_class("bfloat16", matmul=False)  # as roofline says
    with pytest.raises(KeyError, match="fp32"):
        roof_class(from_measured("x", 1e9, {"tensor16": 1e12}), "qkv", "float32")


def test_skip_records_name_the_case_and_a_known_category():
    rec = skip_record(nodeid="bench/test_gemv.py::test_gemv[x]", point=POINT, provider="torch",
                      category="out-of-memory", reason="CUDA out of memory", free_bytes=0)
    assert rec["category"] == "out-of-memory" and rec["shape"] == POINT.shape and rec["free_bytes"] == 0
    assert rec["kernel"] == "gemv" and rec["sweep"] == POINT.sweep and rec["nodeid"].endswith("[x]")
    assert "not-timed" in SKIP_CATEGORIES
    with pytest.raises(ValueError, match="category"):
        skip_record(nodeid="n", point=POINT, provider="torch", category="flaky", reason="?")


class OutOfResources(Exception):
    """Stands in for triton.runtime.errors.OutOfResources (same class name)."""


def test_errors_that_mean_cannot_run_here_are_classified():
    assert classify_error(torch.cuda.OutOfMemoryError("CUDA out of memory"), "torch") == "out-of-memory"
    assert classify_error(RuntimeError("DefaultCPUAllocator: out of memory"), "torch") == "out-of-memory"
    assert classify_error(OutOfResources("shared memory"), "triton") == "compile-failure"
    assert classify_error(ValueError("q: head dim 16 not supported"), "triton") == "unsupported"
    assert classify_error(NotImplementedError("no kernel"), "torch") == "unsupported"
    assert classify_error(ValueError("a bug in the baseline"), "torch") is None  # a real failure
    assert classify_error(AssertionError("wrong"), "triton") is None
    assert classify_error(TypeError("unexpected keyword argument"), "triton") is None  # a suite bug


def test_reroof_rewrites_every_roof_field_against_the_final_ceilings():
    """After the ceilings are measured again, benchmark.json's roof fields follow the final roof."""
    point = POINT
    summary = Summary(median_s=2e-4, p20_s=1.9e-4, p80_s=2.3e-4, rounds=50)
    first = Roofs(from_measured("dev", 1.0e12, {"tensor16": 500e12, "fp32": 50e12}), None)
    info = extra_info(point=point, provider="torch", variant=None, config=None, device_name="dev",
                      device_kind="cuda", summary=summary, roofs=first, max_error=0.0, tolerance=(1e-3, 1e-3),
                      timing_method="cuda events")
    before = info["roof_fraction"]
    doc = {"benchmarks": [{"extra_info": info}, {"extra_info": {"kernel": "x"}}]}
    final = Roofs(from_measured("dev", 2.0e12, {"tensor16": 500e12, "fp32": 50e12}), None)
    check = CeilingCheck({"memory": 0.2})
    assert reroof_benchmark_doc(doc, final, check) == 1
    new = doc["benchmarks"][0]["extra_info"]
    assert new["roof_fraction"] == pytest.approx(before / 2)  # twice the bandwidth
    assert new["above_roof_tolerance"] == pytest.approx(0.2)
    assert doc["benchmarks"][1]["extra_info"] == {"kernel": "x"}


@pytest.mark.parametrize("text", [
    "DefaultCPUAllocator: can't allocate memory: you tried to allocate 400000000000 bytes. Error code 12 "
    "(Cannot allocate memory)",
    "HIP out of memory. Tried to allocate 2.00 GiB (GPU 0; 63.98 GiB total capacity)",
    "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.10 GiB total capacity)",
    "CUDA error: out of memory",
])
def test_allocation_failures_of_any_spelling_are_out_of_memory(text):
    assert classify_error(RuntimeError(text), "torch") == "out-of-memory"
    assert classify_error(RuntimeError(text), "triton") == "out-of-memory"
    assert classify_error(MemoryError(), "mine") == "out-of-memory"
    assert classify_error(RuntimeError("a bug: cannot index"), "torch") is None
