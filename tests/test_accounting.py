"""Transformer FLOPs, KV cache and training compute (roofline/model/accounting.py), checked three ways:
against
a PyTorch model under FlopCounterMode, against internal identities, and against the seed documents'
worked numbers (where a seed's arithmetic is wrong, the test pins the right value and says why)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from roofline.errors import UsageError
from roofline.model import accounting
from roofline.model.transformer import PRESETS, ModelConfig

XL = PRESETS["gpt2-xl-swiglu"]


# ------------------------------------------------------------------------------------------------
# A PyTorch transformer built from a ModelConfig: parameters and FLOPs must agree with the accounting.


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, f, b = cfg.d_model, cfg.d_ff, cfg.bias
        norm = (lambda: nn.LayerNorm(d)) if cfg.norm == "layernorm" else (lambda: nn.RMSNorm(d))
        self.norms = nn.ModuleList(norm() for _ in range(cfg.norms_per_block))
        self.qkv = nn.Linear(d, cfg.qkv_width, bias=b)
        self.out = nn.Linear(cfg.n_heads * cfg.head_dim, d, bias=b)
        self.up = nn.ModuleList(nn.Linear(d, f, bias=b) for _ in range(2 if cfg.mlp == "swiglu" else 1))
        self.down = nn.Linear(f, d, bias=b)
        if cfg.positions == "relative":  # Transformer-XL: W_R and the u, v biases (not used below)
            self.w_r = nn.Linear(d, d, bias=False)
            self.uv = nn.Parameter(torch.zeros(2, d))
        self.cfg = cfg

    def forward(self, x):
        cfg, (bsz, t, _) = self.cfg, x.shape
        h = self.norms[0](x) if self.norms else x
        q, k, v = self.qkv(h).split([cfg.n_heads * cfg.head_dim] + [cfg.n_kv_heads * cfg.head_dim] * 2, -1)
        q, k, v = (z.view(bsz, t, -1, cfg.head_dim).transpose(1, 2) for z in (q, k, v))
        with sdpa_kernel(SDPBackend.MATH):
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        a = self.out(a.transpose(1, 2).reshape(bsz, t, -1))
        if not cfg.parallel_block:
            x, h = x + a, (self.norms[-1](x + a) if len(self.norms) > 1 else x + a)
        elif len(self.norms) > 1:
            h = self.norms[1](x)
        u = self.up[0](h)
        u = F.silu(u) * self.up[1](h) if cfg.mlp == "swiglu" else F.gelu(u)
        return x + self.down(u) + (a if cfg.parallel_block else 0)


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.context_length, cfg.d_model) if cfg.positions == "learned" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model) if cfg.norm == "layernorm" else nn.RMSNorm(cfg.d_model)
        self.head = None if cfg.tied_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)

    def forward(self, tokens):
        x = self.emb(tokens)
        if self.pos is not None:
            x = x + self.pos(torch.arange(tokens.shape[1]))
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return F.linear(x, self.emb.weight) if self.head is None else self.head(x)


def tiny(**kw) -> ModelConfig:
    base = dict(name="tiny", n_layers=2, d_model=24, n_heads=4, n_kv_heads=4, d_ff=40, vocab_size=37,
                context_length=16)
    return ModelConfig(**{**base, **kw})


TINY = [
    tiny(),
    tiny(mlp="swiglu", tied_embeddings=False, positions="rotary", bias=False, norm="rmsnorm", n_kv_heads=2),
    tiny(n_kv_heads=1, parallel_block=True, positions="rotary"),
    tiny(parallel_block=True, block_norms=2, tied_embeddings=False, bias=False, n_layers=3),
    tiny(positions="relative", norm="rmsnorm", mlp="swiglu", n_heads=6, n_kv_heads=3),
]


@pytest.mark.parametrize("cfg", TINY, ids=lambda c: f"{c.mlp}-{c.positions}-kv{c.n_kv_heads}-b{int(c.bias)}")
def test_accounting_matches_a_pytorch_model(cfg):
    torch.manual_seed(0)
    model = Transformer(cfg)
    assert accounting.param_counts(cfg).total == sum(p.numel() for p in model.parameters())
    batch, seq = 2, 11
    tokens = torch.randint(0, cfg.vocab_size, (batch, seq))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(tokens)
    full = accounting.forward_flops(cfg, batch, seq)
    n_up = 2 if cfg.mlp == "swiglu" else 1
    bias_adds = cfg.n_layers * batch * seq * (cfg.qkv_width + cfg.d_model + n_up * cfg.d_ff + cfg.d_model)
    # FlopCounterMode counts every (query, key) pair and no bias adds
    assert counter.get_total_flops() == full.total - (bias_adds if cfg.bias else 0)
    masked = cfg.n_layers * batch * cfg.n_heads * seq * (seq - 1) // 2 * 4 * cfg.head_dim
    assert full.total - accounting.forward_flops_causal(cfg, batch, seq).total == masked


# ------------------------------------------------------------------------------------------------
# Identities


@pytest.mark.parametrize("name", ["gpt2-small", "llama2-70b", "falcon-40b"])
def test_decode_steps_add_up_to_the_causal_forward_pass(name):
    """With a KV cache, token c attends to c cached tokens and itself; summing the steps over a prompt
    gives exactly the causal forward pass (every position's logits included)."""
    cfg, seq = PRESETS[name], 37
    steps = sum(accounting.decode_flops_per_token(cfg, c) for c in range(seq))
    assert steps == accounting.forward_flops_causal(cfg, 1, seq).total
    assert accounting.recompute_flops_per_token(cfg, seq - 1) == accounting.prefill_flops(cfg, 1, seq).total


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(PRESETS)), context=st.integers(0, 10**6), batch=st.integers(1, 512))
def test_decode_flops_grow_by_one_attention_row_per_cached_token(name, context, batch):
    cfg = PRESETS[name]
    per_token = accounting.decode_flops_per_token(cfg, context)
    step = accounting.decode_flops_per_token(cfg, context + 1) - per_token
    assert step == 4 * cfg.n_layers * cfg.n_heads * cfg.head_dim
    assert accounting.decode_flops_breakdown(cfg, batch, context).total == batch * per_token
    kv_per_token = accounting.kv_cache_bytes_per_token(cfg, "bf16")
    assert accounting.kv_cache_bytes(cfg, batch, context, "bf16") == batch * context * kv_per_token


def test_decode_flops_are_2n_plus_linear_attention():
    cfg = PRESETS["llama2-70b"]  # no biases, GQA
    counts = accounting.param_counts(cfg)
    weights = counts.components["attention"] + counts.components["mlp"] + cfg.vocab_size * cfg.d_model
    for context in (0, 1, 4095):
        expected = 2 * weights + 4 * cfg.n_layers * cfg.n_heads * cfg.head_dim * (context + 1)
        assert accounting.decode_flops_per_token(cfg, context) == expected


def test_breakdown_shares_and_batch_linearity():
    b1, b4 = accounting.forward_flops(XL, 1, 64), accounting.forward_flops(XL, 4, 64)
    assert b4.total == 4 * b1.total
    assert sum(b1.shares.values()) == pytest.approx(1.0)
    assert tuple(b1.components) == accounting.FORWARD_COMPONENTS
    assert b1.to_dict()["causal"] is False and accounting.forward_flops_causal(XL, 1, 64).causal is True


# ------------------------------------------------------------------------------------------------
# Seed 002: GPT-2 XL with SwiGLU, untied embeddings, T = 1024


def test_seed_002_gpt2_xl_forward_flops():
    f = accounting.forward_flops(XL, 1, 1024)
    per_block = {k: v / 48 for k, v in f.components.items() if k != "lm_head"}
    assert per_block["qkv"] == 15_728_640_000
    assert per_block["attn_values"] == 3_355_443_200
    assert per_block["attn_out_proj"] == 5_242_880_000
    assert per_block["mlp"] == 41_943_040_000 + 20_971_520_000
    assert sum(per_block.values()) == 90_596_966_400
    assert f.components["lm_head"] == 164_682_137_600
    assert f.total == 4_513_336_524_800


def test_seed_002_qk_scores_listed_at_double_their_value():
    """Seed 002 lists Q@K^T at 6,710,886,400 FLOPs per block. ``2 * T^2 * D`` = 3,355,443,200 (25 heads
    x 2 x 1024^2 x 64), the same as Scores@V; its own per-block total (90,596,966,400) uses the right
    value, so the list entry is a typo."""
    f = accounting.forward_flops(XL, 1, 1024)
    assert f.components["attn_scores"] / 48 == 3_355_443_200
    assert f.components["attn_scores"] == f.components["attn_values"]


def test_seed_002_ffn_explanation_drops_the_gate():
    """Seed 002's worked explanation says "Total (FFN): 4TDF = 41,943,040,000", the cost of a two-matrix
    MLP. The model it counts is SwiGLU (W1, W3, W2): ``6TDF`` = 62,914,560,000 per block, which its own
    list and total do use."""
    mlp = accounting.forward_flops(XL, 1, 1024).components["mlp"]
    assert mlp / 48 == 6 * 1024 * 1600 * 6400 == 62_914_560_000


def test_seed_002_block_share_rounding():
    """Seed 002 (c) puts the blocks at "about 96.5%" and (d) at "96.3%", the LM head at "3.7%". The
    numbers it lists give 4,348,654,387,200 / 4,513,336,524,800 = 96.35% and 3.65%."""
    f = accounting.forward_flops(XL, 1, 1024)
    assert 1 - f.shares["lm_head"] == pytest.approx(0.96351, abs=1e-5)
    per_block = (f.components["attn_scores"] + f.components["attn_values"] + f.components["qkv"]
                 + f.components["attn_out_proj"]) / 48
    assert per_block / 1e9 == pytest.approx(27.68, abs=0.01)  # "attention ~30% (27.6 GFLOPs)"


@pytest.mark.parametrize(
    ("name", "blocks", "head", "total"),
    [("gpt2-small-swiglu", 2.706e11, 0.7905e11, 3.496e11),  # seed 002 writes 3.497e11
     ("gpt2-medium-swiglu", 9.277e11, 1.054e11, 1.033e12),
     ("gpt2-large-swiglu", 2.126e12, 0.1317e12, 2.258e12)],
)
def test_seed_002_model_sizes(name, blocks, head, total):
    f = accounting.forward_flops(PRESETS[name], 1, 1024)
    assert f.total - f.components["lm_head"] == pytest.approx(blocks, rel=5e-4)
    assert f.components["lm_head"] == pytest.approx(head, rel=5e-4)
    assert f.total == pytest.approx(total, rel=5e-4)


def test_seed_002_long_context():
    """(e): at 16,384 tokens the total is 149,522,795,724,800 FLOPs, 33.13x the 1024-token pass (the
    seed says "about 33.2x"), and the two T^2 matmuls grow from 7.1% to 55.2% of it."""
    short, long = accounting.forward_flops(XL, 1, 1024), accounting.forward_flops(XL, 1, 16384)
    assert long.total == 149_522_795_724_800
    assert long.total / short.total == pytest.approx(33.129, abs=1e-3)
    assert short.attention / short.total == pytest.approx(0.0714, abs=1e-4)
    assert long.attention / long.total == pytest.approx(0.5515, abs=1e-4)
    # a causal kernel does half the T^2 work: attention is 38% of what it actually runs
    causal = accounting.forward_flops_causal(XL, 1, 16384)
    assert causal.attention / causal.total == pytest.approx(0.381, abs=1e-3)


# ------------------------------------------------------------------------------------------------
# Seeds 000, 001, 003: per-token rules and training


def test_seed_001_two_n_s_rule_vs_a_kv_cache():
    """Seed 001 (Grok) prices a generated token at ``2*N*S`` and then calls GPT-3 at 2k context "on the
    order of 7e11": its own rule gives 2 x 174B x 2048 = 7.1e14. With a KV cache a token costs
    ``2N`` plus attention linear in the context: 3.59e11 for GPT-3 at 2048, ~2000x less than the rule."""
    cfg = PRESETS["gpt3-175b"]
    naive = accounting.naive_decode_flops_per_token(cfg, 2048)
    cached = accounting.decode_flops_per_token(cfg, 2048)
    assert naive == pytest.approx(7.13e14, rel=1e-3)
    assert cached == pytest.approx(3.588e11, rel=1e-3)
    assert naive / cached > 1900
    # the rule prices recomputation, not a cache
    assert accounting.recompute_flops_per_token(cfg, 2048) > naive / 2


def test_seed_001_gpt4o_formula_does_not_match_its_own_repl():
    """The GPT-4o formula ``E*V + L*(8*E^2*S + 4*E*H*S + H*S^2)`` was evaluated as
    ``4096*200000 + 100*(8*4096^2*128000 + 4*4096*128000 + 8*128000^2)``: H = 8 in one term, dropped in
    another. Either way it charges the MLP for every context token (``8 E^2 S``), i.e. no KV cache. With
    a cache the same shape (100 layers, 4096 wide, 32 heads, vocab 200k) costs 2.5e11 per token at 128k:
    the formula is 6,900x too high, Grok's 2*N*S (2.56e16 for N = 1e11) 100,000x."""
    repl = 4096 * 200000 + 100 * (8 * (4096 * 4096) * 128000 + 4 * 4096 * 128000 + 8 * (128000 * 128000))
    assert repl == 1_731_304_652_800_000
    cfg = ModelConfig("gpt4o-guess", 100, 4096, 32, 32, 4 * 4096, 200000, 131072, tied_embeddings=False,
                      positions="rotary", bias=False)
    cached = accounting.decode_flops_per_token(cfg, 128000)
    assert cached == pytest.approx(2.516e11, rel=1e-3)
    assert repl / cached == pytest.approx(6881, rel=1e-3)
    assert 2 * 1e11 * 128000 / cached > 1e5


def test_seed_000_cost_of_a_query():
    """Seed 000 takes "2N add-multiply operations" per token (Kaplan's 2N is FLOPs: N multiply-adds) and
    prices a 2048-in / 1024-out GPT-3 query at N*S*M, writing "0.00035 ZFLOPs": the product is
    3.67e17 = 0.00037 ZFLOPs. With a KV cache
    the whole query (prefill + 1024 steps) costs 1.1e15: 340x less, as its last post concludes."""
    cfg = PRESETS["gpt3-175b"]
    assert 2048 * 175e9 * 1024 == pytest.approx(3.67e17, rel=1e-3)
    query = accounting.prefill_flops(cfg, 1, 2048).total + sum(
        accounting.decode_flops_per_token(cfg, 2048 + i) for i in range(0, 1024, 64)) * 64
    assert query == pytest.approx(1.1e15, rel=0.03)
    assert 2048 * 175e9 * 1024 / query == pytest.approx(340, rel=0.05)
    # its per-token "N x S" (half the 2NS rule) is still ~1000x what a cached token costs at S = 2048
    n = accounting.param_counts(cfg).non_embedding
    assert n * 2048 == accounting.naive_decode_flops_per_token(cfg, 2048) / 2
    assert n * 2048 / accounting.decode_flops_per_token(cfg, 2048) == pytest.approx(993, rel=0.01)


def test_seed_003_training_flops_eq_3_2():
    """Seed 003 eq. 3.2: ``F = 12 B D L S (S + (2+E) D)`` (forward + backward, full S^2 attention, no LM
    head), which is 3x our forward count for a GELU model without biases."""
    cfg = dataclasses.replace(PRESETS["gpt3-175b"], bias=False)
    b, s, d, L, e = 1, 2048, cfg.d_model, cfg.n_layers, 4
    f = accounting.forward_flops(cfg, b, s)
    assert 3 * (f.total - f.components["lm_head"]) == 12 * b * d * L * s * (s + (2 + e) * d)
    t = accounting.training_flops(cfg, tokens=10 * s, seq=s)
    assert t.detailed == pytest.approx(3 * f.total * 10)
    assert t.six_n == 6 * accounting.param_counts(cfg).non_embedding * 10 * s
    assert t.six_n_total > t.six_n and t.detailed_causal < t.detailed
    assert t.detailed / t.six_n == pytest.approx(1 + s / (6 * d), rel=0.02)  # the O(S/D) correction


def test_seed_003_gpt3_training_memory_is_tib_not_thousands_of_tib():
    """Seed 003 (2.16-2.17) puts mixed-precision GPT-3's non-activation memory at "1463 TiB" (params
    162, grads 325, optimizer 975 TiB). Its own eqs. 2.3-2.4 give 2N + 4N + 12N = 18N bytes: with
    N = 174.6B that is 3.14e12 B = 2.86 TiB (params 0.32, grads 0.64, optimizer 1.91 TiB). The seed's
    figures are N/2^30 x (1, 2, 6): GiB-sized numbers labelled TiB, and half of each."""
    n = accounting.param_counts(PRESETS["gpt3-175b"]).total
    state = accounting.training_state_bytes(PRESETS["gpt3-175b"])
    assert state["total"] == 18 * n
    assert state["total"] / 2**40 == pytest.approx(2.86, abs=0.01)
    assert (state["params"] / 2**40, state["grads"] / 2**40) == pytest.approx((0.318, 0.635), abs=1e-3)
    assert n / 2**30 == pytest.approx(162.6, abs=0.1)  # the seed's "162 TiB" is N in GiB
    assert accounting.training_state_bytes(PRESETS["gpt3-175b"], mixed_precision=False)["total"] == 16 * n


def test_seed_003_falcon_40b_kv_cache():
    """Seed 003 sec. 8 pretends Falcon-40B is multi-head: KV for a 2048-token sequence is
    2*2*2048*8192*60 B = 3.75 GiB ("4GiB"), so batch 200 needs 750 GiB + 77 GiB of weights. That does
    not fit on T = 4 80-GiB GPUs as the seed concludes; it needs 11. With Falcon's real 8 KV heads a
    sequence takes 0.23 GiB and batch 200 fits on 2. Its latency "pN/(lambda T) ~ 13 ms" drops the
    batch: ``2*B*N / (lambda*T)`` at B = 200, T = 4 is 13.2 ms, ``p*N/(lambda*T)`` is 66 us."""
    real = PRESETS["falcon-40b"]
    mha = dataclasses.replace(real, n_kv_heads=real.n_heads)
    per_seq = accounting.kv_cache_bytes(mha, 1, 2048, "bf16")
    assert per_seq == 2 * 2 * 2048 * 8192 * 60 and per_seq / 2**30 == pytest.approx(3.75)
    weights = accounting.weight_bytes(real, "bf16")
    assert weights / 2**30 == pytest.approx(76.9, abs=0.1)
    assert (weights + 200 * per_seq) / 2**30 / 80 == pytest.approx(10.3, abs=0.1)  # > 4 GPUs' worth
    assert accounting.kv_cache_bytes(real, 1, 2048, "bf16") / 2**30 == pytest.approx(0.234, abs=1e-3)
    assert (weights + accounting.kv_cache_bytes(real, 200, 2048, "bf16")) / 2**30 < 2 * 80
    n = accounting.param_counts(real).total
    assert 2 * 200 * n / (312e12 * 4) == pytest.approx(13.2e-3, rel=0.01)
    assert 2 * n / (312e12 * 4) == pytest.approx(66e-6, rel=0.01)


def test_kv_outgrows_weights_near_6d_for_mha_and_later_for_gqa():
    """Seed 003 sec. 6: the cache outweighs the parameters "when BS >~ D", dropping O(1) factors: with
    12 L D^2 weights and 2 L D per token it is BS ~ 6D (50,182 tokens for the 52B model)."""
    m52 = PRESETS["anthropic-52b"]
    assert accounting.kv_outgrows_weights_tokens(m52) == pytest.approx(50182.5, abs=0.1)
    assert accounting.kv_outgrows_weights_tokens(m52) / m52.d_model == pytest.approx(6.13, abs=0.01)
    l70 = PRESETS["llama2-70b"]
    mha70 = dataclasses.replace(l70, n_kv_heads=l70.n_heads)
    kv_per_token = accounting.kv_cache_bytes_per_token
    kv_ratio = kv_per_token(mha70, "bf16") / kv_per_token(l70, "bf16")
    assert kv_ratio == 8
    # MHA has bigger W_k, W_v
    weight_ratio = accounting.weight_bytes(l70, "bf16") / accounting.weight_bytes(mha70, "bf16")
    assert accounting.kv_outgrows_weights_tokens(l70) == pytest.approx(
        8 * weight_ratio * accounting.kv_outgrows_weights_tokens(mha70))
    assert accounting.kv_outgrows_weights_tokens(l70) == pytest.approx(421_000, rel=1e-4)


def test_kv_bytes():
    assert accounting.kv_cache_bytes_per_token(PRESETS["anthropic-52b"], "bf16") == 2_097_152  # seed 004
    assert accounting.kv_cache_bytes_per_token(PRESETS["llama2-70b"], "fp16") == 2 * 80 * 8 * 128 * 2
    assert accounting.kv_cache_bytes(PRESETS["llama2-7b"], 3, 100, "float32") == 3 * 100 * 2 * 32 * 4096 * 4
    assert accounting.kv_cache_bytes(PRESETS["llama2-7b"], 0, 100, "float32") == 0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: accounting.forward_flops(XL, 0, 8), "batch: expected a positive integer"),
        (lambda: accounting.forward_flops(XL, 1, -8), "seq: expected a positive integer"),
        (lambda: accounting.decode_flops_per_token(XL, -1), "context: expected a non-negative integer"),
        (lambda: accounting.kv_cache_bytes(XL, -2, 8, "bf16"), "batch: expected a non-negative integer"),
        (lambda: accounting.training_flops(XL, 0), "tokens: expected a positive integer"),
        (lambda: accounting.naive_decode_flops_per_token(XL, 2.5), "context"),
    ],
)
def test_bad_sizes_are_named(call, match):
    with pytest.raises(UsageError, match=match):
        call()
