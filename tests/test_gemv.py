"""kernels.gemv under the Triton interpreter: both variants and the heuristic against a float64
reference, split-K vs one split, determinism, NaN-prefilled outputs and workspace, validation errors,
empty inputs, and the compile cases' shape."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernels._lib import device, launch
from kernels._lib.aot import HIP_OPTIONS
from kernels._lib.launch import interpreting, last_launch, triton_config_id
from kernels._lib.validation import SUPPORTED_DTYPES
from kernels.audit import SUPPORTED_ARCHS
from kernels.gemv import TOLERANCES, VARIANTS, gemv, gemv_ref, select_variant
from kernels.gemv.cases import compile_cases
from kernels.gemv.configs import (
    CONFIGS,
    PRUNE,
    SPLITK_CONFIGS,
    SPLITK_MAX_BATCH,
    TILED_CONFIGS,
    autotuned,
    split_count,
    splits_of,
)
from kernels.gemv.kernels import _gemv_splitk_reduce_kernel

BF16_DOT_SKIP = ("bf16 tl.dot returns garbage under the Triton interpreter (triton-lang/triton#11584); "
                 "the tiled bf16 path is covered by the sm_80/sm_90 compile audit")

# (B, N, K, bias): N never a power of two, K never a multiple of any BLOCK_K (64/128/256).
CASES = [
    (1, 37, 300, False),
    (2, 50, 129, True),
    (3, 96, 1100, True),  # the heuristic splits K in two here (asserted below)
    (17, 33, 77, False),
    (64, 24, 200, True),
]


def _inputs(b: int, n: int, k: int, bias: bool, dtype: torch.dtype, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, k, generator=gen)
    w = torch.randn(n, k, generator=gen) / k**0.5  # |y| ~ 1 whatever K is
    bv = torch.randn(n, generator=gen) if bias else None
    return x.to(dtype), w.to(dtype), None if bv is None else bv.to(dtype)


def _check(y: torch.Tensor, x, w, bias) -> None:
    ref = gemv_ref(x, w, bias, compute_dtype=torch.float64)
    atol, rtol = TOLERANCES[x.dtype]
    assert y.dtype == x.dtype and y.shape == ref.shape
    torch.testing.assert_close(y.double(), ref.double(), atol=atol, rtol=rtol)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("b,n,k,bias", CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("variant", ["splitk", "tiled", None])
def test_matches_float64_reference(variant, b, n, k, bias, dtype, nan_filled_allocations):
    chosen = variant or select_variant(b)
    if dtype is torch.bfloat16 and chosen == "tiled" and interpreting():
        pytest.skip(BF16_DOT_SKIP)
    x, w, bv = _inputs(b, n, k, bias, dtype)
    y = gemv(x, w, bv, variant=variant)
    _check(y, x, w, bv)
    assert last_launch("gemv").variant == chosen


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_split_k_equals_single_split_and_is_deterministic(variant, nan_filled_allocations):
    x, w, bv = _inputs(3, 40, 1000, True, torch.float32, seed=1)
    assert splits_of(4, 1000, 128) == (4, 256)  # the forced split below really splits
    one = gemv(x, w, bv, variant=variant, split_k=1)
    four = gemv(x, w, bv, variant=variant, split_k=4)
    torch.testing.assert_close(four, one, atol=1e-5, rtol=1e-5)  # same sum, another association
    assert torch.equal(gemv(x, w, bv, variant=variant, split_k=4), four)  # bit-identical rerun
    _check(four, x, w, bv)


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(b=st.integers(1, 9), n=st.integers(1, 70), k=st.integers(1, 700), bias=st.booleans(),
       variant=st.sampled_from(["splitk", "tiled"]), split_k=st.sampled_from([None, 1, 2, 5]))
def test_random_shapes(b, n, k, bias, variant, split_k, nan_filled_allocations):
    x, w, bv = _inputs(b, n, k, bias, torch.float32, seed=b * 1000 + n + k)
    _check(gemv(x, w, bv, variant=variant, split_k=split_k), x, w, bv)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_output_and_workspace_come_from_the_allocation_seam(variant, nan_filled_allocations, monkeypatch):
    # the NaN fill only covers what the launcher allocates through kernels._lib.launch.empty
    seen = []
    nan_empty = launch.empty

    def recording_empty(shape, dtype, device):
        seen.append(nan_empty(shape, dtype, device))
        return seen[-1]

    monkeypatch.setattr(launch, "empty", recording_empty)
    x, w, bv = _inputs(3, 40, 1000, True, torch.float32, seed=1)
    y = gemv(x, w, bv, variant=variant, split_k=4)
    assert y is seen[0] and [t.shape for t in seen[1:]] == [(4, 3, 40)]  # y, then the fp32 workspace


def test_split_k_fp16_and_bf16():
    for dtype in (torch.float16, torch.bfloat16):  # the split-K path has no tl.dot: bf16 is real here
        x, w, bv = _inputs(1, 45, 777, True, dtype, seed=2)
        _check(gemv(x, w, bv, variant="splitk", split_k=3), x, w, bv)


def test_strided_rows_and_weight_slice():
    # x rows with padding, weight taken as rows and columns of a bigger (fused) matrix
    x_big, w_big, _ = _inputs(5, 70, 160, False, torch.float16, seed=3)
    x, w = x_big[::2, :150], w_big[3:61, 5:155]
    for variant in VARIANTS:
        _check(gemv(x, w, variant=variant), x, w, None)


def test_heuristic_crossover_and_split_count():
    assert select_variant(1) == select_variant(SPLITK_MAX_BATCH) == "splitk"
    assert select_variant(SPLITK_MAX_BATCH + 1) == "tiled"
    # B=1, llama2-7b W_q: 128 tiles of 32 rows on 132 SMs -> K is split, every split non-empty
    splits, kps = split_count(128, 4096, 1, 2, 128, 132, 4)
    assert splits > 1 and kps % 128 == 0 and (splits - 1) * kps < 4096 <= splits * kps
    # the workspace cap: at B=512 the fp32 partials would cost more than the split saves
    assert split_count(4, 4096, 512, 2, 64, 132, 2) == (1, 4096)
    assert split_count(10_000, 4096, 1, 2, 128, 132, 4)[0] == 1  # enough tiles already
    assert split_count(3, 1100, 3, 2, 128, 132, 4) == (2, 640)  # CASES' (3, 96, 1100) case, splitk
    assert split_count(2, 1100, 3, 2, 128, 132, 2) == (2, 640)  # ... and tiled


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_autotuner_wiring(variant):
    # what a GPU run with autotuning uses: all shipped configs, pruned by the batch size
    tuned = autotuned(variant)
    assert [triton_config_id(c) for c in tuned.configs] == [
        triton_config_id(c) for c in CONFIGS[variant]]
    for batch in (1, 3, 17, 512):
        x = torch.empty(1, dtype=torch.float16)  # the launch's x: its element size and device (arch)
        kept = tuned.early_config_prune(tuned.configs, {"B": batch, "x_ptr": x})
        # the machine's own pruning (a forced AMD machine gets the HIP form of each tile: new configs)
        expected = PRUNE[variant](CONFIGS[variant], batch, 2, device.arch(x.device))
        assert kept and [triton_config_id(c) for c in kept] == [triton_config_id(c) for c in expected]


def test_empty_inputs_launch_nothing():
    x, w, bv = _inputs(2, 5, 3, True, torch.float32)
    assert gemv(x[:0], w).shape == (0, 5)
    assert gemv(x, w[:0], bv[:0]).shape == (2, 0)
    torch.testing.assert_close(gemv(x[:, :0], w[:, :0], bv), bv.expand(2, 5))
    assert torch.equal(gemv(x[:, :0], w[:, :0]), torch.zeros(2, 5))


def _bad_calls():
    x, w, bv = _inputs(2, 6, 16, True, torch.float32)
    return [
        ("x", TypeError, lambda: gemv(x.cpu().numpy(), w)),
        ("x", ValueError, lambda: gemv(x[0], w)),
        ("x", TypeError, lambda: gemv(x.double(), w.double())),
        ("x", ValueError, lambda: gemv(x.t().contiguous().t(), w)),
        ("weight", ValueError, lambda: gemv(x, w[:, :8])),
        ("weight", ValueError, lambda: gemv(x, w[None])),
        ("weight", TypeError, lambda: gemv(x, w.half())),
        ("weight", ValueError, lambda: gemv(x, w.to("meta"))),
        ("weight", ValueError, lambda: gemv(x, w.t().contiguous().t())),
        ("weight", ValueError, lambda: gemv(x, w[:, ::2])),
        ("weight", ValueError, lambda: gemv(x, torch.zeros(1, 16).expand(2**20 + 1, 16))),
        ("bias", ValueError, lambda: gemv(x, w, bv[:5])),
        ("bias", TypeError, lambda: gemv(x, w, bv.half())),
        ("bias", ValueError, lambda: gemv(x, w, bv[None])),
        ("variant", ValueError, lambda: gemv(x, w, variant="cublas")),
        ("split_k", ValueError, lambda: gemv(x, w, split_k=0)),
        ("split_k", ValueError, lambda: gemv(x, w, variant="tiled", split_k=True)),
    ]


@pytest.mark.parametrize("index", range(len(_bad_calls())))
def test_validation_errors_name_the_argument(index):
    name, exc, call = _bad_calls()[index]
    with pytest.raises(exc, match=rf"^{name}\b"):
        call()


def test_cpu_tensor_without_interpreter_is_refused(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    x, w, _ = _inputs(1, 4, 16, False, torch.float32)
    with pytest.raises(ValueError, match=r"^x: expected a CUDA tensor"):
        gemv(x, w)


@pytest.mark.parametrize("arch", SUPPORTED_ARCHS)
def test_compile_cases_cover_every_shipped_config(arch):
    cases = compile_cases(arch)
    assert 0 < len(cases) <= 24
    assert len({c.case_id for c in cases}) == len(cases)
    main = [c for c in cases if c.fn is not _gemv_splitk_reduce_kernel]
    for variant, configs in (("splitk", SPLITK_CONFIGS), ("tiled", TILED_CONFIGS)):
        got = {c.config for c in main if c.variant == variant}
        if device.is_hip(arch) and variant == "tiled":  # AMD: each tile as launch.hip_config makes it
            hip = {triton_config_id(launch.hip_config(cfg, b)) for cfg in configs for b in (2, 4)}
            assert got <= hip and len(got) >= len(configs)
        elif arch == 120 and variant == "tiled":  # 99 KiB per block: fp32 runs with fewer stages
            def tile(cid: str) -> str:
                return cid.rsplit(",num_stages=", 1)[0]
            assert {tile(g) for g in got} == {tile(triton_config_id(cfg)) for cfg in configs}
            assert any(c.num_stages < 4 for c in main if c.variant == variant and c.dtype == "fp32")
        else:
            assert got == {triton_config_id(cfg) for cfg in configs}
        gate = "vec128_loads" if variant == "splitk" else "tensor_cores"
        assert all(gate in c.gates for c in main if c.variant == variant)
        assert {c.dtype for c in main if c.variant == variant} == {"fp16", "bf16", "fp32"}
    for c in cases:
        assert list(c.signature) == list(c.fn.arg_names)
        # AMD compile options (waves_per_eu) ride with the meta-parameters, as in Triton's HIP configs
        assert set(c.constexprs) - set(HIP_OPTIONS) == {k for k, v in c.signature.items() if v == "constexpr"}
        assert set(c.divisible_by_16) <= {k for k, v in c.signature.items() if v != "constexpr"}
        for p in ("x_ptr", "w_ptr", "y_ptr"):  # aligned pointers and the weight's row stride are hinted
            assert p not in c.signature or p in c.divisible_by_16
        if "stride_wn" in c.signature and c.shape["k"] % 16 == 0:
            assert "stride_wn" in c.divisible_by_16
    with pytest.raises(ValueError, match="^arch"):
        compile_cases(75)


def test_reference_and_tolerances_cover_supported_dtypes():
    assert set(TOLERANCES) == set(SUPPORTED_DTYPES)
    x, w, bv = _inputs(2, 3, 4, True, torch.float16)
    ref = gemv_ref(x, w, bv)
    assert ref.dtype == torch.float16
    torch.testing.assert_close(ref.float(), x.float() @ w.float().t() + bv.float(), atol=1e-3, rtol=1e-3)
