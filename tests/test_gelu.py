"""GELU (exact and tanh, optional fused bias, in-place) under the Triton interpreter on CPU, against
torch.nn.functional.gelu in float64."""

from __future__ import annotations

import inspect

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels._lib import launch
from kernels._lib.launch import LaunchRecord, config_id, last_launch, record_launch
from kernels.gelu import TOLERANCES, gelu, gelu_ref
from kernels.gelu.cases import compile_cases
from kernels.gelu.configs import tile_config

DTYPES = [torch.float16, torch.bfloat16, torch.float32]
APPROX = ["none", "tanh"]

# numpy warns on inf arithmetic the tests provoke on purpose (gelu(-inf) is NaN) and on masked-off lanes.
pytestmark = pytest.mark.filterwarnings(
    "ignore:overflow encountered:RuntimeWarning", "ignore:invalid value encountered:RuntimeWarning"
)



def randn(*shape: int, dtype: torch.dtype = torch.float32, std: float = 3.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * std).to(dtype)


def expected(x, bias=None, approximate="none"):
    return gelu_ref(x, bias, approximate=approximate, compute_dtype=torch.float64)


def assert_matches(y, x, bias=None, approximate="none"):
    atol, rtol = TOLERANCES[x.dtype]
    torch.testing.assert_close(y, expected(x, bias, approximate), atol=atol, rtol=rtol, equal_nan=True)


# Flat sizes around the 4096-element tile and not multiples of 16; row shapes around the 1024-column tile.
@pytest.mark.parametrize("shape", [(1,), (2,), (4095,), (4097,), (3, 5), (7, 1023), (2, 3, 1025), (5, 1, 16)])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("approximate", APPROX)
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_torch(shape, with_bias, approximate, dtype):
    x = randn(*shape, dtype=dtype, seed=sum(shape))
    bias = randn(shape[-1], dtype=dtype, std=1.0, seed=1) if with_bias else None
    y = gelu(x, bias, approximate=approximate)
    assert y.shape == x.shape and y.dtype == dtype and y is not x
    assert_matches(y, x, bias, approximate)
    rows = x.numel() // shape[-1] if with_bias else 1  # without a bias a contiguous x is one flat row
    meta, num_warps, num_stages = tile_config(rows, shape[-1] if with_bias else x.numel())
    assert last_launch("gelu") == LaunchRecord("gelu", "elementwise", config_id(meta, num_warps, num_stages))


def test_scalar_and_many_rows():
    x = torch.tensor(1.5)
    assert_matches(gelu(x), x)
    x = randn(600, 3, dtype=torch.bfloat16)  # more rows than one tile of short rows holds
    b = randn(3, dtype=torch.bfloat16, seed=2)
    assert_matches(gelu(x, b, approximate="tanh"), x, b, "tanh")
    assert "BLOCK_M=1," not in last_launch("gelu").config


@pytest.mark.parametrize("approximate", APPROX)
@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_values(approximate, dtype):
    big = torch.finfo(dtype).max if dtype != torch.float32 else 1e30
    x = torch.tensor([-1e4, 1e4, -big, big, -30.0, -6.0, -1e-3, 0.0, 1e-3, 6.0, float("nan")]).to(dtype)
    y = gelu(x, approximate=approximate)
    assert_matches(y, x, approximate=approximate)
    inf = torch.tensor([float("inf"), -float("inf")], dtype=dtype)
    # gelu(+inf) = +inf (torch's CPU erf path gives NaN there; its tanh path and the math give +inf)
    y = gelu(inf, approximate=approximate)
    assert y[0] == float("inf") and torch.isnan(y[1])


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("approximate", APPROX)
def test_inplace(with_bias, approximate):
    x = randn(4, 300, dtype=torch.float16)
    bias = randn(300, dtype=torch.float16, seed=3) if with_bias else None
    want = expected(x, bias, approximate)
    out = gelu(x, bias, approximate=approximate, inplace=True)
    assert out is x
    atol, rtol = TOLERANCES[torch.float16]
    torch.testing.assert_close(x, want, atol=atol, rtol=rtol)


def test_inplace_strided_rows_writes_only_the_view():
    base = randn(6, 64)
    before = base.clone()
    view = base[1:5, 8:40]  # 4 rows of 32 inside rows of 64
    want = expected(view)
    assert gelu(view, inplace=True) is view
    torch.testing.assert_close(view, want, atol=1e-6, rtol=1e-5)
    outside = torch.ones_like(base, dtype=torch.bool)
    outside[1:5, 8:40] = False
    assert torch.equal(base[outside], before[outside])


def test_strided_inputs():
    base = randn(4, 10, 50)
    x = base[:, 2, 5:45]  # strided rows, no copy
    b = randn(40, seed=4)
    assert_matches(gelu(x, b), x, b)
    x2 = base[::2, 1:7:2, :33]  # leading dims that do not collapse: copied once
    assert_matches(gelu(x2, approximate="tanh"), x2, approximate="tanh")
    bias_strided = randn(80, seed=5)[::2]
    assert_matches(gelu(x, bias_strided), x, bias_strided)


def test_output_comes_from_the_allocation_seam(monkeypatch):
    # the NaN fill only covers what the launcher allocates through kernels._lib.launch.empty
    seen = []
    nan_empty = launch.empty
    monkeypatch.setattr(launch, "empty", lambda *args: seen.append(nan_empty(*args)) or seen[-1])
    x, bias = randn(3, 40), randn(40)
    assert gelu(x) is seen[-1] and gelu(x, bias) is seen[-1] and len(seen) == 2
    assert gelu(x, inplace=True) is x and len(seen) == 2


def test_empty_inputs_do_not_launch():
    record_launch("gelu", "sentinel", "none")
    for shape in [(0,), (0, 8), (3, 0), (2, 0, 4)]:
        x = torch.ones(shape, dtype=torch.float16)
        y = gelu(x, torch.ones(shape[-1], dtype=torch.float16))
        assert y.shape == shape and y.dtype == torch.float16
        assert gelu(x, inplace=True) is x
    assert last_launch("gelu").variant == "sentinel"


# ---------------------------------------------------------------------------------------------------
# Every validation error, each naming its argument
# ---------------------------------------------------------------------------------------------------

X = torch.ones(2, 8)


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((X.numpy(),), {}, TypeError, "x: expected a torch.Tensor"),
        ((X.double(),), {}, TypeError, "x: dtype float64"),
        ((X.to(torch.int64),), {}, TypeError, "x: dtype int64"),
        ((torch.ones(8, 2).t(),), {}, ValueError, "x: last dimension must be contiguous"),
        ((X,), {"approximate": "erf"}, ValueError, "approximate: expected 'none' or 'tanh'"),
        ((X,), {"approximate": None}, ValueError, "approximate: expected 'none' or 'tanh'"),
        ((X,), {"inplace": 1}, TypeError, "inplace: expected a bool"),
        ((X, [0.0] * 8), {}, TypeError, "bias: expected a torch.Tensor"),
        ((X, torch.ones(7)), {}, ValueError, r"bias: expected shape \(8,\)"),
        ((X, torch.ones(2, 8)), {}, ValueError, "bias: expected 1 dimensions"),
        ((X, torch.ones(8, dtype=torch.float16)), {}, TypeError, "bias: dtype torch.float16 does not match"),
        ((X.half(), torch.ones(8)), {"inplace": True}, TypeError, "bias: dtype torch.float32 does not match"),
        ((X, torch.ones(8, dtype=torch.int32)), {}, TypeError, "bias: dtype int32"),
        ((torch.ones(4, 6, 8)[::2, ::2],), {"inplace": True}, ValueError,
         "x: inplace=True needs leading dimensions that collapse"),
        ((torch.ones(1, 8).expand(3, 8),), {"inplace": True}, ValueError,
         "x: an output whose elements overlap in memory"),
    ],
)
def test_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        gelu(*args, **kwargs)


def test_cpu_tensor_without_interpreter_is_refused(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="x: expected a CUDA tensor"):
        gelu(X)


# ---------------------------------------------------------------------------------------------------
# Compile cases (what the sm_80/sm_90 audit compiles)
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", [80, 90])
def test_compile_cases_are_well_formed(arch):
    cases = compile_cases(arch)
    assert len(cases) == 12 and len({c.case_id for c in cases}) == 12
    for c in cases:
        assert list(c.signature) == list(inspect.signature(c.fn.fn).parameters)
        assert {k for k, v in c.signature.items() if v == "constexpr"} == set(c.constexprs)
        assert set(c.divisible_by_16) <= {k for k, v in c.signature.items() if v != "constexpr"}
        assert c.gates == frozenset({"vec128_loads"})
        n, bias_len = c.shape["n"], c.shape["bias_len"]
        # the launcher's config for this shape; a flat launch passes n_rows == 1 (the JIT makes it a
        # constant) and 0 strides (divisible by 16)
        rows, cols = (n // bias_len, bias_len) if bias_len else (1, n)
        meta, num_warps, num_stages = tile_config(rows, cols)
        assert c.config == config_id(meta, num_warps, num_stages) and c.num_warps == num_warps
        assert c.constexprs["HAS_BIAS"] == bool(bias_len)
        if not bias_len:
            assert c.constexprs["n_rows"] == 1 and {"stride_xrow", "stride_yrow"} <= set(c.divisible_by_16)
    assert {(c.shape["approximate"], c.dtype) for c in cases} == {
        (a, d) for a in APPROX for d in ("float16", "bfloat16", "float32")}


# ---------------------------------------------------------------------------------------------------
# Random shapes, dtypes, layouts (small, so the interpreter stays fast)
# ---------------------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    shape=st.lists(st.integers(1, 70), min_size=1, max_size=3),
    dtype=st.sampled_from(DTYPES),
    approximate=st.sampled_from(APPROX),
    with_bias=st.booleans(),
    inplace=st.booleans(),
    std=st.sampled_from([0.5, 4.0, 40.0]),
)
def test_random_shapes(shape, dtype, approximate, with_bias, inplace, std):
    x = randn(*shape, dtype=dtype, std=std, seed=len(shape) * 100 + shape[-1])
    bias = randn(shape[-1], dtype=dtype, seed=7) if with_bias else None
    want = expected(x, bias, approximate)
    y = gelu(x, bias, approximate=approximate, inplace=inplace)
    assert (y is x) == inplace
    atol, rtol = TOLERANCES[dtype]
    torch.testing.assert_close(y, want, atol=atol, rtol=rtol)
