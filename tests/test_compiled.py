"""Compiled kernels on a GPU (``pytest --device cuda``): what the interpreter can never show.

- misaligned base pointers (a storage offset of one element) and odd strides, for every launcher;
- every shipped config of every kernel, run explicitly and checked (not only the autotuner's pick);
- CUDA-graph capture and replay of the decode path (QKV with cache append, split-KV attention, GEMV),
  bit-identical to eager;
- bit-identical reruns of the split paths (split-K GEMV, split-KV attention);
- int64 offsets past 2**31 elements, where the GPU has the memory (skipped with the reason otherwise);
- a sticky CUDA error stops the session with one message naming the test (tests/conftest.py).

On the CPU every GPU test is skipped with the reason; the config enumeration they rely on
(:func:`shipped_configs`) is checked here on the CPU too.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kernels._lib.launch import last_launch
from kernels._lib.spec import Shipped, assert_close, distinct, op_spec, seeded
from kernels.attention import TOLERANCES as ATTENTION_TOL
from kernels.attention import attention, attention_ref
from kernels.attention.configs import PREFILL_CONFIGS
from kernels.gelu import TOLERANCES as GELU_TOL
from kernels.gelu import configs as gelu_configs
from kernels.gelu import gelu, gelu_ref
from kernels.gemv import TOLERANCES as GEMV_TOL
from kernels.gemv import configs as gemv_configs
from kernels.gemv import gemv, gemv_ref
from kernels.qkv import TOLERANCES as QKV_TOL
from kernels.qkv import qkv_projection, qkv_projection_ref
from kernels.qkv.configs import CONFIGS as QKV_CONFIGS
from kernels.softmax import TOLERANCES as SOFTMAX_TOL
from kernels.softmax import softmax, softmax_ref
from roofline.model.ops import KERNELS

ROOT = Path(__file__).resolve().parents[1]
F16, BF16 = torch.float16, torch.bfloat16
GIB = 2**30


# ----------------------------------------------------------------------------------------------
# Every shipped config, enumerated (CPU-checkable)
# ----------------------------------------------------------------------------------------------

def shipped_configs(arch: int) -> list[Shipped]:
    """Every config each kernel can launch on compute capability ``arch`` (fp16/bf16 operands): each op's
    declaration (``kernels/<op>/spec.py``), without repeats."""
    return distinct([s for op in KERNELS for s in op_spec(op).shipped_configs(arch)])


def test_shipped_configs_cover_every_config_list():
    for arch in (80, 90):
        shipped = shipped_configs(arch)
        ids = {s.id for s in shipped}
        assert len(ids) == len(shipped)
        # every Triton op of the table: a new op's configs listed nowhere here would never run compiled
        assert {s.kernel for s in shipped} == set(KERNELS)
        by: dict[tuple[str, str], list] = {}
        for s in shipped:
            by.setdefault((s.kernel, s.variant), []).append(s.config)
        assert by[("qkv", "fused")] == QKV_CONFIGS
        assert by[("gemv", "splitk")] == gemv_configs.SPLITK_CONFIGS
        assert by[("gemv", "tiled")] == gemv_configs.TILED_CONFIGS
        prefill = {repr(c) for c in by[("attention", "prefill")]}
        assert prefill and prefill <= {repr(c) for cs in PREFILL_CONFIGS.values() for c in cs}
        assert by[("attention", "splitkv")]
        # the heuristics: every single-kernel BLOCK_N up to the limit, and both online configs' rows
        assert {c[0]["BLOCK_N"] for c in by[("softmax", "single")]} == {2**p for p in range(16)}
        assert max(c[0]["BLOCK_N"] for c in by[("gelu", "elementwise")]) == gelu_configs.TILE


# ----------------------------------------------------------------------------------------------
# GPU fixtures and helpers
# ----------------------------------------------------------------------------------------------

@pytest.fixture
def cuda(device) -> torch.device:
    if device.type != "cuda":
        pytest.skip("needs a CUDA device: compiled kernels run with pytest --device cuda on a GPU machine")
    return torch.device("cuda", torch.cuda.current_device())


def _randn(*shape, dtype=F16, **kwargs) -> torch.Tensor:
    """:func:`kernels._lib.spec.seeded`, fp16 unless told (``offset``: a misaligned base pointer;
    ``pad_last``: odd strides)."""
    return seeded(*shape, dtype=dtype, **kwargs)


_close = assert_close


def _arch(dev: torch.device) -> int:
    major, minor = torch.cuda.get_device_capability(dev)
    return major * 10 + minor


def _misaligned(t: torch.Tensor) -> bool:
    return t.data_ptr() % 16 != 0


# ----------------------------------------------------------------------------------------------
# Misaligned base pointers and odd strides, every launcher
# ----------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [F16, BF16], ids=str)
@pytest.mark.parametrize("layout", ["offset1", "odd-stride"])
def test_gemv_misaligned_and_odd_strides(cuda, dtype, layout):
    off, pad = (1, 0) if layout == "offset1" else (0, 3)
    for b, n, k in ((1, 300, 1027), (3, 129, 4099), (9, 200, 515)):
        x = _randn(b, k, dtype=dtype, seed=1, offset=off, pad_last=pad)
        w = _randn(n, k, dtype=dtype, seed=2, scale=k**-0.5, offset=off, pad_last=pad)
        bias = _randn(n, dtype=dtype, seed=3, offset=off)
        assert not layout == "offset1" or (_misaligned(x) and _misaligned(w))
        for variant in ("splitk", "tiled"):
            y = gemv(x, w, bias, variant=variant)
            _close(y, gemv_ref(x, w, bias, compute_dtype=torch.float64), GEMV_TOL[dtype])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [F16, BF16], ids=str)
@pytest.mark.parametrize("layout", ["offset1", "odd-stride"])
def test_qkv_misaligned_and_odd_strides(cuda, dtype, layout):
    off, pad = (1, 0) if layout == "offset1" else (0, 1)
    b, t, d, hq, hkv, dh = 2, 37, 261, 4, 2, 64
    n = (hq + 2 * hkv) * dh
    x = _randn(b, t, d, dtype=dtype, seed=1, offset=off, pad_last=pad)
    w = _randn(n, d, dtype=dtype, seed=2, scale=d**-0.5, offset=off, pad_last=pad)
    bias = _randn(n, dtype=dtype, seed=3, offset=off)
    cache_shape = (b, hkv, t + 9, dh)
    kc, vc = _randn(*cache_shape, dtype=dtype, seed=4, offset=off, pad_last=pad), \
        _randn(*cache_shape, dtype=dtype, seed=5, offset=off, pad_last=pad)
    cache_len = torch.tensor([9, 2], dtype=torch.int32, device=cuda)
    want = qkv_projection_ref(x, w, bias, n_heads=hq, n_kv_heads=hkv, k_cache=kc.clone(), v_cache=vc.clone(),
                              cache_len=cache_len, compute_dtype=torch.float64)
    got = qkv_projection(x, w, bias, n_heads=hq, n_kv_heads=hkv, k_cache=kc, v_cache=vc, cache_len=cache_len)
    for gt, wt in zip(got, want, strict=True):
        _close(gt, wt, QKV_TOL[dtype])
    fresh = qkv_projection(x, w, bias, n_heads=hq, n_kv_heads=hkv)
    for gt, wt in zip(fresh, qkv_projection_ref(x, w, bias, n_heads=hq, n_kv_heads=hkv,
                                                compute_dtype=torch.float64), strict=True):
        _close(gt, wt, QKV_TOL[dtype])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [F16, BF16], ids=str)
@pytest.mark.parametrize("layout", ["offset1", "odd-stride"])
@pytest.mark.parametrize("variant,q_len", [("prefill", 70), ("splitkv", 1), ("splitkv", 5)])
def test_attention_misaligned_and_odd_strides(cuda, dtype, layout, variant, q_len):
    off, pad = (1, 0) if layout == "offset1" else (0, 3)
    b, hq, hkv, cap = 2, 8, 2, 300
    for dh in (64, 80, 128):
        q = _randn(b, hq, q_len, dh, dtype=dtype, seed=1, offset=off, pad_last=pad)
        k = _randn(b, hkv, cap, dh, dtype=dtype, seed=2, offset=off, pad_last=pad)
        v = _randn(b, hkv, cap, dh, dtype=dtype, seed=3, offset=off, pad_last=pad)
        lens = torch.tensor([cap - q_len, 17], dtype=torch.int32, device=cuda)
        o = attention(q, k, v, lens, variant=variant)
        _close(o, attention_ref(q, k, v, lens, compute_dtype=torch.float64), ATTENTION_TOL[dtype])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [F16, BF16, torch.float32], ids=str)
@pytest.mark.parametrize("layout", ["offset1", "odd-stride"])
def test_softmax_and_gelu_misaligned_and_odd_strides(cuda, dtype, layout):
    off, pad = (1, 0) if layout == "offset1" else (0, 5)
    for rows, cols in ((7, 1000), (3, 4096), (2, 50257)):
        x = _randn(rows, cols, dtype=dtype, seed=1, scale=4.0, offset=off, pad_last=pad)
        assert _misaligned(x) == (off == 1)
        _close(softmax(x), softmax_ref(x, compute_dtype=torch.float64), SOFTMAX_TOL[dtype])
        x = _randn(rows, cols, dtype=dtype, seed=2, offset=off, pad_last=pad)
        bias = _randn(cols, dtype=dtype, seed=3, offset=off)
        for approximate in ("none", "tanh"):
            _close(gelu(x, bias, approximate=approximate),
                   gelu_ref(x, bias, approximate=approximate, compute_dtype=torch.float64),
                   GELU_TOL[dtype])
        if layout == "offset1":  # in place on a misaligned buffer
            y = _randn(rows, cols, dtype=dtype, seed=2, offset=off).copy_(x)
            assert _misaligned(y)
            gelu(y, inplace=True)
            _close(y, gelu_ref(x, compute_dtype=torch.float64), GELU_TOL[dtype])


# ----------------------------------------------------------------------------------------------
# Every shipped config, run explicitly
# ----------------------------------------------------------------------------------------------

def _shipped_params() -> list:
    # ids from both architectures' lists; each test runs those the GPU it is on actually launches
    seen = {}
    for arch in (80, 90):
        for s in shipped_configs(arch):
            seen.setdefault(s.id, s)
    return [pytest.param(s, id=i) for i, s in seen.items()]


@pytest.mark.slow
def test_run_shipped_under_the_interpreter(device):
    """The explicit-config runner itself, on the CPU: one small config of each kernel (fp16)."""
    if device.type != "cpu":
        pytest.skip("the interpreter check of the runner; on a GPU test_every_shipped_config runs it all")
    picks = {}
    for s in shipped_configs(80):
        key = (s.kernel, s.variant)
        small = s.shape and math.prod(s.shape) <= 4096 if s.kernel in ("softmax", "gelu") else True
        if key not in picks and small and not (s.kernel == "qkv" and s.config.kwargs["BLOCK_M"] > 16):
            picks[key] = s
    assert {kernel for kernel, _ in picks} == set(KERNELS)
    assert {("qkv", "fused"), ("gemv", "splitk"), ("gemv", "tiled"), ("attention", "prefill"),
            ("attention", "splitkv"), ("softmax", "single"), ("gelu", "elementwise")} <= set(picks)
    for s in picks.values():
        op_spec(s.kernel).run_shipped(s, F16, torch.device("cpu"))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [F16, BF16], ids=str)
@pytest.mark.parametrize("shipped", _shipped_params())
def test_every_shipped_config(cuda, shipped, dtype):
    if shipped.id not in {s.id for s in shipped_configs(_arch(cuda))}:
        pytest.skip(f"not launched on sm_{_arch(cuda)} (pruned for its shared memory)")
    op_spec(shipped.kernel).run_shipped(shipped, dtype, cuda)


# ----------------------------------------------------------------------------------------------
# CUDA graphs: the decode step captured and replayed equals eager
# ----------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [F16, BF16], ids=str)
def test_decode_step_cuda_graph_replay_equals_eager(cuda, dtype):
    b, d, hq, hkv, dh, cap, past = 2, 1024, 16, 4, 64, 2048, 1500
    x = _randn(b, 1, d, dtype=dtype, seed=1)
    w_qkv = _randn((hq + 2 * hkv) * dh, d, dtype=dtype, seed=2, scale=d**-0.5)
    w_o = _randn(d, hq * dh, dtype=dtype, seed=3, scale=(hq * dh) ** -0.5)
    k0 = _randn(b, hkv, cap, dh, dtype=dtype, seed=4)
    v0 = _randn(b, hkv, cap, dh, dtype=dtype, seed=5)
    k_cache, v_cache = k0.clone(), v0.clone()
    cache_len = torch.tensor([past, 700], dtype=torch.int32, device=cuda)

    def step():
        q, _, _ = qkv_projection(x, w_qkv, n_heads=hq, n_kv_heads=hkv, k_cache=k_cache, v_cache=v_cache,
                                 cache_len=cache_len, check_cache_len=False)
        o = attention(q, k_cache, v_cache, cache_len, variant="splitkv", check_cache_len=False)
        y = gemv(o.reshape(b, hq * dh), w_o)  # the output projection
        return q, o, y

    def reset():
        k_cache.copy_(k0)
        v_cache.copy_(v0)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up: JIT compile and autotune outside the capture
        for _ in range(3):
            reset()
            step()
    torch.cuda.current_stream().wait_stream(side)
    reset()
    eager = [t.clone() for t in step()] + [k_cache.clone(), v_cache.clone()]
    assert gemv_configs.select_variant(b) == "splitk" and last_launch("gemv").variant == "splitk"

    graph = torch.cuda.CUDAGraph()
    reset()
    with torch.cuda.graph(graph):
        static = step()
    for new_x in (None, _randn(b, 1, d, dtype=dtype, seed=9)):
        if new_x is not None:  # a new token: eager again, then the graph on the same static input
            x.copy_(new_x)
            reset()
            eager = [t.clone() for t in step()] + [k_cache.clone(), v_cache.clone()]
        reset()
        graph.replay()
        torch.cuda.synchronize()
        for got, want in zip([*static, k_cache, v_cache], eager, strict=True):
            assert torch.equal(got, want)


# ----------------------------------------------------------------------------------------------
# Bit-identical reruns of the split paths
# ----------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [F16, BF16], ids=str)
def test_split_paths_rerun_bit_identical(cuda, dtype):
    x = _randn(3, 8192, dtype=dtype, seed=1)
    w = _randn(1000, 8192, dtype=dtype, seed=2, scale=8192**-0.5)
    for variant in ("splitk", "tiled"):
        first = gemv(x, w, variant=variant, split_k=8)
        assert all(torch.equal(gemv(x, w, variant=variant, split_k=8), first) for _ in range(5))
    q = _randn(4, 32, 1, 128, dtype=dtype, seed=3)
    k = _randn(4, 8, 8192, 128, dtype=dtype, seed=4)
    v = _randn(4, 8, 8192, 128, dtype=dtype, seed=5)
    lens = torch.tensor([8000, 4000, 100, 8191], dtype=torch.int32, device=cuda)
    for splits in (None, 16, 64):
        first = attention(q, k, v, lens, variant="splitkv", num_splits=splits, return_lse=True)
        for _ in range(5):
            again = attention(q, k, v, lens, variant="splitkv", num_splits=splits, return_lse=True)
            assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])


# ----------------------------------------------------------------------------------------------
# int64 offsets past 2**31 elements
# ----------------------------------------------------------------------------------------------

def _need(bytes_needed: int, dev: torch.device) -> None:
    free, _ = torch.cuda.mem_get_info(dev)
    if free < bytes_needed * 1.25:
        pytest.skip(f"int64 offsets need {bytes_needed / GIB:.1f} GiB free on the GPU (+25%); "
                    f"{free / GIB:.1f} GiB free")


PAST_2_31 = 2**31 + 4096 * 9 + 3  # elements: past the int32 range by more than one tile


@pytest.mark.gpu
def test_int64_offsets_softmax_gelu(cuda):
    cols = 4096
    rows = PAST_2_31 // cols + 2
    _need(2 * rows * cols * 2, cuda)
    x = torch.empty(rows, cols, dtype=F16, device=cuda)
    x[-8:] = _randn(8, cols, seed=1)
    x[:8] = _randn(8, cols, seed=2)
    y = softmax(x)
    for part in (slice(0, 8), slice(rows - 8, rows)):
        _close(y[part], softmax_ref(x[part], compute_dtype=torch.float64), SOFTMAX_TOL[F16])
    del y
    flat = x.view(-1)[: PAST_2_31]  # flat GELU over > 2**31 elements (odd count: a masked tail)
    out = gelu(flat)
    for part in (slice(0, 4096), slice(PAST_2_31 - 5000, PAST_2_31)):
        _close(out[part], gelu_ref(flat[part], compute_dtype=torch.float64), GELU_TOL[F16])


@pytest.mark.gpu
def test_int64_offsets_gemv(cuda):
    k = 4096
    n = PAST_2_31 // k + 64
    _need(n * k * 2, cuda)
    w = torch.zeros(n, k, dtype=F16, device=cuda)
    w[-64:] = _randn(64, k, seed=1, scale=k**-0.5)
    w[:64] = _randn(64, k, seed=2, scale=k**-0.5)
    for b in (1, 8):
        x = _randn(b, k, seed=3)
        for variant in ("splitk", "tiled"):
            y = gemv(x, w, variant=variant)
            for part in (slice(0, 64), slice(n - 64, n)):
                _close(y[:, part], gemv_ref(x, w[part], compute_dtype=torch.float64), GEMV_TOL[F16])


@pytest.mark.gpu
def test_int64_offsets_qkv_and_attention(cuda):
    d, hq, hkv, dh = 4096, 1, 1, 64
    t = PAST_2_31 // d + 16
    _need(t * d * 2 + 3 * t * dh * 2, cuda)
    x = torch.zeros(1, t, d, dtype=F16, device=cuda)
    x[:, -16:] = _randn(1, 16, d, seed=1)
    w = _randn((hq + 2 * hkv) * dh, d, seed=2, scale=d**-0.5)
    q, k, v = qkv_projection(x, w, n_heads=hq, n_kv_heads=hkv)
    want = qkv_projection_ref(x[:, -16:], w, n_heads=hq, n_kv_heads=hkv, compute_dtype=torch.float64)
    for got, ref in zip((q, k, v), want, strict=True):
        _close(got[:, :, -16:], ref, QKV_TOL[F16])
    del x, q, k, v
    torch.cuda.empty_cache()
    # attention: the second sequence's cache starts past 2**31 elements
    dh, cap = 128, PAST_2_31 // 128 + 256
    _need(2 * 2 * cap * dh * 2, cuda)
    kc = torch.zeros(2, 1, cap, dh, dtype=F16, device=cuda)
    vc = torch.zeros_like(kc)
    lens = torch.tensor([100, 300], dtype=torch.int32, device=cuda)
    for b in range(2):
        kc[b, :, :400] = _randn(1, 400, dh, seed=3 + b)
        vc[b, :, :400] = _randn(1, 400, dh, seed=5 + b)
    for variant, q_len in (("splitkv", 1), ("prefill", 64)):
        q = _randn(2, 4, q_len, dh, seed=7)
        o = attention(q, kc, vc, lens, variant=variant)
        want = attention_ref(q, kc[:, :, :400], vc[:, :, :400], lens, compute_dtype=torch.float64)
        _close(o, want, ATTENTION_TOL[F16])


# ----------------------------------------------------------------------------------------------
# A sticky CUDA error stops the session, naming the test
# ----------------------------------------------------------------------------------------------

STICKY_DEMO = os.environ.get("RIDGEBENCH_STICKY_DEMO") == "1"


@pytest.mark.skipif(not STICKY_DEMO, reason="run by test_sticky_cuda_error_stops_the_session only")
def test_sticky_demo_a_crashes(cuda):
    index = torch.tensor([1 << 20], device=cuda)
    torch.arange(4, device=cuda)[index].sum().item()  # out of bounds: a device-side assert


@pytest.mark.skipif(not STICKY_DEMO, reason="run by test_sticky_cuda_error_stops_the_session only")
def test_sticky_demo_b_never_runs(cuda):
    assert torch.ones(1, device=cuda).item() == 1


@pytest.mark.gpu
def test_sticky_cuda_error_stops_the_session(cuda):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["RIDGEBENCH_STICKY_DEMO"] = "1"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--device", "cuda", "-p", "no:cacheprovider",
                           "tests/test_compiled.py", "-k", "sticky_demo", "-q"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    name = "tests/test_compiled.py::test_sticky_demo_a_crashes"
    assert proc.returncode != 0, out
    assert f"sticky CUDA error in {name}" in out, out[-3000:]
    assert "1 failed" in out and "passed" not in out, out[-3000:]  # demo b never ran
