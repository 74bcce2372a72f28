"""roofline.model.sweeps: the default sweeps cover what the issue asks for (crossing the ridge, prefill and
decode lengths, long rows, working sets on both sides of L2), from model presets, as valid cost points."""

from __future__ import annotations

import pytest

from roofline.errors import UsageError
from roofline.model.hardware import PRESETS as HW
from roofline.model.hardware import dtype_class
from roofline.model.machine import CPU_MACHINES, ENV, MACHINES
from roofline.model.ops import KERNELS, kernel_cost
from roofline.model.sweeps import SMOKE_MODEL, SWEEP_PRESETS, sweep_dtype, sweep_points
from roofline.model.transformer import PRESETS as MODELS

ALL = [(p, d) for p in SWEEP_PRESETS for d in ("cuda", "cpu")]


def _by(points, kernel, sweep_prefix=""):
    return [p for p in points if p.kernel == kernel and p.sweep.startswith(f"{kernel}/{sweep_prefix}")]


@pytest.mark.parametrize("preset, kind", ALL)
def test_every_point_is_a_valid_cost_point_with_a_unique_id(preset, kind):
    points = sweep_points(preset, kind)
    assert {p.kernel for p in points} == set(KERNELS)
    ids = [(p.kernel, p.id) for p in points]
    assert len(ids) == len(set(ids))
    for p in points:
        cost = kernel_cost(p.kernel, p.shape, p.dtype)
        assert cost.flops > 0 and cost.bytes > 0
        assert p.sweep.startswith(p.kernel + "/") and "[" not in p.id and " " not in p.id
    assert sweep_points(preset, kind) == points  # stable order


def test_widths_come_from_model_presets():
    widths = {(m.d_model, m.n_heads, m.n_kv_heads, m.head_dim) for m in [*MODELS.values(), SMOKE_MODEL]}
    for preset, kind in ALL:
        for p in sweep_points(preset, kind):
            if p.kernel == "qkv":
                key = (p.shape["d_model"], p.shape["n_heads"], p.shape["n_kv_heads"], p.shape["head_dim"])
                assert key in widths
            if p.kernel == "attention":
                assert any((h, kv, dh) == (p.shape["n_heads"], p.shape["n_kv_heads"], p.shape["head_dim"])
                           for _, h, kv, dh in widths)


@pytest.mark.parametrize("gpu", ["A100-SXM4-80GB", "H100-SXM5", "H200"])
def test_gpu_decode_gemv_and_qkv_cross_the_ridge(gpu):
    spec = HW[gpu]
    for kernel in ("gemv", "qkv"):
        points = _by(sweep_points("quick", "cuda"), kernel, "decode")
        sizes = [p.shape.get("batch", p.shape.get("m")) for p in points]
        assert min(sizes) == 1 and max(sizes) == 512
        ridge = spec.ridge(dtype_class(points[0].dtype, matmul=True))
        intensities = [kernel_cost(kernel, p.shape, p.dtype).intensity for p in points]
        assert min(intensities) < ridge < max(intensities), (kernel, gpu, ridge, intensities)


def test_gpu_sequence_ranges():
    quick = sweep_points("quick", "cuda")
    prefill = _by(quick, "attention", "prefill")
    assert {p.shape["cache_len"] for p in prefill} == {0}
    assert (min(p.shape["q_len"] for p in prefill), max(p.shape["q_len"] for p in prefill)) == (128, 32768)
    decode = _by(quick, "attention", "decode")
    assert {p.shape["q_len"] for p in decode} == {1}
    caches = [p.shape["cache_len"] for p in decode]
    assert (min(caches), max(caches)) == (1024, 131072)
    assert any(p.shape["n_kv_heads"] < p.shape["n_heads"] for p in decode)  # GQA
    assert any(p.shape["n_kv_heads"] == p.shape["n_heads"] for p in decode)  # MHA
    gelu_tokens = [p.shape["n"] // p.shape["bias_len"] for p in _by(quick, "gelu")]
    assert (min(gelu_tokens), max(gelu_tokens)) == (1, 16384)
    softmax = _by(quick, "softmax")
    assert max(p.shape["cols"] for p in softmax) == 262144 and max(p.shape["rows"] for p in softmax) == 262144


@pytest.mark.parametrize("kind, cache", [("cuda", HW["H100-SXM5"].l2_bytes),
                                         ("cuda", HW["A100-SXM4-80GB"].l2_bytes), ("cpu", 32 * 2**20)])
def test_memory_bound_working_sets_straddle_the_cache(kind, cache):
    points = sweep_points("quick", kind)
    for kernel in ("softmax", "gelu", "gemv"):
        working = [kernel_cost(p.kernel, p.shape, p.dtype).bytes for p in _by(points, kernel)]
        assert min(working) < cache and max(working) >= 2 * cache, (kernel, kind)
    decode = [kernel_cost("attention", p.shape, p.dtype).bytes for p in _by(points, "attention", "decode")]
    assert min(decode) < cache < max(decode)


def test_cpu_points_are_cpu_sized():
    quick = sweep_points("quick", "cpu", "bfloat16")
    total_flops = sum(kernel_cost(p.kernel, p.shape, p.dtype).flops for p in quick)
    total_bytes = sum(kernel_cost(p.kernel, p.shape, p.dtype).bytes for p in quick)
    assert total_flops < 1e10 and total_bytes < 1e9  # one pass of the sweep: ~1 s of a 2-core CPU
    fp32 = sweep_points("quick", "cpu", "fp32")
    fp32_bytes = sum(kernel_cost(p.kernel, p.shape, p.dtype).bytes for p in fp32)
    assert fp32_bytes <= 2 * total_bytes  # fp32 (a CPU without native bf16) moves at most twice as much
    assert len(quick) < len(sweep_points("quick", "cuda"))
    assert max(p.shape.get("batch", 0) for p in _by(quick, "gemv")) == 64


@pytest.mark.parametrize("forced", [None, *CPU_MACHINES])
def test_the_cpu_sweep_dtype_follows_native_math_and_dtype_overrides(forced, monkeypatch):
    """bf16 where the CPU multiplies it natively, fp32 otherwise (roofline.model.roof.cpu_sweep_dtype): on
    this
    machine as detected, and on each CPU machine forced (RIDGEBENCH_MACHINE); --dtype overrides on any
    device."""
    from bench.provenance import this_cpu_features

    if forced is None:
        monkeypatch.delenv(ENV, raising=False)
        expected = "bfloat16" if this_cpu_features()["native"]["bfloat16"]["native"] else "float32"
    else:
        monkeypatch.setenv(ENV, forced)
        expected = MACHINES[forced].sweep_dtype
        assert forced in sweep_dtype("cpu")[1]  # the reason names the forced machine
    assert {p.dtype for p in sweep_points("quick", "cpu")} == {expected}
    assert sweep_dtype("cpu")[0] == expected and sweep_dtype("cpu")[1]
    assert {p.dtype for p in sweep_points("quick", "cpu", "bf16")} == {"bfloat16"}
    assert {p.dtype for p in sweep_points("full", "cuda", "float32")} == {"float32"}
    assert {p.dtype for p in sweep_points("smoke", "cuda")} == {"float16"}
    with pytest.raises(UsageError, match="--dtype"):
        sweep_points("quick", "cpu", "int8")


def test_full_is_a_superset_in_both_dtypes_and_bad_names_are_refused():
    quick = {(p.kernel, p.sweep, p.label) for p in sweep_points("quick", "cuda")}
    full = sweep_points("full", "cuda")
    assert quick <= {(p.kernel, p.sweep, p.label) for p in full}
    assert {p.dtype for p in full} == {"bfloat16", "float16"}
    with pytest.raises(UsageError, match="sweep preset"):
        sweep_points("huge")
    with pytest.raises(UsageError, match="device kind"):
        sweep_points("quick", "tpu")
