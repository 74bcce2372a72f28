"""The accuracy gate and the provider contract: one rule for every provider (``triton``, ``torch``,
``inductor``, the SDPA backends, third-party and user providers) and every dtype.

**The gate** (the form FlashAttention's tests use): the reference runs in float64 (float32 on a device
without float64) on pristine copies of the inputs; a *plain* PyTorch implementation of the same op (the
eager baseline each op declares, ``kernels/<op>/spec.py``'s ``baseline``) runs in the case's own dtype on
the same copies. A provider passes when::

    max|out - ref| <= ACCURACY_FACTOR * max|plain - ref| + atol,   atol = eps(dtype) * max|ref|

so its error may be at most ``ACCURACY_FACTOR`` times what plain PyTorch makes in that dtype, plus one
unit in the last place of the largest output (the floor keeps a plain error of zero from demanding an
exact answer). A correct bf16 implementation that rounds an intermediate more or less often than ours
(``F.gelu(x + bias)`` rounds ``x + bias`` to bf16 first) is within a small multiple of the plain error;
a wrong one (softmax over the wrong axis, a transposed weight, a dropped bias) is off by O(1) of the
output's scale, tens to hundreds of times the plain error. NaN never passes; an infinity matching the
reference's is exact. fp32 on a GPU: the plain run may use TF32 for its matmuls, as Triton's ``tl.dot``
does by default, so the kernels are held to the precision they are documented to run at.

**The contract**: the provider's outputs have the plain implementation's count, shapes, dtype (the case's)
and device, are contiguous where the kernel's layout is the point (the op's ``OpSpec.contiguous``), and the
call leaves its inputs bit-for-bit unchanged (unless the op's ``OpSpec.inplace`` names them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator

import torch

ACCURACY_FACTOR = 4.0  # a provider's max error may be this many times plain PyTorch's in the same dtype
COMPARE_CHUNK = 1 << 24  # elements per float64 chunk: a 4 GiB output never needs 40 GiB of temporaries


class ContractError(AssertionError):
    """A provider's output or side effects break the launcher's contract (a failed benchmark)."""


def reference_dtype(device: torch.device) -> torch.dtype:
    """float64, or float32 on a device without float64 (Apple's MPS)."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def as_outputs(out: object) -> tuple:
    """A provider's result as a tuple of outputs (a tensor is one output)."""
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def max_error(out: object, ref: object) -> tuple[float, float]:
    """``(max |out - ref|, max |ref|)`` over tensors (or tuples of tensors), in float64 chunks; NaN in
    ``out`` where ``ref`` is not NaN counts as an infinite error, matching infinities as exact."""
    err = scale = 0.0
    for o, r in zip(as_outputs(out), as_outputs(ref), strict=True):
        o, r = o.reshape(-1), r.reshape(-1)
        for i in range(0, o.numel(), COMPARE_CHUNK):
            od, rd = o[i:i + COMPARE_CHUNK].double(), r[i:i + COMPARE_CHUNK].double()
            e = (od - rd).abs()
            e = torch.where((od == rd) | (torch.isnan(od) & torch.isnan(rd)), 0.0, e)
            e = torch.nan_to_num(e, nan=math.inf)
            finite = rd.abs()[torch.isfinite(rd)]
            err = max(err, float(e.max()) if e.numel() else 0.0)
            scale = max(scale, float(finite.max()) if finite.numel() else 0.0)
    return err, scale


@dataclasses.dataclass(frozen=True)
class Check:
    """One provider output against the reference: its ``max_error``, plain PyTorch's ``plain_error`` in
    the same dtype, and the floor ``atol``. ``note`` says what was compared."""

    max_error: float
    plain_error: float
    atol: float
    factor: float = ACCURACY_FACTOR
    note: str = ""
    reference: str = "float64"

    @property
    def bound(self) -> float:
        """The largest max error that passes: ``factor * plain_error + atol``."""
        return self.factor * self.plain_error + self.atol

    @property
    def ok(self) -> bool:
        return self.max_error <= self.bound  # NaN compares False

    @property
    def worst(self) -> float:
        """``max_error / bound``: <= 1 passes."""
        if self.bound > 0:
            return self.max_error / self.bound
        return 0.0 if self.max_error == 0 else math.inf

    @property
    def ratio(self) -> float:
        """``max_error / plain_error``: how many times plain PyTorch's error this provider makes."""
        if self.plain_error > 0:
            return self.max_error / self.plain_error
        return 1.0 if self.max_error == 0 else math.inf

    def fields(self) -> dict:
        """What ``extra_info["accuracy"]`` records."""
        return {"max_error": self.max_error, "plain_torch_error": self.plain_error, "ratio": self.ratio,
                "factor": self.factor, "atol": self.atol, "bound": self.bound, "reference": self.reference,
                "rule": "max_error <= factor * plain_torch_error + atol"}

    def describe(self) -> str:
        return (f"max error {self.max_error:.3g} is {self.ratio:.3g}x plain PyTorch's {self.plain_error:.3g} "
                f"in the same dtype (allowed: {self.factor:g}x + atol {self.atol:.3g} = {self.bound:.3g})"
                f"{' (' + self.note + ')' if self.note else ''}")


def gate(out: object, plain: object, ref: object, dtype: torch.dtype, note: str = "",
         reference: torch.dtype = torch.float64) -> Check:
    """The accuracy gate of one output (or tuple) against ``ref`` (computed in ``reference``), with
    ``plain`` the plain PyTorch output in ``dtype``."""
    err, scale = max_error(out, ref)
    plain_err, _ = max_error(plain, ref)
    return Check(err, plain_err, torch.finfo(dtype).eps * scale, note=note,
                 reference=str(reference).removeprefix("torch."))


def combine(checks: list[Check], note: str) -> Check:
    """One check from checks of parts of an output (the worst of each number)."""
    return Check(max(c.max_error for c in checks), max(c.plain_error for c in checks),
                 max(c.atol for c in checks), checks[0].factor, note, checks[0].reference)


# ------------------------------------------------------------------------------------------------
# The contract
# ------------------------------------------------------------------------------------------------

def snapshot(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Pristine copies of a call's tensor arguments (same dtype, device and strides' shape), taken
    before the provider runs: the reference and the plain run use these, and the inputs are compared
    with them after the call."""
    def copy(a: object) -> object:
        return a.clone() if isinstance(a, torch.Tensor) else a
    return tuple(copy(a) for a in args), {k: copy(v) for k, v in kwargs.items()}


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype.is_floating_point and a.element_size() in (2, 4, 8):
        view = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
        return torch.equal(a.contiguous().view(view), b.contiguous().view(view))  # NaN == NaN bitwise
    return torch.equal(a, b)


def check_inputs_unchanged(args: tuple, kwargs: dict, pristine: tuple[tuple, dict],
                           inplace: tuple[int | str, ...] = ()) -> None:
    """Raise :class:`ContractError` naming the first input the call changed (argument index or keyword),
    unless ``inplace`` names it."""
    named = [*enumerate(args), *kwargs.items()]
    before = [*enumerate(pristine[0]), *pristine[1].items()]
    for (key, now), (_, then) in zip(named, before, strict=True):
        if key in inplace or not isinstance(now, torch.Tensor):
            continue
        if not _same_bits(now, then):
            where = f"argument {key}" if isinstance(key, int) else f"keyword {key!r}"
            raise ContractError(f"the call changed its input ({where}, {tuple(now.shape)} {now.dtype}); a "
                                "provider must leave its inputs as they were")


def check_outputs(out: object, expected: object, dtype: torch.dtype, device: torch.device,
                  contiguous: bool = False) -> None:
    """Raise :class:`ContractError` unless ``out`` has ``expected``'s count and shapes (``expected``: the
    plain PyTorch output), ``dtype``, ``device`` and, with ``contiguous``, a contiguous layout."""
    exp = as_outputs(expected)
    if out is None:
        raise ContractError(f"returned None; expected {_spell(exp)}")
    outs = as_outputs(out)
    if len(outs) != len(exp):
        raise ContractError(f"returned {len(outs)} outputs; expected {len(exp)}: {_spell(exp)}")
    for i, (o, e) in enumerate(zip(outs, exp, strict=True)):
        which = f"output {i}" if len(exp) > 1 else "the output"
        if not isinstance(o, torch.Tensor):
            raise ContractError(f"{which} is a {type(o).__name__}, not a torch.Tensor; "
                                f"expected {_spell(exp)}")
        if tuple(o.shape) != tuple(e.shape):
            raise ContractError(f"{which} has shape {tuple(o.shape)}; expected {tuple(e.shape)}")
        if o.dtype != dtype:
            raise ContractError(f"{which} is {o.dtype}; expected {dtype} (the inputs' dtype: its bytes are "
                                "what the roofline counts)")
        if o.device.type != torch.device(device).type:
            raise ContractError(f"{which} is on {o.device}; expected {device}")
        if contiguous and not o.is_contiguous():
            raise ContractError(f"{which} is not contiguous (strides {o.stride()}); this kernel's output "
                                "layout is part of what it computes")


def _spell(tensors: tuple) -> str:
    return ", ".join(f"a tensor {tuple(t.shape)} {t.dtype}" for t in tensors)


@contextlib.contextmanager
def plain_precision(dtype: torch.dtype, device: torch.device) -> Iterator[None]:
    """fp32 on a GPU: let the plain run's matmuls use TF32, as the kernels' ``tl.dot`` does
    (:func:`bench.timing.tf32_matmul`, the one switch the suite uses)."""
    if dtype != torch.float32 or torch.device(device).type != "cuda":
        yield
        return
    from bench.timing import tf32_matmul

    with tf32_matmul(True):
        yield


def to_reference(args: tuple, kwargs: dict, rdtype: torch.dtype) -> tuple[tuple, dict]:
    """The call with its first argument (``x`` or ``q``, whose dtype every ``<op>_ref`` returns) in
    ``rdtype``; each reference upcasts the other inputs itself (attention one sequence at a time, so a
    long cache is never copied whole in float64)."""
    first = args[0].to(rdtype) if isinstance(args[0], torch.Tensor) else args[0]
    return (first, *args[1:]), dict(kwargs)
