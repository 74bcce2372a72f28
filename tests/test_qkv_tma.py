"""The sm_90 TMA + persistent QKV kernel (issue 15) under the Triton interpreter: tensor-descriptor loads
(zero-filled past M, N and K), a persistent loop (3 programs under the interpreter, each over several
tiles) and the same fused epilogue (bias, head split, GQA, KV-cache append), against float64."""

from __future__ import annotations

import pytest
import torch
import triton

from kernels import qkv
from kernels._lib.launch import interpreting, last_launch, triton_config_id
from kernels.qkv.cases import compile_cases
from kernels.qkv.configs import (
    CONFIGS,
    INTERPRETER_PROGRAMS,
    TMA_MIN_M,
    TMA_STORE_MAX_N,
    WS_TMA_CONFIGS,
    prune_configs,
    select_variant,
    tma_configs,
    tma_layout_ok,
    tma_store_plan,
)
from tests.test_qkv import F16, F32, assert_close, make, ref

# Compiled (--device cuda), tensor descriptors need an sm_90 GPU; under the interpreter they run anywhere.
pytestmark = pytest.mark.skipif(
    not interpreting() and torch.cuda.is_available() and torch.cuda.get_device_capability() < (9, 0),
    reason="the TMA kernel needs an sm_90+ GPU when compiled")


def small(bm: int, bn: int, bk: int, ws: bool = False) -> triton.Config:
    extra = {"WARP_SPECIALIZE": True} if ws else {}
    return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 2, **extra}, num_warps=4,
                         num_stages=3)


# (B, T, D, Hq, Hkv, Dh, bias, tile): M, N and K off the tile sizes, more tiles than programs
SHAPES = [
    pytest.param(2, 37, 72, 4, 2, 16, True, small(32, 32, 32), id="gqa-M74-K72-bias"),
    pytest.param(1, 70, 40, 3, 1, 8, False, small(64, 16, 16), id="mqa-M70-N40"),
    pytest.param(3, 20, 64, 2, 2, 24, True, small(16, 64, 64), id="mha-M60-N144-onek"),
    # the sm_100 warp-specialized form (flattened tile x K loop): same numbers
    pytest.param(2, 37, 72, 4, 2, 16, True, small(32, 32, 32, ws=True), id="ws-gqa-M74-K72-bias"),
    # its TMA-store epilogue (tma_store_plan): N = 80 off the 64-wide tile, 16-column slices, row tiles
    # across batch boundaries (stored twice); and rows tiles inside one batch, 32-column slices
    pytest.param(3, 40, 48, 3, 1, 16, True, small(32, 64, 16, ws=True), id="ws-store-N80-straddle"),
    pytest.param(2, 64, 40, 2, 1, 32, True, small(32, 64, 32, ws=True), id="ws-store-one-batch-tiles"),
    pytest.param(1, 70, 32, 2, 2, 8, False, small(32, 16, 32, ws=True), id="ws-store-M70-dh8"),
]


@pytest.mark.parametrize("dtype", [F16, F32])
@pytest.mark.parametrize("batch,tokens,d,hq,hkv,dh,bias,cfg", SHAPES)
def test_tma_matches_reference(batch, tokens, d, hq, hkv, dh, bias, cfg, dtype):
    x, w, b = make(batch, tokens, d, hq, hkv, dh, dtype, bias)
    got = qkv.qkv_projection(x, w, b, n_heads=hq, n_kv_heads=hkv, variant="tma", config=cfg)
    assert last_launch("qkv").variant == "tma"
    kw = cfg.kwargs
    tiles = triton.cdiv(batch * tokens, kw["BLOCK_M"]) * triton.cdiv(w.shape[0], kw["BLOCK_N"])
    assert tiles > INTERPRETER_PROGRAMS  # the persistent loop visits several tiles per program
    for g, e in zip(got, ref(x, w, b, n_heads=hq, n_kv_heads=hkv), strict=True):
        assert_close(g, e, dtype)


def _one_buffer(q, k, v) -> bool:
    """Whether q, k, v are consecutive views of one buffer (the TMA-store epilogue's outputs)."""
    return (q.untyped_storage().data_ptr() == k.untyped_storage().data_ptr()
            == v.untyped_storage().data_ptr() and k.data_ptr() == q.data_ptr() + q.numel() * q.element_size()
            and v.data_ptr() == k.data_ptr() + k.numel() * k.element_size())


@pytest.mark.parametrize("tokens,store,one_batch", [(40, 16, False), (64, 16, True), (20, 0, False)])
def test_ws_store_path_chosen_by_the_host(tokens, store, one_batch):
    """The launcher picks the epilogue (tma_store_plan) and allocates for it: TMA stores into one buffer,
    or the pointer epilogue into three tensors (a 32-row tile over 20 tokens would span three batches)."""
    x, w, b = make(3, tokens, 32, 2, 1, 16, F16, True)
    cfg = small(32, 64, 16, ws=True)
    assert tma_store_plan([cfg], 3, tokens, 16, 2, False) == (store, one_batch)
    got = qkv.qkv_projection(x, w, b, n_heads=2, n_kv_heads=1, variant="tma", config=cfg)
    assert _one_buffer(*got) == bool(store)
    for g, e in zip(got, ref(x, w, b, n_heads=2, n_kv_heads=1), strict=True):
        assert g.is_contiguous()
        assert_close(g, e, F16)


def test_tma_store_plan_rules():
    ws = WS_TMA_CONFIGS
    plain = [c for c in tma_configs() if not c.kwargs.get("WARP_SPECIALIZE")]
    # llama2-7b prefill on sm_100's tiles: 128-column slices, every row tile in one batch
    assert tma_store_plan(ws, 1, 4096, 128, 2, False) == (TMA_STORE_MAX_N, True)
    assert tma_store_plan(ws, 2, 4096, 128, 2, False) == (TMA_STORE_MAX_N, True)  # 4096 % 128 == 0
    assert tma_store_plan(ws, 2, 4000, 128, 2, False) == (TMA_STORE_MAX_N, False)  # tiles cross batches
    assert tma_store_plan(ws, 1, 4096, 80, 2, False) == (16, True)  # the largest power of two in 80
    assert tma_store_plan(ws, 1, 4096, 256, 2, False)[0] == TMA_STORE_MAX_N
    # the pointer epilogue: no warp-specialized tile, the cache append, a head of 12 fp16 (24 bytes),
    # slices under 16 bytes (an 8-column tile of 1-byte elements), fewer tokens than a tile's rows
    assert tma_store_plan(plain, 1, 4096, 128, 2, False) == (0, False)
    assert tma_store_plan(ws, 1, 4096, 128, 2, True) == (0, False)
    assert tma_store_plan(ws, 1, 4096, 12, 2, False) == (0, False)
    assert tma_store_plan([small(32, 8, 32, ws=True)], 1, 64, 64, 1, False) == (0, False)
    assert tma_store_plan(ws, 4, 100, 128, 2, False) == (0, False)
    # a slice never wider than the narrowest warp-specialized tile
    assert tma_store_plan([small(32, 16, 16, ws=True)], 1, 64, 64, 2, False) == (16, True)


def _check_cache_append(x, w, b, n_heads, n_kv_heads, capacity, lens, config, weight=None):
    """The TMA launcher appending into sentinel-filled caches matches the float64 reference (q, the
    appended rows, and every row outside the append keeping its sentinel)."""
    batch, head_dim = x.shape[0], w.shape[0] // (n_heads + 2 * n_kv_heads)
    k_cache = torch.full((batch, n_kv_heads, capacity, head_dim), 7.0, dtype=F16)
    v_cache = torch.full((batch, n_kv_heads, capacity, head_dim), -7.0, dtype=F16)
    want_k, want_v = k_cache.clone(), v_cache.clone()
    want = ref(x, w, b, n_heads=n_heads, n_kv_heads=n_kv_heads, k_cache=want_k, v_cache=want_v,
               cache_len=lens)
    got = qkv.qkv_projection(x, w if weight is None else weight, b, n_heads=n_heads, n_kv_heads=n_kv_heads,
                             k_cache=k_cache, v_cache=v_cache, cache_len=lens, variant="tma", config=config)
    assert got[1] is k_cache and got[2] is v_cache
    assert_close(got[0], want[0], F16)
    assert_close(k_cache, want_k, F16)
    assert_close(v_cache, want_v, F16)


def test_ws_cache_append_keeps_the_pointer_epilogue():
    x, w, b = make(2, 40, 32, 2, 1, 16, F16, True, seed=3)
    _check_cache_append(x, w, b, 2, 1, 50, torch.tensor([10, 0], dtype=torch.int32),
                        small(32, 64, 16, ws=True))


def test_tma_column_major_weight_and_cache_append():
    x, w, b = make(2, 9, 48, 4, 2, 8, F16, True, seed=1)
    wt = w.t().contiguous().t()  # [N, D] view of a [D, N] matrix: column-major
    _check_cache_append(x, w, b, 4, 2, 20, torch.tensor([3, 11], dtype=torch.int32), small(16, 16, 16),
                        weight=wt)


def test_tma_default_config_is_a_wgmma_tile():
    x, w, b = make(1, 256, 64, 2, 2, 16, F32, False)
    got = qkv.qkv_projection_tma(x, w, b, n_heads=2, n_kv_heads=2)
    cfg = prune_configs(tma_configs(), 256, 4)[0]
    assert last_launch("qkv").config == triton_config_id(cfg) and cfg.kwargs["BLOCK_M"] >= 64
    for g, e in zip(got, ref(x, w, b, n_heads=2, n_kv_heads=2), strict=True):
        assert_close(g, e, F32)


@pytest.mark.usefixtures("audited_triton")
def test_tma_layout_requirements():
    x, w, _ = make(2, 8, 64, 2, 2, 16, F16, False)
    assert tma_layout_ok(x, w) and tma_layout_ok(x, w.t().contiguous().t())
    x60, w60 = make(2, 8, 60, 2, 2, 16, F16, False)[:2]
    assert not tma_layout_ok(x60, w60)  # 120-byte rows: not 16-byte aligned
    padded = torch.zeros(2, 9, 64, dtype=F16)[:, :8]  # batch rows 9 tokens apart, not 8
    assert not tma_layout_ok(padded, w)
    assert not tma_layout_ok(torch.zeros(1, 8, 65, dtype=F16)[:, :, 1:], w)  # base off by 2 bytes
    with pytest.raises(ValueError, match="variant: 'tma' needs"):
        qkv.qkv_projection(padded, w, n_heads=2, n_kv_heads=2, variant="tma")
    # without a GPU, the default stays on the pointer kernel; the warp-specialized tiles only on sm_100
    assert [c for c in prune_configs(tma_configs(), 4096, 2, 90) if c.kwargs.get("WARP_SPECIALIZE")] == []
    assert prune_configs(tma_configs(), 4096, 2, 100)[0].kwargs["WARP_SPECIALIZE"]
    assert select_variant(TMA_MIN_M, 90, True) == "tma"
    assert select_variant(TMA_MIN_M - 1, 90, True) == select_variant(TMA_MIN_M, 80, True) == "fused"
    assert select_variant(TMA_MIN_M, 90, False) == select_variant(TMA_MIN_M, 0, True) == "fused"
    qkv.qkv_projection(x, w, n_heads=2, n_kv_heads=2)
    assert last_launch("qkv").variant == "fused"


def test_tma_configs_and_compile_cases():
    assert tma_configs() and all(c.kwargs["BLOCK_M"] >= 64 for c in tma_configs())
    cases = compile_cases(90)
    tma = [c for c in cases if c.variant == "tma"]
    # the first audit's three cases come first, unchanged; every other code path follows
    # (tests/test_qkv.py::test_the_audit_compiles_every_tma_code_path)
    assert [c.dtype for c in tma[:3]] == ["fp16", "fp16", "bf16"]
    assert tma[0].config == triton_config_id(CONFIGS[0])  # the 128x256x64 tile
    assert all(c.shape["m"] == 4096 and c.shape["d_model"] == 4096 for c in tma[:3])
    assert not [c for c in compile_cases(80) if c.variant == "tma"]


@pytest.mark.usefixtures("audited_triton")
def test_the_audit_compiles_both_epilogues_of_the_warp_specialized_tiles():
    """sm_100 compiles the TMA-store epilogue (once per batch and across a batch boundary) and the pointer
    one (the cache append), each with the STORE_N the launcher would pass; no other arch compiles it."""
    ws = [c for c in compile_cases(100) if c.constexprs.get("WARP_SPECIALIZE")]
    paths = {(c.constexprs["STORE_N"], c.constexprs["ONE_BATCH_TILES"], c.shape["kv_cache"]) for c in ws}
    assert paths == {(TMA_STORE_MAX_N, True, False), (TMA_STORE_MAX_N, False, False), (0, False, True)}
    for arch in (90, 120):
        assert {c.constexprs["STORE_N"] for c in compile_cases(arch) if c.variant == "tma"} == {0}
