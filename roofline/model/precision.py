"""Bit-widths of a deployment: the weights, the activations and the KV cache each in their own format, and
the math each matmul runs on.

Formats: ``float32``, ``float16``, ``bfloat16``, ``fp8`` (e4m3), ``int8``, ``int4``. Scales are counted
in the bytes, never dropped:

- ``int4`` weights: one fp16 scale per group of :attr:`Precision.group_size` input elements (K) per
  output column, symmetric, no zero points (GPTQ/AWQ-style; AWQ's zero points would add 0.5 byte/group);
- ``int8`` weights: one fp16 scale per output column (per-channel, as LLM.int8() and TensorRT-LLM's
  weight-only int8 use);
- ``fp8`` weights or KV: one fp32 scale per tensor (negligible, counted);
- ``int8``/``int4`` KV cache: one fp16 scale per ``min(group_size, head_dim)`` elements of a head's K or V.

Only the linear layers inside the blocks are quantized; token embedding, LM head, positions, norms and
biases stay in :attr:`Precision.float_dtype` (16-bit unless the activations are fp32), as AWQ, GPTQ and
bitsandbytes leave them.

The math (:func:`math_of`): two 16/32-bit float operands run on ``tensor16`` (``tf32`` with an fp32
operand), both fp8 on the fp8 tensor cores, both integer (int8, or int4 weights with int8 activations) on
the int8 tensor cores; anything mixed is dequantized to the activations' float and runs on ``tensor16``:
weight-only int8/int4 is bf16 math. :func:`resolve_math` falls back to ``tensor16`` where the hardware has
no such tensor cores (fp8 on an A100). Dequantization's own instructions are not counted (FLOPs are
matmuls), so weight-only predictions are lower bounds that assume the unpacking hides under the loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from roofline.errors import UsageError
from roofline.model.cost import Cost
from roofline.model.hardware import HardwareSpec, dtype_class

# name -> (bits, kind); kind "float" (16/32/64-bit IEEE or bf16), "fp8" or "int"
FORMATS: dict[str, tuple[int, str]] = {
    "float32": (32, "float"), "float16": (16, "float"), "bfloat16": (16, "float"), "float64": (64, "float"),
    "fp8": (8, "fp8"), "int8": (8, "int"), "int4": (4, "int"),
}
_ALIASES = {"fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16",
            "fp64": "float64", "double": "float64", "fp8_e4m3": "fp8", "e4m3": "fp8",
            "float8_e4m3fn": "fp8", "float8": "fp8"}
ACTIVATION_FORMATS = ("float32", "float16", "bfloat16", "fp8", "int8")
DEFAULT_GROUP_SIZE = 128
SCALE_BYTES = 2  # an fp16 scale (integer formats)
TENSOR_SCALE_BYTES = 4  # one fp32 scale per tensor (fp8)
LOW_PRECISION_MATH = ("fp8", "int8")

# Exported with ``python -m roofline model --json`` beside roofline.model.cost's conventions.
PRECISION_CONVENTIONS: dict[str, str] = {
    "precision_formats": "weights, activations and KV cache each bf16/fp16/fp32, fp8 (e4m3), int8 or "
                         "int4 (not activations); only the blocks' linear layers are quantized, "
                         "embeddings and LM head stay 16-bit",
    "precision_scales": "int4 weights: one fp16 scale per group of K inputs per output column; int8 "
                        "weights: one fp16 per output column; fp8: one fp32 per tensor; int KV: one fp16 "
                        "per min(group, head_dim)",
    "precision_math": "both operands fp8 -> fp8 peak; both integer -> int8 peak; otherwise dequantized to "
                      "16-bit math (tensor16); fp8/int8 fall back to tensor16 where the preset has no such "
                      "tensor cores; dequantization instructions not counted",
    "attention_implementation": "fused: masked pairs skipped, scores stay on chip; unfused (HF eager): "
                                "every pair computed, scores and probabilities written and read back (4 "
                                "passes), GQA K/V copied per query head",
    "capacity_memory": "datasheet memory in decimal GB, weights split over tensor-parallel GPUs, "
                       "ceil(Hkv/tp) KV heads per GPU; no CUDA context or fragmentation allowance",
}


def format_name(fmt: object, what: str = "dtype") -> str:
    """Canonical name of a format (``"bf16"`` -> ``"bfloat16"``, ``torch.float16`` -> ``"float16"``);
    :class:`UsageError` naming ``what`` otherwise."""
    name = str(fmt).replace("torch.", "").strip().lower()
    name = _ALIASES.get(name, name)
    if name not in FORMATS:
        raise UsageError(f"{what}: unsupported {fmt!r}, expected one of {', '.join(FORMATS)} "
                         "(fp8 is e4m3)")
    return name


def bits(fmt: str) -> int:
    return FORMATS[format_name(fmt)][0]


def kind(fmt: str) -> str:
    return FORMATS[format_name(fmt)][1]


def matrix_bytes(k: int, n: int, fmt: str, group_size: int = DEFAULT_GROUP_SIZE) -> float:
    """Bytes of a ``K x N`` weight matrix (K inputs, N outputs) stored in ``fmt``, scales included."""
    fmt = format_name(fmt)
    data = k * n * bits(fmt) / 8
    if fmt == "int4":
        return data + math.ceil(k / group_size) * n * SCALE_BYTES
    if fmt == "int8":
        return data + n * SCALE_BYTES
    if fmt == "fp8":
        return data + TENSOR_SCALE_BYTES
    return data


def math_of(activations: str, operand: str) -> str:
    """The math class a matmul of ``activations`` against ``operand`` (weights, or the KV cache) asks
    for, before any hardware: ``tensor16``, ``tf32``, ``fp8`` or ``int8`` (see the module docstring)."""
    a, w = format_name(activations), format_name(operand)
    ka, kw = kind(a), kind(w)
    if ka == "fp8" and kw == "fp8":
        return "fp8"
    if ka == "int" and kw == "int":
        return "int8"
    floats = [f for f in (a, w) if kind(f) == "float"]
    return dtype_class(max(floats, key=bits) if floats else "bfloat16", matmul=True)


def resolve_math(spec: HardwareSpec, cls: str) -> tuple[str, float]:
    """``(class actually used, its dense peak)`` on ``spec``: fp8/int8 math where the part has those
    tensor cores, else ``tensor16`` (the operands dequantized to bf16)."""
    if cls == "fp8" and spec.fp8_peak_flops:
        return cls, spec.fp8_peak_flops
    if cls == "int8" and spec.int8_peak_ops:
        return cls, spec.int8_peak_ops
    if cls in LOW_PRECISION_MATH:
        cls = "tensor16"
    return cls, spec.peak(cls)


@dataclass(frozen=True)
class Precision:
    """Weights, activations and KV cache formats (each any of :data:`FORMATS`; activations not int4) and
    the int4 group size. Build one from a single dtype with :meth:`uniform`."""

    weights: str = "bfloat16"
    activations: str = "bfloat16"
    kv: str = "bfloat16"
    group_size: int = DEFAULT_GROUP_SIZE

    def __post_init__(self) -> None:
        for f in ("weights", "activations", "kv"):
            object.__setattr__(self, f, format_name(getattr(self, f), f))
        if self.activations not in ACTIVATION_FORMATS:
            raise UsageError(f"activations: unsupported {self.activations!r}, expected one of "
                             f"{', '.join(ACTIVATION_FORMATS)}")
        g = self.group_size
        if isinstance(g, bool) or not isinstance(g, int) or g <= 0:
            raise UsageError(f"group_size: expected a positive integer, got {g!r}")

    @classmethod
    def uniform(cls, dtype: object) -> Precision:
        name = format_name(dtype)
        return cls(name, name, name)

    @property
    def float_dtype(self) -> str:
        """Where the unquantized parameters (embeddings, LM head, norms, biases) and the logits live: the
        activations' format when it is a float, else bfloat16."""
        return self.activations if kind(self.activations) == "float" else "bfloat16"

    @property
    def float_bytes(self) -> float:
        return bits(self.float_dtype) / 8

    @property
    def activation_bytes(self) -> float:
        return bits(self.activations) / 8

    def kv_bytes_per_element(self, head_dim: int) -> float:
        """Bytes per K or V element, the integer formats' per-group scales included."""
        data = bits(self.kv) / 8
        if kind(self.kv) == "int":
            return data + SCALE_BYTES / min(self.group_size, head_dim)
        return data

    @property
    def matmul_math(self) -> str:
        """Math of the block linear layers (weights x activations)."""
        return math_of(self.activations, self.weights)

    @property
    def attention_math(self) -> str:
        """Math of Q.K and P.V (activations x KV cache)."""
        return math_of(self.activations, self.kv)

    @property
    def head_math(self) -> str:
        """Math of the LM head (unquantized weights x activations)."""
        return math_of(self.activations, self.float_dtype)

    @property
    def is_uniform(self) -> bool:
        return self.weights == self.activations == self.kv

    @property
    def label(self) -> str:
        if self.is_uniform:
            return self.weights
        w = f"{self.weights}(g{self.group_size})" if self.weights == "int4" else self.weights
        return f"weights {w}, activations {self.activations}, KV {self.kv}"

    def to_dict(self) -> dict:
        return {"weights": self.weights, "activations": self.activations, "kv": self.kv,
                "group_size": self.group_size, "matmul_math": self.matmul_math,
                "attention_math": self.attention_math, "lm_head_math": self.head_math}


def as_precision(dtype: object) -> Precision:
    """``dtype`` itself when it is a :class:`Precision`, else :meth:`Precision.uniform` of it."""
    return dtype if isinstance(dtype, Precision) else Precision.uniform(dtype)


def linear_cost(m: int, n: int, k: int, dtype: object) -> Cost:
    """``x[M, K] @ W[K, N]`` with the weights in ``dtype``'s weight format (scales included) and ``x`` and
    the output in its activation format: :func:`roofline.model.cost.gemm_cost` for quantized weights."""
    p = as_precision(dtype)
    if min(m, n, k) < 0:
        raise UsageError(f"sizes: expected non-negative m, n, k, got {m}, {n}, {k}")
    return Cost(float(2 * m * n * k), p.activation_bytes * (m * k + m * n) + matrix_bytes(k, n, p.weights,
                                                                                          p.group_size))


def parse_precision(dtype: object, weights: object = None, activations: object = None, kv: object = None,
                    group_size: object = None) -> Precision:
    """The :class:`Precision` of command-line values: ``dtype`` is each format's default, ``weights``,
    ``activations`` and ``kv`` override it (None: not given), ``group_size`` is an integer or its text
    (None: :data:`DEFAULT_GROUP_SIZE`). A bad value is a :class:`UsageError` naming its option
    (``--dtype``, ``--weights``, ``--activations``, ``--kv``, ``--group-size``): the one parser of
    ``python -m roofline model``, ``python -m roofline step`` and ``pytest --benchmark --model``."""
    base = format_name(dtype, "--dtype: dtype")
    if activations is None and base not in ACTIVATION_FORMATS:
        raise UsageError(f"--dtype: dtype: unsupported {dtype!r} for the activations ({base} is a "
                         f"weight or KV format: --weights {base}, --kv {base})")
    acts = format_name(activations if activations is not None else base, "--activations")
    if acts not in ACTIVATION_FORMATS:
        raise UsageError(f"--activations: unsupported {activations!r}, expected one of "
                         f"{', '.join(ACTIVATION_FORMATS)}")
    p = Precision(weights=format_name(weights if weights is not None else base, "--weights"),
                  activations=acts, kv=format_name(kv if kv is not None else base, "--kv"),
                  group_size=parse_group_size(group_size))
    for option, given, fmt in (("--weights", weights, p.weights), ("--activations", activations, acts),
                               ("--kv", kv, p.kv)):
        try:
            math_of(fmt, fmt)  # float64 and such have no roof
        except ValueError as exc:
            raise UsageError(f"{option if given is not None else '--dtype'}: {exc}") from None
    return p


def precision_options(default: str) -> dict[str, str]:
    """Option -> help of the four precision options (each defaults to None: ``default`` names what a
    format left out falls back to), for ``argparse`` and pytest's ``addoption`` alike."""
    return {"--weights": f"weight format ({', '.join(FORMATS)}; fp8 is e4m3; default {default})",
            "--activations": f"activation format (not int4; default {default})",
            "--kv": f"KV-cache format (default {default})",
            "--group-size": f"int4 group: input elements per fp16 scale (default {DEFAULT_GROUP_SIZE})"}


def parse_group_size(text: object) -> int:
    """``--group-size``: a positive integer (or its text); None is :data:`DEFAULT_GROUP_SIZE`."""
    if text is None:
        return DEFAULT_GROUP_SIZE
    try:
        if isinstance(text, bool) or isinstance(text, float):
            raise ValueError
        value = int(str(text).strip())
    except ValueError:
        raise UsageError(f"--group-size: expected an integer, got {text!r}") from None
    if value < 1:
        raise UsageError(f"--group-size: expected an integer >= 1, got {value}")
    return value
