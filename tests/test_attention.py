"""Numerics of kernels.attention under the Triton interpreter, against a float64 reference.

Every test fills the kernel's outputs (and split-KV partials) with NaN before it runs, and fills the
cache past each sequence's ``cache_len + q_len`` with NaN or huge values, so an element never written
or a key read past a sequence's end fails the comparison.
"""

from __future__ import annotations

import pytest
import torch

from kernels._lib import launch
from kernels._lib.launch import last_launch, triton_config_id
from kernels.attention import TOLERANCES, attention, attention_ref, attention_sdpa
from kernels.attention.configs import DECODE_CONFIGS, PREFILL_CONFIGS
from kernels.attention.prefill import launch_prefill

EXACT = TOLERANCES[torch.float32]  # fp32 under the interpreter: exact dots, summation order differs
BF16_SKIP = pytest.mark.skip(reason="tl.dot on bfloat16 returns garbage under the Triton interpreter "
                                    "(triton-lang/triton#11584); bf16 is covered by the sm_80/sm_90 compile")



def make_inputs(batch, n_heads, n_kv_heads, q_len, head_dim, lens, *, dtype=torch.float32, extra=5,
                garbage=float("nan"), seed=0):
    """q, caches holding ``lens[b] + q_len`` valid tokens (then ``garbage``), and int32 cache_len."""
    gen = torch.Generator().manual_seed(seed)
    capacity = max(lens) + q_len + extra
    q = torch.randn(batch, n_heads, q_len, head_dim, generator=gen).to(dtype)
    k = torch.randn(batch, n_kv_heads, capacity, head_dim, generator=gen).to(dtype)
    v = torch.randn(batch, n_kv_heads, capacity, head_dim, generator=gen).to(dtype)
    for b, length in enumerate(lens):
        k[b, :, length + q_len:] = garbage
        v[b, :, length + q_len:] = garbage
    return q, k, v, torch.tensor(lens, dtype=torch.int32)


def reference(q, k, v, cache_len, scale=None):
    return attention_ref(q.double(), k.double(), v.double(), cache_len, scale=scale, return_lse=True,
                           compute_dtype=torch.float64)


def check(q, k, v, cache_len, tol, scale=None, **kwargs):
    o, lse = attention(q, k, v, cache_len, scale=scale, return_lse=True, **kwargs)
    ref_o, ref_lse = reference(q, k, v, cache_len, scale)
    assert o.dtype == q.dtype and o.shape == q.shape and o.is_contiguous()
    assert lse.dtype == torch.float32 and lse.shape == q.shape[:3]
    torch.testing.assert_close(o.double(), ref_o, atol=tol[0], rtol=tol[1])
    torch.testing.assert_close(lse.double(), ref_lse, atol=tol[0], rtol=tol[1])
    return o, lse


# (batch, Hq, Hkv, q_len, Dh, cache lengths): decode, speculative chunks, chunked and plain prefill;
# lengths 0 and 1, unequal across the batch, on both sides of the 64-key tile boundary.
CASES = {
    "decode-mha-len0-1": (2, 2, 2, 1, 64, [0, 1]),
    "decode-gqa8/1-tiles": (3, 8, 1, 1, 64, [63, 64, 200]),
    "decode-gqa32/8-scaled": (2, 8, 2, 1, 64, [130, 7]),
    "spec7-gqa": (2, 4, 2, 7, 64, [57, 0]),
    "prefill64": (1, 2, 2, 64, 64, [0]),
    "chunk129-gqa": (2, 4, 2, 129, 64, [0, 3]),
}


# split-KV at q_len > 64 is test_splitkv_many_row_blocks (a smaller shape: the interpreter is slow)
@pytest.mark.parametrize("shape_name,variant", [(n, v) for n in CASES for v in ("prefill", "splitkv")
                                                if v == "prefill" or CASES[n][3] <= 64])
def test_fp32_matches_float64_reference(shape_name, variant):
    batch, hq, hkv, q_len, dh, lens = CASES[shape_name]
    check(*make_inputs(batch, hq, hkv, q_len, dh, lens), EXACT, variant=variant)
    assert last_launch("attention").variant == variant


@pytest.mark.parametrize("head_dim", [80, 96, 128, 256])
def test_every_head_dim(head_dim):
    # padded head dims (80, 96 -> 128) mask their loads; one prefill chunk and one decode each
    variant = "prefill" if head_dim in (80, 128) else "splitkv"
    q_len = 9 if variant == "prefill" else 2
    check(*make_inputs(2, 2, 1, q_len, head_dim, [5, 70]), EXACT, variant=variant)


@pytest.mark.parametrize("dtype", [torch.float16, pytest.param(torch.bfloat16, marks=BF16_SKIP)])
@pytest.mark.parametrize("variant,q_len,lens", [("prefill", 33, [0, 40]), ("splitkv", 1, [300, 9]),
                                                ("splitkv", 4, [100, 0])])
def test_half_precision_within_tolerance(dtype, variant, q_len, lens):
    check(*make_inputs(2, 4, 2, q_len, 64, lens, dtype=dtype), TOLERANCES[dtype], variant=variant)


@pytest.mark.parametrize("garbage", [float("nan"), 1e30, float("inf")])
def test_cache_past_length_never_read(garbage):
    for variant, q_len in (("prefill", 5), ("splitkv", 1)):
        q, k, v, lens = make_inputs(2, 2, 1, q_len, 64, [60, 3], extra=70, garbage=garbage)
        check(q, k, v, lens, EXACT, variant=variant, num_splits=3 if variant == "splitkv" else None)


def test_split_combination_equals_single_pass():
    # q_len 2: the second token sees one more key, so a split can hold a key only one row sees
    q, k, v, lens = make_inputs(2, 2, 1, 2, 64, [300, 70])
    one, one_lse = attention(q, k, v, lens, variant="splitkv", num_splits=1, return_lse=True)
    assert last_launch("attention").config.endswith("num_splits=1")
    # 3 splits cut both sequences mid-way; 7 leaves the short one (2 key tiles) with empty splits
    for splits in (3, 7):
        o, lse = attention(q, k, v, lens, variant="splitkv", num_splits=splits, return_lse=True)
        assert last_launch("attention").config.endswith(f"num_splits={splits}")
        torch.testing.assert_close(o, one, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(lse, one_lse, atol=1e-6, rtol=1e-6)
    ref_o, ref_lse = reference(q, k, v, lens)
    torch.testing.assert_close(one.double(), ref_o, atol=EXACT[0], rtol=EXACT[1])
    torch.testing.assert_close(one_lse.double(), ref_lse, atol=EXACT[0], rtol=EXACT[1])


def test_default_split_heuristic_splits_a_long_cache():
    q, k, v, lens = make_inputs(1, 2, 1, 1, 64, [1500])
    check(q, k, v, lens, EXACT)
    config = last_launch("attention").config
    assert last_launch("attention").variant == "splitkv"
    assert int(config.rsplit("num_splits=", 1)[1]) > 1


def test_splitkv_many_row_blocks():
    # group 4 x q_len 16 = 64 rows per block; q_len 40 gives 3 row blocks per KV head, causal within
    check(*make_inputs(1, 4, 1, 40, 64, [70]), EXACT, variant="splitkv", num_splits=1)


@pytest.mark.parametrize("bd", sorted(PREFILL_CONFIGS))
def test_every_shipped_prefill_config(bd):
    """Without autotuning only the first surviving config runs; this runs each shipped one (fp16)."""
    q, k, v, lens = make_inputs(1, 2, 1, 70, bd, [3], dtype=torch.float16)
    ref_o, ref_lse = reference(q, k, v, lens)
    for cfg in PREFILL_CONFIGS[bd]:
        o = torch.full_like(q, float("nan"))
        lse = torch.full(q.shape[:3], float("nan"))
        launch_prefill(q, k, v, lens, o, lse, bd ** -0.5, config=cfg)
        assert last_launch("attention").config == triton_config_id(cfg)
        torch.testing.assert_close(o.double(), ref_o, atol=2e-3, rtol=2e-3)
        torch.testing.assert_close(lse.double(), ref_lse, atol=2e-3, rtol=2e-3)
    assert set(DECODE_CONFIGS) == set(PREFILL_CONFIGS)  # decode configs: one per head dim, run above


def test_custom_scale_and_strided_views():
    # q as a [B, T, H, Dh] buffer viewed as [B, H, T, Dh]; caches as slices of larger buffers
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(2, 6, 4, 64, generator=gen).transpose(1, 2)
    kbuf = torch.randn(2, 3, 40, 64, generator=gen)
    vbuf = torch.randn(2, 3, 40, 64, generator=gen)
    k, v = kbuf[:, 1:3, 2:30], vbuf[:, :2, 5:33]
    lens = torch.tensor([10, 22], dtype=torch.int32)
    for variant in ("prefill", "splitkv"):
        check(q, k, v, lens, EXACT, scale=0.3, variant=variant)


def test_empty_inputs_launch_nothing():
    q = torch.randn(2, 4, 0, 64)
    k = torch.randn(2, 2, 8, 64)
    o, lse = attention(q, k, k, torch.tensor([3, 0], dtype=torch.int32), return_lse=True)
    assert o.shape == (2, 4, 0, 64) and lse.shape == (2, 4, 0)
    o = attention(torch.randn(0, 4, 1, 64), torch.randn(0, 2, 8, 64), torch.randn(0, 2, 8, 64),
                    torch.zeros(0, dtype=torch.int32))
    assert o.shape == (0, 4, 1, 64)


@pytest.mark.parametrize("q_len,lens", [(6, [0, 0]), (1, [9, 9]), (6, [9, 9]), (6, [3, 11])])
def test_sdpa_baseline_matches_reference(q_len, lens):
    # each mask path: is_causal, none, causal_lower_right, boolean (garbage 0: SDPA reads the padding)
    q, k, v, cache_len = make_inputs(2, 4, 2, q_len, 64, lens, garbage=0.0)
    ref = attention_ref(q, k, v, cache_len)
    for arg in ([lens[0]] if len(set(lens)) == 1 else []) + [cache_len]:
        torch.testing.assert_close(attention_sdpa(q, k, v, arg), ref, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# Non-finite scores: one convention (kernels/attention/DESIGN.md) for every variant, split count and capacity
# ----------------------------------------------------------------------------------------------

# the interpreter's numpy ops warn ("All-NaN slice", "invalid value") on the NaN rows made on purpose
NAN_ROWS = pytest.mark.filterwarnings("ignore::RuntimeWarning")


# The convention holds in every dtype a launcher takes (fp32 runs only under the interpreter, bf16 only
# compiled: the interpreter's bf16 tl.dot is broken, and that skip is lifted on --device cuda).
CONVENTION_DTYPES = [torch.float32, torch.float16, pytest.param(torch.bfloat16, marks=BF16_SKIP)]


def _check_convention(q, k, v, lens, max_splits):
    """Every way to run (prefill, split-KV's default heuristic, 1..max_splits splits) against the
    reference, NaNs in the same places, at q's dtype's tolerance; returns the reference and the
    default's split count."""
    tol = TOLERANCES[q.dtype]
    ref_o, ref_lse = reference(q, k, v, lens)
    assert not torch.isposinf(ref_lse).any()  # the reference follows the convention too
    runs = [("prefill", {"variant": "prefill"}), ("splitkv-default", {"variant": "splitkv"})]
    runs += [(f"splitkv-{s}", {"variant": "splitkv", "num_splits": s}) for s in range(1, max_splits + 1)]
    default_splits = None
    for label, kwargs in runs:
        o, lse = attention(q, k, v, lens, return_lse=True, **kwargs)
        if label == "splitkv-default":
            default_splits = int(last_launch("attention").config.rsplit("num_splits=", 1)[1])
        torch.testing.assert_close(o.double(), ref_o, atol=tol[0], rtol=tol[1], equal_nan=True,
                                   msg=lambda m, label=label: f"{label}: O {m}")
        torch.testing.assert_close(lse.double(), ref_lse, atol=tol[0], rtol=tol[1], equal_nan=True,
                                   msg=lambda m, label=label: f"{label}: LSE {m}")
    return ref_o, ref_lse, default_splits


@NAN_ROWS
@pytest.mark.parametrize("dtype", CONVENTION_DTYPES, ids=str)
@pytest.mark.parametrize("capacity", [4, 2048])
def test_query_whose_only_key_scores_minus_inf(capacity, dtype):
    """The issue's case: cache_len 0, one visible key scoring -inf. Before the fix split-KV with one split
    (the default at capacity 4) returned 0 and the rest NaN."""
    q = torch.ones(1, 1, 1, 64, dtype=dtype)
    k, v = torch.zeros(1, 1, capacity, 64, dtype=dtype), torch.randn(1, 1, capacity, 64).to(dtype)
    k[0, 0, 0] = -float("inf")
    ref_o, ref_lse, splits = _check_convention(q, k, v, torch.tensor([0], dtype=torch.int32), max_splits=3)
    assert ref_o.isnan().all() and ref_lse.item() == -float("inf")
    assert (splits == 1) == (capacity == 4)  # the heuristic splits by capacity: both paths are covered


@NAN_ROWS
@pytest.mark.parametrize("dtype", CONVENTION_DTYPES, ids=str)
@pytest.mark.parametrize("capacity", [4, 2048])
def test_plus_inf_key(capacity, dtype):
    """A +inf key: O NaN everywhere, LSE NaN on every path (was NaN from prefill, -inf from split-KV)."""
    q = torch.ones(1, 1, 1, 64, dtype=dtype)
    k, v = torch.randn(1, 1, capacity, 64).to(dtype), torch.randn(1, 1, capacity, 64).to(dtype)
    k[0, 0, 1] = float("inf")
    ref_o, ref_lse, splits = _check_convention(q, k, v, torch.tensor([3], dtype=torch.int32), max_splits=3)
    assert ref_o.isnan().all() and ref_lse.isnan().all()
    assert (splits == 1) == (capacity == 4)


@NAN_ROWS
@pytest.mark.parametrize("dtype", CONVENTION_DTYPES, ids=str)
def test_non_finite_keys_across_tiles_splits_and_rows(dtype):
    """Three sequences, 3 tokens each, GQA, 1..5 splits of up to 3 key tiles: sequence 0's key 0 is
    -inf for every query (row 0 sees only it: NaN, -inf; later rows are finite); sequence 1's every key
    is -inf (all rows NaN, -inf, across several tiles and splits); sequence 2 has a +inf key in its
    last tile only (rows that see it NaN, NaN; the others finite)."""
    gen = torch.Generator().manual_seed(7)
    q = torch.rand(3, 4, 3, 64, generator=gen) + 0.1  # positive: q . (+-inf) is +-inf, never NaN
    lens = [0, 150, 140]
    k, v = torch.randn(3, 2, 160, 64, generator=gen), torch.randn(3, 2, 160, 64, generator=gen)
    k[0, :, 0] = -float("inf")
    k[1, :, :153] = -float("inf")
    k[2, :, 141] = float("inf")  # visible to rows at positions 141, 142 (tokens 1 and 2)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    ref_o, ref_lse, _ = _check_convention(q, k, v, torch.tensor(lens, dtype=torch.int32), max_splits=5)
    assert ref_o[0, :, 0].isnan().all() and (ref_lse[0, :, 0] == -float("inf")).all()
    assert ref_o[0, :, 1:].isfinite().all() and ref_lse[0, :, 1:].isfinite().all()
    assert ref_o[1].isnan().all() and (ref_lse[1] == -float("inf")).all()
    assert ref_o[2, :, 0].isfinite().all() and ref_lse[2, :, 1:].isnan().all()


def test_outputs_start_as_nan_in_this_module():
    """tests/conftest.py NaN-fills every allocation of a kernel test module (the one seam, launch.empty)."""
    assert launch.empty((3,), torch.float32, torch.device("cpu")).isnan().all()
