"""Issue 23's warp-specialized prefill (sm_100: both KV sweeps as ``tl.range(..., warp_specialize=True)``,
Q, K, V and O by TMA, the accumulator rescaled in two halves, the sweeps counting tiles) under the Triton
interpreter against the float64 reference, and where the launcher picks it. The interpreter runs the same
kernel source with ``WARP_SPECIALIZE`` set (it ignores the warp_specialize hint itself, so what these tests
check is the numerics of that code path, not the partitioning, which only the sm_100 compile shows)."""

from __future__ import annotations

import pytest
import torch

from kernels.attention import attention_ref
from kernels.attention.configs import (
    PREFILL_CONFIGS,
    SM90_CONFIGS,
    WS_CONFIGS,
    prefill_config,
    prune_configs,
    warp_specialized,
)
from kernels.attention.prefill import launch_prefill, prefill_tma
from tests.test_attention import make_inputs

WS = WS_CONFIGS[128][0]


@pytest.mark.parametrize("head_dim, lens, q_len", [
    (128, [150, 9], 140),   # 1 and 2 unmasked tiles; a diagonal of two tiles (150 % 128 != 0)
    (128, [256, 0], 130),   # a cache a whole number of tiles long: a one-tile diagonal; no cache at all
    (96, [300, 37], 200),   # the padded head dim: zero-filled columns in, clipped columns out
    (80, [5, 128], 70),     # one query block, partly past q_len (zero-filled rows in, clipped rows out)
], ids=["d128-two-tile-diagonal", "d128-aligned-cache", "d96-padded", "d80-short"])
@pytest.mark.parametrize("store_lse", [True, False], ids=["lse", "no-lse"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=["fp16", "fp32"])
def test_warp_specialized_prefill_matches_the_reference(head_dim, lens, q_len, store_lse, dtype):
    """The same source on either operand width (bf16's tl.dot is wrong under the interpreter: its
    numerics come from the compile audit); fp32 tiles do not fit sm_100's shared memory as shipped, but
    an explicit config runs them."""
    q, k, v, cache_len = make_inputs(2, 4, 2, q_len, head_dim, lens, dtype=dtype)
    ref_o, ref_lse = attention_ref(q.double(), k.double(), v.double(), cache_len, return_lse=True,
                                   compute_dtype=torch.float64)
    o = torch.full_like(q, float("nan"))  # a row the TMA store misses stays NaN
    lse = torch.full(q.shape[:3], float("nan")) if store_lse else None
    launch_prefill(q, k, v, cache_len, o, lse, head_dim ** -0.5, config=WS)
    torch.testing.assert_close(o.double(), ref_o, atol=2e-3, rtol=2e-3)
    if store_lse:
        torch.testing.assert_close(lse.double(), ref_lse, atol=2e-3, rtol=2e-3)


@pytest.mark.usefixtures("audited_triton")
def test_a_warp_specialized_config_needs_tma_legal_tensors():
    q, k, v, cache_len = make_inputs(1, 2, 1, 70, 128, [3], dtype=torch.float16)
    o = torch.empty_like(q)
    shifted = torch.empty(q.numel() + 1, dtype=q.dtype)[1:].view(q.shape)  # 2 bytes off 16-byte alignment
    shifted.copy_(q)
    with pytest.raises(ValueError, match="config: a WARP_SPECIALIZE config"):
        launch_prefill(shifted, k, v, cache_len, o, None, 0.1, config=WS)
    assert not prefill_tma(shifted, k, v, o, 100)  # sm_100 then loads K/V by pointer (its sm_90 tile)
    assert prefill_tma(shifted, k, v, o, 90)       # sm_90 reads neither q nor o by TMA
    assert prefill_tma(q, k, v, o, 100) and not prefill_tma(q, k, v, o, 80)


@pytest.mark.usefixtures("audited_triton")
def test_the_warp_specialized_tile_only_where_triton_warp_specializes_and_loads_by_tma():
    configs = PREFILL_CONFIGS[128]
    assert configs[0] is WS and warp_specialized(WS)
    assert prune_configs(configs, 128, 2, 100, tma=True)[0] is WS
    assert WS not in prune_configs(configs, 128, 2, 100, tma=False)  # no TMA: the sm_90 tile leads
    for arch in (80, 90, 120):
        assert WS not in prune_configs(configs, 128, 2, arch, tma=True), arch
    assert prefill_config(128, 4096, 2, 100, True) is WS
    assert prefill_config(96, 4096, 2, 100, True) is WS   # 96 pads to the 128 tile
    assert prefill_config(128, 4096, 2, 100, False) is SM90_CONFIGS[128][0]
    assert prefill_config(128, 4096, 2, 90, True) is SM90_CONFIGS[128][0]
    assert not any(warp_specialized(c) for bd in (64, 256) for c in PREFILL_CONFIGS[bd])
