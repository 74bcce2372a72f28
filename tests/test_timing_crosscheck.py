"""scripts/timing_crosscheck.py finds each op's benchmark and example GPU points from the table of ops,
and says when an op has none (instead of silently leaving it out)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from roofline.ops import KERNELS
from roofline.sweeps import sweep_points

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "timing_crosscheck.py"


@pytest.fixture(scope="module")
def crosscheck():
    spec = importlib.util.spec_from_file_location("timing_crosscheck", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("op", KERNELS)
def test_each_op_has_its_benchmark_class(crosscheck, op):
    from bench.runner import KernelBench

    cls = crosscheck.bench_class(op)
    assert issubclass(cls, KernelBench) and cls.kernel == op


def test_every_op_has_an_example_point_of_the_quick_gpu_sweep(crosscheck):
    points, notes = crosscheck.gpu_points(sweep_points("quick", "cuda"))
    assert notes == []
    assert {p.kernel for p in points} == set(KERNELS)


def test_a_missing_op_or_stale_case_is_said(crosscheck, monkeypatch):
    quick = sweep_points("quick", "cuda")
    monkeypatch.setattr(crosscheck, "GPU_CASES", [c for c in crosscheck.GPU_CASES if c[0] != "gelu"]
                        + [("softmax", "softmax/cols.r4k", "C999")])
    points, notes = crosscheck.gpu_points(quick)
    assert all(p.kernel != "gelu" for p in points)
    assert any(n.startswith("gelu: no example case") for n in notes)
    assert any("C999" in n and "not a point of the quick sweep" in n for n in notes)
