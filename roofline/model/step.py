"""One model step as benchmark shapes: the kernels of one decode step (and optionally one prefill) of a
model at exactly that model's shapes, and the ops the suite has no kernel for.

``pytest --benchmark --model M --batch 1,4,16 --context 256 [--prefill]`` runs :func:`step_points`
instead of a sweep preset. Per layer (``count`` = ``n_layers``): ``qkv``, ``attention`` (one query per
sequence over ``context`` cached tokens), ``attn_out``, ``mlp_up``, ``mlp_gate`` (SwiGLU: the shape of
``mlp_up``, timed once, counted twice), ``mlp_act`` (GELU), ``mlp_down``; once per step ``lm_head`` and
``softmax_vocab``. A prefill has the same components over ``context`` tokens, the LM head and softmax on
the last position only. Ops without a kernel (norms, residual adds, rotary embeddings, SwiGLU's
``silu(gate) * up``) are listed with their compulsory bytes, never dropped.

Sweep names are ``<kernel>/<phase>.step.<model>.<component>`` (the phase first: the QKV benchmark lays
out its input as B sequences of one token when the trajectory is ``decode``), labels ``B<b>`` or
``S<context>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from roofline.errors import UsageError
from roofline.model.cost import dtype_bytes
from roofline.model.ops import kernel_cost
from roofline.model.precision import Precision, parse_precision
from roofline.model.sweeps import SweepPoint
from roofline.model.transformer import ModelConfig, get_model

STEP_DTYPE = "bfloat16"  # what the default sweeps use on both device kinds
DEFAULT_CONTEXT = 4096  # --context's default, capped at the model's context_length
REQUEST_FILE = "step-request.json"
PHASES = ("decode", "prefill")
# CPU guard: the CPU runs the model's real shapes; beyond these it would take minutes per benchmark.
CPU_MAX_WEIGHT_BYTES = 256 * 1024 * 1024  # the largest single matrix (LM head or MLP); llama2-7b fits
CPU_MAX_CONTEXT = 16384


@dataclass(frozen=True)
class StepRequest:
    """What ``--model/--batch/--context/--prefill`` asked for. ``precision``: what ``--weights``,
    ``--activations``, ``--kv`` and ``--group-size`` asked for (None: none of them). The kernels run
    ``dtype`` only, so a precision is never measured: the step report PREDICTS the step in it."""

    model: ModelConfig
    batches: tuple[int, ...]
    context: int
    prefill: bool = False
    dtype: str = STEP_DTYPE
    precision: Precision | None = None

    def __post_init__(self) -> None:
        if not self.batches or any(isinstance(b, bool) or not isinstance(b, int) or b <= 0
                                   for b in self.batches):
            raise UsageError(f"--batch: expected positive integers, got {list(self.batches)}")
        if len(set(self.batches)) != len(self.batches):
            raise UsageError(f"--batch: each batch once, got {list(self.batches)}")
        if isinstance(self.context, bool) or not isinstance(self.context, int) or self.context <= 0:
            raise UsageError(f"--context: expected a positive number of cached tokens, got {self.context!r}")

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "batches": list(self.batches), "context": self.context,
                "prefill": self.prefill, "dtype": self.dtype,
                "precision": None if self.precision is None else self.precision.to_dict()}

    @classmethod
    def from_dict(cls, data: object, where: str = "step request") -> StepRequest:
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise UsageError(f"{where}: not a ridgebench step request (no model object)")
        try:
            p = data.get("precision")
            precision = None if p is None else Precision(p["weights"], p["activations"], p["kv"],
                                                         p["group_size"])
            return cls(ModelConfig.from_dict(data["model"]), tuple(data["batches"]), data["context"],
                       bool(data.get("prefill", False)), str(data.get("dtype", STEP_DTYPE)), precision)
        except (KeyError, TypeError) as exc:
            raise UsageError(f"{where}: malformed ({type(exc).__name__}: {exc})") from None
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None


def parse_batches(text: str) -> tuple[int, ...]:
    """``"1,8,64"`` -> ``(1, 8, 64)``, sorted; :class:`UsageError` naming ``--batch`` otherwise."""
    try:
        values = tuple(sorted(int(v) for v in str(text).split(",") if v.strip()))
    except ValueError:
        raise UsageError(f"--batch: expected comma-separated positive integers like 1,8,64, got {text!r}") \
            from None
    if not values or values[0] <= 0:
        raise UsageError(f"--batch: expected comma-separated positive integers like 1,8,64, got {text!r}")
    return values


def make_request(model: str, batches: str, context: int | str | None, prefill: bool = False,
                 dtype: str = STEP_DTYPE, *, allow_long_context: bool = False, weights: str | None = None,
                 activations: str | None = None, kv: str | None = None,
                 group_size: str | int | None = None) -> StepRequest:
    """The request from the command-line strings (a preset name or a config JSON path); ``dtype`` is the
    run's sweep dtype (:func:`roofline.model.sweeps.sweep_dtype`). ``context`` None: :data:`DEFAULT_CONTEXT`
    or the model's ``context_length`` if smaller. A context past the model's positions is refused
    unless ``allow_long_context`` (the shapes run, but no such step exists for that model).
    ``weights``/``activations``/``kv``/``group_size``: the precision to predict the step in, each format
    defaulting to ``dtype`` (:func:`roofline.model.precision.parse_precision`, as ``python -m roofline model``
    parses them); all None: no precision asked for."""
    asked = (weights, activations, kv, group_size)
    precision = None if all(v is None for v in asked) else parse_precision(dtype, *asked)
    cfg = get_model(model)
    if context is None:
        ctx = min(DEFAULT_CONTEXT, cfg.context_length)
    else:
        try:
            ctx = int(context)
        except (TypeError, ValueError):
            raise UsageError(f"--context: expected a positive integer, got {context!r}") from None
    request = StepRequest(cfg, parse_batches(batches), ctx, prefill, dtype, precision)
    if ctx > cfg.context_length and not allow_long_context:
        raise UsageError(f"--context {ctx}: {cfg.name} has {cfg.context_length} positions (context_length); "
                         f"use --context {cfg.context_length} or less, or --allow-long-context to run the "
                         "shapes anyway")
    return request


# A case holds its inputs and outputs, and during the check a pristine copy of the inputs, the plain
# PyTorch output and a float64 reference: at least twice its compulsory bytes.
CHECK_COPIES = 2


def largest_case(request: StepRequest) -> tuple[float, SweepPoint]:
    """``(bytes, point)``: the step point whose inputs and outputs (compulsory bytes, in the run's
    dtype) are the largest; one case is built at a time, so this sizes the run's device memory."""
    costs = [(kernel_cost(p.kernel, p.shape, p.dtype).bytes, p) for p in step_points(request)]
    return max(costs, key=lambda c: c[0])


def check_fits_memory(request: StepRequest, memory_bytes: float, memory: str) -> None:
    """Refuse (one line, before anything runs) a request whose largest case cannot fit ``memory_bytes``
    (``memory`` says what that is): estimated as :data:`CHECK_COPIES` x its compulsory bytes, a lower
    bound on what building and checking it allocates."""
    nbytes, point = largest_case(request)
    need = CHECK_COPIES * nbytes
    if need > memory_bytes:
        raise UsageError(
            f"--batch {','.join(map(str, request.batches))} --context {request.context}: the largest case "
            f"({point.sweep} {point.label}) needs about {need / 1e9:.3g} GB "
            f"(estimated: {CHECK_COPIES} x its {nbytes / 1e9:.3g} GB of inputs and outputs in "
            f"{request.dtype}), more than the {memory_bytes / 1e9:.3g} GB of {memory}; use smaller batches "
            "or a shorter context")


def check_fits_cpu(request: StepRequest) -> None:
    """On a CPU the real shapes run; refuse (one line) a model or context that would take minutes."""
    m, p = request.model, dtype_bytes(request.dtype)
    largest = max(m.vocab_size * m.d_model, m.d_ff * m.d_model) * p
    if largest > CPU_MAX_WEIGHT_BYTES or request.context > CPU_MAX_CONTEXT:
        raise UsageError(
            f"--model {m.name} --context {request.context}: too large for a CPU run of its real shapes "
            f"(largest weight matrix {largest / 1e6:.0f} MB, limit {CPU_MAX_WEIGHT_BYTES / 1e6:.0f} MB; "
            f"context limit {CPU_MAX_CONTEXT}); use a small model such as gpt2-small or a GPU")


@dataclass(frozen=True)
class Component:
    """One piece of a step: ``count`` calls of ``point`` per step (None: not measured, see ``note``).

    ``unmeasured_bytes`` is the compulsory traffic of one call of an op without a kernel (its floor on
    any device is at least ``bytes / bandwidth``)."""

    name: str
    phase: str
    batch: int
    count: int
    point: SweepPoint | None
    note: str = ""
    unmeasured_bytes: float = 0.0

    @property
    def measured(self) -> bool:
        return self.point is not None


def _gemv(model: ModelConfig, phase: str, name: str, m: int, n: int, k: int, bias: bool, dtype: str,
          label: str) -> SweepPoint:
    return SweepPoint("gemv", f"gemv/{phase}.step.{model.name}.{name}", dict(batch=m, n=n, k=k, bias=bias),
                      dtype, label)


def _heads(model: ModelConfig) -> dict:
    return dict(n_heads=model.n_heads, n_kv_heads=model.n_kv_heads, head_dim=model.head_dim)


def step_components(request: StepRequest, phase: str, batch: int) -> list[Component]:
    """The components of one step: ``phase`` ``decode`` (``batch`` sequences) or ``prefill`` (one
    sequence of ``request.context`` tokens; ``batch`` is ignored and recorded as 1)."""
    if phase not in PHASES:
        raise ValueError(f"phase: expected one of {PHASES}, got {phase!r}")
    m, ctx, dt = request.model, request.context, request.dtype
    p = dtype_bytes(dt)
    decode = phase == "decode"
    tokens = batch if decode else ctx
    label = f"B{batch}" if decode else f"S{ctx}"
    batch = batch if decode else 1
    L = m.n_layers

    def sweep(kernel: str, name: str) -> str:
        return f"{kernel}/{phase}.step.{m.name}.{name}"

    qkv = SweepPoint("qkv", sweep("qkv", "qkv"), dict(m=tokens, d_model=m.d_model, **_heads(m), bias=m.bias),
                     dt, label)
    if decode:
        attn = SweepPoint("attention", sweep("attention", "attention"),
                          dict(batch=batch, **_heads(m), q_len=1, cache_len=ctx), dt, label)
    else:
        attn = SweepPoint("attention", sweep("attention", "attention"),
                          dict(batch=1, **_heads(m), q_len=ctx, cache_len=0), dt, label)
    up = _gemv(m, phase, "mlp_up", tokens, m.d_ff, m.d_model, m.bias, dt, label)
    comps = [
        Component("qkv", phase, batch, L, qkv, "K/V written as fresh tensors; a cache append moves the "
                  "same bytes"),
        Component("attention", phase, batch, L, attn,
                  f"over {ctx} cached tokens" if decode else f"causal prefill of {ctx} tokens"),
        Component("attn_out", phase, batch, L, _gemv(m, phase, "attn_out", tokens, m.d_model, m.d_model,
                                                     m.bias, dt, label)),
        Component("mlp_up", phase, batch, L, up),
    ]
    if m.mlp == "swiglu":
        comps.append(Component("mlp_gate", phase, batch, L, up, "same shape as mlp_up: its benchmark, "
                               "counted again"))
        comps.append(Component("mlp_act", phase, batch, L, None, "silu(gate) * up: no kernel in the suite",
                               unmeasured_bytes=3 * tokens * m.d_ff * p))
    else:
        comps.append(Component("mlp_act", phase, batch, L, SweepPoint(
            "gelu", sweep("gelu", "mlp_act"), dict(n=tokens * m.d_ff, approximate="tanh", bias_len=0),
            dt, label), "GELU (tanh); the up projection adds the bias"))
    comps.append(Component("mlp_down", phase, batch, L, _gemv(m, phase, "mlp_down", tokens, m.d_model,
                                                              m.d_ff, m.bias, dt, label)))
    head_rows = batch  # decode: every sequence; prefill: the last position only
    comps.append(Component("lm_head", phase, batch, 1, _gemv(m, phase, "lm_head", head_rows, m.vocab_size,
                                                             m.d_model, False, dt, label),
                           "" if decode else "last position only"))
    comps.append(Component("softmax_vocab", phase, batch, 1, SweepPoint(
        "softmax", sweep("softmax", "softmax_vocab"), dict(rows=head_rows, cols=m.vocab_size), dt, label)))
    # Ops without a kernel: compulsory bytes per call (read inputs, write outputs; norm weights).
    norm_bytes = p * (2 * tokens * m.d_model + (2 if m.norm == "layernorm" else 1) * m.d_model)
    comps.append(Component("norms", phase, batch, L * m.norms_per_block + 1, None,
                           f"{m.norm}: no kernel in the suite", unmeasured_bytes=norm_bytes))
    comps.append(Component("residual_adds", phase, batch, 2 * L, None, "no kernel in the suite",
                           unmeasured_bytes=3 * tokens * m.d_model * p))
    if m.positions == "rotary":
        comps.append(Component("rotary", phase, batch, L, None, "rotary embedding of q and k: no kernel",
                               unmeasured_bytes=2 * tokens * (m.n_heads + m.n_kv_heads) * m.head_dim * p))
    return comps


def all_components(request: StepRequest) -> list[Component]:
    """Every decode step (one per batch) and, with ``prefill``, the prefill step."""
    comps = [c for b in request.batches for c in step_components(request, "decode", b)]
    if request.prefill:
        comps += step_components(request, "prefill", 1)
    return comps


def step_points(request: StepRequest) -> list[SweepPoint]:
    """The distinct benchmark points of the request, in a stable order (what pytest parametrizes)."""
    seen: dict[tuple, SweepPoint] = {}
    for c in all_components(request):
        if c.point is not None:
            seen.setdefault((c.point.sweep, c.point.label, c.point.dtype), c.point)
    return list(seen.values())


def write_request(run_dir: Path, request: StepRequest) -> Path:
    path = Path(run_dir) / REQUEST_FILE
    path.write_text(json.dumps(request.to_dict(), indent=2) + "\n")
    return path


def read_request(run_dir: Path) -> StepRequest | None:
    """The run's step request, or None for a run made without ``--model``."""
    path = Path(run_dir) / REQUEST_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the step request ({exc})") from None
    return StepRequest.from_dict(data, str(path))
