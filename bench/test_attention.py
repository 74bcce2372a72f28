"""Causal attention over a KV cache: prefill (sequence 128 -> 32k) and decode (cache 1k -> 128k, MHA
and GQA): Triton FlashAttention-2-style prefill / split-KV decode vs SDPA over the cache."""

from __future__ import annotations

import torch

from bench import accuracy
from bench.runner import DTYPES, KernelBench, generator, randn, run_case

KERNEL = "attention"
REF_BUDGET_BYTES = 1 << 30  # float64 scores of one sequence the reference may materialise at once


class AttentionBench(KernelBench):
    kernel = KERNEL

    def build(self, point, device):
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

    def triton_fn(self, kmod, x, *, first):
        # check_cache_len costs a device-to-host sync per call; the first (checked) call does it.
        return lambda: kmod.attention(x["q"], x["k"], x["v"], x["lens"], check_cache_len=first)

    def launch_args(self, x):
        return (x["q"], x["k"], x["v"], x["lens"]), {}

    def accuracy(self, kmod, out, plain, args, kwargs):
        q, k_cache, v_cache, lens = args
        _, hq, q_len, _ = q.shape
        past = k_cache.shape[2] - q_len
        rows = max(1, REF_BUDGET_BYTES // (8 * 3 * hq * (past + q_len)))
        if rows >= q_len:
            return super().accuracy(kmod, out, plain, args, kwargs)
        # Too big for the reference at once: check the first and the last `rows` queries (shortest and
        # longest causal rows). Queries r0.. sit at positions past + r0.., i.e. cache_len = past + r0.
        checks = []
        for r0 in (0, q_len - rows):
            part = (q[:, :, r0:r0 + rows], k_cache, v_cache, lens + r0)
            ref, rdtype = self.reference_on(kmod, part, {})
            checks.append(accuracy.gate(out[:, :, r0:r0 + rows], plain[:, :, r0:r0 + rows], ref, q.dtype,
                                        reference=rdtype))
        return accuracy.combine(checks, f"query rows [0, {rows}) and [{q_len - rows}, {q_len}) of {q_len} "
                                "checked (the full reference would not fit in memory)")

    def interpreter_shape(self, shape):
        return dict(shape, batch=min(shape["batch"], 2), q_len=min(shape["q_len"], 64),
                    cache_len=min(shape["cache_len"], 512))


def test_attention(provider, point, benchmark, bench_session, request):
    run_case(AttentionBench(), (provider, point), benchmark, bench_session, request)
