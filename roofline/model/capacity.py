"""Memory capacity of a model on ``gpus`` GPUs of a hardware preset, tensor parallel as
:mod:`roofline.model.latency` models it: weights split evenly over the GPUs, each GPU holding ``ceil(Hkv /
tp)``
KV heads (replicated when ``tp > Hkv``), activations per GPU.

Per GPU: weights / tp + KV cache + activations <= the preset's memory (:attr:`HardwareSpec.memory_bytes`,
the datasheet capacity in decimal GB, as seed 004 counts it; the CUDA context, the allocator's
fragmentation and communication buffers are not counted, so the room left is an upper bound).

Activations (:func:`activation_bytes`) are the largest set of intermediates live at once in one layer of
a forward pass over ``tokens`` tokens: the residual stream and its normed copy (``2 * D`` per token), the
widest projection output (the QKV or the MLP's up/gate, split over the GPUs), with unfused attention the
``q x kv`` scores and probabilities of the GPU's query heads, and the logits of the sequences' last
positions (fp32). A decode step's activations are tiny; a prefill's grow with the prompt.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from roofline.errors import UsageError, require_nonnegative, require_positive
from roofline.model.accounting import check_attention, kv_cache_bytes_per_token, weight_bytes
from roofline.model.hardware import HardwareSpec
from roofline.model.precision import Precision, as_precision
from roofline.model.transformer import ModelConfig

LOGIT_BYTES = 4  # logits are upcast to fp32 for sampling


def activation_bytes(cfg: ModelConfig, batch: int, q_len: int, kv_len: int, dtype: object, tp: int = 1,
                     attention: str = "fused") -> float:
    """Peak live activation bytes on one GPU for ``batch`` sequences of ``q_len`` new tokens attending to
    ``kv_len`` keys (module docstring)."""
    require_positive(batch=batch, q_len=q_len, tp=tp)
    require_nonnegative(kv_len=kv_len)
    p = as_precision(dtype)
    tokens = batch * q_len
    widest = max(cfg.qkv_width, (2 if cfg.mlp == "swiglu" else 1) * cfg.d_ff) / tp
    per_token = (2 * cfg.d_model + widest) * p.float_bytes
    scores = 0.0
    if check_attention(attention) == "unfused":
        scores = 2 * batch * math.ceil(cfg.n_heads / tp) * q_len * kv_len * p.float_bytes
    return tokens * per_token + scores + batch * cfg.vocab_size * LOGIT_BYTES


def _tp(cfg: ModelConfig, gpus: int) -> None:
    require_positive(gpus=gpus)
    if cfg.n_heads % gpus:
        raise UsageError(f"gpus: tensor parallelism over {gpus} GPUs must divide n_heads ({cfg.n_heads})")


@dataclass(frozen=True)
class Capacity:
    """What fits of ``model`` on ``gpus`` x ``hardware`` at ``batch`` sequences of ``context`` tokens.
    Bytes per GPU unless named ``_total``; ``kv_tokens`` is the largest batch x context the room left
    after weights and a decode step's activations holds; ``max_batch`` the largest batch at ``context``
    that also leaves room for prefilling one ``context``-token prompt."""

    model: str
    hardware: str
    gpus: int
    precision: dict
    memory_bytes: float
    weight_bytes_total: float
    weight_bytes: float
    kv_bytes_per_token_total: float
    kv_bytes_per_token: float
    batch: int
    context: int
    kv_bytes: float
    decode_activation_bytes: float
    prefill_activation_bytes: float
    used_bytes: float
    fits: bool
    kv_tokens: int
    max_batch: int

    @property
    def free_bytes(self) -> float:
        return self.memory_bytes - self.used_bytes

    def to_dict(self) -> dict:
        return {**asdict(self), "free_bytes": self.free_bytes, "predicted": True}


def capacity(cfg: ModelConfig, spec: HardwareSpec, gpus: int = 1, dtype: object = "bfloat16", batch: int = 1,
             context: int | None = None, *, attention: str = "fused",
             memory_bytes: float | None = None) -> Capacity:
    """Capacity of ``cfg`` on ``gpus`` GPUs of ``spec`` (tensor parallel), ``batch`` sequences of
    ``context`` tokens (default: the model's context length). ``memory_bytes`` overrides the preset's
    per-GPU capacity (a preset without one needs it)."""
    _tp(cfg, gpus)
    context = cfg.context_length if context is None else context
    require_positive(batch=batch, context=context)
    mem = memory_bytes if memory_bytes is not None else spec.memory_bytes
    if mem is None or mem <= 0:
        raise UsageError(f"{spec.name} has no memory capacity in ridgebench; pass memory_bytes")
    p: Precision = as_precision(dtype)
    w_total = weight_bytes(cfg, p)
    kv_total = kv_cache_bytes_per_token(cfg, p)
    w = w_total / gpus
    kv = kv_total * math.ceil(cfg.n_kv_heads / gpus) / cfg.n_kv_heads
    decode_act_one = activation_bytes(cfg, 1, 1, context, p, gpus, attention)
    prefill_act = activation_bytes(cfg, 1, context, context, p, gpus, attention)
    decode_act = activation_bytes(cfg, batch, 1, context, p, gpus, attention)
    kv_bytes = batch * context * kv
    used = w + kv_bytes + max(decode_act, prefill_act)
    room = mem - w
    kv_tokens = max(0, math.floor((room - decode_act_one) / kv))
    max_batch = max(0, math.floor((room - prefill_act) / (context * kv + decode_act_one)))
    return Capacity(cfg.name, spec.name, gpus, p.to_dict(), mem, w_total, w, kv_total, kv, batch, context,
                    kv_bytes, decode_act, prefill_act, used, used <= mem, kv_tokens, max_batch)

