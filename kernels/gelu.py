"""Elementwise GELU with an optional fused bias along the last dimension (the MLP epilogue
``gelu(x @ W1 + b1)``):

- exact (``approximate="none"``): ``y = 0.5 * u * (1 + erf(u / sqrt(2)))``;
- tanh (``approximate="tanh"``): ``y = 0.5 * u * (1 + tanh(sqrt(2/pi) * (u + 0.044715 u^3)))``, computed
  as the identical ``u * sigmoid(2 * sqrt(2/pi) * (u + 0.044715 u^3))`` (one ``exp``, and no
  ``1 + tanh`` cancellation for negative ``u``);

where ``u = x + bias`` (``u = x`` without a bias), in fp32. Shapes: ``x`` any shape ``[..., n]`` with
a contiguous last dimension, ``bias`` ``[n]``; ``y`` has ``x``'s shape and dtype (or is ``x`` itself
with ``inplace=True``). fp16, bf16, fp32. FLOPs: 5 (erf) or 9 (tanh) per element, +1 with a bias
(``roofline/cost.py``). Compulsory bytes: ``itemsize * (2 * numel + n)``.

Layouts. A contiguous ``x`` without a bias is one flat row (``"flat"``: 1-D tiles of ``BLOCK_N``
elements, no index arithmetic beyond ``pid * BLOCK_N``). With a bias, or rows that are strided, the
kernel tiles ``[BLOCK_M, BLOCK_N]`` rows x columns so that each program loads its ``BLOCK_N`` bias
values once and broadcasts them over ``BLOCK_M`` rows (no per-element ``%``). Block sizes are powers
of two from a heuristic (~4096 elements, 4 warps: 32 values per thread, i.e. 4 (fp16/bf16) or 8 (fp32)
independent 128-bit loads in flight per thread); there is nothing to autotune.

Loads and stores are 128-bit (``LDG.E.128``/``STG.E.128``) when the JIT sees 16-aligned pointers and
sizes/strides that are multiples of 16, as every MLP activation has; a tensor whose element count
(flat) or last dimension (rows) is not a multiple of 16 falls back to narrower, still coalesced,
accesses.

GPU design targets (not measured here: this project has no GPU): >= 90% of the measured copy
bandwidth for tensors several times larger than L2 -- one read and one write per element at 128 bits,
enough programs to fill every SM several times over, fp32 math hidden under memory time -- and never
slower than ``torch.nn.functional.gelu`` (which cannot fuse the bias: unfused it moves 2x the bytes).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels._lib.aot import CompileCase, TRITON_TYPE
from kernels._lib.launch import config_id, record_launch
from kernels._lib.validation import (
    check_device,
    check_flag,
    check_no_overlap,
    check_tensor,
    check_vector,
    collapsed_row_stride,
)

# ----------------------------------------------------------------------------------------------
# Kernel
# ----------------------------------------------------------------------------------------------


@triton.jit
def _gelu_kernel(
    y_ptr, x_ptr, b_ptr,
    n_rows, n_cols,
    stride_xrow, stride_yrow,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    HAS_BIAS: tl.constexpr, APPROX_TANH: tl.constexpr,
):
    """One [BLOCK_M, BLOCK_N] tile of rows x columns per program (BLOCK_M = 1 for a flat tensor)."""
    pid = tl.program_id(0)
    n_col_blocks = tl.cdiv(n_cols, BLOCK_N)
    pid_m = pid // n_col_blocks
    pid_n = pid % n_col_blocks
    rows = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)  # int64: offsets can pass 2**31
    cols = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < n_cols
    mask = (rows < n_rows)[:, None] & col_mask[None, :]
    # read BLOCK_M*BLOCK_N*itemsize bytes
    u = tl.load(x_ptr + rows[:, None] * stride_xrow + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        # read BLOCK_N*itemsize bytes of bias, reused by all BLOCK_M rows (L2-resident across programs)
        b = tl.load(b_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
        u = u + b[None, :]
    if APPROX_TANH:
        # 0.5*u*(1 + tanh(k)) == u * sigmoid(2k), k = sqrt(2/pi) * (u + 0.044715 u^3)
        k2 = 1.5957691216057308 * (u + 0.044715 * u * u * u)
        y = u / (1.0 + tl.exp(-k2))
    else:
        y = 0.5 * u * (1.0 + tl.math.erf(u * 0.7071067811865476))
    # write BLOCK_M*BLOCK_N*itemsize bytes
    tl.store(y_ptr + rows[:, None] * stride_yrow + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------------------------
# Configs: a power-of-two heuristic (elementwise kernels need no autotuning)
# ----------------------------------------------------------------------------------------------

TILE = 4096  # elements per program
MAX_BLOCK_N = 1024  # columns per tile when tiling rows (bias loaded once per tile)
NUM_WARPS = 4


def tile_config(n_rows: int, n_cols: int) -> tuple[dict, int, int]:
    """``({"BLOCK_M", "BLOCK_N"}, num_warps, num_stages)`` for ``n_rows`` rows of ``n_cols`` elements."""
    if n_rows == 1:  # flat
        return {"BLOCK_M": 1, "BLOCK_N": min(TILE, triton.next_power_of_2(n_cols))}, NUM_WARPS, 1
    block_n = min(MAX_BLOCK_N, triton.next_power_of_2(n_cols))
    block_m = min(TILE // block_n, triton.next_power_of_2(n_rows))
    return {"BLOCK_M": block_m, "BLOCK_N": block_n}, NUM_WARPS, 1


def select_variant(n: int, approximate: str = "none", bias_len: int = 0) -> str:
    """GELU has one implementation; the name exists so benchmarks record variants uniformly."""
    return "elementwise"


# ----------------------------------------------------------------------------------------------
# Launcher
# ----------------------------------------------------------------------------------------------




def gelu(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    approximate: str = "none",
    inplace: bool = False,
) -> torch.Tensor:
    """``gelu(x + bias)`` elementwise, exact (erf) or tanh-approximated.

    Parameters
    ----------
    x : Tensor ``[..., n]``, fp16/bf16/fp32, last dimension contiguous. Leading dimensions that do not
        collapse to one row stride are copied once (refused with ``inplace=True``).
    bias : Tensor ``[n]`` of ``x``'s dtype and device, any stride (a strided one is copied), or None.
        Added (in fp32) before the GELU.
    approximate : ``"none"`` (erf) or ``"tanh"``, as ``torch.nn.functional.gelu``.
    inplace : write the result into ``x`` and return ``x``. As torch's in-place ops, refused when
        ``bias`` shares memory with ``x`` (e.g. ``bias = x[0]``: rows written before others read it)
        or ``x``'s elements overlap each other (an expanded view).

    Returns
    -------
    Tensor with ``x``'s shape and dtype: contiguous, or ``x`` itself when ``inplace``.
    """
    check_tensor("x", x)
    check_device("x", x)
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
    inplace = check_flag("inplace", inplace)
    n = x.shape[-1] if x.dim() else 1
    if inplace:  # x is the output: no element may alias another, nor the (caller's, uncopied) bias
        bias_c = check_vector("bias", bias, n, x, "x") if bias is not None else None
        check_no_overlap("x", x, {"bias": bias})
        bias = bias_c
    elif bias is not None:
        bias = check_vector("bias", bias, n, x, "x")  # [n], any stride (a strided one is copied)
    if x.numel() == 0:
        return x if inplace else torch.empty(x.shape, dtype=x.dtype, device=x.device)
    stride_row = collapsed_row_stride(x)
    if inplace:
        if stride_row is None:
            raise ValueError(
                f"x: inplace=True needs leading dimensions that collapse to one row stride, got shape "
                f"{tuple(x.shape)} with strides {x.stride()}"
            )
    src = x
    if stride_row is None:  # not inplace: one copy, documented
        src = x.reshape(-1, n)
        stride_row = n
    y = x if inplace else torch.empty(x.shape, dtype=x.dtype, device=x.device)
    n_rows = src.numel() // n
    if bias is None and src.is_contiguous() and y.is_contiguous():
        # flat: row strides are never used; 0 lets the JIT specialise them as divisible by 16
        n_rows, n_cols, stride_x, stride_y = 1, src.numel(), 0, 0
    else:
        n_cols, stride_x, stride_y = n, stride_row, (stride_row if inplace else n)
    meta, num_warps, num_stages = tile_config(n_rows, n_cols)
    grid = (triton.cdiv(n_rows, meta["BLOCK_M"]) * triton.cdiv(n_cols, meta["BLOCK_N"]),)
    _gelu_kernel[grid](
        y, src, bias if bias is not None else src,  # b_ptr unused without a bias
        n_rows, n_cols, stride_x, stride_y,
        **meta, HAS_BIAS=bias is not None, APPROX_TANH=approximate == "tanh",
        num_warps=num_warps, num_stages=num_stages,
    )
    record_launch("gelu", "elementwise", config_id(meta, num_warps, num_stages))
    return y


VARIANTS = {"elementwise": gelu}


def gelu_ref(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    approximate: str = "none",
    compute_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``F.gelu(x + bias)`` in ``compute_dtype`` (fp32 by default), cast back to ``x``'s dtype."""
    u = x.to(compute_dtype)
    if bias is not None:
        u = u + bias.to(compute_dtype)
    return torch.nn.functional.gelu(u, approximate=approximate).to(x.dtype)


# (atol, rtol) against gelu_ref: ~2 output ulps for the half types; fp32 libdevice erf/exp for fp32
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float16: (1e-5, 2e-3),
    torch.bfloat16: (1e-5, 1.6e-2),
    torch.float32: (1e-6, 1e-5),
}


# ----------------------------------------------------------------------------------------------
# Ahead-of-time compile cases for the sm_80/sm_90 audit
# ----------------------------------------------------------------------------------------------

# An MLP activation: 16 tokens x llama2-7b's d_ff (11,008), the shape the issue names.
MLP_CASE = ("llama2-7b", 16, 11008)


def _case(dtype: torch.dtype, approximate: str, has_bias: bool) -> CompileCase:
    t = TRITON_TYPE[dtype]
    name, rows, n = MLP_CASE
    if has_bias:  # rows: [rows, n] with a [n] bias
        ints = {"n_rows": rows, "n_cols": n, "stride_xrow": n, "stride_yrow": n}
        n_rows, n_cols = rows, n
    else:  # flat: one row of rows*n elements; strides passed as 0; n_rows == 1 is specialised away
        ints = {"n_cols": rows * n, "stride_xrow": 0, "stride_yrow": 0}
        n_rows, n_cols = 1, rows * n
    meta, num_warps, num_stages = tile_config(n_rows, n_cols)
    constexprs = {**meta, "HAS_BIAS": has_bias, "APPROX_TANH": approximate == "tanh"}
    if not has_bias:
        constexprs["n_rows"] = 1  # the JIT turns an integer argument equal to 1 into a constant
    signature = {"y_ptr": f"*{t}", "x_ptr": f"*{t}", "b_ptr": f"*{t}"}
    signature.update({k: ("i32" if k in ints else "constexpr") for k in
                      ("n_rows", "n_cols", "stride_xrow", "stride_yrow")})
    signature.update({k: "constexpr" for k in ("BLOCK_M", "BLOCK_N", "HAS_BIAS", "APPROX_TANH")})
    aligned = tuple(k for k, v in ints.items() if v % 16 == 0)
    return CompileCase(
        kernel="gelu", variant="elementwise", fn=_gelu_kernel, signature=signature, constexprs=constexprs,
        divisible_by_16=("y_ptr", "x_ptr", "b_ptr", *aligned), num_warps=num_warps, num_stages=num_stages,
        dtype=str(dtype).replace("torch.", ""),
        shape={"n": rows * n, "approximate": approximate, "bias_len": n if has_bias else 0, "source": name},
        config=config_id(meta, num_warps, num_stages), gates=frozenset({"vec128_loads"}),
    )


def compile_cases(arch: int) -> list[CompileCase]:
    """Both approximations x with/without the fused bias x fp16/bf16/fp32 on one MLP activation
    (12 cases, the same for sm_80 and sm_90); every one must show 128-bit loads and stores."""
    del arch
    return [_case(dtype, approximate, has_bias)
            for approximate in ("none", "tanh") for has_bias in (False, True)
            for dtype in (torch.float16, torch.bfloat16, torch.float32)]
