"""Shared plumbing for ridgebench's Triton kernels: input validation, the interpreter/autotune switch,
launch records and the ahead-of-time compile cases the audit consumes.

Every kernel module (``kernels/<op>.py``) follows one contract so that tests, the benchmark suite and
the static audit pick it up without edits elsewhere:

- public, typed launchers that validate with :func:`check_tensor` and friends;
- ``VARIANTS``: ``{variant_name: launcher}`` when there is more than one way to run the op;
- ``<op>_ref``: the PyTorch reference, computed in fp32/float64 and cast back;
- ``TOLERANCES``: ``{torch.dtype: (atol, rtol)}`` for comparing the kernel with its reference;
- ``compile_cases(arch: int) -> list[CompileCase]``: every shipped config x variant x dtype at
  representative shapes, for the sm_80/sm_90 audit;
- each launch calls :func:`record_launch`, so a benchmark can say which variant and config ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
import triton.language as tl

SUPPORTED_DTYPES: tuple[torch.dtype, ...] = (torch.float16, torch.bfloat16, torch.float32)

# Triton signature type strings for the AOT compile (`"*fp16"` is a pointer to fp16).
TRITON_TYPE: dict[torch.dtype, str] = {
    torch.float16: "fp16",
    torch.bfloat16: "bf16",
    torch.float32: "fp32",
}

TL_DTYPE: dict[torch.dtype, tl.dtype] = {
    torch.float16: tl.float16,
    torch.bfloat16: tl.bfloat16,
    torch.float32: tl.float32,
}


def interpreting() -> bool:
    """True when Triton runs kernels with its CPU interpreter (``TRITON_INTERPRET=1``).

    Triton reads the variable when ``@triton.jit`` decorates a function, so it must be set before any
    kernel module is imported (the test and benchmark conftests do this).
    """
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def autotuning() -> bool:
    """True when launchers should use ``@triton.autotune``.

    Autotuning needs a GPU driver, so it is off under the interpreter; ``RIDGEBENCH_AUTOTUNE=0`` also
    switches it off on a GPU (every launcher then uses its first surviving config).
    """
    return not interpreting() and os.environ.get("RIDGEBENCH_AUTOTUNE", "1") != "0"


# ----------------------------------------------------------------------------------------------
# Validation: every violation names the argument and what was expected.
# ----------------------------------------------------------------------------------------------

def set_descriptor_allocator(device: torch.device) -> None:
    """Give Triton the global scratch memory that in-kernel tensor descriptors (``tl.make_tensor_descriptor``,
    the TMA path on sm_90) need, as ``torch.empty`` bytes on ``device`` (a CPU allocator under the
    interpreter)."""
    import triton

    def alloc(size: int, alignment: int, stream: int | None) -> torch.Tensor:
        return torch.empty(size, dtype=torch.int8, device=device)

    triton.set_allocator(alloc)


def check_tensor(
    name: str,
    t: object,
    *,
    ndim: int | None = None,
    dtypes: Iterable[torch.dtype] | None = SUPPORTED_DTYPES,
    device: torch.device | None = None,
    last_dim_contiguous: bool = True,
) -> torch.Tensor:
    """Check one tensor argument; raise ``TypeError``/``ValueError`` naming it. Returns the tensor."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(t.shape)}")
    if dtypes is not None:
        allowed = tuple(dtypes)
        if t.dtype not in allowed:
            names = ", ".join(str(d).replace("torch.", "") for d in allowed)
            got = str(t.dtype).replace("torch.", "")
            raise TypeError(f"{name}: dtype {got} not supported, expected one of {names}")
    if device is not None and t.device != torch.device(device):
        raise ValueError(f"{name}: expected a tensor on {device}, got one on {t.device}")
    if last_dim_contiguous and t.dim() > 0 and t.shape[-1] > 1 and t.stride(-1) != 1:
        raise ValueError(f"{name}: last dimension must be contiguous (stride 1), got strides {t.stride()}")
    return t


def check_same_dtype_device(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """``t`` must share ``ref``'s dtype and device."""
    if t.dtype != ref.dtype:
        raise TypeError(f"{name}: dtype {t.dtype} does not match {ref_name}'s {ref.dtype}")
    if t.device != ref.device:
        raise ValueError(f"{name}: on {t.device} but {ref_name} is on {ref.device}")


def check_shape(name: str, t: torch.Tensor, expected: tuple[int, ...]) -> None:
    """``t.shape`` must equal ``expected``."""
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f"{name}: expected shape {tuple(expected)}, got {tuple(t.shape)}")


def collapsed_row_stride(x: torch.Tensor) -> int | None:
    """The one stride that steps between rows of ``x`` viewed as ``[rows, x.shape[-1]]``, or ``None``
    when the leading dimensions do not collapse to one stride (the caller then copies)."""
    dims = [(s, st) for s, st in zip(x.shape[:-1], x.stride()[:-1], strict=True) if s != 1]
    if not dims:
        return max(x.shape[-1], 1) if x.dim() else 1
    for (_, outer), (size, inner) in zip(dims, dims[1:], strict=False):
        if outer != inner * size:
            return None
    return dims[-1][1]


def check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


# ----------------------------------------------------------------------------------------------
# Configs and launch records
# ----------------------------------------------------------------------------------------------

def config_id(kwargs: Mapping[str, object], num_warps: int, num_stages: int) -> str:
    """Canonical, human-readable id of one kernel config; the audit and launch records both use it."""
    parts = [f"{k}={kwargs[k]}" for k in sorted(kwargs)]
    parts += [f"num_warps={num_warps}", f"num_stages={num_stages}"]
    return ",".join(parts)


def triton_config_id(cfg: object) -> str:
    """:func:`config_id` of a ``triton.Config``."""
    return config_id(cfg.kwargs, cfg.num_warps, cfg.num_stages)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LaunchRecord:
    kernel: str
    variant: str
    config: str


_LAST_LAUNCH: dict[str, LaunchRecord] = {}


def record_launch(kernel: str, variant: str, config: str) -> None:
    """Remember what a launcher just ran (its variant and config id) for the benchmark's records."""
    _LAST_LAUNCH[kernel] = LaunchRecord(kernel, variant, config)


def last_launch(kernel: str) -> LaunchRecord | None:
    """What the last launch of ``kernel`` ran, or ``None`` if it has not run in this process."""
    return _LAST_LAUNCH.get(kernel)


# ----------------------------------------------------------------------------------------------
# Ahead-of-time compile cases (consumed by the audit in kernels/audit)
# ----------------------------------------------------------------------------------------------

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
