"""The default benchmark sweeps as pure data: which shapes each kernel runs at, per preset and device.

A :class:`SweepPoint` is one ``(kernel, trajectory, shape, dtype)``; ``shape`` is the keyword arguments
of the kernel's cost function, so ``kernel_cost(p.kernel, p.shape, p.dtype)`` predicts it. Points of one
trajectory (``sweep``, named ``kernel/trajectory.where``; the trajectories per kernel are declared in
:data:`roofline.model.ops.OPS`) differ along one token axis and form one line on a roofline plot; every width
comes from a model preset (:mod:`roofline.model.transformer`). Presets: ``quick`` (default), ``full`` and
``smoke``
(one tiny point per kernel on :data:`SMOKE_MODEL`), each for ``cuda`` and ``cpu`` (GPT-2-small widths,
token axes spaced x4, so a default CPU run takes about a minute); docs/main-job.md
lists what each covers. A CPU sweeps in bf16 only where it multiplies bf16 natively
(:func:`sweep_dtype`), else fp32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from roofline.errors import UsageError
from roofline.model import machine
from roofline.model.ops import OPS
from roofline.model.transformer import PRESETS as MODELS
from roofline.model.transformer import ModelConfig

SWEEP_PRESETS: tuple[str, ...] = ("smoke", "quick", "full")
DEVICE_KINDS: tuple[str, ...] = ("cuda", "cpu")
SWEEP_DTYPES: tuple[str, ...] = ("bfloat16", "float16", "float32")

# A deliberately tiny model for the smoke preset: grouped-query heads of 64 (the smallest head dim the
# attention kernel ships), biases, a non-power-of-two MLP.
SMOKE_MODEL = ModelConfig("smoke-tiny", n_layers=1, d_model=128, n_heads=2, n_kv_heads=1, d_ff=176,
                          vocab_size=512, context_length=256, source="ridgebench smoke test")

PREFILL_TOKENS = {"cuda": 16384, "cpu": 1024}  # tokens per prefill batch: batch = max(1, tokens // seq)


@dataclass(frozen=True)
class SweepPoint:
    """One benchmark shape. ``shape`` holds the cost function's keyword arguments (minus ``dtype``)."""

    kernel: str
    sweep: str
    shape: dict = field(hash=False)
    dtype: str
    label: str

    @property
    def id(self) -> str:
        """Test-id form: ``decode.llama2-7b.mlp_up-B64-bfloat16``."""
        return f"{self.sweep.split('/', 1)[1]}-{self.label}-{self.dtype}".replace("/", ".").replace(" ", "")


def _pow2(lo: int, hi: int, step: int = 2) -> list[int]:
    """``lo, lo*step, ...`` up to ``hi``, always ending at ``hi`` (the range's top is the point)."""
    out, v = [], lo
    while v < hi:
        out.append(v)
        v *= step
    return [*out, hi]


def _sweep(kernel: str, trajectory: str, where: str) -> str:
    """A trajectory's name, ``kernel/trajectory.where``; ``trajectory`` must be one the ops table
    (:data:`roofline.model.ops.OPS`) declares for ``kernel``."""
    if trajectory not in OPS[kernel].trajectories:
        raise ValueError(f"{kernel}: trajectory {trajectory!r} is not in roofline.model.ops.OPS "
                         f"(it declares {', '.join(OPS[kernel].trajectories) or 'none'})")
    return f"{kernel}/{trajectory}.{where}"


def _k(v: int) -> str:
    return f"{v // 1024}k" if v >= 1024 and v % 1024 == 0 else str(v)


# ------------------------------------------------------------------------------------------------
# Trajectories: one model, one varying token axis.
# ------------------------------------------------------------------------------------------------

def gemv_decode(model: ModelConfig, which: str, batches: Iterable[int], dtype: str) -> list[SweepPoint]:
    """Decode GEMV ``y[B, N] = x[B, K] @ W^T``: ``which`` is ``mlp_up`` (N=d_ff, K=D) or ``attn_out``."""
    n, k = (model.d_ff, model.d_model) if which == "mlp_up" else (model.d_model, model.d_model)
    sweep = _sweep("gemv", "decode", f"{model.name}.{which}")
    return [SweepPoint("gemv", sweep, dict(batch=b, n=n, k=k, bias=model.bias), dtype, f"B{b}")
            for b in batches]


def qkv_tokens(model: ModelConfig, mode: str, tokens: Iterable[int], dtype: str) -> list[SweepPoint]:
    """Fused QKV projection over ``m`` tokens: ``mode="decode"`` is m sequences of 1 token, ``"prefill"``
    one sequence of m tokens (same cost; the benchmark shapes its input by the mode)."""
    sweep = _sweep("qkv", mode, model.name)
    return [SweepPoint("qkv", sweep, dict(m=m, d_model=model.d_model, n_heads=model.n_heads,
                                          n_kv_heads=model.n_kv_heads, head_dim=model.head_dim,
                                          bias=model.bias), dtype, f"M{m}")
            for m in tokens]


def _heads(model: ModelConfig) -> dict:
    return dict(n_heads=model.n_heads, n_kv_heads=model.n_kv_heads, head_dim=model.head_dim)


def attention_prefill(model: ModelConfig, seqs: Iterable[int], tokens: int, dtype: str) -> list[SweepPoint]:
    """Causal prefill (``cache_len=0``) at ``batch = max(1, tokens // seq)``."""
    sweep = _sweep("attention", "prefill", model.name)
    return [SweepPoint("attention", sweep, dict(batch=max(1, tokens // s), **_heads(model), q_len=s,
                                                cache_len=0), dtype, f"S{_k(s)}")
            for s in seqs]


def attention_decode(model: ModelConfig, batch: int, caches: Iterable[int], dtype: str) -> list[SweepPoint]:
    """One new token per sequence over a KV cache of ``cache_len`` tokens."""
    sweep = _sweep("attention", "decode", f"{model.name}.b{batch}")
    return [SweepPoint("attention", sweep, dict(batch=batch, **_heads(model), q_len=1, cache_len=c),
                       dtype, f"L{_k(c)}")
            for c in caches]


def softmax_cols(rows: int, cols: Iterable[int], dtype: str, tag: str = "") -> list[SweepPoint]:
    """``rows`` rows of growing length (single-pass vs looped rows; long rows spill)."""
    sweep = _sweep("softmax", "cols", f"r{_k(rows)}{tag}")
    return [SweepPoint("softmax", sweep, dict(rows=rows, cols=c), dtype, f"C{_k(c)}") for c in cols]


def softmax_rows(model: ModelConfig, rows: Iterable[int], dtype: str) -> list[SweepPoint]:
    """Attention-score-like rows of the model's context length, more and more of them."""
    cols = model.context_length
    sweep = _sweep("softmax", "rows", f"{model.name}.c{_k(cols)}")
    return [SweepPoint("softmax", sweep, dict(rows=r, cols=cols), dtype, f"R{_k(r)}") for r in rows]


def gelu_mlp(model: ModelConfig, tokens: Iterable[int], approximate: str, dtype: str) -> list[SweepPoint]:
    """GELU over ``tokens x d_ff`` MLP activations, with the MLP bias fused when the model has one."""
    bias_len = model.d_ff if model.bias else 0
    sweep = _sweep("gelu", "mlp", f"{model.name}.{approximate}")
    return [SweepPoint("gelu", sweep, dict(n=t * model.d_ff, approximate=approximate, bias_len=bias_len),
                       dtype, f"T{_k(t)}")
            for t in tokens]


# ------------------------------------------------------------------------------------------------
# Presets
# ------------------------------------------------------------------------------------------------

def _smoke(dtype: str) -> list[SweepPoint]:
    m = SMOKE_MODEL
    return [
        *qkv_tokens(m, "decode", [3], dtype),
        *gemv_decode(m, "mlp_up", [3], dtype),
        *attention_prefill(m, [48], 48, dtype),
        *attention_decode(m, 2, [80], dtype),
        *softmax_cols(3, [m.d_ff], dtype),
        *gelu_mlp(m, [5], "tanh", dtype),
    ]


def _cpu(preset: str, dtype: str) -> list[SweepPoint]:
    small, gqa = MODELS["gpt2-small"], MODELS["llama2-70b"]
    batches = _pow2(1, 64, 4)  # 1, 4, 16, 64
    pts = [
        *gemv_decode(small, "mlp_up", batches, dtype),
        *gemv_decode(MODELS["llama2-7b"], "mlp_up", [1, 16], dtype),  # 90 MB of weights: past the LLC
        *qkv_tokens(small, "decode", batches, dtype),
        *attention_prefill(small, [128, 256, 512, 1024], PREFILL_TOKENS["cpu"], dtype),
        *attention_decode(small, 1, _pow2(1024, 16384, 4), dtype),
        *attention_decode(gqa, 1, _pow2(1024, 4096, 4), dtype),
        *softmax_cols(256, _pow2(1024, 65536, 4), dtype),
        *softmax_rows(small, _pow2(1024, 16384, 4), dtype),
        *gelu_mlp(small, [1, 64, 1024, 8192], "tanh", dtype),
    ]
    if preset == "full":
        pts += [
            *gemv_decode(small, "attn_out", batches, dtype),
            *qkv_tokens(small, "prefill", [256, 1024], dtype),
            *gelu_mlp(small, [64, 1024], "none", dtype),
        ]
    return pts


def _cuda_quick(dtype: str) -> list[SweepPoint]:
    l7, l70, xl = MODELS["llama2-7b"], MODELS["llama2-70b"], MODELS["gpt2-xl"]
    return [
        *gemv_decode(l7, "mlp_up", _pow2(1, 512), dtype),
        *gemv_decode(xl, "mlp_up", _pow2(1, 512, 4), dtype),  # 20 MB of weights: fits in L2
        *qkv_tokens(l7, "decode", _pow2(1, 512), dtype),
        *attention_prefill(l7, _pow2(128, 32768, 4), PREFILL_TOKENS["cuda"], dtype),
        *attention_decode(l7, 1, _pow2(1024, 131072, 4), dtype),
        *attention_decode(l70, 8, _pow2(1024, 131072, 4), dtype),
        *softmax_cols(4096, _pow2(1024, 262144, 4), dtype),
        *softmax_rows(MODELS["gpt2-small"], _pow2(1024, 262144, 16), dtype),
        *gelu_mlp(xl, _pow2(1, 16384, 16), "tanh", dtype),
    ]


def _cuda_full(dtype: str) -> list[SweepPoint]:
    l7, l70, falcon, a52, xl = (MODELS[n] for n in ("llama2-7b", "llama2-70b", "falcon-40b",
                                                     "anthropic-52b", "gpt2-xl"))
    batches = _pow2(1, 512)
    pts: list[SweepPoint] = []
    for model in (l7, l70, falcon, xl):
        pts += gemv_decode(model, "mlp_up", batches, dtype)
        pts += qkv_tokens(model, "decode", batches, dtype)
    pts += gemv_decode(l7, "attn_out", batches, dtype)
    pts += qkv_tokens(l7, "prefill", _pow2(1024, 16384), dtype)
    for model in (l7, l70, xl):
        pts += attention_prefill(model, _pow2(128, 32768), PREFILL_TOKENS["cuda"], dtype)
    pts += attention_decode(l7, 1, _pow2(1024, 131072), dtype)
    pts += attention_decode(l7, 16, _pow2(1024, 32768), dtype)
    pts += attention_decode(l70, 8, _pow2(1024, 131072), dtype)
    pts += attention_decode(falcon, 1, _pow2(1024, 131072), dtype)
    pts += softmax_cols(4096, _pow2(1024, 262144), dtype)
    pts += softmax_cols(64, [l7.vocab_size, xl.vocab_size], dtype, tag=".vocab")
    pts += softmax_rows(MODELS["gpt2-small"], _pow2(1024, 262144, 4), dtype)
    for model in (xl, a52):
        for approximate in ("tanh", "none"):
            pts += gelu_mlp(model, _pow2(1, 16384, 4), approximate, dtype)
    return pts


# Where a CPU sweep learns this machine's features (CPU flags, torch's report). The bench registers its
# detector here when it is imported (bench.provenance), so roofline never imports bench; with none
# registered a CPU counts as lacking native bf16 (the fp32 sweep, the conservative choice).
cpu_features_source: Callable[[], dict] | None = None


def sweep_dtype(device_kind: str, override: str | None = None, features: dict | None = None
                ) -> tuple[str, str]:
    """(dtype, reason) the sweep runs in on ``device_kind``: ``override`` (``--dtype``) if given; a GPU:
    bf16; a CPU: :func:`roofline.model.roof.cpu_sweep_dtype` of its features (``features`` injectable; default
    :data:`cpu_features_source`'s, i.e. this machine's when the bench is loaded, unless
    ``RIDGEBENCH_MACHINE`` forces a machine: then that machine's dtype, :mod:`roofline.model.machine`)."""
    from roofline.model.cost import dtype_name
    from roofline.model.roof import cpu_sweep_dtype

    if override is not None:
        try:
            override = dtype_name(override)
        except ValueError as exc:
            raise UsageError(f"--dtype: {exc}") from None
        if override not in SWEEP_DTYPES:
            raise UsageError(f"--dtype: expected one of {', '.join(SWEEP_DTYPES)}, got {override!r}")
    if device_kind != "cpu":
        return (override, f"--dtype {override} (given on the command line)") if override else (
            "bfloat16", "GPU: bf16 on tensor cores (full sweep: bf16 and fp16)")
    forced = machine.forced()  # this machine's decision, forced; features given by a caller still win
    if override is None and features is None and forced is not None:
        return forced.sweep_dtype, f"{machine.describe()}: the sweep dtype of that machine"
    if features is None and override is None and cpu_features_source is not None:
        features = cpu_features_source()
    return cpu_sweep_dtype(features or {}, override)


def sweep_points(preset: str = "quick", device_kind: str = "cuda", dtype: str | None = None
                 ) -> list[SweepPoint]:
    """The points of sweep ``preset`` (``smoke``, ``quick``, ``full``) for ``device_kind`` (``cuda``,
    ``cpu``), in a stable order, in ``dtype`` (default: :func:`sweep_dtype`'s choice; the GPU's full
    sweep runs bf16 and fp16 unless a dtype is given). Raises :class:`UsageError` for an unknown preset,
    device kind or dtype."""
    if preset not in SWEEP_PRESETS:
        raise UsageError(f"sweep preset: unknown {preset!r}; expected one of {', '.join(SWEEP_PRESETS)}")
    if device_kind not in DEVICE_KINDS:
        raise UsageError(f"device kind: unknown {device_kind!r}; expected one of {', '.join(DEVICE_KINDS)}")
    chosen = sweep_dtype(device_kind, dtype)[0]
    if preset == "smoke":
        return _smoke(chosen if device_kind == "cpu" or dtype else "float16")
    if device_kind == "cpu":
        return _cpu(preset, chosen)
    if preset == "quick":
        return _cuda_quick(chosen)
    return _cuda_full(chosen) if dtype else _cuda_full("bfloat16") + _cuda_full("float16")
