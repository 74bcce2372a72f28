"""What the audit (``python -m kernels.audit --kernel attention``) compiles for sm_80/sm_90, and the gates
attention's variants must carry. Cases are built from the same argument builders the launchers use, on
``meta``-device tensors, and specialised by :func:`kernels._lib.aot.jit_specialisation`: what the audit
compiles is what a launch at that shape would run."""

from __future__ import annotations

import torch
import triton

from kernels._lib import device
from kernels._lib.aot import CompileCase, jit_specialisation
from kernels._lib.launch import config_id, triton_config_id
from kernels.attention.configs import (
    COMBINE_WARPS,
    KERNEL,
    block_d,
    decode_block_m,
    decode_config,
    prefill_configs,
    prune_configs,
    select_num_splits,
    splitkv_config_id,
)
from kernels.attention.decode import _attn_combine_kernel, _attn_splitkv_kernel, combine_args, splitkv_args
from kernels.attention.prefill import _attn_prefill_kernel, prefill_args
from roofline.model.cost import dtype_bytes
from roofline.model.transformer import get_model

# variant -> the gates its cases must declare (on at least one case per architecture)
REQUIRED_GATES: dict[str, frozenset[str]] = {
    "prefill": frozenset({"tensor_cores"}),
    "splitkv": frozenset({"tensor_cores", "vec128_loads"}),  # the decode KV stream
}

# (variant, gate, arch, condition) -> reason; ``arch`` "*" = every architecture the gate applies to;
# ``condition`` is "*", "NAME=VALUE" or "NAME<VALUE" on a part of the config id (the rules are in
# kernels/audit/gates.py). Triton lowers a tl.dot to wgmma (sm_90) or tcgen05 (sm_100) only for tiles of
# at least 64 rows; the split-KV query tile is one GQA group's rows padded to 16-64, chosen on purpose:
# decode is bound by the KV stream, not the tensor-core rate.
GATE_EXCEPTIONS: dict[tuple[str, str, int | str, str], str] = {
    ("splitkv", "wgmma", "*", "BLOCK_M<64"):
        "decode query tile = one GQA group's query rows padded to 16: KV-stream bound; Triton needs "
        ">= 64 rows for wgmma, so the QK^T and PV dots run HMMA on H100",
    ("splitkv", "tcgen05", "*", "BLOCK_M<64"):
        "decode query tile = one GQA group's query rows padded to 16: KV-stream bound; Triton needs "
        ">= 64 rows for tcgen05, so the QK^T and PV dots run HMMA (mma.sync) on B200",
}


def _case(fn, variant: str, args: tuple, meta: dict, cfg: triton.Config, shape: dict,
          gates: frozenset[str], config: str) -> CompileCase:
    """A case from the exact positional arguments and constexprs a launch passes (``meta``-device
    tensors stand in for the real ones)."""
    signature, constexprs, divisible = jit_specialisation(fn, dict(zip(fn.arg_names, args, strict=False)),
                                                          {**meta, **cfg.kwargs})
    # the input dtype: q's, or the output's for the combine kernel (its third argument is a partial)
    dtype = args[2].dtype if args[2].dtype != torch.float32 else args[0].dtype
    return CompileCase(kernel=KERNEL, variant=variant, fn=fn, signature=signature, constexprs=constexprs,
                       divisible_by_16=divisible, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
                       dtype=str(dtype).replace("torch.", ""), shape=shape, config=config, gates=gates)


def _case_tensors(model: str, batch: int, q_len: int, head_dim: int, dtype: torch.dtype,
                  capacity: int = 4096) -> tuple:
    """``meta``-device q, caches and cache_len with a model preset's heads, and the shape record."""
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
        elem_bytes = dtype_bytes(dtype)
        for dh in (64, 96, 128, 256):
            q, k, lens, shape = _case_tensors("llama2-7b", 1, 2048, dh, dtype)
            # a launch with aligned caches on a TMA arch loads K/V by TMA (kernels.attention.prefill)
            tma = device.has_tma(arch)
            args, meta = prefill_args(q, k, k, lens, torch.empty_like(q), None, 0.1, tma=tma)
            meta = {**meta, "WARP_SPECIALIZE": False}  # the kernel's default; a WS_CONFIGS tile sets it
            survivors = prune_configs(prefill_configs(block_d(dh), arch), block_d(dh), elem_bytes, arch,
                                      tma=tma)
            # bf16 compiles the default config only where the wide-MMA configs add cases (sm_90, sm_100:
            # its code differs from fp16 in the dot's operand type alone; same registers and loop in the
            # audit), which keeps attention within the case budget per arch (MAX_CASES_PER_KERNEL_ARCH
            # in tests/test_audit.py)
            one = dh == 96 or (dtype == torch.bfloat16 and device.mma_reads_smem(arch))
            for cfg in survivors[:1] if one else survivors:
                cases.append(_case(_attn_prefill_kernel, "prefill", args, meta, cfg, shape, tc,
                                   triton_config_id(cfg)))
        for dh, model, batch in [(64, "llama2-70b", 1), (96, "llama2-70b", 1), (128, "llama2-70b", 1),
                                 (256, "llama2-70b", 1), (128, "llama2-7b", 16)]:
            q, k, lens, shape = _case_tensors(model, batch, 1, dh, dtype)
            bm = decode_block_m(q.shape[1] // k.shape[1], 1)
            cfg = decode_config(dh, elem_bytes, arch, bm)
            splits = select_num_splits(batch, k.shape[1], k.shape[2], block_n=cfg.kwargs["BLOCK_N"])
            o = torch.empty_like(q)
            o_part = torch.empty(*q.shape[:3], splits, dh, device="meta")
            lse_part = torch.empty(*q.shape[:3], splits, device="meta")
            args, meta = splitkv_args(q, k, k, lens, o, None, 0.1, splits, o_part, lse_part)
            shape = {**shape, "num_splits": splits}
            cases.append(_case(_attn_splitkv_kernel, "splitkv", args, meta, cfg, shape, kv_stream,
                               splitkv_config_id(cfg, meta)))
            if splits > 1 and dh == 128:
                lse = torch.empty(q.shape[:3], device="meta")
                args, meta = combine_args(o, lse, o_part, lse_part)
                ccfg = triton.Config({}, num_warps=COMBINE_WARPS, num_stages=1)
                cases.append(_case(_attn_combine_kernel, "splitkv-combine", args, meta, ccfg, shape,
                                   frozenset(), config_id({}, COMBINE_WARPS, 1)))
    return cases
