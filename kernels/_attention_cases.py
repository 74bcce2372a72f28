"""Ahead-of-time compile cases of the attention kernels (``kernels.attention.compile_cases``), built from
the same argument builders the launchers use, on ``meta``-device tensors: what the audit compiles is
what a launch at that shape would run."""

from __future__ import annotations

import torch
import triton

from kernels._attention_decode import (
    COMBINE_WARPS,
    _attn_combine_kernel,
    _attn_splitkv_kernel,
    combine_args,
    decode_block_m,
    decode_config,
    select_num_splits,
    splitkv_args,
    splitkv_config_id,
)
from kernels._attention_prefill import (
    PREFILL_CONFIGS,
    _attn_prefill_kernel,
    block_d,
    prefill_args,
    prune_configs,
)
from kernels._lib.aot import CompileCase, TRITON_TYPE
from kernels._lib.launch import config_id, triton_config_id

KERNEL = "attention"


def _compile_case(fn, variant: str, args: tuple, meta: dict, cfg: triton.Config, shape: dict,
                  gates: frozenset[str], config: str) -> CompileCase:
    """A case from the exact arguments a launch passes (``meta``-device tensors stand in for the real
    ones): tensors are 16-byte-aligned pointers, an int equal to 1 becomes the constant 1 and a
    multiple of 16 gets the divisibility hint, as Triton's JIT specialises them."""
    signature: dict[str, str] = {}
    constexprs = {**meta, **cfg.kwargs}
    aligned: list[str] = []
    for name, value in zip(fn.arg_names[:len(args)], args, strict=True):
        if isinstance(value, torch.Tensor):
            signature[name] = "*" + (TRITON_TYPE.get(value.dtype) or "i32")
            aligned.append(name)
        elif isinstance(value, float):
            signature[name] = "fp32"
        elif value == 1:
            signature[name], constexprs[name] = "constexpr", 1
        else:
            signature[name] = "i32"
            if value % 16 == 0:
                aligned.append(name)
    signature.update({name: "constexpr" for name in fn.arg_names[len(args):]})
    return CompileCase(kernel=KERNEL, variant=variant, fn=fn, signature=signature, constexprs=constexprs,
                       divisible_by_16=tuple(aligned), num_warps=cfg.num_warps, num_stages=cfg.num_stages,
                       dtype=str(_case_dtype(args)).replace("torch.", ""), shape=shape, config=config,
                       gates=gates)


def _case_dtype(args: tuple) -> torch.dtype:
    """The input dtype of a kernel's argument tuple (its third argument is q or a partial)."""
    return args[2].dtype if args[2].dtype != torch.float32 else args[0].dtype


def _case_tensors(model: str, batch: int, q_len: int, head_dim: int, dtype: torch.dtype,
                  capacity: int = 4096) -> tuple:
    """``meta``-device q, caches and cache_len with a model preset's heads, and the shape record."""
    from roofline.model import get_model

    m = get_model(model)
    q = torch.empty(batch, m.n_heads, q_len, head_dim, dtype=dtype, device="meta")
    k = torch.empty(batch, m.n_kv_heads, capacity, head_dim, dtype=dtype, device="meta")
    lens = torch.empty(batch, dtype=torch.int32, device="meta")
    cache_len = 0 if q_len > 1 else capacity - 1
    note = model if head_dim == m.head_dim else f"{model} heads with head_dim {head_dim}"
    shape = {"batch": batch, "n_heads": m.n_heads, "n_kv_heads": m.n_kv_heads, "head_dim": head_dim,
             "q_len": q_len, "cache_len": cache_len, "source": note}
    return q, k, lens, shape


def compile_cases(arch: int) -> list[CompileCase]:
    """Every shipped attention config surviving ``arch``'s pruning, fp16 and bf16 (fp32 is CPU-only).

    Prefill (gate ``tensor_cores``): every surviving config at head dims 64, 128, 256 and the default
    config at the padded 96 (bf16 on sm_90: the default config at each head dim), on llama2-7b's 32
    heads, S = 2048; on sm_90 with K/V by TMA, as an aligned launch there runs. Split-KV decode (gates
    ``tensor_cores``, ``vec128_loads`` on the KV stream): the split path at head dims 64, 96, 128, 256
    on llama2-70b's 64/8 GQA heads, batch 1, 4k cache; the single-pass path (``num_splits = 1``, what
    the heuristic picks at batch 16) on llama2-7b MHA at Dh 128; and the combine kernel at Dh 128.
    """
    cases: list[CompileCase] = []
    tc, kv_stream = frozenset({"tensor_cores"}), frozenset({"tensor_cores", "vec128_loads"})
    for dtype in (torch.float16, torch.bfloat16):
        elt = torch.empty((), dtype=dtype).element_size()
        for dh in (64, 96, 128, 256):
            q, k, lens, shape = _case_tensors("llama2-7b", 1, 2048, dh, dtype)
            # an sm_90 launch with aligned caches loads K/V by TMA (kernels.attention._launch_prefill)
            args, meta = prefill_args(q, k, k, lens, torch.empty_like(q), None, 0.1, tma=arch >= 90)
            survivors = prune_configs(PREFILL_CONFIGS[block_d(dh)], block_d(dh), elt, arch)
            # sm_90 bf16 compiles the default config only (its code differs from fp16 in the dot's
            # operand type alone; same registers and loop in the audit): the budget is 24 cases per arch
            one = dh == 96 or (dtype == torch.bfloat16 and arch >= 90)
            for cfg in survivors[:1] if one else survivors:
                cases.append(_compile_case(_attn_prefill_kernel, "prefill", args, meta, cfg, shape, tc,
                                           triton_config_id(cfg)))
        for dh, model, batch in [(64, "llama2-70b", 1), (96, "llama2-70b", 1), (128, "llama2-70b", 1),
                                 (256, "llama2-70b", 1), (128, "llama2-7b", 16)]:
            q, k, lens, shape = _case_tensors(model, batch, 1, dh, dtype)
            bm = decode_block_m(q.shape[1] // k.shape[1], 1)
            cfg = decode_config(dh, elt, arch, bm)
            splits = select_num_splits(batch, k.shape[1], k.shape[2], block_n=cfg.kwargs["BLOCK_N"])
            o = torch.empty_like(q)
            o_part = torch.empty(*q.shape[:3], splits, dh, device="meta")
            lse_part = torch.empty(*q.shape[:3], splits, device="meta")
            args, meta = splitkv_args(q, k, k, lens, o, None, 0.1, splits, o_part, lse_part)
            shape = {**shape, "num_splits": splits}
            cases.append(_compile_case(_attn_splitkv_kernel, "splitkv", args, meta, cfg, shape, kv_stream,
                                       splitkv_config_id(cfg, meta)))
            if splits > 1 and dh == 128:
                lse = torch.empty(q.shape[:3], device="meta")
                args, meta = combine_args(o, lse, o_part, lse_part)
                ccfg = triton.Config({}, num_warps=COMBINE_WARPS, num_stages=1)
                cases.append(_compile_case(_attn_combine_kernel, "splitkv-combine", args, meta, ccfg, shape,
                                           frozenset(), config_id({}, COMBINE_WARPS, 1)))
    return cases
