"""The per-kernel cost model (roofline/model/cost.py): FlopCounterMode cross-checks and roofline
properties."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from roofline.model.cost import (
    CONVENTIONS,
    Cost,
    attention_cost,
    causal_pairs,
    dtype_bytes,
    dtype_name,
    gelu_cost,
    gemm_cost,
    gemv_cost,
    qkv_cost,
    softmax_cost,
)
from roofline.model.hardware import PRESETS
from roofline.model.ops import MATMUL_KERNELS, OPS, kernel_cost

A100 = PRESETS["A100-SXM4-80GB"]


def counted(fn, *args, **kwargs) -> int:
    """FLOPs torch.utils.flop_counter attributes to ``fn`` (matmuls and attention only)."""
    with FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()


# ------------------------------------------------------------------------------------------------
# FlopCounterMode cross-checks on the PyTorch reference ops


@pytest.mark.parametrize(("m", "n", "k"), [(1, 1, 1), (3, 5, 7), (1, 4096, 11), (33, 17, 64)])
def test_gemm_flops_match_flop_counter(m, n, k):
    x, w, b = torch.randn(m, k), torch.randn(n, k), torch.randn(n)
    assert gemm_cost(m, n, k, "float32").flops == counted(F.linear, x, w)
    # FlopCounterMode ignores the bias add; the cost model counts it as 1 FLOP per output.
    assert gemm_cost(m, n, k, "float32", bias=True).flops == counted(F.linear, x, w, b) + m * n
    assert gemv_cost(m, n, k, "float32").flops == gemm_cost(m, n, k, "float32").flops


@pytest.mark.parametrize(("m", "d", "hq", "hkv", "dh"),
                         [(5, 48, 4, 4, 12), (7, 64, 8, 2, 8), (1, 32, 4, 1, 8)])
def test_fused_qkv_flops_match_flop_counter(m, d, hq, hkv, dh):
    x, w = torch.randn(m, d), torch.randn((hq + 2 * hkv) * dh, d)
    assert qkv_cost(m, d, hq, hkv, dh, "float16").flops == counted(F.linear, x, w)


def _sdpa(q, k, v, **kw):
    with sdpa_kernel(SDPBackend.MATH):  # the CPU flash kernel is not registered with FlopCounterMode
        return F.scaled_dot_product_attention(q, k, v, **kw)


@pytest.mark.parametrize(
    ("batch", "hq", "hkv", "dh", "q_len", "cache_len"),
    [(1, 2, 2, 8, 1, 0), (2, 4, 4, 16, 1, 9), (2, 4, 2, 8, 5, 7), (3, 8, 1, 4, 6, 0), (1, 6, 3, 8, 4, 13)],
)
def test_attention_flops_match_flop_counter_after_undoing_the_mask(batch, hq, hkv, dh, q_len, cache_len):
    """FlopCounterMode counts every (query, key) pair, masked or not: ``4*Dh*Hq`` per pair. The cost
    model counts unmasked pairs only, so the two differ by exactly the ``q_len*(q_len-1)/2`` masked pairs
    per sequence and head. GQA: the counter sees K/V expanded to the query heads, and attention FLOPs
    scale with query heads, so the KV head count must not matter."""
    kv_len = cache_len + q_len
    q = torch.randn(batch, hq, q_len, dh)
    k, v = torch.randn(batch, hq, kv_len, dh), torch.randn(batch, hq, kv_len, dh)
    full = counted(_sdpa, q, k, v)
    assert full == 4 * dh * hq * batch * q_len * kv_len
    mask = torch.ones(q_len, kv_len, dtype=torch.bool).tril(cache_len)  # query i sees keys <= cache_len+i
    assert counted(_sdpa, q, k, v, attn_mask=mask) == full  # the mask changes nothing it counts
    masked_pairs = batch * q_len * (q_len - 1) // 2
    ours = attention_cost(batch, hq, hkv, dh, q_len, cache_len, "bfloat16").flops
    assert ours == full - 4 * dh * hq * masked_pairs
    assert ours == 4 * dh * hq * batch * causal_pairs(q_len, cache_len)
    # Explicit matmul attention, as a reference implementation writes it.
    def explicit(q, k, v):
        p = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        return p @ v
    assert counted(explicit, q, k, v) == full
    if hkv != hq:  # SDPA's native GQA path counts the same FLOPs as the expanded one
        kg, vg = k[:, :hkv].contiguous(), v[:, :hkv].contiguous()
        assert counted(_sdpa, q, kg, vg, enable_gqa=True) == full


def test_flash_attention_formula_registered_with_flop_counter_agrees():
    """On a GPU SDPA dispatches to flash/efficient kernels; their registered FLOP formula must agree."""
    from torch.utils import flop_counter

    b, h, s_q, s_kv, dh = 2, 4, 3, 11, 16
    formula = flop_counter.sdpa_flop_count((b, h, s_q, dh), (b, h, s_kv, dh), (b, h, s_kv, dh))
    assert formula == 4 * dh * h * b * s_q * s_kv


# ------------------------------------------------------------------------------------------------
# Formulas and bytes


def test_causal_pairs():
    assert causal_pairs(1, 0) == 1 and causal_pairs(1, 99) == 100
    assert causal_pairs(7, 0) == 28  # prefill: T(T+1)/2
    assert causal_pairs(3, 5) == 3 * 5 + 6


def test_attention_bytes_scale_with_kv_heads_and_ragged_lengths():
    lens = [0, 5, 17]
    ragged = attention_cost(3, 8, 2, 16, 1, lens, "float16")
    per_seq = [attention_cost(1, 8, 2, 16, 1, c, "float16") for c in lens]
    assert ragged.flops == sum(c.flops for c in per_seq) and ragged.bytes == sum(c.bytes for c in per_seq)
    # bytes: Q and O per query head, K and V per KV head over cache + new tokens, 2 bytes each
    assert ragged.bytes == 2 * (2 * 3 * 8 * 16 + 2 * 2 * 16 * sum(c + 1 for c in lens))


def test_gemm_compulsory_bytes():
    c = gemm_cost(4, 6, 8, "bfloat16", bias=True)
    assert c.bytes == 2 * (4 * 8 + 8 * 6 + 4 * 6 + 6)
    assert c.flops == 2 * 4 * 6 * 8 + 4 * 6


def test_seed_003_eq_d1_drops_a_factor_of_two():
    """Seed 003 (App. D, eq. D.1) gives the intensity of ``[B,S,D] @ [D,D]`` as ``(1/p) BSD/(2BS+D)``.
    The FLOPs are ``2*BS*D^2`` and the bytes ``p*(2*BS*D + D^2)``, so the intensity is
    ``(1/p) * 2*BS*D / (2BS + D)``: the document lost the 2 of the FMA. At BS=4096, D=8192, bf16 it is
    2048 FLOP/byte, not 1024."""
    bs, d, p = 4096, 8192, 2
    cost = gemm_cost(bs, d, d, "bfloat16")
    assert cost.intensity == pytest.approx(2 * bs * d / (p * (2 * bs + d)))
    assert cost.intensity == 2048.0
    seed = bs * d / (p * (2 * bs + d))
    assert cost.intensity == 2 * seed


def test_softmax_and_gelu_costs():
    assert softmax_cost(3, 10, "float32") == Cost(150.0, 240.0)
    assert gelu_cost(100, "float16").flops == 500
    assert gelu_cost(100, "float16", "tanh", bias_len=10) == Cost(1000.0, 2 * (200 + 10))


def test_kernel_cost_dispatches_on_recorded_shapes():
    shape = {"batch": 2, "n_heads": 4, "n_kv_heads": 2, "head_dim": 8, "q_len": 1, "cache_len": 5}
    assert kernel_cost("attention", shape, "float16") == attention_cost(**shape, dtype="float16")
    assert set(MATMUL_KERNELS) <= set(OPS)
    assert {"fma", "attention", "gqa", "peaks", "units"} <= set(CONVENTIONS)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: gemm_cost(-1, 2, 2, "float16"), ValueError, "m: expected a non-negative size"),
        (lambda: attention_cost(2, 8, 3, 16, 1, 4, "float16"), ValueError, "n_kv_heads: must divide"),
        (lambda: attention_cost(2, 8, 0, 16, 1, 4, "float16"), ValueError, "n_kv_heads: must divide"),
        (lambda: attention_cost(2, 8, 2, 16, 1, [4], "float16"), ValueError, "cache_len: expected 2"),
        (lambda: causal_pairs(-1, 0), ValueError, "q_len"),
        (lambda: gelu_cost(4, "float16", "sigmoid"), ValueError, "approximate"),
        (lambda: softmax_cost(2, 2, "int4"), ValueError, "dtype: unsupported"),
        (lambda: kernel_cost("conv", {}, "float16"), KeyError, "no cost model for 'conv'"),
    ],
)
def test_bad_arguments_are_named(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize(("alias", "name", "size"), [
    ("fp16", "float16", 2), ("torch.bfloat16", "bfloat16", 2), ("half", "float16", 2),
    ("fp32", "float32", 4)])
def test_dtype_aliases(alias, name, size):
    assert dtype_name(alias) == name and dtype_bytes(alias) == size
    assert dtype_name(getattr(torch, name)) == name


# ------------------------------------------------------------------------------------------------
# Roofline properties


@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 4096), n=st.integers(1, 16384), k=st.integers(1, 16384))
def test_gemv_intensity_grows_with_batch_and_is_bounded_by_the_square_case(b, n, k):
    lo, hi = gemv_cost(b, n, k, "float16"), gemv_cost(b + 1, n, k, "float16")
    assert hi.intensity >= lo.intensity
    # weights dominate at batch 1: about 1 FLOP/byte in fp16, never more
    assert gemv_cost(1, n, k, "float16").intensity <= 1.0


@settings(max_examples=60, deadline=None)
@given(hkv=st.sampled_from([1, 2, 4, 8]), group=st.sampled_from([2, 4, 8]), dh=st.sampled_from([64, 128]),
       cache=st.integers(64, 65536), batch=st.integers(1, 64))
def test_gqa_raises_decode_attention_intensity_by_about_the_group_size(hkv, group, dh, cache, batch):
    hq = hkv * group
    mha = attention_cost(batch, hq, hq, dh, 1, cache, "bfloat16")
    gqa = attention_cost(batch, hq, hkv, dh, 1, cache, "bfloat16")
    assert gqa.flops == mha.flops
    ratio = gqa.intensity / mha.intensity
    # exact: (c + 2) / (1 + (c + 1) / G); Q/O traffic keeps it just under G
    assert ratio <= group
    assert ratio >= group * (1 - group / (cache + 1))
    # MHA decode attention: 1 FLOP/byte in bf16 at any context, far below every ridge
    assert mha.intensity < 1.0
    assert mha.bound(A100, "tensor16") == "memory"


@settings(max_examples=80, deadline=None)
@given(flops=st.floats(1.0, 1e18), nbytes=st.floats(1.0, 1e15))
def test_attainable_time_is_the_max_of_the_two_roofs(flops, nbytes):
    c = Cost(flops, nbytes)
    t_compute, t_memory = flops / A100.peak("tensor16"), nbytes / A100.mem_bandwidth
    assert c.attainable_seconds(A100, "tensor16") == max(t_compute, t_memory)
    if not math.isclose(t_compute, t_memory, rel_tol=1e-12):  # at the ridge either answer is right
        assert c.bound(A100, "tensor16") == ("compute" if t_compute > t_memory else "memory")
    attainable = c.attainable_seconds(A100, "tensor16")
    assert c.attainable_flops_per_s(A100, "tensor16") == pytest.approx(flops / attainable)


def test_bound_flips_at_the_ridge():
    ridge = A100.ridge("tensor16")
    nbytes = 1e9
    below, at, above = (Cost(f * ridge * nbytes, nbytes) for f in (0.999, 1.0, 1.001))
    assert below.bound(A100, "tensor16") == "memory"
    assert at.bound(A100, "tensor16") == "compute" and above.bound(A100, "tensor16") == "compute"
    assert at.attainable_seconds(A100, "tensor16") == pytest.approx(nbytes / A100.mem_bandwidth)
    assert at.attainable_flops_per_s(A100, "tensor16") == pytest.approx(A100.peak("tensor16"))
    assert Cost(5.0, 0.0).intensity == math.inf


def test_every_list_of_kernels_derives_from_the_ops_table():
    from roofline.model import sweeps
    from roofline.model.ops import KERNELS, OPS
    from roofline.report.plot import scene

    # The Triton ops are the table's rows with a kernels/<op> package, in table order; every package
    # under kernels/ but the shared ones is a row (a package missing from the table would never run).
    root = Path(__file__).resolve().parent.parent
    packages = {d.name for d in (root / "kernels").iterdir() if (d / "__init__.py").is_file()}
    assert KERNELS == tuple(name for name in OPS if name in packages)
    assert packages - set(KERNELS) == {"_lib", "audit"}
    assert scene.KERNEL_ORDER == tuple(OPS)
    assert MATMUL_KERNELS == {n for n, op in OPS.items() if op.matmul}
    # The rows present today keep their roofs (a new row may add to either side).
    assert {"qkv", "gemv", "attention", "gemm"} <= MATMUL_KERNELS and not {"softmax", "gelu"} & MATMUL_KERNELS
    used = {tuple(p.sweep.split(".", 1)[0].split("/")) for preset in sweeps.SWEEP_PRESETS
            for kind in sweeps.DEVICE_KINDS for p in sweeps.sweep_points(preset, kind)}
    assert used == {(name, t) for name, op in OPS.items() for t in op.trajectories}
    assert len({op.color for op in OPS.values()}) == len(OPS)
