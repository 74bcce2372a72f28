"""Ahead-of-time compile cases of :mod:`kernels.gemv` for the sm_80/sm_90 audit.

Each case is exactly what an aligned launch at a model-preset shape would compile: the split count and
``K_PER_SPLIT`` the launcher would pick, integer arguments equal to 1 specialised as constants and those
divisible by 16 hinted as such (Triton's JIT does both), every pointer 16-byte aligned.
"""

from __future__ import annotations

import triton

from kernels import gemv as g
from kernels._lib.aot import CompileCase, TRITON_TYPE
from kernels._lib.launch import config_id, triton_config_id
from roofline.model import get_model

_INT_ARGS = ("B", "N", "K", "K_PER_SPLIT", "stride_xb", "stride_wn", "stride_yb", "stride_wss", "stride_wsb")


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


def _specialise(fn: object, dtype: object, ptr_types: dict[str, str], ints: dict[str, int],
                constexprs: dict[str, object]) -> tuple[dict, dict, tuple[str, ...]]:
    signature = {name: f"*{t}" for name, t in ptr_types.items()}
    consts = dict(constexprs)
    div16 = list(ptr_types)
    for name, value in ints.items():
        if value == 1:  # the JIT turns an integer argument equal to 1 into a constant
            signature[name] = "constexpr"
            consts[name] = 1
        else:
            signature[name] = "i32"
            if value % 16 == 0:
                div16.append(name)
    for name in constexprs:
        signature[name] = "constexpr"
    order = fn.arg_names  # type: ignore[attr-defined]
    return {k: signature[k] for k in order}, consts, tuple(n for n in order if n in div16)


def _main_case(variant: str, cfg: triton.Config, shape: dict, dtype: str, arch: int) -> list[CompileCase]:
    batch, n, k, bias = shape["batch"], shape["n"], shape["k"], shape["bias"]
    elem = 4 if dtype == "fp32" else 2
    rows = cfg.kwargs[g._BLOCK_ROWS[variant]]
    programs = triton.cdiv(batch, rows) * triton.cdiv(n, cfg.kwargs["BLOCK_N"])
    splits, k_per_split = g.split_count(programs, k, batch, elem, cfg.kwargs["BLOCK_K"], g.DEFAULT_NUM_SMS,
                                        g.PROGRAMS_PER_SM[variant])
    direct = splits == 1
    fn = g._KERNELS[variant]
    ptrs = {"y_ptr": dtype, "ws_ptr": dtype if direct else "fp32", "x_ptr": dtype, "w_ptr": dtype,
            "bias_ptr": dtype}
    ints = dict(zip(_INT_ARGS, (batch, n, k, k_per_split, k, k, n, 0 if direct else batch * n,
                                0 if direct else n), strict=True))
    gates = frozenset({"vec128_loads"} if variant == "splitk" else {"tensor_cores"})
    signature, consts, div16 = _specialise(fn, dtype, ptrs, ints,
                                           {"HAS_BIAS": bias, "DIRECT": direct, **cfg.kwargs})
    cases = [CompileCase("gemv", variant, fn, signature, consts, div16, cfg.num_warps, cfg.num_stages, dtype,
                         dict(shape), triton_config_id(cfg), gates)]
    if not direct:
        rc = g.REDUCE_CONFIG
        rfn = g._gemv_splitk_reduce_kernel
        rints = {"N": n, "SPLITS": splits, "stride_yb": n, "stride_wss": batch * n, "stride_wsb": n}
        sig, rconsts, rdiv = _specialise(rfn, dtype, {"y_ptr": dtype, "ws_ptr": "fp32", "bias_ptr": dtype},
                                         rints, {"HAS_BIAS": bias, **rc.kwargs})
        cases.append(CompileCase("gemv", variant, rfn, sig, rconsts, rdiv, rc.num_warps, rc.num_stages, dtype,
                                 dict(shape), "reduce:" + config_id(rc.kwargs, rc.num_warps, rc.num_stages),
                                 frozenset()))
    return cases


def build_compile_cases(arch: int) -> list[CompileCase]:
    """Every shipped config surviving pruning x variant x (fp16, bf16) at one model-preset shape each,
    fp32 for each variant's first config, and the split-K reduction once per dtype: 21 cases per
    architecture.

    ``arch`` (80 or 90) does not change the set: the same configs ship for both; shared memory per
    config is at most 147 KB, inside sm_80's 163 KB.
    """
    if arch not in (80, 90):
        raise ValueError(f"arch: expected 80 or 90, got {arch!r}")
    cases: list[CompileCase] = []
    reduce_done: set[str] = set()
    for variant, shapes in _shapes().items():
        covered: set[str] = set()
        for shape in shapes:
            for cfg in g._PRUNE[variant](g._CONFIGS[variant], shape["batch"]):
                cid = triton_config_id(cfg)
                if cid in covered:
                    continue
                covered.add(cid)
                dtypes = [g.torch.float16, g.torch.bfloat16]
                if not covered - {cid}:  # fp32 (tf32 on the tiled path) once per variant
                    dtypes.append(g.torch.float32)
                for torch_dtype in dtypes:
                    dtype = TRITON_TYPE[torch_dtype]
                    for case in _main_case(variant, cfg, shape, dtype, arch):
                        if case.fn is g._gemv_splitk_reduce_kernel:
                            if dtype in reduce_done:
                                continue
                            reduce_done.add(dtype)
                        cases.append(case)
    return cases
