"""Ahead-of-time compile cases: what the audit (``kernels/audit``) compiles for sm_80/sm_90, and the one
helper every op's ``cases.py`` uses to say what Triton's JIT would specialise for a real launch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

# Triton signature type strings for the AOT compile (`"*fp16"` is a pointer to fp16).
TRITON_TYPE: dict[torch.dtype, str] = {
    torch.float16: "fp16",
    torch.bfloat16: "bf16",
    torch.float32: "fp32",
    torch.int32: "i32",
}


# Compile options of Triton's AMD backend a config may carry beside its meta-parameters, as Triton's own
# HIP configs do (``triton.Config({"BLOCK_M": 128, "waves_per_eu": 2}, ...)``): a launch on a HIP device
# hands them to the compiler, the interpreter drops them, and the audit compiles with them as options.
HIP_OPTIONS: tuple[str, ...] = ("waves_per_eu", "matrix_instr_nonkdim", "kpack")


@dataclass(frozen=True)
class Pointer:
    """A 16-byte-aligned pointer argument of Triton element type ``ty`` (``"fp16"``): what a case passes
    where a launch would pass a tensor, when building a ``meta`` tensor is not worth it."""

    ty: str


def jit_specialisation(fn: object, args: Mapping[str, object],
                       constexprs: Mapping[str, object]) -> tuple[dict, dict, tuple[str, ...]]:
    """``(signature, constexprs, divisible_by_16)`` exactly as Triton's JIT specialises a launch of
    ``fn`` with these runtime ``args`` (by name) and ``constexprs``:

    - tensors (``meta`` ones will do) and :class:`Pointer` are 16-byte-aligned pointers: hinted;
    - ``None``, bools and integers equal to 1 become constants;
    - other integers are ``i32`` (``i64`` outside int32), hinted when a multiple of 16; floats ``fp32``.

    The signature follows ``fn.arg_names``; an argument in neither mapping is an error.
    """
    signature: dict[str, str] = {}
    consts = dict(constexprs)
    divisible: list[str] = []
    for name in fn.arg_names:  # type: ignore[attr-defined]
        if name in constexprs:
            signature[name] = "constexpr"
            continue
        if name not in args:
            raise ValueError(f"args: no value for {getattr(fn, '__name__', fn)}'s argument {name!r}")  # type: ignore[attr-defined]
        value = args[name]
        if isinstance(value, torch.Tensor):
            signature[name] = "*" + TRITON_TYPE[value.dtype]
            divisible.append(name)
        elif isinstance(value, Pointer):
            signature[name] = "*" + value.ty
            divisible.append(name)
        elif value is None or isinstance(value, bool) or (isinstance(value, int) and value == 1):
            signature[name], consts[name] = "constexpr", value
        elif isinstance(value, float):
            signature[name] = "fp32"
        elif isinstance(value, int):
            signature[name] = "i32" if -(2**31) <= value < 2**31 else "i64"
            if value % 16 == 0:
                divisible.append(name)
        else:
            raise TypeError(f"args: {name}={value!r} is not a tensor, Pointer, int, float, bool or None")
    extra = sorted(set(args) - set(signature))
    if extra:
        raise ValueError(f"args: {getattr(fn, '__name__', fn)} has no arguments {extra}")  # type: ignore[attr-defined]
    return signature, consts, tuple(divisible)


@dataclass(frozen=True)
class CompileCase:
    """One (kernel, variant, config, dtype) to compile ahead of time for one architecture.

    ``signature`` maps every argument name of ``fn`` to a Triton type string (``"*fp16"``, ``"i32"``,
    ``"fp32"``, ``"constexpr"``); ``constexprs`` gives the value of each ``constexpr`` argument.
    ``divisible_by_16`` names the arguments a real, aligned launch specialises as divisible by 16
    (16-byte aligned pointers, integers that are multiples of 16): exactly what a JIT launch on
    the representative shape would see, no more.
    ``gates`` names the audit gates that apply beyond the universal ones:
    ``"tensor_cores"`` (must use HMMA/HGMMA), ``"vec128_loads"`` (must use 128-bit global loads).
    """

    kernel: str
    variant: str
    fn: object
    signature: Mapping[str, str]
    constexprs: Mapping[str, object]
    divisible_by_16: tuple[str, ...]
    num_warps: int
    num_stages: int
    dtype: str
    shape: Mapping[str, object]
    config: str
    gates: frozenset[str] = field(default_factory=frozenset)

    @property
    def case_id(self) -> str:
        shape = ",".join(f"{k}={v}" for k, v in self.shape.items())
        return f"{self.kernel}/{self.variant}/{self.dtype}/{shape}/{self.config}"
