"""What everything outside an op's package needs to know about it, declared once per op in
``kernels/<op>/spec.py`` as ``SPEC = OpSpec(...)`` (plain torch; nothing from ``bench``): the inputs for a
sweep point, the launcher and its arguments, the float64 reference, the eager torch baseline, an example
GPU case, the shipped configs (and how to run one explicitly), and a validation sample (tiny launch
arguments).

Readers: the benchmark (``bench/test_ops.py`` and :mod:`bench.runner` drive every op from
:func:`op_spec`), the provider registry (``triton`` is :attr:`OpSpec.launcher`, ``torch`` is
:attr:`OpSpec.baseline`), ``tests/test_validation.py`` (:attr:`OpSpec.sample_args`),
``tests/test_compiled.py`` (:attr:`OpSpec.shipped_configs`, :attr:`OpSpec.run_shipped`) and
``scripts/timing_crosscheck.py`` (:attr:`OpSpec.gpu_cases`).

Import a spec (:func:`op_spec`) only after the interpreter decision (``TRITON_INTERPRET``): it imports
the op's package, whose ``@triton.jit`` functions read it.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable

import torch
import triton

from kernels._lib.launch import config_id, triton_config_id

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def randn(gen: torch.Generator, *shape: int, dtype: torch.dtype, device: torch.device,
          scale: float = 1.0) -> torch.Tensor:
    """Seeded normal values made on ``device`` in ``dtype``, times ``scale``."""
    t = torch.randn(shape, generator=gen, dtype=dtype, device=device)
    return t.mul_(scale) if scale != 1.0 else t


def generator(device: torch.device, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def seeded(*shape: int, dtype: torch.dtype, seed: int = 0, scale: float = 1.0, device: object = "cuda",
           offset: int = 0, pad_last: int = 0) -> torch.Tensor:
    """Seeded on the CPU, then moved to ``device`` (the same values on every device). ``offset`` elements
    of storage before the tensor (1 makes its base pointer misaligned); ``pad_last`` extra elements per
    row of the last dimension (odd strides)."""
    full = list(shape)
    full[-1] += pad_last
    flat = (torch.randn(math.prod(full) + offset, generator=torch.Generator().manual_seed(seed)) * scale)
    t = flat.to(dtype).to(device)[offset:].view(full)
    return t[..., : shape[-1]] if pad_last else t


def assert_close(got: torch.Tensor, ref: torch.Tensor, tol: tuple[float, float]) -> None:
    """``got`` within ``(atol, rtol)`` of ``ref``, compared in float64 (``AssertionError`` otherwise)."""
    torch.testing.assert_close(got.double(), ref.double(), atol=tol[0], rtol=tol[1])


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The eager-PyTorch baseline of one op, in the launcher's signature: the function and what it runs, in
    words. ``compilable``/``to_compilable``: what ``torch.compile`` compiles instead, and how the launcher's
    arguments map to it (a form without host reads, e.g. attention's lengths as a Python int)."""

    fn: Callable
    variant: str
    compilable: Callable | None = None
    to_compilable: Callable[[tuple], tuple] | None = None


@dataclasses.dataclass(frozen=True)
class Shipped:
    """One config an op can launch on an architecture: ``config`` is a ``triton.Config`` (autotuned
    kernels) or ``(meta, num_warps, num_stages)`` from a heuristic; ``shape`` is a shape that launches it."""

    kernel: str
    variant: str
    config: object
    shape: tuple

    @property
    def id(self) -> str:
        cfg = self.config
        cid = triton_config_id(cfg) if isinstance(cfg, triton.Config) else config_id(*cfg)
        return f"{self.kernel}-{self.variant}-{cid}-{'x'.join(map(str, self.shape))}"


def distinct(items: list[Shipped]) -> list[Shipped]:
    """``items`` without repeats of a (kernel, variant, config), first kept."""
    seen, out = set(), []
    for s in items:
        key = (s.kernel, s.variant, repr(s.config))
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """One op, declared once (see the module docstring). Inputs are a dict ``x`` (device tensors, sizes,
    and ``layout``, a sentence describing them); ``launch_args(x)`` is ``(args, kwargs)`` of the launcher,
    which every provider's callable takes too."""

    kernel: str
    build: Callable[..., dict]  # (point: roofline.model.sweeps.SweepPoint, device) -> x
    launch_args: Callable[[dict], tuple[tuple, dict]]
    launcher: Callable  # the typed Triton launcher (the ``triton`` provider)
    reference: Callable  # float64-capable reference (``compute_dtype=``), the launcher's signature
    baseline: Baseline  # the ``torch`` provider, every speedup's baseline
    interpreter_shape: Callable[[dict], dict]  # the shape the interpreter checks for a point's shape
    gpu_cases: tuple[tuple[str, str], ...]  # (sweep, label) of the quick GPU sweep: the timing cross-check
    shipped_configs: Callable[[int], list[Shipped]]  # every config it can launch on compute capability arch
    run_shipped: Callable[[Shipped, torch.dtype, torch.device], None]  # launch one explicitly, check it
    sample_args: Callable[[object], tuple[tuple, dict]]  # tiny launch arguments on a device (validation)
    first_arg: str  # the name of the launcher's first tensor argument (its device check names it)
    later_kwargs: dict = dataclasses.field(default_factory=dict)  # keywords of calls after the checked one
    contiguous: bool = False  # outputs must be contiguous: the layout is part of what the kernel computes
    inplace: tuple[int | str, ...] = ()  # launch arguments (index or keyword) a call may change by contract
    # (args, kwargs) -> None (check the whole output) or ([(part args, part kwargs, select output)], note):
    # the parts of a case too large for the reference at once
    reference_parts: Callable[[tuple, dict], tuple[list, str] | None] | None = None


def op_spec(kernel: str) -> OpSpec:
    """``kernels/<kernel>/spec.py``'s ``SPEC`` (``ValueError`` naming the file if it declares another op)."""
    spec = importlib.import_module(f"kernels.{kernel}.spec").SPEC
    if not isinstance(spec, OpSpec) or spec.kernel != kernel:
        raise ValueError(f"kernels/{kernel}/spec.py: expected SPEC = OpSpec({kernel!r}, ...), "
                         f"got {spec!r:.80}")
    return spec
