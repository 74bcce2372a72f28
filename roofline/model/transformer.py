"""Decoder-only transformer configs and the named presets that benchmark shapes and claims come from.

The accounting (parameters, FLOPs, KV cache, latency bounds) lives in ``roofline/model/accounting.py``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from roofline.errors import UsageError


@dataclass(frozen=True)
class ModelConfig:
    """One decoder-only transformer.

    ``d_ff`` is the MLP's inner width: for ``mlp="swiglu"`` there are three ``D x d_ff`` matrices
    (gate, up, down), for ``"gelu"`` two. ``norm="layernorm"`` has a weight and a bias (2*D
    parameters), ``"rmsnorm"`` a weight only (D). ``parallel_block``: attention and MLP read the same
    input (GPT-J, Falcon); such blocks usually have one norm instead of two. ``block_norms`` overrides
    the count (Falcon-40B's parallel block keeps two norms, ``ln_attn`` and ``ln_mlp``).
    ``positions="relative"`` is Transformer-XL's scheme (Gopher): no table, but a ``D x D`` projection
    of the relative position encodings and two ``D``-vectors (u, v) per layer.
    """

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ff: int
    vocab_size: int
    context_length: int
    mlp: str = "gelu"  # "gelu" | "swiglu"
    tied_embeddings: bool = True
    positions: str = "learned"  # "learned" (n_ctx x D table) | "rotary" | "relative" (no table here)
    bias: bool = True  # biases on every linear layer except the LM head
    norm: str = "layernorm"  # "layernorm" | "rmsnorm"
    parallel_block: bool = False
    source: str = ""
    block_norms: int | None = None  # norms per block; None: 1 with parallel_block, else 2

    @property
    def norms_per_block(self) -> int:
        if self.block_norms is not None:
            return self.block_norms
        return 1 if self.parallel_block else 2

    def __post_init__(self) -> None:
        for f in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_ff", "vocab_size", "context_length"):
            value = getattr(self, f)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise UsageError(f"{self.name}: {f} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise UsageError(f"{self.name}: n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        if self.n_heads % self.n_kv_heads:
            raise UsageError(
                f"{self.name}: n_kv_heads ({self.n_kv_heads}) must divide n_heads ({self.n_heads})"
            )
        bn = self.block_norms
        if bn is not None and (isinstance(bn, bool) or not isinstance(bn, int) or bn < 0):
            raise UsageError(
                f"{self.name}: block_norms must be a non-negative integer, got {self.block_norms!r}"
            )
        choices = {"mlp": ("gelu", "swiglu"), "positions": ("learned", "rotary", "relative"),
                   "norm": ("layernorm", "rmsnorm")}
        for f, allowed in choices.items():
            if getattr(self, f) not in allowed:
                raise UsageError(f"{self.name}: {f} must be one of {allowed}, got {getattr(self, f)!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def qkv_width(self) -> int:
        """Output width of the fused QKV projection, ``(Hq + 2*Hkv) * Dh`` (gpt-fast's ``wqkv``)."""
        return (self.n_heads + 2 * self.n_kv_heads) * self.head_dim

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"model config: unknown keys {unknown}; expected some of {sorted(known)}")
        data = dict(data)
        data.setdefault("name", "custom")
        data.setdefault("n_kv_heads", data.get("n_heads", 0))
        try:
            return cls(**data)
        except TypeError as exc:  # a missing required key
            raise UsageError(f"model config: {exc}") from None

    @classmethod
    def from_json(cls, path: str | Path) -> ModelConfig:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"model config {path}: cannot read JSON ({exc})") from None
        if not isinstance(data, dict):
            raise UsageError(f"model config {path}: expected a JSON object")
        for f in fields(cls):  # "bias": "no" is a non-empty string, true to Python: refuse it
            if f.type in ("bool", bool) and f.name in data and not isinstance(data[f.name], bool):
                raise UsageError(f"model config {path}: {f.name} must be a JSON boolean (true or false), "
                                 f"got {data[f.name]!r}")
        return cls.from_dict(data)


def _gpt2(name: str, layers: int, d: int, heads: int, **kw) -> ModelConfig:
    return ModelConfig(name, layers, d, heads, heads, 4 * d, 50257, 1024, **kw)


_SEED_VARIANT = dict(mlp="swiglu", tied_embeddings=False, positions="rotary", bias=False, norm="rmsnorm",
                     source="seed 002: GPT-2 shapes with SwiGLU, untied embeddings, RMSNorm, no biases")

PRESETS: dict[str, ModelConfig] = {
    c.name: c
    for c in (
        _gpt2("gpt2-small", 12, 768, 12, source="GPT-2 checkpoint (124,439,808 parameters)"),
        _gpt2("gpt2-medium", 24, 1024, 16, source="GPT-2 checkpoint"),
        _gpt2("gpt2-large", 36, 1280, 20, source="GPT-2 checkpoint"),
        _gpt2("gpt2-xl", 48, 1600, 25, source="GPT-2 checkpoint"),
        _gpt2("gpt2-small-swiglu", 12, 768, 12, **_SEED_VARIANT),
        _gpt2("gpt2-medium-swiglu", 24, 1024, 16, **_SEED_VARIANT),
        _gpt2("gpt2-large-swiglu", 36, 1280, 20, **_SEED_VARIANT),
        _gpt2("gpt2-xl-swiglu", 48, 1600, 25, **_SEED_VARIANT),
        ModelConfig("gpt3-175b", 96, 12288, 96, 96, 4 * 12288, 50257, 2048, source="GPT-3 paper, Table 2.1"),
        ModelConfig("anthropic-52b", 64, 8192, 64, 64, 4 * 8192, 65536, 2048, tied_embeddings=False,
                    positions="rotary", source="seed 004 (transformer inference arithmetic): the 52B model"),
        ModelConfig("gopher-280b", 80, 16384, 128, 128, 4 * 16384, 32000, 2048, positions="relative",
                    norm="rmsnorm", tied_embeddings=False, source="Gopher paper, Table 1"),
        # Tied: the checkpoint stores lm_head as a duplicate of the word embeddings, but the model ties
        # them (HF FalconForCausalLM; vLLM #3590). new_decoder_architecture: two LayerNorms per
        # parallel block. 41,303,293,952 parameters.
        ModelConfig("falcon-40b", 60, 8192, 128, 8, 4 * 8192, 65024, 2048, tied_embeddings=True,
                    positions="rotary", bias=False, parallel_block=True, block_norms=2,
                    source="Falcon-40B config (new_decoder_architecture, tied embeddings)"),
        ModelConfig("llama2-7b", 32, 4096, 32, 32, 11008, 32000, 4096, mlp="swiglu", tied_embeddings=False,
                    positions="rotary", bias=False, norm="rmsnorm", source="Llama 2 paper / HF config"),
        ModelConfig("llama2-70b", 80, 8192, 64, 8, 28672, 32000, 4096, mlp="swiglu", tied_embeddings=False,
                    positions="rotary", bias=False, norm="rmsnorm", source="Llama 2 paper / HF config"),
    )
}


def get_model(name_or_path: str) -> ModelConfig:
    """A preset by name, or a JSON config file by path; :class:`UsageError` otherwise."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    if name_or_path.endswith(".json") or Path(name_or_path).is_file():
        return ModelConfig.from_json(name_or_path)
    raise UsageError(f"unknown model preset {name_or_path!r}; known presets: {', '.join(PRESETS)}")
