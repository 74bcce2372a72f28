"""Causal attention over a KV cache: prefill (sequence 128 -> 32k) and decode (cache 1k -> 128k, MHA
and GQA): Triton FlashAttention-2-style prefill / split-KV decode vs SDPA over the cache. What the
benchmark, the providers and the tests need to know about it (:class:`kernels._lib.spec.OpSpec`)."""

from __future__ import annotations

import torch

from kernels._lib.host import uniform_length
from kernels._lib.launch import last_launch, triton_config_id
from kernels._lib.spec import DTYPES, Baseline, OpSpec, Shipped, assert_close, generator, randn, seeded
from kernels.attention import TOLERANCES, attention, attention_ref, attention_sdpa
from kernels.attention.configs import DECODE_CONFIGS, PREFILL_CONFIGS, decode_block_m, prune_configs
from kernels.attention.decode import launch_splitkv
from kernels.attention.prefill import launch_prefill

REF_BUDGET_BYTES = 1 << 30  # float64 scores of one sequence the reference may materialise at once


def build(point, device):
    s, dtype = point.shape, DTYPES[point.dtype]
    g = generator(device)
    b, hq, hkv, dh, q_len, past = (s[k] for k in ("batch", "n_heads", "n_kv_heads", "head_dim", "q_len",
                                                   "cache_len"))
    q = randn(g, b, hq, q_len, dh, dtype=dtype, device=device)
    k_cache = randn(g, b, hkv, past + q_len, dh, dtype=dtype, device=device)
    v_cache = randn(g, b, hkv, past + q_len, dh, dtype=dtype, device=device)
    lens = torch.full((b,), past, dtype=torch.int32, device=device)
    layout = (f"q [B,Hq,q_len,Dh]; caches [B,Hkv,{past}+{q_len},Dh] already holding the new tokens; "
              "cache_len int32 [B]")
    return {"q": q, "k": k_cache, "v": v_cache, "lens": lens, "past": past, "layout": layout}


def reference_parts(args: tuple, kwargs: dict) -> tuple[list, str] | None:
    """Too big for the reference at once: the first and the last ``rows`` queries (shortest and longest
    causal rows). Queries r0.. sit at positions past + r0.., i.e. cache_len = past + r0."""
    q, k_cache, v_cache, lens = args
    _, hq, q_len, _ = q.shape
    past = k_cache.shape[2] - q_len
    rows = max(1, REF_BUDGET_BYTES // (8 * 3 * hq * (past + q_len)))
    if rows >= q_len:
        return None
    parts = [((q[:, :, r0:r0 + rows], k_cache, v_cache, lens + r0), {},
              lambda t, r0=r0: t[:, :, r0:r0 + rows]) for r0 in (0, q_len - rows)]
    return parts, (f"query rows [0, {rows}) and [{q_len - rows}, {q_len}) of {q_len} checked (the full "
                   "reference would not fit in memory)")


def torch_attention(q, k_cache, v_cache, cache_len):
    return attention_sdpa(q, k_cache, v_cache, uniform_length(cache_len))


def shipped_configs(arch: int) -> list[Shipped]:
    """The prefill and split-KV configs the pruning keeps on ``arch`` (its shared memory), per head dim."""
    out = []
    for bd, cs in PREFILL_CONFIGS.items():
        out += [Shipped("attention", "prefill", c, (bd,)) for c in prune_configs(cs, bd, 2, arch)]
    for bd, cs in DECODE_CONFIGS.items():
        for group, q_len in ((1, 1), (4, 1), (8, 4)):  # block_m 16, 16, 32
            bm = decode_block_m(group, q_len)
            kept = prune_configs(cs, bd, 2, arch, block_m=bm)
            out += [Shipped("attention", "splitkv", c, (bd, group, q_len)) for c in kept]
    return out


def run_shipped(s: Shipped, dtype: torch.dtype, dev: torch.device) -> None:
    cfg = s.config
    bd = s.shape[0]
    dh = 96 if bd == 128 else bd  # a non-power-of-two head dim where the tile is padded
    group, q_len = (1, 77) if s.variant == "prefill" else s.shape[1:]
    hkv, b = 2, 2
    q = seeded(b, hkv * group, q_len, dh, dtype=dtype, seed=1, device=dev)
    k = seeded(b, hkv, 400, dh, dtype=dtype, seed=2, device=dev)
    v = seeded(b, hkv, 400, dh, dtype=dtype, seed=3, device=dev)
    lens = torch.tensor([400 - q_len, 33], dtype=torch.int32, device=dev)
    o = torch.empty_like(q)
    lse = torch.empty(q.shape[:3], dtype=torch.float32, device=dev)
    scale = dh**-0.5
    if s.variant == "prefill":
        launch_prefill(q, k, v, lens, o, lse, scale, config=cfg)
        assert last_launch("attention").config == triton_config_id(cfg)
    else:
        launch_splitkv(q, k, v, lens, o, lse, scale, 3, config=cfg)
    want, want_lse = attention_ref(q, k, v, lens, return_lse=True, compute_dtype=torch.float64)
    assert_close(o, want, TOLERANCES[dtype])
    assert_close(lse, want_lse, (1e-3, 1e-3))


def sample_args(device) -> tuple[tuple, dict]:
    q = torch.randn(1, 2, 1, 64, device=device)
    k = torch.randn(1, 1, 4, 64, device=device)
    return (q, k, k.clone(), torch.tensor([2], dtype=torch.int32, device=device)), {}


SPEC = OpSpec(
    kernel="attention",
    build=build,
    launch_args=lambda x: ((x["q"], x["k"], x["v"], x["lens"]), {}),
    # check_cache_len costs a device-to-host sync per call; the first (checked) call does it.
    launcher=attention,
    later_kwargs={"check_cache_len": False},
    reference=attention_ref,
    reference_parts=reference_parts,
    baseline=Baseline(torch_attention, "sdpa", compilable=attention_sdpa,
                      to_compilable=lambda args: (*args[:3], uniform_length(args[3]))),
    interpreter_shape=lambda shape: dict(shape, batch=min(shape["batch"], 2), q_len=min(shape["q_len"], 64),
                                         cache_len=min(shape["cache_len"], 512)),
    gpu_cases=(("attention/prefill.llama2-7b", "S2k"), ("attention/decode.llama2-70b.b8", "L16k")),
    shipped_configs=shipped_configs,
    run_shipped=run_shipped,
    sample_args=sample_args,
    first_arg="q",
)
