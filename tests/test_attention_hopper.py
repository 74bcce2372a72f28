"""Issue 15's attention changes under the Triton interpreter: the softmax scale folded into the exp2
FMA (raw scores in the unmasked loops, a negative scale negating q, a zero scale never meeting -inf)
and the sm_90-only configs, each run against the float64 reference."""

from __future__ import annotations

import pytest
import torch

from kernels._lib import launch
from kernels.attention import TOLERANCES, attention_ref
from kernels.attention.configs import PREFILL_CONFIGS, SM90_CONFIGS, prefill_config, prune_configs
from kernels.attention.prefill import _attn_prefill_kernel, launch_prefill, prefill_args, prefill_tma_ok
from tests.test_attention import EXACT, check, make_inputs


@pytest.mark.parametrize("variant", ["prefill", "splitkv"])
@pytest.mark.parametrize("scale", [-4.0, 0.0, 1e-3, 2.5])
def test_scale_sign_and_zero(variant, scale):
    # q_len 70 with a 100-token cache: unmasked tiles, diagonal tiles and (prefill) several q blocks;
    # a zero scale is uniform attention over the visible keys, a negative one favours dissimilar keys
    # (at -4, scaling the raw row max without negating q would overflow exp2)
    q_len = 70 if variant == "prefill" else 9
    q, k, v, lens = make_inputs(2, 4, 2, q_len, 64, [100, 3])
    # fp32 rounds each logit to a relative ~6e-8, so the softmax weights' error grows with the logits'
    # size, which grows with |scale| (at -4, 32x the default 1/sqrt(64)): scale the tolerance with it.
    # Seen under numpy 1.24's interpreter: 2.8e-5 off at -4, past a flat 2e-5.
    widen = max(1.0, abs(scale))
    check(q, k, v, lens, (EXACT[0] * widen, EXACT[1] * widen), scale=scale, variant=variant)


def test_scale_fold_fp16():
    q, k, v, lens = make_inputs(1, 2, 1, 80, 128, [150], dtype=torch.float16)
    check(q, k, v, lens, TOLERANCES[torch.float16], scale=-0.09, variant="prefill")


@pytest.mark.parametrize("bd", sorted(d for d, cfgs in SM90_CONFIGS.items() if cfgs))
def test_sm90_configs_cover_unmasked_and_diagonal_tiles(bd):
    """The sm_90-only 128x128 tiles under the interpreter (fp16), with a cache longer than a tile so the
    unmasked loop runs, two query blocks, and unequal cache lengths."""
    q, k, v, lens = make_inputs(2, 2, 1, 140, bd, [150, 9], dtype=torch.float16)
    ref_o, ref_lse = attention_ref(q.double(), k.double(), v.double(), lens, return_lse=True,
                                     compute_dtype=torch.float64)
    for cfg in SM90_CONFIGS[bd]:
        o = torch.full_like(q, float("nan"))
        lse = torch.full(q.shape[:3], float("nan"))
        launch_prefill(q, k, v, lens, o, lse, bd ** -0.5, config=cfg)
        torch.testing.assert_close(o.double(), ref_o, atol=2e-3, rtol=2e-3)
        torch.testing.assert_close(lse.double(), ref_lse, atol=2e-3, rtol=2e-3)


def test_sm90_pruning_is_per_architecture():
    for bd, extra in SM90_CONFIGS.items():
        for cfg in extra:
            assert cfg in prune_configs(PREFILL_CONFIGS[bd], bd, 2, 90)
            assert cfg not in prune_configs(PREFILL_CONFIGS[bd], bd, 2, 80)
    assert prefill_config(128, 4096, 2, 90) is SM90_CONFIGS[128][0]
    assert prefill_config(128, 4096, 2, 80).kwargs == {"BLOCK_M": 128, "BLOCK_N": 64}


@pytest.mark.parametrize("head_dim, cfg", [
    (64, SM90_CONFIGS[64][0]), (96, SM90_CONFIGS[128][0]), (128, PREFILL_CONFIGS[128][-1]),
    (256, PREFILL_CONFIGS[256][0]),
], ids=["d64-128x128", "d96-padded-128x128", "d128-64x32", "d256-64x32"])
def test_prefill_tma_path(head_dim, cfg):
    """The sm_90 TMA path (K/V through tensor descriptors, zero-filled past kv_len and the head dim) under
    the interpreter, launched as an sm_90 launch with aligned caches would launch it; the cache past each
    sequence holds NaN, so a tile read past kv_len that is not zero-filled fails."""
    q, k, v, lens = make_inputs(2, 2, 1, 70, head_dim, [150, 9], dtype=torch.float16)
    assert prefill_tma_ok(k, v)
    shifted = torch.empty(k.numel() + 1, dtype=k.dtype)[1:].view(k.shape)
    assert not prefill_tma_ok(shifted, v)  # base address 2 bytes off a 16-byte boundary
    ref_o, ref_lse = attention_ref(q.double(), k.double(), v.double(), lens, return_lse=True,
                                     compute_dtype=torch.float64)
    o = torch.full_like(q, float("nan"))
    lse = torch.full(q.shape[:3], float("nan"))
    launch.set_descriptor_allocator(q.device)
    args, meta = prefill_args(q, k, v, lens, o, lse, head_dim ** -0.5, tma=True)
    assert meta["USE_TMA"] is True
    grid = (-(-q.shape[2] // cfg.kwargs["BLOCK_M"]), q.shape[1], q.shape[0])
    _attn_prefill_kernel[grid](*args, **meta, **cfg.kwargs, num_warps=cfg.num_warps,
                               num_stages=cfg.num_stages)
    torch.testing.assert_close(o.double(), ref_o, atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(lse.double(), ref_lse, atol=2e-3, rtol=2e-3)
