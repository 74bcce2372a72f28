"""Configs, pruning and the launch plan of :mod:`kernels.gemv`: which variant, which config, how many K
splits. The first config surviving pruning is the shape heuristic (launched when not autotuning).
"""

from __future__ import annotations

import functools

import triton

from kernels._lib import device, launch
from kernels._lib.validation import CUDA_GRID_LIMITS
from kernels.gemv.kernels import _gemv_splitk_kernel, _gemv_tiled_kernel

KERNEL = "gemv"  # the name in launch records and audit lines
SPLITK_MAX_BATCH = 4  # select_variant: B <= 4 -> "splitk" (CUDA cores), B > 4 -> "tiled" (tensor cores)
PROGRAMS_PER_SM = {"splitk": 4, "tiled": 2}  # split-K target: programs in flight per SM
MAX_SPLITS = 64
MIN_K_PER_SPLIT = 512  # a split streams at least this many K elements (amortises its partial write)

# splitk: [BLOCK_N, BLOCK_K] weight tile over 128 threads = 16-32 elements (2-4 x 128-bit loads) per
# thread per step; one fp32 accumulator of the same size per batch row. No pipelining (plain LDG).
SPLITK_CONFIGS = [
    triton.Config({"BLOCK_B": 1, "BLOCK_N": 32, "BLOCK_K": 128}, num_warps=4, num_stages=1),
    triton.Config({"BLOCK_B": 1, "BLOCK_N": 16, "BLOCK_K": 256}, num_warps=4, num_stages=1),
    triton.Config({"BLOCK_B": 2, "BLOCK_N": 32, "BLOCK_K": 128}, num_warps=4, num_stages=1),
    triton.Config({"BLOCK_B": 4, "BLOCK_N": 16, "BLOCK_K": 128}, num_warps=4, num_stages=1),
]
# splitk's grid axis y counts N tiles: refuse (for either variant alike) an N past its limit at the
# narrowest tile
MAX_N = CUDA_GRID_LIMITS[1] * min(c.kwargs["BLOCK_N"] for c in SPLITK_CONFIGS)
# tiled: shared memory ~ num_stages * (BLOCK_M + BLOCK_N) * BLOCK_K * elem_bytes, within each
# architecture's per-block limit at every dtype (the audit's shared-memory column, sm_80 and sm_90).
# BLOCK_N (weight rows, the MMA's M side) >= 64 with 4 warps per warpgroup: every config is wgmma on
# sm_90. Dropped after the sm_80/sm_90 compile: BLOCK_N=256 at BLOCK_M=128 (at the register limit, spills).
TILED_CONFIGS = [
    triton.Config({"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 128}, num_warps=4, num_stages=4),
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 128}, num_warps=4, num_stages=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 64}, num_warps=4, num_stages=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64}, num_warps=8, num_stages=3),
]
# reduce: 64 threads x 4 fp32 (one 128-bit load per split); small blocks so B=1 still spreads over SMs.
REDUCE_CONFIG = triton.Config({"BLOCK_N": 256}, num_warps=2, num_stages=1)


def prune_splitk_configs(configs: list, batch: int, elem_bytes: int = 2, arch: int = 0) -> list:
    """Keep the configs whose batch block fits ``batch`` (1, 2, or 4 rows per weight tile)."""
    block_b = min(triton.next_power_of_2(max(batch, 1)), 4)
    return [c for c in configs if c.kwargs["BLOCK_B"] == block_b]


def tiled_smem_bytes(cfg: triton.Config, elem_bytes: int) -> int:
    """Upper bound on the tiled kernel's pipelined shared memory: ``num_stages`` x and W tiles, bytes."""
    kw = cfg.kwargs
    return cfg.num_stages * (kw["BLOCK_M"] + kw["BLOCK_N"]) * kw["BLOCK_K"] * elem_bytes


def fit_tiled_stages(cfg: triton.Config, elem_bytes: int, arch: int) -> triton.Config | None:
    """``cfg`` as it runs on ``arch`` (0 off a GPU): as shipped where the list was compiled to fit
    (:data:`kernels._lib.device.SHARED_CONFIG_SMEM_PER_BLOCK` or more per block), else with the stages
    its estimate (:func:`tiled_smem_bytes`) fits (sm_86/89/120: 99 KiB), ``None`` if 2 stages do not;
    on AMD as :func:`kernels._lib.launch.hip_config` makes it."""
    if device.is_hip(arch):
        return launch.hip_config(cfg, elem_bytes)
    limit = device.smem_per_block(arch) if arch else device.SHARED_CONFIG_SMEM_PER_BLOCK
    if limit >= device.SHARED_CONFIG_SMEM_PER_BLOCK:
        return cfg
    return launch.fit_stages(cfg, lambda c: tiled_smem_bytes(c, elem_bytes), limit)


def prune_tiled_configs(configs: list, batch: int, elem_bytes: int = 2, arch: int = 0) -> list:
    """Keep the configs with ``BLOCK_M <= max(16, next_pow2(batch))``, largest ``BLOCK_M`` first, each as
    it runs on ``arch`` (:func:`fit_tiled_stages`; one that cannot fit is dropped)."""
    cap = min(max(16, triton.next_power_of_2(max(batch, 1))), 128)
    kept = [c for c in configs if c.kwargs["BLOCK_M"] <= cap]
    fitted = [f for f in (fit_tiled_stages(c, elem_bytes, arch) for c in kept) if f is not None]
    return sorted(fitted or kept[-1:], key=lambda c: -c.kwargs["BLOCK_M"])  # stable: list order among equals


# Per variant: the kernel, its shipped configs, its pruning predicate, and the config key that counts
# batch rows per program.
JIT_BY_VARIANT = {"splitk": _gemv_splitk_kernel, "tiled": _gemv_tiled_kernel}
CONFIGS = {"splitk": SPLITK_CONFIGS, "tiled": TILED_CONFIGS}
PRUNE = {"splitk": prune_splitk_configs, "tiled": prune_tiled_configs}
BLOCK_ROWS = {"splitk": "BLOCK_B", "tiled": "BLOCK_M"}


@functools.lru_cache(maxsize=None)
def autotuned(variant: str):
    """The ``@triton.autotune`` wrapper of ``variant``'s kernel over every shipped config, pruned by B."""
    return triton.autotune(
        configs=CONFIGS[variant], key=["B", "N", "K", "K_PER_SPLIT", "DIRECT"],
        prune_configs_by={"early_config_prune": lambda configs, named_args, **_: PRUNE[variant](
            configs, named_args["B"], named_args["x_ptr"].element_size(),
            device.arch(named_args["x_ptr"].device))},
    )(JIT_BY_VARIANT[variant])


def select_variant(batch: int) -> str:
    """The variant :func:`kernels.gemv.gemv` runs for ``x[batch, k] @ W[n, k]^T``: ``"splitk"`` up to
    :data:`SPLITK_MAX_BATCH` rows (one weight pass, CUDA-core FMAs, 1-4 rows per weight tile), else
    ``"tiled"`` (tensor cores). N and K do not move the crossover."""
    return "splitk" if batch <= SPLITK_MAX_BATCH else "tiled"


def split_count(programs: int, k: int, batch: int, elem_bytes: int, grain: int, n_sm: int,
                per_sm: int) -> tuple[int, int]:
    """``(splits, k_per_split)`` for a launch of ``programs`` tiles over a K of ``k``.

    Aims at ``per_sm * n_sm`` programs, with at most ``k // MIN_K_PER_SPLIT`` splits and at most
    ``elem_bytes * k // (80 * batch)`` (the fp32 workspace written and read back, ``8*B*N*S`` bytes,
    stays under 10% of the weight's ``elem_bytes*N*K``). ``k_per_split`` is a multiple of ``grain``
    (every ``BLOCK_K`` the launch may use divides it) and no split is empty.
    """
    want = triton.cdiv(per_sm * n_sm, max(programs, 1))
    cap = min(MAX_SPLITS, max(1, k // MIN_K_PER_SPLIT), max(1, elem_bytes * k // (80 * max(batch, 1))))
    return splits_of(min(want, cap), k, grain)


def splits_of(splits: int, k: int, grain: int) -> tuple[int, int]:
    """``(splits, k_per_split)`` for about ``splits`` splits of ``k``, each a whole number of ``grain``s
    and none empty."""
    k_per_split = triton.cdiv(triton.cdiv(k, grain), max(splits, 1)) * grain
    return triton.cdiv(k, k_per_split), k_per_split


@functools.lru_cache(maxsize=4096)
def plan(variant: str, batch: int, n: int, k: int, elem_bytes: int, n_sm: int, split_k: int | None,
         tune: bool, arch: int = 0) -> tuple[triton.Config, int, int]:
    """``(config, splits, k_per_split)`` of one launch on ``arch`` (0 off a GPU); cached, so a decode
    step pays for it once."""
    configs = PRUNE[variant](CONFIGS[variant], batch, elem_bytes, arch)
    cfg = configs[0]
    grain = max(c.kwargs["BLOCK_K"] for c in configs) if tune else cfg.kwargs["BLOCK_K"]
    if split_k is not None:
        return (cfg, *splits_of(split_k, k, grain))
    programs = triton.cdiv(batch, cfg.kwargs[BLOCK_ROWS[variant]]) * triton.cdiv(n, cfg.kwargs["BLOCK_N"])
    return (cfg, *split_count(programs, k, batch, elem_bytes, grain, n_sm, PROGRAMS_PER_SM[variant]))
