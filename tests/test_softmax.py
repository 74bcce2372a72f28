"""Row softmax under the Triton interpreter on CPU, against torch.softmax in fp32 (softmax_ref)."""

from __future__ import annotations

import inspect

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels._lib import launch
from kernels._lib.launch import last_launch, record_launch
from kernels._lib.validation import collapsed_row_stride
from kernels.softmax import (
    SINGLE_BLOCK_LIMIT,
    TOLERANCES,
    select_variant,
    softmax,
    softmax_ref,
)
from kernels.softmax.cases import compile_cases

# The interpreter evaluates masked-off padding too (-inf - -inf, 1/0); numpy warns, the stores are masked.
pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning", "ignore:divide by zero encountered:RuntimeWarning",
    "ignore:overflow encountered:RuntimeWarning",
)

DTYPES = [torch.float16, torch.bfloat16, torch.float32]
INF = float("inf")



def check(x: torch.Tensor, scale: float | None = None, variant: str | None = None) -> torch.Tensor:
    y = softmax(x, scale=scale, variant=variant)
    assert y.shape == x.shape and y.dtype == x.dtype and y.is_contiguous()
    atol, rtol = TOLERANCES[x.dtype]
    # fp32 reference: scale * x rounds to fp32 in the kernel and in torch alike; against float64 the
    # rounding of large logits (|scale * x| ~ 200: 1.5e-5 absolute) alone exceeds fp32's rtol
    torch.testing.assert_close(y, softmax_ref(x, scale=scale), atol=atol, rtol=rtol, equal_nan=True)
    return y


def randn(*shape: int, dtype: torch.dtype = torch.float32, std: float = 3.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * std).to(dtype)


# Row lengths either side of every dispatch boundary: packing (<= MIN_TILE), warps, the single limit.
@pytest.mark.parametrize("n_cols", [1, 2, 17, 1000, 1023, 4096, 50257, SINGLE_BLOCK_LIMIT + 1])
@pytest.mark.parametrize("dtype", DTYPES)
def test_row_lengths(n_cols, dtype):
    rows = 5 if n_cols <= 4096 else 2
    check(randn(rows, n_cols, dtype=dtype, seed=n_cols))
    assert last_launch("softmax").variant == select_variant(n_cols)


def test_single_block_limit_exactly():
    check(randn(1, SINGLE_BLOCK_LIMIT))
    assert last_launch("softmax").variant == "single"
    assert f"BLOCK_N={SINGLE_BLOCK_LIMIT}" in last_launch("softmax").config
    assert select_variant(SINGLE_BLOCK_LIMIT) == "single"
    assert select_variant(SINGLE_BLOCK_LIMIT + 1) == "online"


@pytest.mark.parametrize("variant", ["single", "online"])
@pytest.mark.parametrize("n_cols", [1, 3, 100, 1023, 9000])
def test_forced_variants(variant, n_cols):
    check(randn(7, n_cols, dtype=torch.float16, seed=n_cols), variant=variant)
    assert last_launch("softmax").variant == variant


def test_many_short_rows_packed():
    """More rows than one packed tile holds, and a row count that leaves the last tile partial."""
    x = randn(333, 24, dtype=torch.bfloat16)
    check(x)
    assert "ROWS=" in last_launch("softmax").config and "ROWS=1," not in last_launch("softmax").config


def test_online_many_chunks_with_leading_neg_inf(monkeypatch):
    """Small chunks so the running max/sum is rescaled many times; whole chunks of -inf come first."""
    monkeypatch.setattr("kernels.softmax.configs.ONLINE_BLOCK_N", 16)
    x = randn(4, 203)
    x[0, :40] = -INF  # two and a half chunks of -inf before the first finite value
    x[1, 150:] = -INF
    x[2, :] = -INF  # all -inf: NaN like torch
    x[3, ::7] = 1e4  # large values late in the row
    y = check(x, variant="online")
    assert "BLOCK_N=16" in last_launch("softmax").config
    assert torch.isnan(y[2]).all() and not torch.isnan(y[:2]).any()


@pytest.mark.parametrize("shape", [(), (7,), (1000,), (3, 5), (2, 3, 257), (2, 1, 3, 64)])
def test_ranks(shape):
    check(randn(*shape))


def test_strided_rows():
    base = randn(6, 40, 300)
    x = base[::2, 1:33:3, :129]  # rows of 129 inside rows of 300; leading dims do not collapse: one copy
    assert collapsed_row_stride(x) is None
    check(x)
    x2 = base[:, 5, 7:207]  # one strided row dimension: launched on x itself with row stride 12000
    assert collapsed_row_stride(x2) == 12000
    check(x2)
    x3 = base[1:5, :, 1:101]  # two leading dims that collapse (300 * 40 == 12000): no copy
    assert collapsed_row_stride(x3) == 300 and collapsed_row_stride(base[1:5, 2:9, 1:101]) is None
    check(x3)
    x4 = randn(1, 300)[:, :250].expand(4, 250)  # stride-0 rows read the same memory
    assert collapsed_row_stride(x4) == 0
    check(x4)


@pytest.mark.parametrize("variant", ["single", "online"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_values(variant, dtype):
    x = torch.zeros(7, 37)
    x[0] = 1e4
    x[0, 3] = 1e4 + 50
    x[1] = -1e4
    x[1, 5] = -1e4 + 2
    x[2, ::3] = -INF
    x[3] = -INF  # all -inf: NaN
    x[4, 2] = INF  # +inf: NaN
    x[5] = torch.finfo(torch.float16).max
    x[5, 1] = -torch.finfo(torch.float16).max
    x[6, 9] = float("nan")
    x = x.to(dtype)
    y = check(x, variant=variant)
    assert torch.isnan(y[3:5]).all() and torch.isnan(y[6]).all()
    assert not torch.isnan(y[:3]).any() and not torch.isnan(y[5]).any()
    assert (y[2, ::3] == 0).all()


@pytest.mark.parametrize("variant", ["single", "online"])
@pytest.mark.parametrize("scale", [0.125, -2.0, 0.0, 3])
def test_scale(variant, scale):
    x = randn(4, 1001, dtype=torch.float16)
    check(x, scale=scale, variant=variant)


def test_fp16_max_scaled_does_not_overflow():
    x = torch.full((2, 64), torch.finfo(torch.float16).max, dtype=torch.float16)
    x[:, 0] = 0
    y = check(x, scale=4.0)  # 4 * 65504 overflows fp16 but not the fp32 math
    assert torch.isfinite(y).all()


def test_output_comes_from_the_allocation_seam(monkeypatch):
    # the NaN fill only covers what the launcher allocates through kernels._lib.launch.empty
    seen = []
    nan_empty = launch.empty
    monkeypatch.setattr(launch, "empty", lambda *args: seen.append(nan_empty(*args)) or seen[-1])
    for n_cols in (17, SINGLE_BLOCK_LIMIT + 1):
        assert check(randn(2, n_cols)) is seen[-1]
    assert len(seen) == 2


def test_empty_inputs_do_not_launch():
    record_launch("softmax", "sentinel", "none")
    for shape in [(0, 5), (3, 0), (0,), (2, 0, 4)]:
        y = softmax(torch.randn(shape, dtype=torch.float16))
        assert y.shape == shape and y.dtype == torch.float16
    assert last_launch("softmax").variant == "sentinel"


# ---------------------------------------------------------------------------------------------------
# Every validation error, each naming its argument
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"x": [1.0, 2.0]}, TypeError, "x: expected a torch.Tensor"),
        ({"x": torch.ones(2, 3, dtype=torch.float64)}, TypeError, "x: dtype float64"),
        ({"x": torch.ones(2, 3, dtype=torch.int32)}, TypeError, "x: dtype int32"),
        ({"x": torch.ones(3, 4).t()}, ValueError, "x: last dimension must be contiguous"),
        ({"x": torch.ones(2, 3), "scale": float("nan")}, ValueError, "scale: expected a finite"),
        ({"x": torch.ones(2, 3), "scale": INF}, ValueError, "scale: expected a finite"),
        ({"x": torch.ones(2, 3), "scale": "2"}, ValueError, "scale: expected a finite"),
        ({"x": torch.ones(2, 3), "scale": True}, ValueError, "scale: expected a finite"),
        ({"x": torch.ones(2, 3), "variant": "looped"}, ValueError, "variant: expected one of single, online"),
        ({"x": torch.ones(1, SINGLE_BLOCK_LIMIT + 1), "variant": "single"}, ValueError,
         "variant: 'single' .* limited to 32768"),
    ],
)
def test_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        softmax(**kwargs) if set(kwargs) == {"x"} else softmax(kwargs.pop("x"), **kwargs)


def test_cpu_tensor_without_interpreter_is_refused(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="x: expected a CUDA tensor"):
        softmax(torch.ones(2, 3))


# ---------------------------------------------------------------------------------------------------
# Compile cases (what the sm_80/sm_90 audit compiles)
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", [80, 90])
def test_compile_cases_are_well_formed(arch):
    cases = compile_cases(arch)
    assert 0 < len(cases) <= 24
    assert len({c.case_id for c in cases}) == len(cases)
    for c in cases:
        params = list(inspect.signature(c.fn.fn).parameters)
        assert list(c.signature) == params
        assert {k for k, v in c.signature.items() if v == "constexpr"} == set(c.constexprs)
        assert set(c.divisible_by_16) <= set(c.signature)
        cols = c.shape["cols"]
        # hints exactly as an aligned launch: ints divisible by 16 only when they are
        assert ("n_cols" in c.divisible_by_16) == (cols % 16 == 0)
        assert ("vec128_loads" in c.gates) == (cols % 16 == 0)
        assert c.variant == select_variant(cols)
    covered = {(c.variant, c.shape["cols"], c.dtype) for c in cases}
    for dtype in ("float16", "bfloat16", "float32"):
        assert ("single", SINGLE_BLOCK_LIMIT, dtype) in covered  # the spill check of the largest tile
        assert ("online", 256000, dtype) in covered


# ---------------------------------------------------------------------------------------------------
# Random shapes, dtypes, scales and variants (small, so the interpreter stays fast)
# ---------------------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    rows=st.integers(1, 40),
    n_cols=st.integers(1, 700),
    dtype=st.sampled_from(DTYPES),
    scale=st.one_of(st.none(), st.floats(-4, 4, allow_nan=False)),
    variant=st.sampled_from([None, "single", "online"]),
    std=st.sampled_from([0.1, 3.0, 300.0]),
)
def test_random_shapes(rows, n_cols, dtype, scale, variant, std):
    check(randn(rows, n_cols, dtype=dtype, std=std, seed=rows * 1000 + n_cols), scale=scale, variant=variant)
