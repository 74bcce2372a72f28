"""Row softmax over the last dimension: ``y[r, :] = exp(s*x[r, :] - m_r) / sum(exp(s*x[r, :] - m_r))``
with ``m_r = max(s*x[r, :])`` and ``s`` an optional scale (1 when ``None``).

Shapes: any ``x`` whose last dimension is contiguous; the leading dimensions are flattened to
``rows`` through their strides (no copy when they collapse to one row stride, one ``reshape`` copy
otherwise). ``y`` has ``x``'s shape and dtype and is contiguous. fp16, bf16 and fp32 in; the math is
fp32 throughout. FLOPs: 5 per element (``roofline/cost.py``). Compulsory bytes: ``2 * rows * cols *
itemsize`` (read once, write once).

Two variants, picked by :func:`select_variant` from the row length:

- ``"single"`` (``cols <= SINGLE_BLOCK_LIMIT``): one program holds whole rows in registers, so each
  element is read once and written once -- exactly the compulsory bytes. Short rows are packed several
  to a program (``ROWS`` x ``BLOCK_N`` tiles of ~2048+ elements) so that a program still issues
  several 128-bit loads per thread; ``num_warps`` grows with the tile (16 fp32 values per thread up to
  16 warps, then up to 64 per thread). ``SINGLE_BLOCK_LIMIT`` (32,768) is the largest row whose
  sm_80/sm_90 compile shows no local memory (spill) in every dtype (94-114 registers of the 128 a
  512-thread block may use); the audit's compile cases include that exact config. Rows that long leave
  one program per SM, so load, reduce and store phases do not overlap across programs; the 1-read
  design still moves 2/3 of the bytes of the 2-read alternative.
- ``"online"`` (longer rows, vocabularies of 128k-256k): one program per row loops over
  ``BLOCK_N``-column chunks keeping a running max and a running sum rescaled by ``exp(m_old - m_new)``,
  then a second loop normalises. The row is READ TWICE: ``3 * rows * cols * itemsize`` bytes move,
  1.5x the compulsory bytes (the cost model counts 2x, so the roofline shows this variant at <= 67%
  of the memory roof unless the second read hits L2). The first pass loads with
  ``evict_last`` and the second with ``evict_first`` so that, with few enough rows in flight, the
  re-read is served from L2; at the vocabularies above it mostly is not (8 resident programs per SM
  x 132 SMs x a 256 KB row is ~270 MB, far past a 50 MB L2), so expect the re-read from HBM there.
  torch's generic (non-shared-memory) softmax reads such rows three times, so this is still fewer
  bytes than the baseline.

Numerics (as ``torch.softmax``): the max is subtracted before ``exp``, so 1e4 or fp16-max inputs do
not overflow; ``-inf`` entries get probability 0; a row that is all ``-inf`` gives NaN; a row with
``+inf`` or NaN gives NaN. The online variant guards its rescaling so leading ``-inf`` chunks do not
poison the running sum.

Loads and stores: each program's columns are contiguous, and Triton's JIT specialises pointers,
row strides and ``cols`` that are multiples of 16, which gives 128-bit ``LDG.E.128``/``STG.E.128``.
When ``cols`` is not a multiple of 16 (GPT-2's 50,257; attention rows of odd length) the JIT cannot
prove the row starts and the ``cols`` mask aligned, so such launches fall back to narrower (still
coalesced) loads for the whole row. A padded row stride alone does not help (checked: the mask still
breaks the vectors); padding the row itself with ``-inf`` to 50,304 columns does (probability 0).

GPU design targets (not measured here: there is no GPU in this project's CI): >= 90% of the measured
copy bandwidth for ``"single"`` on tensors several times larger than L2 (one read, one write, 128-bit
accesses, several loads in flight per thread, enough programs to fill every SM), and never slower than
``torch.softmax``, whose row kernels also read once when a row fits and read 2-3 times otherwise.
Known gaps, for the benchmark to confirm or refute: ``"online"`` runs one program per row, so fewer
rows than SMs leave the GPU under-filled (torch has the same limitation; a split-row variant would fix
it and is not shipped). Between 32,769 columns and what fits in shared memory (about 100k fp16 columns
on sm_90), torch's softmax caches the row in shared memory and reads it once, where ``"online"`` reads
it twice unless L2 serves the second read: GPT-2's 50,257-column rows are where this kernel is most
likely to be slower than torch, all the more because torch also realigns unaligned rows with a
scalar prologue and then loads 128 bits at a time, where this kernel falls back to narrower loads for
the whole row (Triton needs the alignment at compile time). A 65,536-element register tile spills
(checked: 128 registers and 400-500 bytes of stack at 16 warps), so the register design cannot close
that gap.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from kernels._lib.aot import CompileCase, TRITON_TYPE
from kernels._lib.launch import config_id, record_launch
from kernels._lib.validation import check_device, check_real, check_tensor, collapsed_row_stride

# ----------------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------------


@triton.jit
def _softmax_single_kernel(
    y_ptr, x_ptr,
    n_rows, n_cols,
    stride_xrow, stride_yrow,
    scale,
    BLOCK_N: tl.constexpr, ROWS: tl.constexpr,
):
    """ROWS whole rows per program, each held in registers: one read, one write per element."""
    pid = tl.program_id(0)
    rows = pid.to(tl.int64) * ROWS + tl.arange(0, ROWS)  # int64: rows * stride can pass 2**31
    cols = tl.arange(0, BLOCK_N)
    mask = (rows < n_rows)[:, None] & (cols < n_cols)[None, :]
    # read rows*cols*itemsize bytes (the only read)
    x = tl.load(x_ptr + rows[:, None] * stride_xrow + cols[None, :], mask=mask, other=0.0)
    # mask after scaling: a negative scale must not turn the padding into +inf
    z = tl.where(mask, x.to(tl.float32) * scale, float("-inf"))
    m = tl.max(z, axis=1)
    p = tl.exp(z - m[:, None])  # all -inf row: -inf - -inf = NaN, as torch
    inv = 1.0 / tl.sum(p, axis=1)
    y = p * inv[:, None]
    # write rows*cols*itemsize bytes
    tl.store(y_ptr + rows[:, None] * stride_yrow + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _softmax_online_kernel(
    y_ptr, x_ptr,
    n_cols,
    stride_xrow, stride_yrow,
    scale,
    BLOCK_N: tl.constexpr,
):
    """One row per program, any length: a running max/sum pass, then a normalising pass."""
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_xrow
    y_row = y_ptr + row * stride_yrow
    cols = tl.arange(0, BLOCK_N)
    m_i = tl.full([], float("-inf"), tl.float32)
    d_i = tl.zeros([], tl.float32)
    for start in range(0, n_cols, BLOCK_N):
        c = start + cols
        mask = c < n_cols
        # pass 1 reads cols*itemsize bytes; keep them in L2 for pass 2
        x = tl.load(x_row + c, mask=mask, other=0.0, eviction_policy="evict_last")
        z = tl.where(mask, x.to(tl.float32) * scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(z, axis=0))
        # while every value so far is -inf, exp(-inf - -inf) would be NaN: shift by 0 instead
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        d_i = d_i * tl.exp(m_i - m_safe) + tl.sum(tl.exp(z - m_safe), axis=0)
        m_i = m_new
    inv = 1.0 / d_i  # all -inf row: m_i = -inf and the exp below is NaN, as torch
    for start in range(0, n_cols, BLOCK_N):
        c = start + cols
        mask = c < n_cols
        # pass 2 reads the row again (cols*itemsize bytes, from L2 if it stayed) and writes it
        x = tl.load(x_row + c, mask=mask, other=0.0, eviction_policy="evict_first")
        y = tl.exp(x.to(tl.float32) * scale - m_i) * inv
        tl.store(y_row + c, y.to(y_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------------------------
# Configs: power-of-two heuristics (row kernels need no autotuning)
# ----------------------------------------------------------------------------------------------

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


def select_variant(n_cols: int, dtype: object = None) -> str:
    """``"single"`` when a row of ``n_cols`` fits in one program's registers, else ``"online"``.

    ``dtype`` is accepted for symmetry with the other kernels; the limit is the same for every
    dtype because the row is held in fp32.
    """
    return "single" if n_cols <= SINGLE_BLOCK_LIMIT else "online"


# ----------------------------------------------------------------------------------------------
# Launcher
# ----------------------------------------------------------------------------------------------




def softmax(x: torch.Tensor, *, scale: float | None = None, variant: str | None = None) -> torch.Tensor:
    """Softmax of ``scale * x`` over the last dimension.

    Parameters
    ----------
    x : Tensor, any shape ``[..., cols]``, fp16/bf16/fp32, last dimension contiguous (stride 1).
    scale : a finite real number (Python or numpy scalar, not a bool) or None. Multiplies ``x`` (in
        fp32) before the softmax; ``None`` means 1.
    variant : ``"single"``, ``"online"`` or ``None`` (:func:`select_variant` picks by ``cols``).
        ``"single"`` is refused for rows longer than ``SINGLE_BLOCK_LIMIT``.

    Returns
    -------
    Tensor with ``x``'s shape and dtype, contiguous.
    """
    check_tensor("x", x)
    check_device("x", x)
    s = 1.0 if scale is None else check_real("scale", scale)
    n_cols = x.shape[-1] if x.dim() else 1
    if variant is None:
        variant = select_variant(n_cols, x.dtype)
    elif variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS)} or None, got {variant!r}")
    elif variant == "single" and n_cols > SINGLE_BLOCK_LIMIT:
        raise ValueError(
            f"variant: 'single' holds a row in registers and is limited to {SINGLE_BLOCK_LIMIT} columns, "
            f"got {n_cols}; use 'online' or None"
        )
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    if x.numel() == 0:
        return y
    stride_row = collapsed_row_stride(x)
    if stride_row is None:  # leading dims do not collapse to one stride: one copy, documented
        x = x.reshape(-1, n_cols)
        stride_row = n_cols
    n_rows = x.numel() // n_cols
    if variant == "single":
        meta, num_warps, num_stages = single_config(n_cols, n_rows)
        grid = (triton.cdiv(n_rows, meta["ROWS"]),)
        _softmax_single_kernel[grid](
            y, x, n_rows, n_cols, stride_row, n_cols, s,
            **meta, num_warps=num_warps, num_stages=num_stages,
        )
    else:
        meta, num_warps, num_stages = online_config(n_cols)
        _softmax_online_kernel[(n_rows,)](
            y, x, n_cols, stride_row, n_cols, s,
            **meta, num_warps=num_warps, num_stages=num_stages,
        )
    record_launch("softmax", variant, config_id(meta, num_warps, num_stages))
    return y


VARIANTS = {
    "single": functools.partial(softmax, variant="single"),
    "online": functools.partial(softmax, variant="online"),
}


def softmax_ref(x: torch.Tensor, *, scale: float | None = None, compute_dtype=torch.float32) -> torch.Tensor:
    """``torch.softmax(scale * x)`` over the last dimension, in ``compute_dtype``, cast back to x's dtype."""
    z = x.to(compute_dtype)
    if scale is not None:
        z = z * scale
    return torch.softmax(z, dim=-1).to(x.dtype)


# (atol, rtol) against softmax_ref: about 2 output ulps for the half types, fp32 exp/rcp error for fp32
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float16: (1e-5, 2e-3),
    torch.bfloat16: (1e-5, 1.6e-2),
    torch.float32: (1e-6, 1e-5),
}


# ----------------------------------------------------------------------------------------------
# Ahead-of-time compile cases for the sm_80/sm_90 audit
# ----------------------------------------------------------------------------------------------

# Representative row lengths. Attention-score rows come from the model presets' context lengths; the
# vocabularies are GPT-2's (50,257, odd: no 128-bit path), Llama 3's (128,256) and Gemma's (256,000).
ATTENTION_CASES = (("gpt3-175b", 2048), ("llama2-7b", 4096))
VOCAB_CASES = (("gpt2", 50257), ("llama3", 128256), ("gemma", 256000))
CASE_ROWS = 64  # rows at every compile case: a multiple of 16, as a batch of rows usually is


def _aligned_ints(**values: int) -> tuple[str, ...]:
    """The integer arguments a JIT launch specialises as divisible by 16."""
    return tuple(name for name, v in values.items() if v % 16 == 0)


def _case(variant: str, dtype: torch.dtype, n_cols: int, label: str) -> CompileCase:
    t = TRITON_TYPE[dtype]
    ptrs = {"y_ptr": f"*{t}", "x_ptr": f"*{t}"}
    ints = {"n_cols": n_cols, "stride_xrow": n_cols, "stride_yrow": n_cols}
    if variant == "single":
        meta, num_warps, num_stages = single_config(n_cols, CASE_ROWS)
        fn = _softmax_single_kernel
        ints = {"n_rows": CASE_ROWS, **ints}
    else:
        meta, num_warps, num_stages = online_config(n_cols)
        fn = _softmax_online_kernel
    signature = {**ptrs, **{k: "i32" for k in ints}, "scale": "fp32", **{k: "constexpr" for k in meta}}
    aligned = _aligned_ints(**ints)
    # 128-bit accesses need every row start aligned, i.e. the row stride a multiple of 16 bytes
    gates = frozenset({"vec128_loads"}) if {"stride_xrow", "stride_yrow"} <= set(aligned) else frozenset()
    return CompileCase(
        kernel="softmax", variant=variant, fn=fn, signature=signature, constexprs=dict(meta),
        divisible_by_16=("y_ptr", "x_ptr", *aligned), num_warps=num_warps, num_stages=num_stages,
        dtype=str(dtype).replace("torch.", ""), shape={"rows": CASE_ROWS, "cols": n_cols, "source": label},
        config=config_id(meta, num_warps, num_stages), gates=gates,
    )


def compile_cases(arch: int) -> list[CompileCase]:
    """Every shipped softmax config x fp16/bf16/fp32 at representative row lengths (same for sm_80/90).

    "single": the packed short-row tile (128 columns), the attention rows, and the largest row it takes
    (``SINGLE_BLOCK_LIMIT``, the spill check). "online": the vocabularies. 50,257 has no
    ``vec128_loads`` gate: its rows start unaligned, so a real launch cannot use 128-bit accesses.
    """
    del arch  # the configs do not depend on the architecture
    shapes = [("single", 128, "packed short rows")]
    shapes += [("single", n, f"{name} attention rows") for name, n in ATTENTION_CASES]
    shapes += [("single", SINGLE_BLOCK_LIMIT, "single-block limit")]
    shapes += [(select_variant(n), n, f"{name} vocabulary") for name, n in VOCAB_CASES]
    return [_case(v, dtype, n, label) for v, n, label in shapes
            for dtype in (torch.float16, torch.bfloat16, torch.float32)]
