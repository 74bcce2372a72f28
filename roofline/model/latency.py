"""Predicted latency lower bounds for prefill and decode on a hardware spec, optionally over
tensor-parallel GPUs: per GPU ``max(flops / peak, bytes / bandwidth)`` with the FLOPs of
:mod:`roofline.model.accounting` and the streamed weights, KV cache, embedding rows and logits as bytes, split
over ``tp`` GPUs (a GPU holds ``ceil(Hkv / tp)`` KV heads). Tensor-parallel communication follows
seed 004: ``COMMS_PER_LAYER`` transfers per layer, each ``COMM_LATENCY_S`` plus its bytes over the link
(Megatron's 2 ring all-reduces per layer move about as much; the seed's throughput term drops the 2 bytes
per bf16 element, this module keeps them), ADDED to the
roofline time as the seed does; ``overlapped_seconds`` is the stricter bound with everything
overlapped. Weights, activations and KV cache can each have their own format
(:class:`roofline.model.precision.Precision`), each op's FLOPs on the roof of the math it runs; attention
fused (default) or unfused (eager). Predictions, never measurements; conventions in
:data:`roofline.model.cost.MODEL_CONVENTIONS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from roofline.errors import UsageError, require_nonnegative, require_positive
from roofline.model.accounting import (
    FlopBreakdown,
    component_math,
    decode_flops_breakdown,
    kv_cache_bytes_per_token,
    prefill_flops,
    streamed_weight_bytes,
)
from roofline.model.cost import dtype_bytes, gemm_cost
from roofline.model.hardware import HardwareSpec, dtype_class
from roofline.model.precision import as_precision, resolve_math
from roofline.model.transformer import ModelConfig

# One-way GPU-to-GPU bandwidth per GPU (bytes/s) on NVLink systems: NVIDIA quotes the sum of both
# directions (A100 600 GB/s, H100/H200 900 GB/s, V100 300 GB/s); seed 004 uses 300 GB/s for the A100.
# PCIe cards pair over NVLink bridges at best, so they have no entry: pass link_bandwidth explicitly.
LINK_BANDWIDTH: dict[str, float] = {
    "A100-SXM4-40GB": 300e9, "A100-SXM4-80GB": 300e9, "A100-SEED-1.5TB": 300e9, "A100-SEED-2.0TB": 300e9,
    "H100-SXM5": 450e9, "H200": 450e9, "V100-SXM2": 150e9,
}
COMM_LATENCY_S = 10e-6  # seed 004: "10 microseconds is a good bet"
COMMS_PER_LAYER = 4  # seed 004


def link_bandwidth_for(spec: HardwareSpec) -> float:
    """The one-way interconnect bandwidth of ``spec``; :class:`UsageError` when ridgebench has none."""
    if spec.name in LINK_BANDWIDTH:
        return LINK_BANDWIDTH[spec.name]
    raise UsageError(f"no interconnect bandwidth known for {spec.name}; pass link_bandwidth "
                     f"(bytes/s, one way) for tensor parallelism (known: {', '.join(LINK_BANDWIDTH)})")


def tp_comm_seconds(cfg: ModelConfig, tokens: int, tp: int, dtype: object, *, link_bandwidth: float,
                    latency_s: float = COMM_LATENCY_S, comms_per_layer: int = COMMS_PER_LAYER
                    ) -> tuple[float, float]:
    """``(latency_seconds, transfer_seconds)`` of tensor-parallel communication for a step that
    processes ``tokens`` tokens (batch * new tokens per sequence); zero for ``tp == 1``."""
    if tp == 1:
        return 0.0, 0.0
    if link_bandwidth <= 0:
        raise UsageError(f"link_bandwidth: expected bytes/s > 0, got {link_bandwidth}")
    n = cfg.n_layers * comms_per_layer
    return n * latency_s, n * tokens * cfg.d_model * dtype_bytes(dtype) / link_bandwidth


@dataclass(frozen=True)
class LatencyBreakdown:
    """A predicted lower bound on one step's time, per GPU (``flops`` and ``bytes`` per GPU)."""

    flops: float
    bytes: float
    compute_s: float
    memory_s: float
    comm_latency_s: float
    comm_transfer_s: float
    tp: int
    hardware: str
    dtype_class: str  # the roof the block matmuls run on
    flops_by_class: Mapping[str, float] | None = None  # per GPU, by the roof each FLOP runs on

    @property
    def comm_s(self) -> float:
        return self.comm_latency_s + self.comm_transfer_s

    @property
    def seconds(self) -> float:
        """``max(compute, memory) + communication``: seed 004's model with a roofline inside."""
        return max(self.compute_s, self.memory_s) + self.comm_s

    @property
    def overlapped_seconds(self) -> float:
        """``max(compute, memory, communication)``: everything overlapped, the loosest lower bound."""
        return max(self.compute_s, self.memory_s, self.comm_s)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"

    def to_dict(self) -> dict:
        return {**asdict(self), "comm_s": self.comm_s, "seconds": self.seconds,
                "overlapped_seconds": self.overlapped_seconds, "bound": self.bound, "predicted": True}


def _check_tp(cfg: ModelConfig, tp: int) -> None:
    require_positive(tp=tp)
    if cfg.n_heads % tp:
        raise UsageError(f"tp: must divide n_heads ({cfg.n_heads}) to shard attention, got {tp}")


def _kv_fraction(cfg: ModelConfig, tp: int) -> float:
    """Share of the KV cache one GPU holds: ``ceil(Hkv / tp) / Hkv`` (replicated when tp > Hkv)."""
    return math.ceil(cfg.n_kv_heads / tp) / cfg.n_kv_heads


def unfused_attention_bytes(cfg: ModelConfig, batch: int, q_len: int, kv_len: int, dtype: object) -> float:
    """Extra bytes of eager (unfused) attention over fused, all layers: the ``q_len x kv_len`` scores
    written and read back, the probabilities written and read back (4 passes at the activations' float;
    the mask add, one more pass, is not counted), and with GQA the K/V copies ``repeat_kv`` makes for
    every query head (written, then read)."""
    fb = as_precision(dtype).float_bytes
    scores = 4 * batch * cfg.n_heads * q_len * kv_len
    repeat = 0 if cfg.n_kv_heads == cfg.n_heads else 2 * 2 * batch * cfg.n_heads * kv_len * cfg.head_dim
    return float(cfg.n_layers * (scores + repeat) * fb)


def _step(cfg: ModelConfig, breakdown: FlopBreakdown, fixed_bytes: float, kv_bytes: float, act_bytes: float,
          sharded_bytes: float, tokens: int, spec: HardwareSpec, dtype: object, tp: int,
          link_bandwidth: float | None, latency_s: float, comms_per_layer: int) -> LatencyBreakdown:
    p = as_precision(dtype)
    by_class: dict[str, float] = {}
    for comp, cls in component_math(p).items():
        used = resolve_math(spec, cls)[0]
        by_class[used] = by_class.get(used, 0.0) + breakdown.components[comp] / tp
    gpu_flops = breakdown.total / tp
    if len(by_class) == 1:  # one roof: exactly flops / peak
        compute_s = gpu_flops / resolve_math(spec, next(iter(by_class)))[1]
    else:
        compute_s = sum(f / resolve_math(spec, c)[1] for c, f in by_class.items())
    gpu_bytes = (fixed_bytes + sharded_bytes) / tp + kv_bytes * _kv_fraction(cfg, tp) + act_bytes
    lat, xfer = 0.0, 0.0
    if tp > 1:
        bw = link_bandwidth if link_bandwidth is not None else link_bandwidth_for(spec)
        lat, xfer = tp_comm_seconds(cfg, tokens, tp, p.float_dtype, link_bandwidth=bw, latency_s=latency_s,
                                    comms_per_layer=comms_per_layer)
    return LatencyBreakdown(gpu_flops, gpu_bytes, compute_s, gpu_bytes / spec.mem_bandwidth,
                            lat, xfer, tp, spec.name, resolve_math(spec, p.matmul_math)[0], by_class)


def prefill_latency(cfg: ModelConfig, batch: int, seq: int, spec: HardwareSpec, dtype: object, tp: int = 1,
                    *, link_bandwidth: float | None = None, latency_s: float = COMM_LATENCY_S,
                    comms_per_layer: int = COMMS_PER_LAYER, attention: str = "fused") -> LatencyBreakdown:
    """Predicted lower bound for prefilling ``batch`` prompts of ``seq`` tokens (KV written, last
    position's logits computed). ``dtype``: a dtype or a :class:`~roofline.model.precision.Precision`;
    ``attention="unfused"`` adds :func:`unfused_attention_bytes` and counts masked pairs."""
    _check_tp(cfg, tp)
    p = as_precision(dtype)
    flops = prefill_flops(cfg, batch, seq, attention=attention)
    kv = batch * seq * kv_cache_bytes_per_token(cfg, p)
    act = p.float_bytes * (batch * seq * cfg.d_model + batch * cfg.vocab_size)
    extra = unfused_attention_bytes(cfg, batch, seq, seq, p) if attention == "unfused" else 0.0
    return _step(cfg, flops, streamed_weight_bytes(cfg, p), kv, act, extra, batch * seq, spec, p, tp,
                 link_bandwidth, latency_s, comms_per_layer)


def decode_step_latency(cfg: ModelConfig, batch: int, context: int, spec: HardwareSpec, dtype: object,
                        tp: int = 1, *, link_bandwidth: float | None = None,
                        latency_s: float = COMM_LATENCY_S, comms_per_layer: int = COMMS_PER_LAYER,
                        attention: str = "fused") -> LatencyBreakdown:
    """Predicted lower bound for one decode step: ``batch`` sequences, ``context`` tokens cached each
    (``dtype`` and ``attention`` as in :func:`prefill_latency`)."""
    _check_tp(cfg, tp)
    require_nonnegative(context=context)
    p = as_precision(dtype)
    flops = decode_flops_breakdown(cfg, batch, context, attention=attention)
    kv = batch * (context + 1) * kv_cache_bytes_per_token(cfg, p)  # read the cache, write the new K/V
    act = p.float_bytes * batch * (cfg.d_model + cfg.vocab_size)
    extra = unfused_attention_bytes(cfg, batch, 1, context + 1, p) if attention == "unfused" else 0.0
    return _step(cfg, flops, streamed_weight_bytes(cfg, p), kv, act, extra, batch, spec, p, tp,
                 link_bandwidth, latency_s, comms_per_layer)


def attention_latency(cfg: ModelConfig, batch: int, q_len: int, cache_len: int, spec: HardwareSpec,
                      dtype: object, tp: int = 1, *, attention: str = "fused") -> LatencyBreakdown:
    """Attention alone (Q.K and P.V in every layer, no projections, no communication): a prefill of
    ``q_len`` tokens (``cache_len=0``) or a decode step (``q_len=1``) over ``cache_len`` cached tokens.
    Bytes: Q read and O written, the cached and new K/V read once, plus :func:`unfused_attention_bytes`
    when unfused: what makes eager prefill attention memory-bound at long prompts."""
    _check_tp(cfg, tp)
    require_positive(batch=batch, q_len=q_len)
    require_nonnegative(cache_len=cache_len)
    if q_len > 1 and cache_len:
        raise UsageError("attention_latency: a prefill (cache_len=0) or a decode step (q_len=1)")
    p = as_precision(dtype)
    full = (decode_flops_breakdown(cfg, batch, cache_len, attention=attention) if q_len == 1
            else prefill_flops(cfg, batch, q_len, attention=attention))
    attn = FlopBreakdown({k: (v if k in ("attn_scores", "attn_values") else 0.0)
                          for k, v in full.components.items()}, full.causal, batch, q_len)
    kv = batch * (cache_len + q_len) * kv_cache_bytes_per_token(cfg, p)
    q_and_o = cfg.n_layers * 2 * batch * cfg.n_heads * q_len * cfg.head_dim * p.float_bytes
    extra = 0.0
    if attention == "unfused":
        extra = unfused_attention_bytes(cfg, batch, q_len, cache_len + q_len, p)
    # no communication: zero transfers per layer (the link is never asked for)
    return _step(cfg, attn, 0.0, kv, 0.0, q_and_o + extra, 0, spec, p, tp, math.inf, 0.0, 0)


def prefill_seconds_lower_bound(cfg: ModelConfig, batch: int, seq: int, spec: HardwareSpec, dtype: object,
                                tp: int = 1, **comm) -> float:
    """Seconds, predicted: :func:`prefill_latency` ``.seconds``."""
    return prefill_latency(cfg, batch, seq, spec, dtype, tp, **comm).seconds


def decode_step_seconds_lower_bound(cfg: ModelConfig, batch: int, context: int, spec: HardwareSpec,
                                    dtype: object, tp: int = 1, **comm) -> float:
    """Seconds, predicted: :func:`decode_step_latency` ``.seconds``."""
    return decode_step_latency(cfg, batch, context, spec, dtype, tp, **comm).seconds


def decode_compute_bound_batch(cfg: ModelConfig, spec: HardwareSpec, dtype: object, context: int = 0,
                               tp: int = 1, **options) -> int | None:
    """Smallest batch whose decode step (at ``context`` cached tokens per sequence) is compute-bound on
    ``spec``: compute time >= memory time. ``None`` when no batch is: each sequence's KV-cache bytes
    then cost more time than its FLOPs (attention over a long cache is memory-bound at any batch).

    At ``context=0`` this is about the ridge point times ``bytes_per_element / 2`` (weights dominate):
    seed 004's "208" on the 312 TFLOP/s, 1.5 TB/s A100 in bf16; with a :class:`Precision`, the ridge of
    the math the weights run on times their bytes per element over 2. ``options``: those of
    :func:`decode_step_latency`.
    """
    one = decode_step_latency(cfg, 1, context, spec, dtype, tp, **options)
    two = decode_step_latency(cfg, 2, context, spec, dtype, tp, **options)
    per_seq = (two.compute_s - one.compute_s) - (two.memory_s - one.memory_s)  # both linear in batch
    fixed = one.memory_s - one.compute_s + per_seq  # memory - compute at batch 0
    if per_seq <= 0:
        return None
    return max(1, math.ceil(fixed / per_seq - 1e-9))


@dataclass(frozen=True)
class KVProjection:
    """Seed 004's KV-cache exercise: computing K and V for ``tokens`` tokens in every layer.

    ``memory_s`` streams W_k and W_v once; ``compute_s`` is ``2 * tokens * D * 2*Hkv*Dh`` per layer
    over the peak. ``breakeven_tokens`` = ``memory_s / compute_s`` per token: below it the weight
    reads, not the FLOPs, set the time, so computing K/V for one token costs as much as for that many.
    """

    tokens: int
    flops: float
    weight_bytes: float
    compute_s: float
    memory_s: float
    breakeven_tokens: float


def kv_projection(cfg: ModelConfig, spec: HardwareSpec, dtype: object = "bfloat16",
                  tokens: int = 1) -> KVProjection:
    require_positive(tokens=tokens)
    kv_width = 2 * cfg.n_kv_heads * cfg.head_dim
    flops = cfg.n_layers * gemm_cost(tokens, kv_width, cfg.d_model, dtype).flops
    wbytes = cfg.n_layers * cfg.d_model * kv_width * dtype_bytes(dtype)
    peak = spec.peak(dtype_class(dtype, matmul=True))
    compute_s, memory_s = flops / peak, wbytes / spec.mem_bandwidth
    return KVProjection(tokens, flops, wbytes, compute_s, memory_s, memory_s / (compute_s / tokens))


def kv_projection_time_ratio(spec: HardwareSpec, dtype: object = "bfloat16") -> float:
    """Tokens whose K/V projection costs the same time as one token's: ``bytes_per_element * peak /
    (2 * bandwidth)``, independent of the model ("None of the model architecture matters anymore")."""
    return dtype_bytes(dtype) * spec.peak(dtype_class(dtype, matmul=True)) / (2 * spec.mem_bandwidth)
