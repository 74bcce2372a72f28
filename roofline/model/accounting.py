"""Transformer accounting for a :class:`~roofline.model.transformer.ModelConfig`: parameters, FLOPs (forward,
prefill,
decode, training), KV-cache bytes and training state. Every matmul is costed by :mod:`roofline.model.cost`,
never re-derived; the counting rules are :data:`roofline.model.cost.MODEL_CONVENTIONS` (with
:data:`roofline.model.cost.CONVENTIONS` for the kernels). :func:`forward_flops` counts the full ``T x T``
attention (as seed 002 and ``FlopCounterMode`` do), :func:`forward_flops_causal` only unmasked pairs; the
decode and prefill counts are causal (``attention="unfused"``: every query-key pair, as eager attention
computes the masked ones too). Bytes take a dtype or a :class:`~roofline.model.precision.Precision` (weights,
activations and KV cache in their own formats, scales counted). Relative positions (Gopher,
Transformer-XL) count as a ``D x D`` projection plus two ``D``-vectors per layer in the parameters, with
no FLOPs. Latency bounds built on these counts are in :mod:`roofline.model.latency`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from roofline.errors import UsageError, require_nonnegative, require_positive
from roofline.model.cost import Cost, attention_cost, gemm_cost, qkv_cost
from roofline.model.precision import Precision, as_precision, matrix_bytes
from roofline.model.transformer import ModelConfig

FORWARD_COMPONENTS: tuple[str, ...] = ("qkv", "attn_scores", "attn_values", "attn_out_proj", "mlp", "lm_head")
PARAM_COMPONENTS: tuple[str, ...] = ("token_embedding", "lm_head", "positions", "attention", "mlp", "norms")
# "fused": FlashAttention-style, scores never leave the chip, masked pairs skipped; "unfused": Hugging Face
# eager attention, every pair computed and the scores and probabilities written to memory and read back.
ATTENTION_IMPLEMENTATIONS: tuple[str, ...] = ("fused", "unfused")


def check_attention(attention: str) -> str:
    if attention not in ATTENTION_IMPLEMENTATIONS:
        raise UsageError(f"attention: expected one of {ATTENTION_IMPLEMENTATIONS}, got {attention!r}")
    return attention


# ------------------------------------------------------------------------------------------------
# Parameters


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts. ``components`` keys are :data:`PARAM_COMPONENTS`."""

    components: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.components.values())

    @property
    def embedding(self) -> int:
        """Token embedding, untied LM head and positional parameters."""
        c = self.components
        return c["token_embedding"] + c["lm_head"] + c["positions"]

    @property
    def non_embedding(self) -> int:
        """Attention, MLP and norms: Kaplan et al.'s N, what ``2N`` FLOPs per token refers to."""
        return self.total - self.embedding

    def to_dict(self) -> dict:
        return {"total": self.total, "non_embedding": self.non_embedding, "embedding": self.embedding,
                "components": dict(self.components)}


def param_counts(cfg: ModelConfig) -> ParamCounts:
    """Every parameter of ``cfg``: weights, biases, norms, embeddings, positions."""
    d, f, layers, dh = cfg.d_model, cfg.d_ff, cfg.n_layers, cfg.head_dim
    q_width, kv_width = cfg.n_heads * dh, cfg.n_kv_heads * dh
    attention = d * (q_width + 2 * kv_width) + q_width * d
    if cfg.bias:
        attention += q_width + 2 * kv_width + d
    n_in = 2 if cfg.mlp == "swiglu" else 1  # gate and up, or up alone
    mlp = (n_in + 1) * d * f + ((n_in * f + d) if cfg.bias else 0)
    per_norm = 2 * d if cfg.norm == "layernorm" else d
    positions = {"learned": cfg.context_length * d, "rotary": 0, "relative": layers * (d * d + 2 * d)}
    return ParamCounts({
        "token_embedding": cfg.vocab_size * d,
        "lm_head": 0 if cfg.tied_embeddings else cfg.vocab_size * d,
        "positions": positions[cfg.positions],
        "attention": layers * attention,
        "mlp": layers * mlp,
        "norms": (layers * cfg.norms_per_block + 1) * per_norm,
    })


def linear_shapes(cfg: ModelConfig) -> tuple[tuple[int, int], ...]:
    """``(K, N)`` of each weight matrix in one block (K inputs, N outputs): Q, K, V, O, then the MLP's."""
    d, f, dh = cfg.d_model, cfg.d_ff, cfg.head_dim
    q_width, kv_width = cfg.n_heads * dh, cfg.n_kv_heads * dh
    n_in = 2 if cfg.mlp == "swiglu" else 1
    return ((d, q_width), (d, kv_width), (d, kv_width), (q_width, d), *((d, f),) * n_in, (f, d))


def _block_linear_bytes(cfg: ModelConfig, p: Precision) -> tuple[int, float]:
    """Parameters and bytes of every block's weight matrices (the quantized part)."""
    shapes = linear_shapes(cfg)
    params = cfg.n_layers * sum(k * n for k, n in shapes)
    return params, cfg.n_layers * sum(matrix_bytes(k, n, p.weights, p.group_size) for k, n in shapes)


def _whole(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def weight_bytes(cfg: ModelConfig, dtype: object) -> int | float:
    """Bytes to hold every parameter: the block matrices in the weights' format (scales included), the
    rest in the unquantized float (:attr:`Precision.float_dtype`); a plain dtype for everything."""
    p = as_precision(dtype)
    params, nbytes = _block_linear_bytes(cfg, p)
    return _whole(nbytes + (param_counts(cfg).total - params) * p.float_bytes)


def streamed_weight_bytes(cfg: ModelConfig, dtype: object) -> int | float:
    """Weight bytes one forward step must read: every non-embedding parameter plus the LM head matrix
    (tied or not). The input embedding and a learned position table are gathered row by row, and the
    relative-position projection acts on a fixed table that can be precomputed, so neither is streamed."""
    p = as_precision(dtype)
    params, nbytes = _block_linear_bytes(cfg, p)
    rest = param_counts(cfg).non_embedding - params + cfg.vocab_size * cfg.d_model
    return _whole(nbytes + rest * p.float_bytes)


# ------------------------------------------------------------------------------------------------
# FLOPs


@dataclass(frozen=True)
class FlopBreakdown:
    """FLOPs by component (keys :data:`FORWARD_COMPONENTS`); ``causal`` says how attention was counted."""

    components: Mapping[str, float]
    causal: bool
    batch: int = 1
    seq: int = 1

    @property
    def total(self) -> float:
        return float(sum(self.components.values()))

    @property
    def shares(self) -> dict[str, float]:
        """Each component's fraction of the total."""
        total = self.total
        return {k: (v / total if total else 0.0) for k, v in self.components.items()}

    @property
    def attention(self) -> float:
        """The two ``T^2`` matmuls (scores and values), without the projections."""
        return self.components["attn_scores"] + self.components["attn_values"]

    def to_dict(self) -> dict:
        return {"total": self.total, "causal": self.causal, "batch": self.batch, "seq": self.seq,
                "components": dict(self.components), "shares": self.shares}


def _mlp_cost(cfg: ModelConfig, m: int) -> Cost:
    up = gemm_cost(m, cfg.d_ff, cfg.d_model, "float16", cfg.bias)
    down = gemm_cost(m, cfg.d_model, cfg.d_ff, "float16", cfg.bias)
    n_up = 2 if cfg.mlp == "swiglu" else 1
    return Cost(n_up * up.flops + down.flops, n_up * up.bytes + down.bytes)


def component_math(dtype: object) -> dict[str, str]:
    """The math class each of :data:`FORWARD_COMPONENTS` asks for (:mod:`roofline.model.precision`)."""
    p = as_precision(dtype)
    w, a = p.matmul_math, p.attention_math
    return {"qkv": w, "attn_scores": a, "attn_values": a, "attn_out_proj": w, "mlp": w,
            "lm_head": p.head_math}


def _layer_flops(cfg: ModelConfig, batch: int, q_len: int, cache_len: int, causal: bool) -> dict[str, float]:
    """One layer's FLOPs for ``q_len`` new tokens per sequence over ``cache_len`` cached ones."""
    m = batch * q_len
    dh, hq = cfg.head_dim, cfg.n_heads
    if causal:
        attn = attention_cost(batch, hq, cfg.n_kv_heads, dh, q_len, cache_len, "float16").flops
        scores = values = attn / 2  # Q.K and P.V each 2*Dh per unmasked pair and query head
    else:  # every query against every key, masked or not: 2*Dh FLOPs per pair for each matmul
        scores = values = float(2 * batch * hq * q_len * (cache_len + q_len) * dh)
    return {
        "qkv": qkv_cost(m, cfg.d_model, hq, cfg.n_kv_heads, dh, "float16", cfg.bias).flops,
        "attn_scores": scores,
        "attn_values": values,
        "attn_out_proj": gemm_cost(m, cfg.d_model, hq * dh, "float16", cfg.bias).flops,
        "mlp": _mlp_cost(cfg, m).flops,
    }


def _model_flops(cfg: ModelConfig, batch: int, q_len: int, cache_len: int, causal: bool,
                 head_tokens: int) -> FlopBreakdown:
    layer = _layer_flops(cfg, batch, q_len, cache_len, causal)
    comps = {k: cfg.n_layers * v for k, v in layer.items()}
    comps["lm_head"] = gemm_cost(head_tokens, cfg.vocab_size, cfg.d_model, "float16").flops
    return FlopBreakdown({k: float(comps[k]) for k in FORWARD_COMPONENTS}, causal, batch, q_len)


def forward_flops(cfg: ModelConfig, batch: int, seq: int, *, causal: bool = False) -> FlopBreakdown:
    """FLOPs of one forward pass over ``batch`` sequences of ``seq`` tokens, logits at every position.

    ``causal=False`` (default) counts the full ``seq x seq`` attention matrices, the convention of
    seed 002 and of ``torch.utils.flop_counter``; ``causal=True`` is :func:`forward_flops_causal`.
    """
    require_positive(batch=batch, seq=seq)
    return _model_flops(cfg, batch, seq, 0, causal, batch * seq)


def forward_flops_causal(cfg: ModelConfig, batch: int, seq: int) -> FlopBreakdown:
    """:func:`forward_flops` counting only unmasked query-key pairs, ``seq*(seq+1)/2`` per head."""
    return forward_flops(cfg, batch, seq, causal=True)


def prefill_flops(cfg: ModelConfig, batch: int, seq: int, *, attention: str = "fused") -> FlopBreakdown:
    """Prefill of ``batch`` prompts of ``seq`` tokens: a causal forward pass that fills the KV cache and
    computes logits for the last position only (all that generation needs). ``attention="unfused"``
    counts every query-key pair, masked or not (eager attention computes them all)."""
    require_positive(batch=batch, seq=seq)
    return _model_flops(cfg, batch, seq, 0, check_attention(attention) == "fused", batch)


def decode_flops_breakdown(cfg: ModelConfig, batch: int, context: int, *, attention: str = "fused"
                           ) -> FlopBreakdown:
    """One decode step with a KV cache: ``batch`` new tokens, each after ``context`` cached tokens (one
    query: fused and unfused count the same pairs)."""
    require_positive(batch=batch)
    require_nonnegative(context=context)
    return _model_flops(cfg, batch, 1, context, check_attention(attention) == "fused", batch)


def decode_flops_per_token(cfg: ModelConfig, context: int) -> float:
    """FLOPs to generate one token with a KV cache holding ``context`` tokens: about ``2*N`` for the
    weight matmuls (N non-embedding parameters, plus ``2*V*D`` for the LM head) and ``4*Hq*Dh`` per
    layer per attended token, linear in the context."""
    return decode_flops_breakdown(cfg, 1, context).total


def naive_decode_flops_per_token(cfg: ModelConfig, context: int) -> float:
    """The seeds' "2*N*S" rule (seed 001; seed 000 writes N*S): ``2 * non-embedding N * context``.

    It prices re-running the whole context through the weights for every token, which a KV cache
    avoids; compare :func:`decode_flops_per_token` (with a cache) and :func:`recompute_flops_per_token`.
    """
    require_nonnegative(context=context)
    return 2.0 * param_counts(cfg).non_embedding * context


def recompute_flops_per_token(cfg: ModelConfig, context: int) -> float:
    """FLOPs to generate one token WITHOUT a KV cache: a causal forward pass over ``context + 1``
    tokens, logits for the last position only."""
    require_nonnegative(context=context)
    return _model_flops(cfg, 1, context + 1, 0, True, 1).total


# ------------------------------------------------------------------------------------------------
# KV cache


def kv_cache_bytes_per_token(cfg: ModelConfig, dtype: object) -> int | float:
    """K and V for one token in every layer: ``2 * n_layers * n_kv_heads * head_dim * bytes`` (bytes
    per element in the KV format, integer formats' scales included)."""
    p = as_precision(dtype)
    return _whole(2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * p.kv_bytes_per_element(cfg.head_dim))


def kv_cache_bytes(cfg: ModelConfig, batch: int, context: int, dtype: object) -> int | float:
    """KV cache of ``batch`` sequences of ``context`` tokens."""
    require_nonnegative(batch=batch, context=context)
    return batch * context * kv_cache_bytes_per_token(cfg, dtype)


def kv_outgrows_weights_tokens(cfg: ModelConfig, dtype: object = "bfloat16") -> float:
    """``batch * context`` beyond which the KV cache holds more bytes than the weights (for a plain
    ``dtype`` the answer does not depend on it; a :class:`Precision` can move it). About ``6*D`` for an
    MHA model with a 4x MLP; GQA multiplies it by the group size."""
    return weight_bytes(cfg, dtype) / kv_cache_bytes_per_token(cfg, dtype)


def kv_capacity_tokens(cfg: ModelConfig, memory_bytes: float, dtype: object = "bfloat16") -> float:
    """Tokens of KV cache that fit in ``memory_bytes`` (over all GPUs) once the weights are loaded;
    negative when the weights alone do not fit."""
    return (memory_bytes - weight_bytes(cfg, dtype)) / kv_cache_bytes_per_token(cfg, dtype)


# ------------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class TrainingFlops:
    """Training compute for ``tokens`` tokens in sequences of ``seq``.

    ``six_n``: Kaplan et al.'s ``6 * N * tokens`` with N non-embedding; ``six_n_total``: the same with
    every parameter (Chinchilla's convention); ``detailed``: 3x the forward FLOPs (backward = 2x
    forward) with full ``seq^2`` attention and the LM head, seed 003 eq. 3.2 plus the head;
    ``detailed_causal``: the same counting unmasked attention pairs only.
    """

    tokens: int
    seq: int
    six_n: float
    six_n_total: float
    detailed: float
    detailed_causal: float
    extra: dict = field(default_factory=dict)


def training_flops(cfg: ModelConfig, tokens: int, seq: int | None = None) -> TrainingFlops:
    """Training FLOPs for ``tokens`` tokens (``seq`` defaults to the model's context length)."""
    seq = cfg.context_length if seq is None else seq
    require_positive(tokens=tokens, seq=seq)
    counts = param_counts(cfg)
    per_token_full = forward_flops(cfg, 1, seq).total / seq
    per_token_causal = forward_flops_causal(cfg, 1, seq).total / seq
    return TrainingFlops(tokens, seq, 6.0 * counts.non_embedding * tokens, 6.0 * counts.total * tokens,
                         3.0 * per_token_full * tokens, 3.0 * per_token_causal * tokens)


def training_state_bytes(cfg: ModelConfig, mixed_precision: bool = True) -> dict[str, int]:
    """Bytes of parameters, gradients and Adam state (seed 003 eqs. 2.1-2.4, activations excluded).

    fp32: model 4N, gradients 4N, Adam moments 8N (16N). Mixed precision: a 2N half-precision model, 4N
    fp32 gradients, and 12N of optimizer state (fp32 master weights + two moments): 18N.
    """
    n = param_counts(cfg).total
    model, grads, optim = (2 * n, 4 * n, 12 * n) if mixed_precision else (4 * n, 4 * n, 8 * n)
    return {"params": model, "grads": grads, "optimizer": optim, "total": model + grads + optim}
