"""Argument validation shared by every launcher: each violation raises ``TypeError``/``ValueError``
naming the argument and what was expected, before anything launches.

The one device rule (:func:`check_device`): a CUDA tensor, or a CPU tensor under the interpreter.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable, Mapping

import numpy as np
import torch

from kernels._lib.launch import interpreting

SUPPORTED_DTYPES: tuple[torch.dtype, ...] = (torch.float16, torch.bfloat16, torch.float32)


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


def check_device(name: str, t: torch.Tensor) -> None:
    """The one device rule of every launcher: a CUDA tensor, or a CPU tensor under the interpreter.

    Meta tensors (no memory) and other devices are refused with a ``ValueError`` naming ``name``.
    """
    kind = t.device.type
    if kind == "cuda" or (kind == "cpu" and interpreting()):
        return
    if interpreting():
        raise ValueError(f"{name}: expected a CUDA tensor or (under TRITON_INTERPRET=1) a CPU tensor, "
                         f"got one on {t.device}")
    raise ValueError(f"{name}: expected a CUDA tensor (CPU tensors need TRITON_INTERPRET=1), got {t.device}")


def check_int(name: str, value: object, *, lo: int | None = None, hi: int | None = None,
              none_ok: bool = False) -> int:
    """The one integer rule: anything ``operator.index`` accepts (``int``, ``np.int64``, ...) except
    bools, within ``[lo, hi]``. Returns a Python ``int``; raises ``ValueError`` naming ``name``.
    ``none_ok`` only adds "or None" to the message (the caller handles ``None`` itself)."""
    if lo == 1 and hi is None:
        expected = "a positive integer"
    elif lo is not None and hi is not None:
        expected = f"an integer in [{lo}, {hi}]"
    else:
        expected = "an integer" + (f" >= {lo}" if lo is not None else f" <= {hi}" if hi is not None else "")
    expected = f"{name}: expected {expected}" + (" or None" if none_ok else "")
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{expected}, got the bool {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{expected}, got {value!r} ({type(value).__name__})") from None
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{expected}, got {v}")
    return v


def check_positive(name: str, value: object) -> int:
    """:func:`check_int` with ``lo=1``."""
    return check_int(name, value, lo=1)


def check_flag(name: str, value: object) -> bool:
    """The one flag rule: ``bool`` or ``np.bool_`` (not ``1``, not ``None``); raises ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def check_real(name: str, value: object) -> float:
    """The one scalar rule: a finite real number (``int``, ``float``, numpy integer or floating scalar),
    not a bool. Returns a Python ``float``; raises ``ValueError`` naming ``name`` (also for integers too
    large for a float, e.g. ``10**400``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a finite real number, got {value!r} ({type(value).__name__})")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite real number, got {value!r}")
    return v


def check_cache_len_range(cache_len: torch.Tensor, new_tokens: int, capacity: int, *, entries: str,
                          total: str) -> None:
    """Refuse ``cache_len`` (int32 ``[B]``, B > 0) unless ``0 <= cache_len[b]`` and ``cache_len[b] +
    new_tokens <= capacity`` (``k_cache.shape[2]``), at the cost of one device-to-host copy. ``entries``
    names the elements and ``total`` the sum in the messages (``"lengths"``, ``"cache_len + q_len"``)."""
    lo, hi = (int(x) for x in torch.stack(torch.aminmax(cache_len)).tolist())  # one device sync
    if lo < 0:
        raise ValueError(f"cache_len: {entries} must be >= 0, got a minimum of {lo}")
    if hi + new_tokens > capacity:
        raise ValueError(f"cache_len: {total} = {hi} + {new_tokens} exceeds the cache capacity {capacity} "
                         f"(k_cache.shape[2])")


def check_vector(name: str, t: object, length: int, like: torch.Tensor, like_name: str,
                 dtypes: Iterable[torch.dtype] | None = None) -> torch.Tensor:
    """The one rule for small 1-D arguments (biases, ``cache_len``): shape ``[length]``, ``like``'s device
    (and dtype unless ``dtypes`` is given), ANY stride. Returns it contiguous (a strided one is copied:
    ``length`` elements, negligible next to what the kernel moves)."""
    check_tensor(name, t, ndim=1, dtypes=dtypes if dtypes is not None else SUPPORTED_DTYPES,
                 last_dim_contiguous=False)
    if dtypes is None:
        check_same_dtype_device(name, t, like_name, like)
    elif t.device != like.device:
        raise ValueError(f"{name}: on {t.device} but {like_name} is on {like.device}")
    check_shape(name, t, (length,))
    return t.contiguous()


# CUDA's grid limits per axis (x, y, z); the interpreter has none, the launchers check them anyway so
# that a shape is refused (or accepted) the same way on every device.
CUDA_GRID_LIMITS: tuple[int, int, int] = (2**31 - 1, 65535, 65535)


def check_grid(grid: tuple[int, ...], axes: tuple[str, ...]) -> None:
    """Refuse a launch grid past :data:`CUDA_GRID_LIMITS`; ``axes[i]`` says what axis ``i`` counts in
    terms of the arguments (``"q: batch"``), so the error names them."""
    for axis, (count, what, limit) in enumerate(zip(grid, axes, CUDA_GRID_LIMITS, strict=False)):
        if count > limit:
            raise ValueError(f"{what} = {count:,} programs on CUDA grid axis {'xyz'[axis]}, past its limit "
                             f"of {limit:,}; split the call")


# ----------------------------------------------------------------------------------------------
# Memory overlap: outputs must not partially alias inputs, or themselves (torch's rule for its
# own in-place ops). Exact for strided views: numpy's bounded-Diophantine solver over the byte
# addresses (no memory is touched, so CUDA pointers work too).
# ----------------------------------------------------------------------------------------------

OVERLAP_MAX_WORK = 100_000  # numpy's search bound; beyond it the answer is "may overlap" (refused)
_TOO_HARD = getattr(np, "exceptions", np).TooHardError  # numpy.exceptions arrived in numpy 1.25


class _Bytes:
    """A numpy view of a tensor's address range, built from its pointer, sizes and strides only."""

    def __init__(self, t: torch.Tensor) -> None:
        isz = t.element_size()
        self.__array_interface__ = {
            "data": (t.data_ptr(), False), "shape": tuple(t.shape),
            "strides": tuple(s * isz for s in t.stride()), "typestr": f"|V{isz}", "version": 3,
        }


def _byte_range(t: torch.Tensor) -> tuple[int, int]:
    """``[first, last)`` byte address ``t`` can touch (non-negative strides, as torch's; ``numel > 0``)."""
    span = 1
    for n, st in zip(t.shape, t.stride(), strict=True):
        span += (n - 1) * st
    start = t.data_ptr()
    return start, start + span * t.element_size()


def _overlap(a: torch.Tensor, ra: tuple[int, int], b: torch.Tensor) -> str:
    """:func:`memory_overlap` of non-empty tensors on one device, ``ra`` being ``a``'s byte range."""
    rb = _byte_range(b)
    if ra[1] <= rb[0] or rb[1] <= ra[0]:
        return "none"  # the usual case, separate allocations: no need for the exact solver
    if ra == rb and a.stride() == b.stride() and a.shape == b.shape and a.element_size() == b.element_size():
        return "full"
    try:
        shared = np.shares_memory(np.asarray(_Bytes(a)), np.asarray(_Bytes(b)), max_work=OVERLAP_MAX_WORK)
    except _TOO_HARD:
        shared = True  # could not prove them disjoint: refuse, as a conservative answer
    return "partial" if shared else "none"


def memory_overlap(a: torch.Tensor, b: torch.Tensor) -> str:
    """``"none"``, ``"full"`` (the same elements in the same layout: an in-place operand) or
    ``"partial"`` (any other sharing of bytes) between two tensors."""
    if a.numel() == 0 or b.numel() == 0 or a.device != b.device:
        return "none"
    return _overlap(a, _byte_range(a), b)


def has_internal_overlap(t: torch.Tensor) -> bool:
    """True when two different indices of ``t`` address the same memory (an ``expand``-ed tensor,
    stride 0; or strides that interleave). Exact: two indices that first differ in dim ``d`` exist iff
    the view with dim ``d`` at ``1:`` shares memory with the view at ``0:1`` (earlier dims at 0)."""
    if t.is_contiguous() or t.numel() <= 1:
        return False
    dims = [(size, stride) for size, stride in zip(t.shape, t.stride(), strict=True) if size > 1]
    if any(stride == 0 for _, stride in dims):
        return True
    span = 0  # fast path: sorted by stride, each stride steps past everything the smaller ones reach
    for size, stride in sorted(dims, key=lambda d: d[1]):
        if stride <= span:
            break
        span += stride * (size - 1)
    else:
        return False
    for d in range(t.dim()):
        if t.shape[d] > 1:
            head = t[(0,) * d]  # earlier dims fixed: equal indices there move both sides equally
            if memory_overlap(head.narrow(0, 1, head.shape[0] - 1), head.narrow(0, 0, 1)) != "none":
                return True
    return False


def check_no_overlap(out_name: str, out: torch.Tensor, inputs: Mapping[str, torch.Tensor | None]) -> None:
    """Refuse an output that aliases itself or shares any memory with ``inputs`` (other operands,
    including other outputs). An in-place operand is the output itself, so it is not listed in
    ``inputs``. Raises ``ValueError`` naming both arguments."""
    if has_internal_overlap(out):
        raise ValueError(f"{out_name}: an output whose elements overlap in memory (strides {out.stride()} "
                         f"for shape {tuple(out.shape)}, e.g. expanded), so two results would land in one "
                         f"place; pass a tensor with its own memory per element")
    if out.numel() == 0:
        return
    out_range = _byte_range(out)
    for name, t in inputs.items():
        if t is None or t.numel() == 0 or t.device != out.device:
            continue
        if _overlap(out, out_range, t) != "none":
            raise ValueError(f"{name}: shares memory with the output {out_name}, so the kernel could "
                             f"overwrite values before reading them or write one place twice (torch "
                             f"refuses such overlap too); pass separate memory, e.g. a .clone()")
