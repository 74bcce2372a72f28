"""Configs and the variant choice of :mod:`kernels.softmax`: power-of-two heuristics (row kernels need
no autotuning).
"""

from __future__ import annotations

import functools

import triton

KERNEL = "softmax"  # the name in launch records and audit lines

# Largest row the "single" variant keeps in registers: 32768 fp32 values over 16 warps is 64 per thread;
# the sm_80/sm_90 compile of this exact config shows no spills (see compile_cases and the audit). The next
# power of two (65536: 128 per thread, or 64 per thread in a 1024-thread block capped at 64 registers)
# cannot fit, so GPT-2's 50,257-column rows go to "online".
SINGLE_BLOCK_LIMIT = 32768
MIN_TILE = 2048  # elements per "single" program: short rows are packed until a tile has this many
VALUES_PER_THREAD = 16  # fp32 values per thread in a "single" tile until num_warps reaches 16
ONLINE_BLOCK_N = 4096
ONLINE_NUM_WARPS = 8


@functools.lru_cache(maxsize=None)
def single_config(n_cols: int, n_rows: int | None = None) -> tuple[dict, int, int]:
    """``({"BLOCK_N", "ROWS"}, num_warps, num_stages)`` of the ``"single"`` kernel for rows of ``n_cols``.

    ``n_rows`` (when given) caps the rows per program so tiny inputs do not compute padding rows.
    """
    block_n = triton.next_power_of_2(n_cols)
    rows = max(1, MIN_TILE // block_n)
    if n_rows is not None:
        rows = min(rows, triton.next_power_of_2(max(n_rows, 1)))
    tile = rows * block_n
    num_warps = min(16, max(4, tile // (32 * VALUES_PER_THREAD)))
    return {"BLOCK_N": block_n, "ROWS": rows}, num_warps, 1


def online_config(n_cols: int) -> tuple[dict, int, int]:
    """``({"BLOCK_N"}, num_warps, num_stages)`` of the ``"online"`` kernel."""
    block_n = min(ONLINE_BLOCK_N, triton.next_power_of_2(n_cols))
    # >= 8 elements per thread (one 128-bit fp16 access) when a forced "online" launch has short rows
    return {"BLOCK_N": block_n}, min(ONLINE_NUM_WARPS, max(1, block_n // 256)), 1


def select_variant(n_cols: int) -> str:
    """``"single"`` when a row of ``n_cols`` fits in one program's registers, else ``"online"``. The
    limit is the same for every dtype because the row is held in fp32."""
    return "single" if n_cols <= SINGLE_BLOCK_LIMIT else "online"
