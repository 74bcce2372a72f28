"""Ahead-of-time compile cases of :mod:`kernels.gemv` for the static audit, and the gates its
variants must carry.

Each case is exactly what an aligned launch at a model-preset shape would compile: the split count and
``K_PER_SPLIT`` the launcher would pick, specialised as Triton's JIT would
(:func:`kernels._lib.aot.jit_specialisation`).
"""

from __future__ import annotations

import torch
import triton

from kernels._lib.aot import TRITON_TYPE, CompileCase, Pointer, jit_specialisation
from kernels._lib.device import DEFAULT_NUM_SMS, get_arch
from kernels._lib.launch import config_id, triton_config_id
from kernels.gemv.configs import (
    BLOCK_ROWS,
    CONFIGS,
    JIT_BY_VARIANT,
    KERNEL,
    PROGRAMS_PER_SM,
    PRUNE,
    REDUCE_CONFIG,
    fit_tiled_stages,
    split_count,
)
from kernels.gemv.kernels import _gemv_splitk_reduce_kernel
from roofline.model.cost import dtype_bytes
from roofline.model.transformer import get_model

# variant -> gates its cases must declare (on at least one case per architecture): the weight stream
REQUIRED_GATES: dict[str, frozenset[str]] = {
    "splitk": frozenset({"vec128_loads"}),
}

# (variant, gate, arch, condition) -> reason a gate is waived (see kernels/audit/gates.py).
GATE_EXCEPTIONS: dict[tuple[str, str, int | str, str], str] = {
    ("tiled", "no_spills", 120, "BLOCK_M=16"):
        "ptxas for sm_120 holds this 4-warp kernel to 64 registers (72 on sm_80): one register is stored "
        "before the K loop and reloaded after it (1 STL, 1 LDL, 8 B of stack); no local-memory traffic in "
        "the loop",
    ("tiled", "occupancy", "*", "dtype=fp32"):
        "AMD, fp32 (the CPU's dtype; GPU sweeps run bf16): the 64x128x64 fp32 tile takes 48 KiB of LDS and "
        "222 VGPRs on gfx942, one workgroup per CU (1 wave per SIMD); at 2 waves per SIMD it spills",
}


def _shapes() -> dict[str, list[dict]]:
    """Representative ``gemv_cost`` shapes per variant, each config of a variant covered once."""
    llama, gpt2 = get_model("llama2-7b"), get_model("gpt2-xl")
    d, ff = llama.d_model, llama.d_ff
    return {
        # decode: W_q of llama2-7b at B=1; the MLP down-projection at B=4; gpt2-xl's LM head at B=2
        "splitk": [dict(batch=1, n=d, k=d, bias=False), dict(batch=4, n=d, k=ff, bias=False),
                   dict(batch=2, n=gpt2.vocab_size, k=gpt2.d_model, bias=False)],
        # larger batches: down-projection at B=64 (split-K), the LM head at B=512
        "tiled": [dict(batch=64, n=d, k=ff, bias=False),
                  dict(batch=512, n=gpt2.vocab_size, k=gpt2.d_model, bias=True)],
    }


def _main_case(variant: str, cfg: triton.Config, shape: dict, dtype: str) -> list[CompileCase]:
    """The main kernel's case for one config at one shape, plus the split-K reduction when it splits."""
    batch, n, k, bias = shape["batch"], shape["n"], shape["k"], shape["bias"]
    elem_bytes = dtype_bytes(dtype)
    rows = cfg.kwargs[BLOCK_ROWS[variant]]
    programs = triton.cdiv(batch, rows) * triton.cdiv(n, cfg.kwargs["BLOCK_N"])
    splits, k_per_split = split_count(programs, k, batch, elem_bytes, cfg.kwargs["BLOCK_K"], DEFAULT_NUM_SMS,
                                      PROGRAMS_PER_SM[variant])
    direct = splits == 1
    fn = JIT_BY_VARIANT[variant]
    args = {"y_ptr": Pointer(dtype), "ws_ptr": Pointer(dtype if direct else "fp32"), "x_ptr": Pointer(dtype),
            "w_ptr": Pointer(dtype), "bias_ptr": Pointer(dtype),
            "B": batch, "N": n, "K": k, "K_PER_SPLIT": k_per_split, "stride_xb": k, "stride_wn": k,
            "stride_yb": n, "stride_wss": 0 if direct else batch * n, "stride_wsb": 0 if direct else n}
    gates = frozenset({"vec128_loads"} if variant == "splitk" else {"tensor_cores"})
    signature, consts, div16 = jit_specialisation(fn, args,
                                                  {"HAS_BIAS": bias, "DIRECT": direct, **cfg.kwargs})
    cases = [CompileCase(KERNEL, variant, fn, signature, consts, div16, cfg.num_warps, cfg.num_stages, dtype,
                         dict(shape), triton_config_id(cfg), gates)]
    if not direct:
        rc = REDUCE_CONFIG
        rargs = {"y_ptr": Pointer(dtype), "ws_ptr": Pointer("fp32"), "bias_ptr": Pointer(dtype),
                 "N": n, "SPLITS": splits, "stride_yb": n, "stride_wss": batch * n, "stride_wsb": n}
        sig, rconsts, rdiv = jit_specialisation(_gemv_splitk_reduce_kernel, rargs,
                                                {"HAS_BIAS": bias, **rc.kwargs})
        cases.append(CompileCase(KERNEL, variant, _gemv_splitk_reduce_kernel, sig, rconsts, rdiv,
                                 rc.num_warps, rc.num_stages, dtype, dict(shape),
                                 "reduce:" + config_id(rc.kwargs, rc.num_warps, rc.num_stages), frozenset()))
    return cases


def compile_cases(arch: int) -> list[CompileCase]:
    """Every shipped config surviving pruning x variant x (fp16, bf16) at one model-preset shape each,
    fp32 for each variant's first config, and the split-K reduction once per dtype (the list:
    ``python -m kernels.audit --kernel gemv``).

    ``arch`` (any the architecture table knows; ``ValueError`` otherwise) changes only the stages of a
    tiled config on an architecture with less shared memory per block than the list was compiled for
    (:func:`~kernels.gemv.configs.fit_tiled_stages`: sm_120), per dtype, as the launcher runs it.
    """
    get_arch(arch)
    cases: list[CompileCase] = []
    reduce_done: set[str] = set()
    for variant, shapes in _shapes().items():
        covered: set[str] = set()
        for shape in shapes:
            for cfg in PRUNE[variant](CONFIGS[variant], shape["batch"], 2, arch):
                cid = triton_config_id(cfg)
                if cid in covered:
                    continue
                covered.add(cid)
                dtypes = [torch.float16, torch.bfloat16]
                if not covered - {cid}:  # fp32 (tf32 on the tiled path) once per variant
                    dtypes.append(torch.float32)
                for torch_dtype in dtypes:
                    dtype = TRITON_TYPE[torch_dtype]
                    run = fit_tiled_stages(cfg, dtype_bytes(dtype), arch) if variant == "tiled" else cfg
                    for case in _main_case(variant, run or cfg, shape, dtype):
                        if case.fn is _gemv_splitk_reduce_kernel:
                            if dtype in reduce_done:
                                continue
                            reduce_done.add(dtype)
                        cases.append(case)
    return cases
