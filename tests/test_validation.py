"""The validation rules every launcher shares (kernels/_lib/validation.py): one device rule, one integer rule,
one scalar rule, one rule for small 1-D arguments, grid limits, and memory-overlap checks. Each rule is
tested on its helper and through every launcher it applies to; shapes are tiny (interpreter)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels._lib.spec import op_spec
from kernels._lib.validation import (
    CUDA_GRID_LIMITS,
    check_grid,
    check_int,
    check_real,
    has_internal_overlap,
    memory_overlap,
)
from kernels.attention import attention, attention_ref
from kernels.attention.configs import check_launch_grids, launch_grids
from kernels.gelu import gelu, gelu_ref
from kernels.gemv import gemv, gemv_ref
from kernels.qkv import qkv_projection, qkv_projection_ref
from kernels.softmax import softmax, softmax_ref
from roofline.model.ops import KERNELS

# ----------------------------------------------------------------------------------------------
# Inputs for each launcher: each op's validation sample (kernels/<op>/spec.py), tiny launch arguments
# ----------------------------------------------------------------------------------------------

SPECS = {op: op_spec(op) for op in KERNELS}


def _attention_args(device="cpu"):
    return SPECS["attention"].sample_args(device)[0]


def _qkv_args(device="cpu"):
    return SPECS["qkv"].sample_args(device)[0]


def _launch_sample(op: str, device: str):
    args, kwargs = SPECS[op].sample_args(device)
    return SPECS[op].launcher(*args, **kwargs)


@pytest.mark.parametrize("op", KERNELS)
def test_every_op_declares_a_sample_its_launcher_takes(op):
    """The device rules below run over every op's sample: it must launch here (interpreter) and name the
    launcher's first tensor argument, or the refusals below would test nothing."""
    spec = SPECS[op]
    assert next(iter(inspect.signature(spec.launcher).parameters)) == spec.first_arg
    out = _launch_sample(op, "cpu")
    assert all(torch.isfinite(t).all() for t in (out if isinstance(out, tuple) else (out,)))


@pytest.mark.parametrize("name", KERNELS)
def test_cpu_tensors_without_the_interpreter_are_refused_alike(name, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match=rf"^{SPECS[name].first_arg}: expected a CUDA tensor \(CPU tensors "
                                         r"need TRITON_INTERPRET=1\), got cpu"):
        _launch_sample(name, "cpu")


@pytest.mark.parametrize("name", KERNELS)
def test_meta_tensors_are_refused_alike(name):
    first = SPECS[name].first_arg
    with pytest.raises(ValueError, match=rf"^{first}: expected a CUDA tensor .* got one on meta"):
        _launch_sample(name, "meta")


# ----------------------------------------------------------------------------------------------
# One integer rule: operator.index, bools refused
# ----------------------------------------------------------------------------------------------

def test_check_int():
    assert check_int("n", np.int64(3), lo=1) == 3 and type(check_int("n", np.int32(3))) is int
    for bad in (True, np.True_, 2.0, "2", None):
        with pytest.raises(ValueError, match="n: expected a positive integer, got"):
            check_int("n", bad, lo=1)
    with pytest.raises(ValueError, match=r"n: expected an integer in \[1, 4\] or None, got 5"):
        check_int("n", 5, lo=1, hi=4, none_ok=True)


def test_bools_are_not_head_counts():
    x, w = _qkv_args()
    for kwargs in ({"n_heads": True, "n_kv_heads": True}, {"n_heads": 1, "n_kv_heads": np.True_}):
        with pytest.raises(ValueError, match="n_(kv_)?heads: expected a positive integer, got the bool"):
            qkv_projection(x, w, **kwargs)


def test_numpy_integers_are_accepted_everywhere():
    x, w = _qkv_args()
    q, k, v = qkv_projection(x, w, n_heads=np.int64(1), n_kv_heads=np.int32(1))
    rq, rk, rv = qkv_projection_ref(x, w, n_heads=1, n_kv_heads=1, compute_dtype=torch.float64)
    torch.testing.assert_close((q, k, v), (rq, rk, rv), atol=1e-5, rtol=1e-5)
    xg, wg = torch.randn(1, 700), torch.randn(5, 700)
    torch.testing.assert_close(gemv(xg, wg, split_k=np.int64(2)), gemv_ref(xg, wg), atol=1e-4, rtol=1e-4)
    args = _attention_args()
    torch.testing.assert_close(attention(*args, num_splits=np.int64(2)), attention(*args, num_splits=1),
                               atol=1e-6, rtol=1e-6)
    for bad in (True, np.True_, 2.0):
        with pytest.raises(ValueError, match="num_splits: expected an integer in"):
            attention(*args, num_splits=bad)
        with pytest.raises(ValueError, match="split_k: expected a positive integer or None"):
            gemv(xg, wg, split_k=bad)


def test_one_flag_rule():
    x = torch.randn(2, 8)
    args = _attention_args()
    xq, w = _qkv_args()
    for bad in (1, None, "yes"):
        with pytest.raises(TypeError, match="inplace: expected a bool"):
            gelu(x, inplace=bad)
        with pytest.raises(TypeError, match="return_lse: expected a bool"):
            attention(*args, return_lse=bad)
        with pytest.raises(TypeError, match="check_cache_len: expected a bool"):
            attention(*args, check_cache_len=bad)
        with pytest.raises(TypeError, match="check_cache_len: expected a bool"):
            qkv_projection(xq, w, n_heads=1, n_kv_heads=1, check_cache_len=bad)
    o, lse = attention(*args, return_lse=np.True_)  # numpy bools are bools
    assert lse.shape == args[0].shape[:3]


# ----------------------------------------------------------------------------------------------
# One scalar rule: finite python/numpy reals, no bools, no OverflowError
# ----------------------------------------------------------------------------------------------

def test_check_real():
    assert check_real("s", np.float32(0.5)) == 0.5 and check_real("s", np.int64(2)) == 2.0
    for bad in (10**400, -(10**400), float("inf"), np.float32("nan"), True, np.True_, "1", None, 1j):
        with pytest.raises(ValueError, match="s: expected a finite real number"):
            check_real("s", bad)


@pytest.mark.parametrize("launcher", ["softmax", "attention"])
def test_scale_rule_is_shared(launcher):
    if launcher == "softmax":
        x = torch.randn(3, 7)

        def run(scale):
            return softmax(x, scale=scale)
        ref = softmax_ref(x.double(), scale=0.5).float()
    else:
        args = _attention_args()

        def run(scale):
            return attention(*args, scale=scale)
        ref = attention(*args, scale=0.5)
    torch.testing.assert_close(run(np.float32(0.5)), ref, atol=1e-6, rtol=1e-6)
    for bad in (10**400, True, np.float64("inf")):
        with pytest.raises(ValueError, match="scale: expected a finite real number"):
            run(bad)


# ----------------------------------------------------------------------------------------------
# One rule for small 1-D arguments (bias, cache_len): any stride
# ----------------------------------------------------------------------------------------------

def test_strided_bias_is_accepted_by_every_launcher_with_a_bias():
    b = torch.randn(24)[::2]  # 12 elements, stride 2
    x = torch.randn(3, 12)
    torch.testing.assert_close(gelu(x, b), gelu_ref(x, b), atol=1e-6, rtol=1e-5)
    w = torch.randn(12, 16) / 4
    xg = torch.randn(2, 16)
    torch.testing.assert_close(gemv(xg, w, b), gemv_ref(xg, w, b), atol=1e-4, rtol=1e-4)
    xq = torch.randn(1, 2, 16)
    got = qkv_projection(xq, w, b, n_heads=2, n_kv_heads=1)
    want = qkv_projection_ref(xq, w, b.contiguous(), n_heads=2, n_kv_heads=1, compute_dtype=torch.float64)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_strided_cache_len_is_accepted_by_qkv_and_attention():
    lens = torch.tensor([1, 9, 3, 9], dtype=torch.int32)[::2]  # [1, 3], stride 2
    xq, w = torch.randn(2, 2, 8), torch.randn(3 * 64, 8)
    kc, vc = torch.zeros(2, 1, 6, 64), torch.zeros(2, 1, 6, 64)
    rk, rv = kc.clone(), vc.clone()
    got = qkv_projection(xq, w, n_heads=1, n_kv_heads=1, k_cache=kc, v_cache=vc, cache_len=lens)
    want = qkv_projection_ref(xq, w, n_heads=1, n_kv_heads=1, k_cache=rk, v_cache=rv,
                              cache_len=lens.contiguous(), compute_dtype=torch.float64)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    q = got[0]
    torch.testing.assert_close(attention(q, kc, vc, lens), attention_ref(q, kc, vc, lens.contiguous()),
                               atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# Grid limits (the interpreter has none: the check is tested directly and through the launcher)
# ----------------------------------------------------------------------------------------------

def test_check_grid():
    check_grid((5, 65535, 65535), ("x", "y", "z"))
    with pytest.raises(ValueError, match="q: batch = 65,536 programs on CUDA grid axis z, past its limit "
                                         "of 65,535"):
        check_grid((1, 1, 65536), ("a", "b", "q: batch"))
    assert CUDA_GRID_LIMITS == (2**31 - 1, 65535, 65535)


@pytest.mark.parametrize("variant,q_len,batch,n_heads,axis", [
    ("prefill", 20, 65536, 1, "z"),
    ("prefill", 20, 1, 65536, "y"),
    ("splitkv", 1, 65536, 1, "z"),
    ("splitkv", 16, 32768, 8, "z"),  # 8 heads x 16 tokens = 2 blocks of 64 packed rows per sequence
    ("splitkv", 1, 1, 65536, "y"),  # the combine kernel's query heads
])
def test_attention_grid_limits(variant, q_len, batch, n_heads, axis):
    grids = launch_grids(variant, batch, n_heads, 1, q_len, 64, num_splits=2)
    assert any(grid["xyz".index(axis)] > 65535 for grid, _ in grids)
    with pytest.raises(ValueError, match=f"programs on CUDA grid axis {axis}"):
        check_launch_grids(variant, batch, n_heads, 1, q_len, 64, num_splits=2)
    check_launch_grids(variant, 1, 8, 1, q_len, 64, num_splits=2)  # an ordinary shape passes


def test_attention_refuses_a_batch_past_the_grid_before_launching():
    q = torch.zeros(65536, 1, 1, 64)
    k = torch.zeros(65536, 1, 1, 64)
    with pytest.raises(ValueError, match=r"q: batch.* = 65,536 programs on CUDA grid axis z"):
        attention(q, k, k, torch.zeros(65536, dtype=torch.int32), check_cache_len=False)


# ----------------------------------------------------------------------------------------------
# Memory overlap
# ----------------------------------------------------------------------------------------------

def test_memory_overlap_helper():
    x = torch.randn(8, 16)
    assert memory_overlap(x, x) == "full"
    assert memory_overlap(x, x.view(8, 16)) == "full"
    assert memory_overlap(x, x[0]) == "partial"
    assert memory_overlap(x, x.t()) == "partial"
    assert memory_overlap(x[:4], x[4:]) == "none"
    assert memory_overlap(x, torch.randn(8, 16)) == "none"
    assert memory_overlap(x[:, :0], x) == "none"
    kv = torch.randn(2, 3, 5, 2, 4)  # interleaved K and V: [B, H, cap, 2, D]
    assert memory_overlap(kv[..., 0, :], kv[..., 1, :]) == "none"
    assert memory_overlap(kv[..., 0, :], kv[..., 0, 1:]) == "partial"
    assert memory_overlap(x.view(torch.int32), x) == "full"  # same bytes, same layout


def test_internal_overlap_helper():
    base = torch.randn(64)
    assert not has_internal_overlap(base.view(4, 16))
    assert not has_internal_overlap(base.view(4, 16).t())
    assert not has_internal_overlap(base.view(2, 2, 16)[:, :, ::2])
    assert has_internal_overlap(base[:16].expand(4, 16))
    assert has_internal_overlap(base.as_strided((4, 2), (1, 3)))  # offsets 0..3 and 3..6 meet at 3
    assert not has_internal_overlap(base.as_strided((3, 2), (2, 3)))  # {0,2,4} and {3,5,7}: disjoint
    assert not has_internal_overlap(base[:1].expand(1, 1, 1))
    assert not has_internal_overlap(base.as_strided((5, 1), (0, 7))[:1])


def test_gelu_refuses_a_bias_that_aliases_its_inplace_output():
    x = torch.randn(8, 64)
    expected = gelu_ref(x.double(), x[0].double()).float()
    with pytest.raises(ValueError, match="bias: shares memory with the output x"):
        y = x.clone()
        gelu(y, y[0], inplace=True)
    torch.testing.assert_close(gelu(x, x[0]), expected, atol=1e-6, rtol=1e-5)  # not in place: fine
    y = x.clone()
    assert gelu(y, inplace=True) is y  # identity in place is the documented use
    torch.testing.assert_close(y, gelu_ref(x), atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="x: an output whose elements overlap"):
        gelu(x[0].expand(4, 64), inplace=True)


def _caches(batch=2, capacity=6, dh=64):
    return torch.zeros(batch, 1, capacity, dh), torch.zeros(batch, 1, capacity, dh)


@pytest.mark.parametrize("case", ["k-expanded", "v-expanded", "k-is-v", "k-overlaps-v", "k-aliases-x",
                                  "v-aliases-weight", "k-aliases-cache_len"])
def test_qkv_refuses_caches_that_alias(case):
    x, w = torch.randn(2, 1, 64), torch.randn(3 * 64, 64)
    lens = torch.tensor([0, 2], dtype=torch.int32)
    k, v = _caches()
    if case == "k-expanded":  # two sequences would write one row
        k = torch.zeros(1, 1, 6, 64).expand(2, 1, 6, 64)
    elif case == "v-expanded":
        v = torch.zeros(1, 1, 6, 64).expand(2, 1, 6, 64)
    elif case == "k-is-v":
        v = k
    elif case == "k-overlaps-v":
        buf = torch.zeros(2 * 1 * 7 * 64)
        k, v = buf[:2 * 6 * 64].view(2, 1, 6, 64), buf[2 * 64:2 * 7 * 64].view(2, 1, 6, 64)
    elif case == "k-aliases-x":
        k = torch.zeros(2, 1, 6, 64)
        x = k[:, 0, :1]  # [2, 1, 64]: the first cache row of each sequence
    elif case == "v-aliases-weight":
        w = torch.zeros(3 * 64, 64)
        v = w[:2 * 6].view(2, 1, 6, 64)
    elif case == "k-aliases-cache_len":
        k = torch.zeros(2, 1, 6, 64)
        lens = k.view(-1)[:4].view(torch.int32)[:2].zero_()
    before = (k.clone(), v.clone())
    with pytest.raises(ValueError, match="shares memory with the output|an output whose elements overlap"):
        qkv_projection(x, w, n_heads=1, n_kv_heads=1, k_cache=k, v_cache=v, cache_len=lens)
    if case not in ("v-aliases-weight",):  # nothing was written
        assert torch.equal(k, before[0]) and torch.equal(v, before[1])


def test_qkv_accepts_interleaved_disjoint_caches():
    kv = torch.zeros(2, 1, 6, 2, 64)  # one [B, Hkv, cap, 2, Dh] buffer: K and V interleave, never meet
    k, v = kv[:, :, :, 0], kv[:, :, :, 1]
    rk, rv = torch.zeros(2, 1, 6, 64), torch.zeros(2, 1, 6, 64)
    x, w = torch.randn(2, 2, 16), torch.randn(3 * 64, 16) / 4
    lens = torch.tensor([0, 3], dtype=torch.int32)
    got = qkv_projection(x, w, n_heads=1, n_kv_heads=1, k_cache=k, v_cache=v, cache_len=lens)
    want = qkv_projection_ref(x, w, n_heads=1, n_kv_heads=1, k_cache=rk, v_cache=rv, cache_len=lens,
                              compute_dtype=torch.float64)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_attention_reads_shared_caches():
    """Attention only reads its caches, so K = V or a prefix expanded over the batch is legitimate."""
    q = torch.randn(2, 2, 1, 64)
    k = torch.randn(1, 1, 5, 64).expand(2, 1, 5, 64)
    lens = torch.tensor([1, 4], dtype=torch.int32)
    torch.testing.assert_close(attention(q, k, k, lens), attention_ref(q, k, k, lens), atol=1e-5,
                               rtol=1e-5)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_overlap_helpers_agree_with_brute_force(data):
    """Random strided views of one small buffer: the exact helpers against the set of element offsets."""
    base = torch.zeros(256)

    def view():
        ndim = data.draw(st.integers(1, 3))
        shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
        strides = tuple(data.draw(st.lists(st.integers(0, 9), min_size=ndim, max_size=ndim)))
        offset = data.draw(st.integers(0, 40))
        return base.as_strided(shape, strides, offset)

    def offsets(t):
        return [t.storage_offset() + sum(i * s for i, s in zip(ix, t.stride(), strict=True))
                for ix in np.ndindex(*t.shape)]

    a, b = view(), view()
    oa, ob = offsets(a), offsets(b)
    assert has_internal_overlap(a) == (len(set(oa)) < len(oa))
    status = memory_overlap(a, b)
    same_layout = (a.storage_offset(), a.shape, a.stride()) == (b.storage_offset(), b.shape, b.stride())
    assert status == ("full" if same_layout else "partial" if set(oa) & set(ob) else "none")
