"""The accuracy gate and the provider contract (bench/accuracy.py, ``KernelBench.check``): in bf16, fp16
and fp32, on the smoke sweep's points, plain-torch providers that round differently pass (fairness) and
wrong ones fail (power); a provider that returns the wrong dtype or shape, ``None``, a non-tensor, or
changes its inputs is a clear contract failure."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from bench import accuracy
from bench.accuracy import Check, ContractError
from bench.runner import KernelBench
from kernels.attention import attention_ref
from kernels.qkv import qkv_projection_ref, qkv_projection_unfused
from roofline.model.sweeps import SWEEP_DTYPES, SweepPoint, sweep_points

CPU = torch.device("cpu")


def _point(kernel: str, dtype: str, **shape: object) -> SweepPoint:
    """The smoke sweep's first point of ``kernel`` in ``dtype`` (shape entries overridden)."""
    point = next(p for p in sweep_points("smoke", "cpu", dtype) if p.kernel == kernel)
    return dataclasses.replace(point, shape={**point.shape, **shape})


def _run(bench: KernelBench, x: dict, provider) -> Check:
    """What the runner does: pristine copies, the provider's call, then the contract and the gate."""
    pristine = accuracy.snapshot(*bench.launch_args(x))
    args, kwargs = bench.launch_args(x)
    out = provider(*args, **kwargs)
    return bench.check(x, out, pristine=pristine)


def _case(kernel: str, dtype: str, **shape: object) -> tuple[KernelBench, dict]:
    bench = KernelBench(kernel)
    return bench, bench.build(_point(kernel, dtype, **shape), CPU)


# ------------------------------------------------------------------------------------------------
# The gate's arithmetic
# ------------------------------------------------------------------------------------------------

def test_gate_bound_is_factor_times_plain_error_plus_one_ulp_of_the_output():
    ref = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    plain = ref + torch.tensor([0.01, 0.0, 0.0], dtype=torch.float64)
    out = ref + torch.tensor([0.0, -0.03, 0.0], dtype=torch.float64)
    check = accuracy.gate(out, plain, ref, torch.bfloat16)
    eps = torch.finfo(torch.bfloat16).eps
    assert check.atol == pytest.approx(2.0 * eps) and check.plain_error == pytest.approx(0.01)
    assert check.bound == pytest.approx(accuracy.ACCURACY_FACTOR * 0.01 + 2.0 * eps)
    assert check.ok and check.ratio == pytest.approx(3.0)
    worse = accuracy.gate(ref + 0.07, plain, ref, torch.bfloat16)
    assert not worse.ok and worse.worst > 1 and "7x plain PyTorch's" in worse.describe()
    fields = check.fields()
    assert fields["plain_torch_error"] == check.plain_error and fields["ratio"] == check.ratio
    assert fields["reference"] == "float64"


def test_gate_never_passes_nan_and_matching_infinities_are_exact():
    ref = torch.tensor([1.0, math.inf, -math.inf], dtype=torch.float64)
    same = torch.tensor([1.0, math.inf, -math.inf])
    assert accuracy.gate(same, same, ref, torch.float32).max_error == 0.0
    nan = torch.tensor([1.0, math.nan, -math.inf])
    check = accuracy.gate(nan, same, ref, torch.float32)
    assert math.isinf(check.max_error) and not check.ok
    # the floor is one ulp of the largest finite output
    assert accuracy.gate(same, same, ref, torch.float32).atol == pytest.approx(torch.finfo().eps)


def test_combine_takes_the_worst_of_each_part():
    a, b = Check(1e-3, 1e-3, 1e-6), Check(5e-3, 2e-3, 2e-6)
    both = accuracy.combine([a, b], "two parts")
    assert (both.max_error, both.plain_error, both.atol, both.note) == (5e-3, 2e-3, 2e-6, "two parts")


# ------------------------------------------------------------------------------------------------
# Fairness: plain-torch providers that round differently pass, on every smoke point, in every dtype
# ------------------------------------------------------------------------------------------------

def _gelu_readme(x, bias, *, approximate):  # the README's provider example: x + bias rounded first
    return F.gelu(x if bias is None else x + bias, approximate=approximate)


def _gelu_once(x, bias, *, approximate):  # fp32 math, one rounding (what the Triton kernel does)
    u = x.float() if bias is None else x.float() + bias.float()
    return F.gelu(u, approximate=approximate).to(x.dtype)


def _gelu_formula(x, bias, *, approximate):  # the formula spelled out, every step rounded to x's dtype
    u = x if bias is None else x + bias
    if approximate == "tanh":
        return 0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u * u * u)))
    return 0.5 * u * (1 + torch.erf(u * (1 / math.sqrt(2))))


def _softmax_steps(x):  # exp, sum and divide each rounded to x's dtype
    e = (x - x.amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def _softmax_once(x):
    return torch.softmax(x.float(), -1).to(x.dtype)


def _gemv_bias_after(x, weight, bias):  # the product rounded, then the bias added and rounded again
    y = F.linear(x, weight)
    return y if bias is None else y + bias


def _gemv_once(x, weight, bias):
    return F.linear(x.float(), weight.float(), None if bias is None else bias.float()).to(x.dtype)


def _qkv_once(x, weight, bias, *, n_heads, n_kv_heads):
    return qkv_projection_ref(x, weight, bias, n_heads=n_heads, n_kv_heads=n_kv_heads)  # fp32 GEMM


def _attention_fp32(q, k_cache, v_cache, cache_len):
    return attention_ref(q, k_cache, v_cache, cache_len)  # fp32 math, cast back


def _attention_math(q, k_cache, v_cache, cache_len):  # scores and probabilities rounded to q's dtype
    n = k_cache.shape[2]
    group = q.shape[1] // k_cache.shape[1]
    k = k_cache.repeat_interleave(group, dim=1)
    v = v_cache.repeat_interleave(group, dim=1)
    s = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    past = int(cache_len[0])
    mask = torch.arange(n)[None, :] > (past + torch.arange(q.shape[2]))[:, None]
    return torch.softmax(s.masked_fill(mask, -math.inf), -1) @ v


FAIR = {"gelu": [_gelu_readme, _gelu_once, _gelu_formula], "softmax": [_softmax_steps, _softmax_once],
        "gemv": [_gemv_bias_after, _gemv_once], "qkv": [qkv_projection_unfused, _qkv_once],
        "attention": [_attention_fp32, _attention_math]}


@pytest.mark.parametrize("dtype", SWEEP_DTYPES)
@pytest.mark.parametrize("kernel,provider", [(k, p) for k, ps in FAIR.items() for p in ps],
                         ids=lambda v: getattr(v, "__name__", v))
def test_plain_torch_providers_that_round_differently_pass_on_the_smoke_points(kernel, provider, dtype):
    for point in (p for p in sweep_points("smoke", "cpu", dtype) if p.kernel == kernel):
        bench = KernelBench(kernel)
        check = _run(bench, bench.build(point, CPU), provider)
        assert check.ok and check.reference == "float64", (point.label, check.describe())


# ------------------------------------------------------------------------------------------------
# Power: wrong providers fail in every dtype
# ------------------------------------------------------------------------------------------------

def _softmax_wrong_axis(x):
    return torch.softmax(x, dim=0)


def _gemv_transposed(x, weight, bias):
    return F.linear(x, weight.t(), bias)  # a square weight: the shape is right, the values are not


def _gemv_no_bias(x, weight, bias):
    return F.linear(x, weight)


def _qkv_no_bias(x, weight, bias, *, n_heads, n_kv_heads):
    return qkv_projection_unfused(x, weight, None, n_heads=n_heads, n_kv_heads=n_kv_heads)


def _gelu_tanh_for_erf(x, bias, *, approximate):
    return F.gelu(x if bias is None else x + bias, approximate="tanh")


def _attention_not_causal(q, k_cache, v_cache, cache_len):
    return F.scaled_dot_product_attention(q, k_cache, v_cache, enable_gqa=True)


def _gelu_tail(dtype: str) -> tuple[KernelBench, dict]:
    """Inputs in GELU's left tail, u in [-5, -3], where tanh and erf GELU differ by 10-50% of the value,
    far beyond a bf16 rounding (on N(0, 4) inputs they differ by less than one bf16 ulp of the largest
    output, and no gate on the max error can tell them apart there)."""
    x = torch.linspace(-5.0, -3.0, 512, dtype=torch.float64).to(getattr(torch, dtype))
    return KernelBench("gelu"), {"x": x, "b": None, "approximate": "none"}


WRONG = {
    "softmax over the wrong axis": (lambda d: _case("softmax", d), _softmax_wrong_axis),
    "a transposed projection": (lambda d: _case("gemv", d, n=128, k=128), _gemv_transposed),
    "a dropped bias (gemv)": (lambda d: _case("gemv", d), _gemv_no_bias),
    "a dropped bias (qkv)": (lambda d: _case("qkv", d), _qkv_no_bias),
    "tanh GELU where erf is asked": (_gelu_tail, _gelu_tanh_for_erf),
    "attention without the causal mask": (lambda d: _case("attention", d), _attention_not_causal),
}


@pytest.mark.parametrize("dtype", SWEEP_DTYPES)
@pytest.mark.parametrize("what", WRONG)
def test_wrong_providers_fail_in_every_dtype(what, dtype):
    make, provider = WRONG[what]
    bench, x = make(dtype)
    check = _run(bench, x, provider)
    assert not check.ok and check.ratio > 2 * accuracy.ACCURACY_FACTOR, check.describe()


def test_the_tail_inputs_hold_the_plain_erf_gelu_to_its_own_rounding():
    bench, x = _gelu_tail("bfloat16")
    assert _run(bench, x, _gelu_readme).ratio == 1.0  # plain F.gelu is the plain run itself
    assert _run(bench, x, _gelu_once).ok


# ------------------------------------------------------------------------------------------------
# The contract
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_an_output_in_a_wider_dtype_breaks_the_contract(dtype):
    bench, x = _case("softmax", dtype)
    for wide in (torch.float32, torch.float64):
        with pytest.raises(ContractError, match=f"is {wide}; expected torch.{dtype}"):
            _run(bench, x, lambda t, wide=wide: torch.softmax(t.to(wide), -1))


def test_a_provider_that_clobbers_its_input_fails_even_with_a_matching_output():
    bench, x = _case("softmax", "bfloat16")

    def clobber(t):
        t.zero_()  # the input is now zeros, whose softmax is uniform rows
        return torch.softmax(t, -1)

    with pytest.raises(ContractError, match=r"changed its input \(argument 0"):
        _run(bench, x, clobber)
    bench, x = _case("softmax", "bfloat16")

    ok = KernelBench("softmax")
    ok.spec = dataclasses.replace(ok.spec, inplace=(0,))
    pristine = accuracy.snapshot(*ok.launch_args(x))
    out = torch.softmax(x["x"], -1)
    x["x"].copy_(out)  # allowed by contract: the reference still comes from the pristine copy
    assert ok.check(x, out, pristine=pristine).ok


@pytest.mark.parametrize("result,message", [
    (None, "returned None; expected a tensor"),
    ([0.5] * 176, "returned 176 outputs; expected 1"),
    ((1.0,), "the output is a float, not a torch.Tensor"),
])
def test_none_and_non_tensors_are_named(result, message):
    bench, x = _case("softmax", "float32")
    with pytest.raises(ContractError, match=message):
        _run(bench, x, lambda t: result)


def test_shapes_devices_and_the_qkv_layout_are_checked():
    bench, x = _case("softmax", "float32")
    with pytest.raises(ContractError, match=r"has shape \(176, 3\); expected \(3, 176\)"):
        _run(bench, x, lambda t: torch.softmax(t, -1).t().contiguous())
    with pytest.raises(ContractError, match="is on meta; expected cpu"):
        _run(bench, x, lambda t: torch.empty(t.shape, dtype=t.dtype, device="meta"))
    bench, x = _case("qkv", "float32")

    def strided(x, weight, bias, *, n_heads, n_kv_heads):  # right values, every other element of a buffer
        outs = qkv_projection_unfused(x, weight, bias, n_heads=n_heads, n_kv_heads=n_kv_heads)
        return tuple(torch.empty(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)[..., ::2].copy_(t)
                     for t in outs)

    with pytest.raises(ContractError, match="output 0 is not contiguous"):
        _run(bench, x, strided)
    with pytest.raises(ContractError, match="returned 2 outputs; expected 3"):
        _run(bench, x, lambda *a, **k: qkv_projection_unfused(*a, **k)[:2])


def test_the_plain_run_uses_tf32_only_for_fp32_on_a_gpu():
    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):  # pragma: no cover - torch < 2.9
        pytest.skip("torch without fp32_precision")
    before = matmul.fp32_precision
    try:
        matmul.fp32_precision = "ieee"
        with accuracy.plain_precision(torch.float32, torch.device("cuda")):
            assert matmul.fp32_precision == "tf32"  # as the kernels' tl.dot
        assert matmul.fp32_precision == "ieee"
        for dtype, device in ((torch.bfloat16, "cuda"), (torch.float32, "cpu")):
            with accuracy.plain_precision(dtype, torch.device(device)):
                assert matmul.fp32_precision == "ieee"
    finally:
        matmul.fp32_precision = before
