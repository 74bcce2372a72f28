"""Ahead-of-time compile cases of :mod:`kernels.softmax` for the sm_80/sm_90 audit, and the gates its
variants must carry. Each case is what an aligned launch of ``CASE_ROWS`` rows at a representative row
length would compile, specialised as Triton's JIT would (:func:`kernels._lib.aot.jit_specialisation`).
"""

from __future__ import annotations

import torch

from kernels._lib.aot import CompileCase, jit_specialisation
from kernels._lib.launch import config_id
from kernels.softmax.configs import KERNEL, SINGLE_BLOCK_LIMIT, online_config, select_variant, single_config
from kernels.softmax.kernels import _softmax_online_kernel, _softmax_single_kernel

# variant -> gates its cases must declare (on at least one case per architecture; rows of an odd length,
# e.g. GPT-2's 50,257, legitimately drop vec128_loads)
REQUIRED_GATES: dict[str, frozenset[str]] = {
    "single": frozenset({"vec128_loads"}),
    "online": frozenset({"vec128_loads"}),
}

# (variant, gate, arch, condition) -> reason a gate is waived (see kernels/audit/gates.py): none
GATE_EXCEPTIONS: dict[tuple[str, str, int, str], str] = {}

# Representative row lengths. Attention-score rows come from the model presets' context lengths; the
# vocabularies are GPT-2's (50,257, odd: no 128-bit path), Llama 3's (128,256) and Gemma's (256,000).
ATTENTION_CASES = (("gpt3-175b", 2048), ("llama2-7b", 4096))
VOCAB_CASES = (("gpt2", 50257), ("llama3", 128256), ("gemma", 256000))
CASE_ROWS = 64  # rows at every compile case: a multiple of 16, as a batch of rows usually is


def _case(variant: str, dtype: torch.dtype, n_cols: int, label: str) -> CompileCase:
    """One launch of ``CASE_ROWS`` contiguous rows of ``n_cols`` in ``dtype`` (scale 1.0)."""
    x = torch.empty((CASE_ROWS, n_cols), dtype=dtype, device="meta")
    args = {"y_ptr": x, "x_ptr": x, "n_cols": n_cols, "stride_xrow": n_cols, "stride_yrow": n_cols,
            "scale": 1.0}
    if variant == "single":
        meta, num_warps, num_stages = single_config(n_cols, CASE_ROWS)
        fn = _softmax_single_kernel
        args["n_rows"] = CASE_ROWS
    else:
        meta, num_warps, num_stages = online_config(n_cols)
        fn = _softmax_online_kernel
    signature, constexprs, divisible_by_16 = jit_specialisation(fn, args, meta)
    # 128-bit accesses need every row start aligned, i.e. the row stride a multiple of 16 bytes
    row_aligned = {"stride_xrow", "stride_yrow"} <= set(divisible_by_16)
    gates = frozenset({"vec128_loads"}) if row_aligned else frozenset()
    return CompileCase(
        kernel=KERNEL, variant=variant, fn=fn, signature=signature, constexprs=constexprs,
        divisible_by_16=divisible_by_16, num_warps=num_warps, num_stages=num_stages,
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
