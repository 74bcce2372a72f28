"""Ahead-of-time compile cases of :mod:`kernels.gelu` for the sm_80/sm_90 audit, and the gates it must
carry. Each case is what an aligned launch on one MLP activation would compile, specialised as Triton's
JIT would (:func:`kernels._lib.aot.jit_specialisation`).
"""

from __future__ import annotations

import torch

from kernels._lib.aot import CompileCase, jit_specialisation
from kernels._lib.launch import config_id
from kernels.gelu.configs import KERNEL, tile_config
from kernels.gelu.kernels import _gelu_kernel

# variant -> gates its cases must declare: every GELU stream must be 128-bit ("*": every variant)
REQUIRED_GATES: dict[str, frozenset[str]] = {
    "*": frozenset({"vec128_loads"}),
}

# (variant, gate, arch, condition) -> reason a gate is waived (see kernels/audit/gates.py): none
GATE_EXCEPTIONS: dict[tuple[str, str, int, str], str] = {}

# An MLP activation: 16 tokens x llama2-7b's d_ff (11,008), the shape the issue names.
MLP_CASE = ("llama2-7b", 16, 11008)


def _case(dtype: torch.dtype, approximate: str, has_bias: bool) -> CompileCase:
    """One launch on the MLP activation: rows ``[rows, n]`` with a ``[n]`` bias, or (no bias) one flat row
    of ``rows * n`` elements with 0 row strides, as the launcher passes them."""
    name, rows, n = MLP_CASE
    x = torch.empty((rows, n), dtype=dtype, device="meta")
    n_rows, n_cols, stride_row = (rows, n, n) if has_bias else (1, rows * n, 0)
    meta, num_warps, num_stages = tile_config(n_rows, n_cols)
    args = {"y_ptr": x, "x_ptr": x, "b_ptr": x, "n_rows": n_rows, "n_cols": n_cols,
            "stride_xrow": stride_row, "stride_yrow": stride_row}
    signature, constexprs, divisible_by_16 = jit_specialisation(
        _gelu_kernel, args, {**meta, "HAS_BIAS": has_bias, "APPROX_TANH": approximate == "tanh"})
    return CompileCase(
        kernel=KERNEL, variant="elementwise", fn=_gelu_kernel, signature=signature, constexprs=constexprs,
        divisible_by_16=divisible_by_16, num_warps=num_warps, num_stages=num_stages,
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
