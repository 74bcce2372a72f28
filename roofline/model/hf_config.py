"""Read a Hugging Face ``config.json`` offline into a :class:`~roofline.model.transformer.ModelConfig`.

Families (by ``model_type``): ``llama``, ``mistral``, ``qwen2`` (gated SiLU MLP, RMSNorm, rotary, GQA),
``falcon`` (also the older ``RefinedWeb``/``RefinedWebModel``), ``gpt2`` and ``gpt_neox``. Every field of
the file ends up in exactly one place of the :class:`HFReading`: ``used`` (it sets the model),
``ignored`` (known, with the reason it does not change parameters, FLOPs or bytes), or ``unknown`` (this
reader does not know it: named, never silently dropped). Where the file describes something ModelConfig
cannot hold (Qwen2's biases on Q, K and V only, Mistral's sliding window), ``approximations`` says what
was counted instead, with the size of the difference. A shape field that is missing is an error, never
a guessed default; fields with a documented default in ``transformers`` (``num_key_value_heads`` = heads,
GPT-2's ``n_inner`` = 4 x ``n_embd``) take it and say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from roofline.errors import UsageError
from roofline.model.transformer import ModelConfig

FAMILIES: dict[str, str] = {"llama": "llama", "mistral": "llama", "qwen2": "llama", "falcon": "falcon",
                            "RefinedWeb": "falcon", "RefinedWebModel": "falcon", "gpt2": "gpt2",
                            "gpt_neox": "gpt_neox"}

# Fields any family may carry that change nothing the accounting counts.
_COMMON_IGNORED: dict[str, str] = {
    **dict.fromkeys(("architectures", "model_type", "transformers_version", "torch_dtype", "dtype"),
                    "metadata (the precision is the --dtype/--weights options)"),
    **dict.fromkeys(("bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id",
                     "decoder_start_token_id"),
                    "token ids"),
    **dict.fromkeys(("initializer_range", "use_cache", "_name_or_path", "return_dict", "output_attentions",
                     "output_hidden_states", "is_decoder", "pretraining_tp", "task_specific_params"),
                    "training or runtime switch, no parameters"),
    **dict.fromkeys(("attention_dropout", "hidden_dropout", "attn_pdrop", "embd_pdrop", "resid_pdrop",
                     "summary_first_dropout", "classifier_dropout"), "dropout: off at inference"),
    **dict.fromkeys(("rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon"), "norm epsilon"),
    **dict.fromkeys(("rope_theta", "rope_scaling", "rotary_emb_base", "rope_parameters",
                     "partial_rotary_factor", "rotary_pct"),
                    "rotary embedding settings: no parameters, FLOPs not counted"),
    "quantization_config": "the checkpoint's quantization: pass --weights/--group-size to model it",
}
_GPT2_IGNORED = {**dict.fromkeys(("summary_activation", "summary_proj_to_labels", "summary_type",
                                  "summary_use_proj"), "sequence-classification head, not in a causal LM"),
                 "scale_attn_weights": "attention scaling, no parameters",
                 "scale_attn_by_inverse_layer_idx": "attention scaling, no parameters",
                 "reorder_and_upcast_attn": "numerics of the attention, no parameters",
                 "n_ctx": "the old name of n_positions"}
_FALCON_IGNORED = {"apply_residual_connection_post_layernorm": "which tensor the residual adds, no "
                                                              "parameters",
                   "alibi": "ALiBi or rotary positions: neither has parameters"}
_LLAMA_IGNORED = {"max_window_layers": "which layers use the sliding window (see approximations)"}
_NEOX_IGNORED: dict[str, str] = {}


@dataclass(frozen=True)
class HFReading:
    """What :func:`from_hf_dict` made of a config: the model and where every field went."""

    config: ModelConfig
    model_type: str
    used: tuple[str, ...]
    ignored: dict[str, str]
    unknown: tuple[str, ...]
    approximations: tuple[str, ...] = field(default_factory=tuple)

    def warnings(self) -> list[str]:
        """One line per unknown field set and per approximation (the CLI prints them to stderr)."""
        out = []
        if self.unknown:
            out.append(f"{self.config.name}: unknown config.json field(s) not used: "
                       f"{', '.join(self.unknown)}")
        return out + [f"{self.config.name}: {a}" for a in self.approximations]


class _Fields:
    """The config's fields, recording which were read."""

    def __init__(self, data: dict, where: str) -> None:
        self.data, self.where, self.used = data, where, []

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def get(self, key: str, default=None):
        if key in self.data:
            self.used.append(key)
            value = self.data[key]
            return default if value is None else value
        return default

    def need(self, *keys: str) -> int:
        """The first of ``keys`` present (aliases); a positive integer."""
        for key in keys:
            if self.has(key):
                value = self.get(key)
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise UsageError(f"{self.where}: {key} must be a positive integer, got {value!r}")
                return value
        raise UsageError(f"{self.where}: missing {' or '.join(keys)}")

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise UsageError(f"{self.where}: {key} must be true or false, got {value!r}")
        return value


def _head_dim_check(f: _Fields, d: int, heads: int) -> None:
    if f.has("head_dim") and f.get("head_dim") != d // heads:
        raise UsageError(f"{f.where}: head_dim {f.data['head_dim']} != hidden_size / num_attention_heads "
                         f"({d // heads}); ridgebench's ModelConfig derives the head size")
    f.get("head_dim")


def _llama(f: _Fields, name: str, model_type: str) -> tuple[ModelConfig, list[str]]:
    d, heads = f.need("hidden_size"), f.need("num_attention_heads")
    kv = f.need("num_key_value_heads") if f.has("num_key_value_heads") else heads
    f.get("num_key_value_heads")
    _head_dim_check(f, d, heads)
    act = f.get("hidden_act", "silu")
    if act not in ("silu", "swish"):
        raise UsageError(f"{f.where}: hidden_act {act!r}: the gated MLP ridgebench models is SiLU (SwiGLU)")
    notes = []
    qkv_bias = f.flag("attention_bias", model_type == "qwen2")
    mlp_bias = f.flag("mlp_bias", False)
    layers, dh = f.need("num_hidden_layers"), d // heads
    if model_type == "qwen2":  # q, k, v biases, none on o_proj or the MLP (Qwen2Attention)
        n = layers * (heads + 2 * kv) * dh
        notes.append(f"Qwen2's biases on Q, K and V only ({n:,} parameters) do not fit ModelConfig's "
                     "all-or-nothing bias: counted without them")
        qkv_bias = False
    elif qkv_bias != mlp_bias:
        notes.append(f"attention_bias={qkv_bias}, mlp_bias={mlp_bias}: ModelConfig's bias covers every "
                     "linear layer; counted without biases")
        qkv_bias = False
    window = f.get("sliding_window")
    context = f.need("max_position_embeddings")
    use_window = f.get("use_sliding_window", model_type == "mistral")
    if isinstance(window, int) and use_window and window < context:
        notes.append(f"sliding_window {window}: the KV cache is counted over the whole context, not capped "
                     "at the window")
    cfg = ModelConfig(name, layers, d, heads, kv, f.need("intermediate_size"), f.need("vocab_size"), context,
                      mlp="swiglu", tied_embeddings=f.flag("tie_word_embeddings", False), positions="rotary",
                      bias=qkv_bias, norm="rmsnorm", source=f"Hugging Face config.json ({model_type})")
    return cfg, notes


def _falcon(f: _Fields, name: str, model_type: str) -> tuple[ModelConfig, list[str]]:
    d = f.need("hidden_size")
    heads = f.need("num_attention_heads", "n_head")
    new_arch = f.flag("new_decoder_architecture", False)
    multi_query = f.flag("multi_query", True)  # FalconConfig's default
    if new_arch:
        kv = f.need("num_kv_heads") if f.has("num_kv_heads") else heads
    else:
        kv = 1 if multi_query else heads
    f.get("num_kv_heads")
    parallel = f.flag("parallel_attn", True)
    norms = f.get("num_ln_in_parallel_attn")
    if norms is None:
        norms = 2 if (new_arch or not parallel) else 1
    d_ff = f.need("ffn_hidden_size") if f.has("ffn_hidden_size") else 4 * d
    f.get("ffn_hidden_size")
    context = f.need("max_position_embeddings") if f.has("max_position_embeddings") else 2048
    f.get("max_position_embeddings")
    notes = [] if f.has("max_position_embeddings") else ["no max_position_embeddings: 2048 (FalconConfig's "
                                                         "default)"]
    if f.get("alibi", False):
        notes.append("alibi: no position parameters, counted as rotary (also none)")
    cfg = ModelConfig(name, f.need("num_hidden_layers", "n_layer"), d, heads, kv, d_ff, f.need("vocab_size"),
                      context, mlp="gelu", tied_embeddings=f.flag("tie_word_embeddings", True),
                      positions="rotary", bias=f.flag("bias", False), norm="layernorm",
                      parallel_block=parallel, block_norms=norms,
                      source=f"Hugging Face config.json ({model_type})")
    return cfg, notes


def _gpt2(f: _Fields, name: str, model_type: str) -> tuple[ModelConfig, list[str]]:
    d = f.need("n_embd")
    act = f.get("activation_function", "gelu_new")
    if not str(act).startswith("gelu"):
        raise UsageError(f"{f.where}: activation_function {act!r}: ridgebench models GPT-2's GELU MLP")
    inner = f.need("n_inner") if f.has("n_inner") else 4 * d
    f.get("n_inner")
    heads = f.need("n_head")
    cfg = ModelConfig(name, f.need("n_layer"), d, heads, heads, inner, f.need("vocab_size"),
                      f.need("n_positions", "n_ctx"), mlp="gelu",
                      tied_embeddings=f.flag("tie_word_embeddings", True), positions="learned", bias=True,
                      norm="layernorm", source=f"Hugging Face config.json ({model_type})")
    return cfg, []


def _gpt_neox(f: _Fields, name: str, model_type: str) -> tuple[ModelConfig, list[str]]:
    act = f.get("hidden_act", "gelu")
    if not str(act).startswith("gelu"):
        raise UsageError(f"{f.where}: hidden_act {act!r}: ridgebench models GPT-NeoX's GELU MLP")
    heads = f.need("num_attention_heads")
    d = f.need("hidden_size")
    _head_dim_check(f, d, heads)
    parallel = f.flag("use_parallel_residual", True)
    cfg = ModelConfig(name, f.need("num_hidden_layers"), d, heads, heads, f.need("intermediate_size"),
                      f.need("vocab_size"), f.need("max_position_embeddings"), mlp="gelu",
                      tied_embeddings=f.flag("tie_word_embeddings", False), positions="rotary",
                      bias=f.flag("attention_bias", True), norm="layernorm", parallel_block=parallel,
                      block_norms=2,  # input_layernorm and post_attention_layernorm, parallel or not
                      source=f"Hugging Face config.json ({model_type})")
    return cfg, []


_READERS = {"llama": (_llama, _LLAMA_IGNORED), "falcon": (_falcon, _FALCON_IGNORED),
            "gpt2": (_gpt2, _GPT2_IGNORED), "gpt_neox": (_gpt_neox, _NEOX_IGNORED)}


def from_hf_dict(data: dict, name: str | None = None, where: str = "config.json") -> HFReading:
    """The model a Hugging Face config describes (module docstring); :class:`UsageError` naming the
    field for a family ridgebench does not read or a missing or malformed shape field."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a JSON object")
    model_type = data.get("model_type")
    if model_type not in FAMILIES:
        raise UsageError(f"{where}: model_type {model_type!r} is not a family ridgebench reads "
                         f"(known: {', '.join(FAMILIES)})")
    name = name or str(data.get("_name_or_path") or model_type)
    reader, family_ignored = _READERS[FAMILIES[model_type]]
    f = _Fields(data, where)
    cfg, notes = reader(f, name, model_type)
    used = tuple(dict.fromkeys(k for k in f.used if k in data))
    ignored_reasons = {**_COMMON_IGNORED, **family_ignored}
    ignored = {k: ignored_reasons[k] for k in data if k not in used and k in ignored_reasons}
    unknown = tuple(sorted(k for k in data if k not in used and k not in ignored))
    return HFReading(cfg, model_type, used, ignored, unknown, tuple(notes))


def is_hf_config(data: object) -> bool:
    """Whether a parsed JSON object looks like a Hugging Face config (it names a ``model_type``)."""
    return isinstance(data, dict) and "model_type" in data


def read_hf_config(path: str | Path, name: str | None = None) -> HFReading:
    """:func:`from_hf_dict` of a file; the model is named after ``name``, the config's ``_name_or_path``,
    the directory holding a ``config.json``, or the file's stem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: cannot read JSON ({exc})") from None
    if name is None and isinstance(data, dict) and not data.get("_name_or_path"):
        name = (path.parent.resolve().name if path.name == "config.json" else path.stem) or None
    return from_hf_dict(data, name, str(path))
