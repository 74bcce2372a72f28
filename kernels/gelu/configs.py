"""Configs of :mod:`kernels.gelu`: a power-of-two heuristic (elementwise kernels need no autotuning)."""

from __future__ import annotations

import functools

import triton

KERNEL = "gelu"  # the name in launch records and audit lines
TILE = 4096  # elements per program
MAX_BLOCK_N = 1024  # columns per tile when tiling rows (bias loaded once per tile)
NUM_WARPS = 4


@functools.lru_cache(maxsize=1024)
def tile_config(n_rows: int, n_cols: int) -> tuple[dict, int, int]:
    """``({"BLOCK_M", "BLOCK_N"}, num_warps, num_stages)`` for ``n_rows`` rows of ``n_cols`` elements."""
    if n_rows == 1:  # flat
        return {"BLOCK_M": 1, "BLOCK_N": min(TILE, triton.next_power_of_2(n_cols))}, NUM_WARPS, 1
    block_n = min(MAX_BLOCK_N, triton.next_power_of_2(n_cols))
    block_m = min(TILE // block_n, triton.next_power_of_2(n_rows))
    return {"BLOCK_M": block_m, "BLOCK_N": block_n}, NUM_WARPS, 1
