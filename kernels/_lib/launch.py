"""Launch plumbing shared by every launcher: the interpreter/autotune switch, the output allocation
seam, the kernel launch seam, config ids and the record of what the last launch ran.

A launcher's pure functions of shapes, dtypes and device (config choice, split counts, grids) are cached
per key in its ``configs.py`` (``functools.lru_cache``), so a repeated call with the same shapes redoes
only what depends on the tensors themselves (validation, pointer and overlap checks) and the launch.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch


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


def set_descriptor_allocator(device: torch.device) -> None:
    """Give Triton the global scratch memory that in-kernel tensor descriptors (``tl.make_tensor_descriptor``,
    the TMA path on sm_90) need, as ``torch.empty`` bytes on ``device`` (a CPU allocator under the
    interpreter)."""
    import triton

    def alloc(size: int, alignment: int, stream: int | None) -> torch.Tensor:
        return torch.empty(size, dtype=torch.int8, device=device)

    triton.set_allocator(alloc)


def empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Every launcher's output and workspace allocation: the one seam tests replace with a NaN fill, so
    an element a kernel fails to write cannot pass (call it as ``launch.empty``)."""
    return torch.empty(shape, dtype=dtype, device=device)


@dataclass(frozen=True)
class KernelLaunch:
    """One ``kernel[grid](*args, **kwargs)`` call as a launcher made it."""

    kernel: object
    grid: object
    args: tuple
    kwargs: dict


_RECORDING: list[list[KernelLaunch]] = []  # the open recorders, innermost last


def run(kernel: object, grid: tuple[int, ...] | Callable[[dict], tuple[int, ...]], *args: object,
        **kwargs: object) -> object:
    """Every launcher's kernel launch: ``kernel[grid](*args, **kwargs)`` (a ``@triton.jit`` function or
    a ``triton.autotune`` wrapper). Inside :func:`recording` the call is also kept, so a benchmark can
    time Triton's bare launch of the same compiled kernel with the same arguments."""
    if _RECORDING:
        _RECORDING[-1].append(KernelLaunch(kernel, grid, args, kwargs))
    return kernel[grid](*args, **kwargs)


@contextlib.contextmanager
def recording() -> Iterator[list[KernelLaunch]]:
    """Collect the :class:`KernelLaunch` of every :func:`run` inside the ``with`` block."""
    launches: list[KernelLaunch] = []
    _RECORDING.append(launches)
    try:
        yield launches
    finally:
        _RECORDING[:] = [r for r in _RECORDING if r is not launches]


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


def fit_stages(cfg: object, smem_bytes: Callable[[object], int], limit: int, min_stages: int = 2) -> object:
    """``cfg`` (a ``triton.Config``) with the most pipeline stages, at most its own and at least
    ``min_stages``, whose ``smem_bytes(config)`` fits ``limit`` bytes; ``None`` when none does. What a
    tile list chosen for 163-227 KiB of shared memory per block runs on a 99 KiB one (sm_86/89/120)."""
    import triton

    for stages in range(cfg.num_stages, min_stages - 1, -1):  # type: ignore[attr-defined]
        c = triton.Config(dict(cfg.kwargs), num_warps=cfg.num_warps, num_stages=stages)  # type: ignore[attr-defined]
        if smem_bytes(c) <= limit:
            return cfg if stages == cfg.num_stages else c  # type: ignore[attr-defined]
    return None


HIP_MAX_STAGES = 2  # AMD: what Triton's tutorial 03 HIP configs use for tl.dot tiles
HIP_WAVES_PER_EU = 2  # AMD: the occupancy the audit's floor asks for (roofline.model.arch min_waves_per_simd)


def hip_config(cfg: object, elem_bytes: int = 2) -> object:
    """A ``tl.dot`` tile chosen on NVIDIA as it runs on AMD (gfx942, gfx950): at most
    :data:`HIP_MAX_STAGES` stages, as Triton's own HIP matmul configs (AMD's stream pipeliner prefetches
    through registers, and every further stage is a tile of LDS: 64 KiB per CU on gfx942, so 3-4 stages
    leave one workgroup per CU), and ``waves_per_eu`` = :data:`HIP_WAVES_PER_EU` for 16-bit operands
    (``elem_bytes``; fp32 tiles hold twice the operand registers and spill when held to 256 VGPRs, so
    the compiler picks their occupancy). The audit on gfx942 and gfx950 checks the result (registers,
    spills, occupancy)."""
    import triton

    kwargs = {k: v for k, v in cfg.kwargs.items() if k != "waves_per_eu"}  # type: ignore[attr-defined]
    if elem_bytes < 4:
        kwargs["waves_per_eu"] = HIP_WAVES_PER_EU
    return triton.Config(kwargs,
                         num_warps=cfg.num_warps,  # type: ignore[attr-defined]
                         num_stages=min(cfg.num_stages, HIP_MAX_STAGES))  # type: ignore[attr-defined]


def record_launch(kernel: str, variant: str, config: str) -> None:
    """Remember what a launcher just ran (its variant and config id) for the benchmark's records."""
    _LAST_LAUNCH[kernel] = LaunchRecord(kernel, variant, config)


def last_launch(kernel: str) -> LaunchRecord | None:
    """What the last launch of ``kernel`` ran, or ``None`` if it has not run in this process."""
    return _LAST_LAUNCH.get(kernel)
