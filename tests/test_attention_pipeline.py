"""Prefill then decode through the public APIs (the README example, scaled down): ``kernels.qkv``
appends each step's K/V to the cache, ``kernels.attention`` attends over it. A chunked prefill plus
decode steps (split-KV kernel) must equal one whole-prompt prefill (prefill kernel), and each step
must match the float64 reference."""

from __future__ import annotations

import pytest
import torch

from kernels.attention import attention, attention_ref
from kernels.qkv import qkv_projection

B, D, HQ, HKV, DH, CAPACITY = 2, 96, 4, 2, 64, 12


def empty_cache() -> torch.Tensor:
    # NaN everywhere: a position attention reads before qkv_projection wrote it poisons the output
    return torch.full((B, HKV, CAPACITY, DH), float("nan"))


@pytest.mark.parametrize("chunks", [(5, 1, 1, 1), (3, 2, 3)])
def test_chunked_prefill_then_decode_equals_whole_prompt(chunks):
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(B, sum(chunks), D, generator=gen)
    w = torch.randn((HQ + 2 * HKV) * DH, D, generator=gen) / D ** 0.5

    k_whole, v_whole = empty_cache(), empty_cache()
    zero = torch.zeros(B, dtype=torch.int32)
    q, _, _ = qkv_projection(x, w, n_heads=HQ, n_kv_heads=HKV, k_cache=k_whole, v_cache=v_whole,
                             cache_len=zero)
    whole = attention(q, k_whole, v_whole, zero, variant="prefill")  # the steps below pick split-KV

    k_cache, v_cache = empty_cache(), empty_cache()
    cache_len = torch.zeros(B, dtype=torch.int32)
    outs, start = [], 0
    for n in chunks:  # prefill chunk(s), then q_len = 1 decode steps
        q, _, _ = qkv_projection(x[:, start:start + n], w, n_heads=HQ, n_kv_heads=HKV,
                                 k_cache=k_cache, v_cache=v_cache, cache_len=cache_len)
        o = attention(q, k_cache, v_cache, cache_len)
        ref = attention_ref(q.double(), k_cache.double(), v_cache.double(), cache_len,
                            compute_dtype=torch.float64)
        torch.testing.assert_close(o.double(), ref, atol=2e-5, rtol=2e-5)
        outs.append(o)
        cache_len += n
        start += n
    torch.testing.assert_close(torch.cat(outs, dim=2), whole, atol=2e-5, rtol=2e-5)
