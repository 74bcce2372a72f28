"""kernels.attention: validation errors, variant and split heuristics, and the compile cases the audit
compiles (their structure; the sm_80/sm_90 compile itself is the audit's job)."""

from __future__ import annotations

import inspect

import pytest
import torch
import triton

from kernels._lib import device
from kernels._lib.launch import triton_config_id
from kernels.attention import VARIANTS, attention, select_variant
from kernels.attention.cases import GATE_EXCEPTIONS, REQUIRED_GATES, compile_cases
from kernels.attention.configs import (
    HIP_PREFILL_CONFIGS,
    MAX_SPLITS,
    PREFILL_CONFIGS,
    SM90_CONFIGS,
    SPLITKV_MAX_Q_LEN,
    WS_CONFIGS,
    decode_block_m,
    prefill_configs,
    prune_configs,
    select_num_splits,
)
from kernels.attention.prefill import PREFILL_AUTOTUNE_KEY, prefill_tuner
from kernels.audit import SUPPORTED_ARCHS
from kernels.audit.gates import ALL_GATES, config_matches
from roofline.model.machine import ENV, GPU_MACHINES, MACHINES

F16 = torch.float16


def good(batch=2, hq=4, hkv=2, q_len=3, dh=64, capacity=16, dtype=torch.float16):
    """Valid inputs on every device: fp16 (a GPU refuses fp32 attention before any other check)."""
    q = torch.randn(batch, hq, q_len, dh, dtype=dtype)
    k = torch.randn(batch, hkv, capacity, dh, dtype=dtype)
    v = torch.randn(batch, hkv, capacity, dh, dtype=dtype)
    return q, k, v, torch.tensor([2, 5][:batch], dtype=torch.int32)


def raises(exc, match, *args, **kwargs):
    with pytest.raises(exc, match=match):
        attention(*args, **kwargs)


def test_good_inputs_run():
    q, k, v, lens = good()
    assert attention(q, k, v, lens).shape == q.shape


@pytest.mark.parametrize("mutate,exc,match", [
    (lambda q, k, v, c: (q[0], k, v, c), ValueError, "q: expected 4 dimensions"),
    (lambda q, k, v, c: (q.double(), k, v, c), TypeError, "q: dtype float64"),
    (lambda q, k, v, c: (q, k.float(), v, c), TypeError, "k_cache: dtype"),
    (lambda q, k, v, c: (q, k, v.float(), c), TypeError, "v_cache: dtype"),
    (lambda q, k, v, c: (q, k, v[:, :, :8], c), ValueError, "v_cache: expected shape"),
    (lambda q, k, v, c: (q, k[:1], v[:1], c), ValueError, "k_cache: expected shape"),
    (lambda q, k, v, c: (torch.randn(2, 4, 3, 48, dtype=F16), k, v, c), ValueError,
     "q: head dim 48 not supported"),
    (lambda q, k, v, c: (q, torch.randn(2, 3, 16, 64, dtype=F16), torch.randn(2, 3, 16, 64, dtype=F16), c),
     ValueError, r"k_cache: n_kv_heads \(3\) must divide"),
    (lambda q, k, v, c: (q, k, v, c.long()), TypeError, "cache_len: dtype int64"),
    (lambda q, k, v, c: (q, k, v, [2, 5]), TypeError, "cache_len: expected an int32 torch.Tensor"),
    (lambda q, k, v, c: (q, k, v, c[:1]), ValueError, r"cache_len: expected shape \(2,\)"),
    (lambda q, k, v, c: (q, k, v, c[None]), ValueError, "cache_len: expected 1 dimensions"),
    (lambda q, k, v, c: (q, k, v, torch.tensor([2, -1], dtype=torch.int32)), ValueError,
     "cache_len: lengths must"),
    (lambda q, k, v, c: (q, k, v, torch.tensor([2, 14], dtype=torch.int32)), ValueError,
     r"cache_len: cache_len \+ q_len = 14 \+ 3 exceeds the cache capacity 16"),
    (lambda q, k, v, c: (torch.randn(2, 4, 64, 3, dtype=F16).transpose(-1, -2), k, v, c), ValueError,
     "q: last dimension must be contiguous"),
    (lambda q, k, v, c: (q, torch.randn(2, 2, 64, 16, dtype=F16).transpose(-1, -2), v, c), ValueError,
     "k_cache: last dimension must be contiguous"),
    (lambda q, k, v, c: (q, k, v, c.to("meta")), ValueError, "cache_len: on meta but q is on (cpu|cuda)"),
    (lambda q, k, v, c: (q, k.to("meta"), v, c), ValueError, "k_cache: on meta but q is on (cpu|cuda)"),
    (lambda q, k, v, c: (q, k, v.to("meta"), c), ValueError, "v_cache: on meta but q is on (cpu|cuda)"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_each_bad_input_names_the_argument(mutate, exc, match):
    raises(exc, match, *mutate(*good()))


def test_bad_keyword_arguments():
    q, k, v, lens = good()
    raises(ValueError, "variant: expected one of", q, k, v, lens, variant="flash")
    raises(ValueError, "num_splits: expected an integer", q, k, v, lens, num_splits=0)
    raises(ValueError, "num_splits: expected an integer", q, k, v, lens, num_splits=MAX_SPLITS + 1)
    raises(ValueError, "num_splits: expected an integer", q, k, v, lens, num_splits=2.0)
    raises(ValueError, "num_splits: only applies", q, k, v, lens, variant="prefill", num_splits=2)
    raises(ValueError, "scale: expected a finite", q, k, v, lens, scale=float("nan"))
    raises(ValueError, "scale: expected a finite", q, k, v, lens, scale="0.1")


def test_check_cache_len_false_skips_the_value_checks():
    q, k, v, lens = good()
    bad = torch.tensor([2, 14], dtype=torch.int32)
    raises(ValueError, "exceeds the cache capacity", q, k, v, bad)
    # with the check off the caller owns the guarantee; a valid call still works
    assert attention(q, k, v, lens, check_cache_len=False).shape == q.shape


def test_select_variant():
    assert select_variant(1) == "splitkv"
    assert select_variant(SPLITKV_MAX_Q_LEN) == "splitkv"
    assert select_variant(SPLITKV_MAX_Q_LEN + 1) == "prefill"
    assert set(VARIANTS) == {"prefill", "splitkv"}


def test_select_num_splits():
    # batch 1, 8 KV heads (llama2-70b), 32k cache: one wave of ~128 programs on 132 SMs
    s = select_num_splits(1, 8, 32768, n_sms=132)
    assert 8 * s <= 132 and 8 * s >= 0.8 * 132
    # already a full wave without splitting
    assert select_num_splits(16, 32, 4096, n_sms=132) == 1
    # a short cache is never cut below 4 tiles of 64 keys per split
    assert select_num_splits(1, 1, 300, n_sms=132, block_n=64) == 2
    assert select_num_splits(1, 1, 10, n_sms=132) == 1
    assert all(1 <= select_num_splits(1, 1, n, n_sms=108) <= MAX_SPLITS for n in (1, 64, 10**6))


def test_decode_block_m_packs_gqa_rows():
    assert decode_block_m(1, 1) == 16  # smallest tl.dot tile
    assert decode_block_m(8, 1) == 16
    assert decode_block_m(8, 4) == 32
    assert decode_block_m(8, 16) == 64  # capped: more row blocks instead


def test_pruning_respects_shared_memory_and_registers():
    # head dim 256 with 128x64 tiles would not fit; the shipped 256 list fits sm_80
    big = triton.Config({"BLOCK_M": 128, "BLOCK_N": 64}, num_warps=8, num_stages=3)
    small = PREFILL_CONFIGS[256][0]
    assert prune_configs([big, small], 256, 2, 80) == [small]
    assert prune_configs([big], 256, 2, 80) == [big]  # never empty: the cheapest one is kept
    for bd, configs in PREFILL_CONFIGS.items():
        # every shipped fp16 config fits sm_80 but the sm_90-only and the warp-specialized (sm_100) ones;
        # sm_90 keeps all but the warp-specialized ones, TMA or not
        plain = [c for c in configs if c not in WS_CONFIGS[bd]]
        assert prune_configs(configs, bd, 2, 80) == [c for c in plain if c not in SM90_CONFIGS[bd]], bd
        assert prune_configs(configs, bd, 2, 90) == plain == prune_configs(configs, bd, 2, 90, tma=True), bd
        assert prune_configs(configs, bd, 2, 90)[:len(SM90_CONFIGS[bd])] == SM90_CONFIGS[bd]


@pytest.mark.parametrize("arch", [80, 90])
def test_compile_cases_are_complete(arch):
    cases = compile_cases(arch)
    assert 0 < len(cases) <= 24
    for case in cases:
        names = case.fn.arg_names
        assert list(case.signature) == names, case.case_id
        for name, kind in case.signature.items():
            if kind == "constexpr":
                assert name in case.constexprs, (case.case_id, name)
        assert set(case.divisible_by_16) <= set(case.signature)
        assert case.dtype in ("float16", "bfloat16")
        assert REQUIRED_GATES.get(case.variant, frozenset()) <= case.gates, case.case_id
    seen = {(c.variant, c.dtype, c.constexprs.get("HEAD_DIM"), c.config) for c in cases}
    for dtype in ("float16", "bfloat16"):
        for dh in (64, 128, 256):  # every surviving prefill config at the head dims that change code
            survivors = prune_configs(PREFILL_CONFIGS[dh], dh, 2, arch)
            # sm_90 bf16: the default one
            for cfg in survivors[:1] if dtype == "bfloat16" and arch == 90 else survivors:
                assert ("prefill", dtype, dh, triton_config_id(cfg)) in seen
        assert {d for v, t, d, _ in seen if v == "splitkv" and t == dtype} == {64, 96, 128, 256}
    assert any(c.variant == "splitkv" and c.constexprs["SPLIT"] is False for c in cases)
    assert any(c.variant == "splitkv-combine" for c in cases)


def test_gate_table_names_real_variants_gates_and_architectures():
    """REQUIRED_GATES and GATE_EXCEPTIONS (kernels/attention/cases.py) name variants the cases compile,
    gates the audit knows and architectures it targets; every exception keeps tensor_cores required."""
    variants = {c.variant for arch in SUPPORTED_ARCHS for c in compile_cases(arch)}
    assert set(REQUIRED_GATES) == {"prefill", "splitkv"} <= variants
    assert REQUIRED_GATES["prefill"] == {"tensor_cores"}
    assert REQUIRED_GATES["splitkv"] == {"tensor_cores", "vec128_loads"}
    for (variant, gate, arch, condition), reason in GATE_EXCEPTIONS.items():
        assert variant in variants and arch in (*SUPPORTED_ARCHS, "*")
        assert gate in ALL_GATES and gate != "tensor_cores"
        config_matches("BLOCK_M=16", condition)  # a well-formed condition (raises otherwise)
        assert reason


def test_public_signatures_follow_the_contract():
    params = inspect.signature(attention).parameters
    assert list(params)[:4] == ["q", "k_cache", "v_cache", "cache_len"]
    for name in ("scale", "variant", "num_splits", "return_lse"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("name", GPU_MACHINES)
def test_gpu_autotuner_prunes_per_dtype(name, monkeypatch):
    """The @triton.autotune path only runs on a GPU; its construction and pruning run here, for each GPU
    we target (the machine forced: sm_90 keeps its sm_90-only configs, sm_80 does not; an AMD machine
    tunes over the HIP configs)."""
    monkeypatch.setenv(ENV, name)
    arch = MACHINES[name].arch
    tuner = prefill_tuner(128, arch)
    shipped = prefill_configs(128, arch)
    assert shipped == (HIP_PREFILL_CONFIGS if device.is_hip(arch) else PREFILL_CONFIGS)[128]
    assert tuner.keys == PREFILL_AUTOTUNE_KEY and tuner.configs == shipped
    assert {"USE_TMA", "STORE_LSE"} <= set(tuner.keys)  # one tuned config per code path
    tuner.nargs = {"q_ptr": torch.empty(1, dtype=torch.float16)}
    kept = tuner.prune_configs({})
    assert kept == prune_configs(shipped, 128, 2, arch)
    sm90_only = SM90_CONFIGS[128]
    if device.is_hip(arch):  # waves_per_eu=2, one stage: what the gfx942 audit chose
        assert all(c.kwargs["waves_per_eu"] == 2 and c.num_stages == 1 for c in kept)
    elif arch >= 90:
        assert kept[:len(sm90_only)] == sm90_only  # no TMA launch: no warp-specialized tile
        # a TMA launch (USE_TMA) puts the warp-specialized tile first where Triton warp-specializes
        ws = WS_CONFIGS[128] if device.warp_specializes(arch) else []
        assert tuner.prune_configs({"USE_TMA": True})[:len(ws) + len(sm90_only)] == ws + sm90_only
    else:  # an A100 in fp16 keeps all but the sm_90-only and the warp-specialized configs
        assert kept == [c for c in PREFILL_CONFIGS[128] if c not in SM90_CONFIGS[128] + WS_CONFIGS[128]]
    tuner.nargs = {"q_ptr": torch.empty(1, dtype=torch.float32)}
    kept32 = tuner.prune_configs({})
    assert kept32 == prune_configs(shipped, 128, 4, arch)
    if not device.is_hip(arch) and arch < 90:
        assert kept32 == [PREFILL_CONFIGS[128][-1]]  # fp32 doubles shared memory
    tuner.nargs = None
