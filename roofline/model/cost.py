"""The analytic cost model: FLOPs and compulsory bytes per kernel, and where that lands on a roofline.

Counting conventions (also exported, verbatim, with every result as :data:`CONVENTIONS`):

- an FMA is 2 FLOPs; a matmul ``[M, K] @ [K, N]`` is ``2*M*N*K`` FLOPs; a bias add is 1 FLOP per output;
- compulsory bytes: each input read once and each output written once, at the tensor's dtype;
  caches, re-reads and spills are the kernel's overhead, never counted;
- causal attention counts only unmasked query-key pairs; per pair and query head, ``Q.K`` is
  ``2*Dh`` FLOPs and ``P.V`` is ``2*Dh``; softmax inside attention is not counted (FlashAttention's rule);
- attention FLOPs scale with query heads, K/V bytes with KV heads (GQA/MQA read each KV head once);
- softmax and GELU count declared FLOPs per element (:data:`SOFTMAX_FLOPS_PER_ELEMENT`,
  :data:`GELU_FLOPS_PER_ELEMENT`), a transcendental counting as 1;
- peaks are dense (never sparse) and units are decimal.

Every ``*_cost`` function takes keyword arguments that a benchmark records verbatim as its ``shape``
in ``extra_info`` (plus ``dtype``), so :func:`roofline.model.ops.kernel_cost` recomputes the predicted point
for any measured one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from roofline.model.hardware import HardwareSpec

SOFTMAX_FLOPS_PER_ELEMENT = 5  # max-compare, subtract, exp, add to sum, multiply by 1/sum
# exact: x/sqrt(2), erf, +1, *x, *0.5; tanh: x^3 (2), *0.044715, +x, *sqrt(2/pi), tanh, +1, *x, *0.5
GELU_FLOPS_PER_ELEMENT = {"none": 5, "tanh": 9}

CONVENTIONS: dict[str, str] = {
    "fma": "an FMA is 2 FLOPs; [M,K]@[K,N] is 2*M*N*K FLOPs; a bias add is 1 FLOP per output element",
    "bytes": "compulsory: each input read once, each output written once, at its dtype",
    "attention": "causal: only unmasked query-key pairs count, 4*Dh FLOPs per pair per query head "
                 "(QK^T and PV); softmax inside attention not counted",
    "gqa": "attention FLOPs scale with query heads; K/V bytes with KV heads",
    "softmax": f"{SOFTMAX_FLOPS_PER_ELEMENT} FLOPs per element",
    "gelu": f"{GELU_FLOPS_PER_ELEMENT['none']} FLOPs per element (erf), "
            f"{GELU_FLOPS_PER_ELEMENT['tanh']} (tanh); +1 with a fused bias",
    "peaks": "dense (not sparse) datasheet peaks, or measured ceilings where stated",
    "units": "decimal: 1 GB = 1e9 bytes, 1 TFLOP/s = 1e12 FLOP/s",
}

# Whole-model counting (roofline.model.accounting, roofline.model.latency): exported by ``python -m roofline
# model
# --json`` after CONVENTIONS.
MODEL_CONVENTIONS: dict[str, str] = {
    "flops": "matmuls (an FMA is 2 FLOPs) plus their bias adds; norms, activations, softmax not counted",
    "forward_attention": "forward_flops: full T x T scores (seed 002, FlopCounterMode); "
                         "forward_flops_causal: unmasked pairs T(T+1)/2",
    "decode": "context = tokens already cached; the new token attends to them and itself (causal)",
    "params": "non_embedding = attention + MLP + norms; "
              "embedding = token embedding, untied LM head, positions",
    "latency": "predicted lower bounds: max(flops/peak, bytes/bandwidth) per GPU, plus seed 004's "
               "tensor-parallel communication (4 transfers per layer, 10 us each + bytes/link bandwidth)",
}

_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int32": 4, "int8": 1}
_DTYPE_ALIASES = {"fp16": "float16", "half": "float16", "bf16": "bfloat16", "fp32": "float32",
                  "float": "float32", "fp64": "float64", "double": "float64"}


def dtype_name(dtype: object) -> str:
    """Canonical name (``"float16"``) of a torch dtype or a string alias (``"fp16"``, ``"torch.half"``)."""
    name = str(dtype).replace("torch.", "")
    name = _DTYPE_ALIASES.get(name, name)
    if name not in _DTYPE_BYTES:
        raise ValueError(f"dtype: unsupported {dtype!r}, expected one of {', '.join(_DTYPE_BYTES)}")
    return name


def dtype_bytes(dtype: object) -> int:
    """Bytes per element of ``dtype``."""
    return _DTYPE_BYTES[dtype_name(dtype)]


@dataclass(frozen=True)
class Cost:
    """FLOPs and compulsory bytes of one kernel call."""

    flops: float
    bytes: float

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP/byte."""
        return self.flops / self.bytes if self.bytes else float("inf")

    def attainable_seconds(self, spec: HardwareSpec, dtype_class: str) -> float:
        """Roofline lower bound on time: ``max(flops / peak, bytes / bandwidth)``."""
        return max(self.flops / spec.peak(dtype_class), self.bytes / spec.mem_bandwidth)

    def bound(self, spec: HardwareSpec, dtype_class: str) -> str:
        """``"memory"`` or ``"compute"``: which roof limits this call on ``spec``."""
        return "compute" if self.intensity >= spec.ridge(dtype_class) else "memory"

    def attainable_flops_per_s(self, spec: HardwareSpec, dtype_class: str) -> float:
        """The roof's height at this intensity: ``min(peak, intensity * bandwidth)``."""
        return min(spec.peak(dtype_class), self.intensity * spec.mem_bandwidth)


def _nonneg(**sizes: int) -> None:
    for name, value in sizes.items():
        if value < 0:
            raise ValueError(f"{name}: expected a non-negative size, got {value}")


def gemm_cost(m: int, n: int, k: int, dtype: object, bias: bool = False) -> Cost:
    """``[M, K] @ [K, N] (+ bias[N])`` -> ``[M, N]``."""
    _nonneg(m=m, n=n, k=k)
    p = dtype_bytes(dtype)
    flops = 2 * m * n * k + (m * n if bias else 0)
    nbytes = p * (m * k + k * n + m * n + (n if bias else 0))
    return Cost(float(flops), float(nbytes))


def qkv_cost(m: int, d_model: int, n_heads: int, n_kv_heads: int, head_dim: int, dtype: object,
             bias: bool = False) -> Cost:
    """Fused QKV projection: ``x[M, D] @ W[D, (Hq + 2*Hkv)*Dh] (+ bias)``, M = batch * tokens.

    Writing K/V into a cache instead of fresh tensors moves the same bytes.
    """
    _nonneg(n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim)
    return gemm_cost(m, (n_heads + 2 * n_kv_heads) * head_dim, d_model, dtype, bias)


def gemv_cost(batch: int, n: int, k: int, dtype: object, bias: bool = False) -> Cost:
    """Decode GEMV / skinny GEMM ``y[B, N] = x[B, K] @ W^T (+ bias)``; the weights dominate the bytes."""
    return gemm_cost(batch, n, k, dtype, bias)


def causal_pairs(q_len: int, cache_len: int) -> int:
    """Unmasked (query, key) pairs of ``q_len`` queries at positions ``cache_len .. cache_len+q_len-1``."""
    _nonneg(q_len=q_len, cache_len=cache_len)
    return q_len * cache_len + q_len * (q_len + 1) // 2


def attention_cost(batch: int, n_heads: int, n_kv_heads: int, head_dim: int, q_len: int,
                   cache_len: int | Sequence[int], dtype: object) -> Cost:
    """Causal attention of ``q_len`` new queries per sequence over a KV cache (``cache_len`` each, an
    int for all or one per sequence) plus the new keys. Prefill is ``cache_len=0``; decode ``q_len=1``.

    Bytes: Q read and O written once per query head; each sequence's ``cache_len + q_len`` keys and
    values read once per KV head.
    """
    lens = [cache_len] * batch if isinstance(cache_len, int) else list(cache_len)
    if len(lens) != batch:
        raise ValueError(f"cache_len: expected {batch} lengths (one per sequence), got {len(lens)}")
    _nonneg(batch=batch, n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim, q_len=q_len)
    if n_kv_heads == 0 or n_heads % n_kv_heads:
        raise ValueError(f"n_kv_heads: must divide n_heads ({n_heads}), got {n_kv_heads}")
    p = dtype_bytes(dtype)
    pairs = sum(causal_pairs(q_len, c) for c in lens)
    flops = 4 * head_dim * n_heads * pairs
    q_and_o = 2 * batch * n_heads * q_len * head_dim
    k_and_v = 2 * n_kv_heads * head_dim * sum(c + q_len for c in lens)
    return Cost(float(flops), float(p * (q_and_o + k_and_v)))


def softmax_cost(rows: int, cols: int, dtype: object) -> Cost:
    """Row softmax of ``[rows, cols]``: read once, write once."""
    _nonneg(rows=rows, cols=cols)
    n = rows * cols
    return Cost(float(SOFTMAX_FLOPS_PER_ELEMENT * n), float(2 * n * dtype_bytes(dtype)))


def gelu_cost(n: int, dtype: object, approximate: str = "none", bias_len: int = 0) -> Cost:
    """Elementwise GELU over ``n`` elements (``approximate`` ``"none"`` or ``"tanh"``), with an optional
    fused bias of ``bias_len`` elements broadcast along the last dimension."""
    _nonneg(n=n, bias_len=bias_len)
    if approximate not in GELU_FLOPS_PER_ELEMENT:
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
    per = GELU_FLOPS_PER_ELEMENT[approximate] + (1 if bias_len else 0)
    return Cost(float(per * n), float(dtype_bytes(dtype) * (2 * n + bias_len)))
