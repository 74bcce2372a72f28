"""Predicted latency bounds (roofline/model/latency.py) and seed 004's ("transformer inference arithmetic")
worked numbers. Where the seed's arithmetic is wrong, the test pins the right value and says why."""

from __future__ import annotations

import dataclasses

import pytest

from roofline.errors import UsageError
from roofline.model import accounting, latency
from roofline.model.hardware import PRESETS as HW
from roofline.model.transformer import PRESETS

M52, GOPHER = PRESETS["anthropic-52b"], PRESETS["gopher-280b"]
SEED_A100 = HW["A100-SEED-1.5TB"]  # 312 TFLOP/s, 1.5 TB/s, NVLink 300 GB/s one way


# ------------------------------------------------------------------------------------------------
# Seed 004: KV cache


def test_seed_004_kv_projection_of_one_token():
    """K and V for one token of the 52B model: 64 x 2 x 8192^2 x 2 = 17,179,869,184 FLOPs; reading W_k,
    W_v takes 11.45 ms at 1.5 TB/s ("11.4 ms"), 2.86 ms over four GPUs ("under 3 ms"), and the
    compute for one token is 208x shorter: K/V for up to 208 tokens cost the same time."""
    kv = latency.kv_projection(M52, SEED_A100)
    assert kv.flops == 17_179_869_184 and kv.weight_bytes == 17_179_869_184
    assert kv.memory_s == pytest.approx(11.453e-3, rel=1e-4)
    assert kv.memory_s / 4 == pytest.approx(2.8633e-3, rel=1e-4)
    assert kv.breakeven_tokens == 208.0
    assert latency.kv_projection(M52, SEED_A100, tokens=208).compute_s == pytest.approx(kv.memory_s)


def test_kv_projection_ratio_ignores_the_architecture():
    """"None of the model architecture matters anymore": bytes_per_element * peak / (2 * bandwidth)."""
    for cfg in PRESETS.values():
        assert latency.kv_projection(cfg, SEED_A100).breakeven_tokens == pytest.approx(208.0)
        assert latency.kv_projection(cfg, HW["H100-SXM5"]).breakeven_tokens == pytest.approx(989e12 / 3350e9)
    assert latency.kv_projection_time_ratio(SEED_A100, "float32") == pytest.approx(4 * 156e12 / (2 * 1.5e12))


def test_seed_004_kv_is_a_sixth_of_a_decode_step():
    """K/V take 4 L D^2 of the 24 L D^2 matmul FLOPs per token (exactly 1/6 for MHA with a 4x MLP);
    with the 52B model's biases and 2*V*D LM head it is 0.165."""
    kv = latency.kv_projection(M52, SEED_A100)
    assert kv.flops / (24 * 64 * 8192**2) == pytest.approx(1 / 6)
    assert kv.flops / accounting.decode_flops_per_token(M52, 0) == pytest.approx(0.165, abs=1e-3)


def test_seed_004_flops_sum_drops_its_own_linear_term():
    """Seed 004 writes ``F = 64 * (24 * 8192^2 + 23 * 8192) = 103,079,215,104``; that value is
    ``64 * 24 * 8192^2`` alone. With the 23 * 8192 term the sum is 103,091,273,728."""
    assert 64 * 24 * 8192**2 == 103_079_215_104
    assert 64 * (24 * 8192**2 + 23 * 8192) == 103_091_273_728


def test_seed_004_kv_capacity():
    """Three 40 GB A100s leave 120 - 104 = 16 GB: 16e9 / 2,097,152 = 7,629 tokens ("about 8000"). For
    four GPUs the seed writes "56/0.002 ~ 23000", but 56/0.002 is 28,000 and the exact figure with its
    104,152,956,928 bytes of weights is 26,630 tokens."""
    per_token = accounting.kv_cache_bytes_per_token(M52, "bf16")
    assert 16e9 / per_token == pytest.approx(7629, abs=1)
    assert (4 * 40e9 - 52_076_478_464 * 2) / per_token == pytest.approx(26_630, abs=1)
    # the preset (untied, with biases and norms) holds 52.6B parameters, so a little less room
    assert accounting.kv_capacity_tokens(M52, 4 * 40e9) == pytest.approx(26_111, abs=1)
    assert accounting.kv_capacity_tokens(M52, 80e9) < 0  # does not fit on two GPUs


# ------------------------------------------------------------------------------------------------
# Seed 004: latency with tensor parallelism


def test_seed_004_gopher_small_batch():
    """Gopher on 16 A100s, batch 1: reading 2 x 258B bytes of weights takes 21.5 ms ("22 ms"). The
    seed's communication term is ``n_layers * 4 * 10 us`` but it computes 128 x 4 x 10 us = 5.12 ms
    with 128, Gopher's head count; with its 80 layers it is 3.2 ms, and the total 24.7 ms, not 27."""
    step = latency.decode_step_latency(GOPHER, 1, 0, SEED_A100, "bf16", tp=16)
    assert step.memory_s == pytest.approx(21.52e-3, rel=1e-3)
    assert step.comm_latency_s == pytest.approx(3.2e-3)
    assert step.comm_transfer_s < 0.05e-3
    assert step.seconds == pytest.approx(24.75e-3, rel=1e-3)
    assert step.bound == "memory"


def test_seed_004_gopher_large_batch():
    """Batch 512: compute is 512 x 2 x 258B / (16 x 312e12) = 53.0 ms ("53 ms"). The seed's comms,
    ``B * n_layers * 4 * d_model / A_c`` = 8.9 ms, counts elements, not bytes: each bf16 value is 2
    bytes, so the transfers take 17.9 ms (plus 3.2 ms of latency), 74 ms in all rather than 62."""
    step = latency.decode_step_latency(GOPHER, 512, 0, SEED_A100, "bf16", tp=16)
    assert step.compute_s == pytest.approx(52.97e-3, rel=1e-3)
    assert 512 * 80 * 4 * 16384 / 300e9 == pytest.approx(8.95e-3, rel=1e-3)
    assert step.comm_transfer_s == pytest.approx(17.90e-3, rel=1e-3)
    assert step.seconds == pytest.approx(74.07e-3, rel=1e-3)
    assert step.overlapped_seconds == step.compute_s


def test_seed_004_52b_on_four_gpus():
    """The exercise: 52B on 4 GPUs at batch 256 has compute "about 21 ms" (21.4) and comms "about 2 ms";
    with 2 bytes per element the transfers take 3.6 ms, plus 2.6 ms of latency. One token at batch 1
    takes "20 ms": 17.4 ms of weight reads + 2.56 ms of latency."""
    big = latency.decode_step_latency(M52, 256, 0, SEED_A100, "bf16", tp=4)
    assert big.compute_s == pytest.approx(21.37e-3, rel=1e-3)
    assert big.comm_transfer_s == pytest.approx(3.579e-3, rel=1e-3)
    assert big.comm_latency_s == pytest.approx(2.56e-3)
    one = latency.decode_step_latency(M52, 1, 0, SEED_A100, "bf16", tp=4)
    assert one.seconds == pytest.approx(19.94e-3, rel=1e-3)


def test_seed_004_compute_bound_batch_is_about_208():
    """The decode step turns compute-bound near batch 208 = 312e12 / 1.5e12 (weights dominate the
    bytes); the embedding rows, logits and new K/V each sequence adds push it to 209. (The seed writes
    the ratio as "A_bw / A_c"; it is the FLOP rate over the memory bandwidth, A_f / A_bm.)"""
    b = latency.decode_compute_bound_batch(M52, SEED_A100, "bf16")
    assert b == 209
    at = latency.decode_step_latency(M52, b, 0, SEED_A100, "bf16")
    before = latency.decode_step_latency(M52, b - 1, 0, SEED_A100, "bf16")
    assert at.bound == "compute" and before.bound == "memory"
    # TP splits weights and FLOPs, but every GPU reads the activations: a hair later
    assert latency.decode_compute_bound_batch(M52, SEED_A100, "bf16", tp=4) == 210


def test_long_context_decode_is_never_compute_bound_for_mha_but_can_be_for_gqa():
    """MHA decode attention reads 2 bytes of K/V per 2 FLOPs, so past a context where each sequence's
    cache reads outlast its FLOPs no batch is compute-bound. GQA (Llama-2-70B, 8 KV heads) reads 8x less."""
    a100 = HW["A100-SXM4-80GB"]
    assert latency.decode_compute_bound_batch(M52, a100, "bf16", context=2048) is None
    b = latency.decode_compute_bound_batch(PRESETS["llama2-70b"], a100, "bf16", context=2048)
    assert b is not None
    step = latency.decode_step_latency(PRESETS["llama2-70b"], b, 2048, a100, "bf16")
    assert step.bound == "compute"


def test_seed_003_kv_cache_decode_is_memory_bound_not_compute_bound():
    """Seed 003 sec. 7 calls KV-cache inference "now compute bound" and in the same sentence gives its
    latency as M_infer / lambda_mem, a memory-bound time. At batch 1 reading the weights and cache takes
    ~100x longer than the FLOPs; the step is memory-bound up to batch ~ the ridge point."""
    cfg, a100 = PRESETS["gpt3-175b"], HW["A100-SXM4-80GB"]
    step = latency.decode_step_latency(cfg, 1, 2048, a100, "bf16")
    assert step.bound == "memory" and step.memory_s > 100 * step.compute_s
    expected = (accounting.streamed_weight_bytes(cfg, "bf16")
                + accounting.kv_cache_bytes(cfg, 1, 2049, "bf16")) / 2039e9
    assert step.memory_s == pytest.approx(expected, rel=1e-4)


# ------------------------------------------------------------------------------------------------
# Prefill, structure and errors


def test_prefill_is_compute_bound_and_counts_what_it_writes():
    cfg, a100 = PRESETS["llama2-7b"], HW["A100-SXM4-80GB"]
    p = latency.prefill_latency(cfg, 4, 2048, a100, "bf16")
    assert p.bound == "compute"
    assert p.flops == accounting.prefill_flops(cfg, 4, 2048).total
    lm_head_rows = 4 * 2047 * 2 * cfg.vocab_size * cfg.d_model  # logits only for the last position
    assert p.flops == accounting.forward_flops_causal(cfg, 4, 2048).total - lm_head_rows
    assert p.bytes > (accounting.streamed_weight_bytes(cfg, "bf16")
                      + accounting.kv_cache_bytes(cfg, 4, 2048, "bf16"))
    assert latency.prefill_seconds_lower_bound(cfg, 4, 2048, a100, "bf16") == p.seconds == p.compute_s
    short = latency.prefill_latency(cfg, 1, 8, a100, "bf16")
    assert short.bound == "memory"  # 8 tokens: the weights dominate


def test_breakdown_structure():
    step = latency.decode_step_latency(PRESETS["llama2-70b"], 8, 4096, HW["H100-SXM5"], "fp16", tp=8)
    assert step.seconds == max(step.compute_s, step.memory_s) + step.comm_latency_s + step.comm_transfer_s
    assert step.overlapped_seconds <= step.seconds
    d = step.to_dict()
    assert d["predicted"] is True and d["hardware"] == "H100-SXM5" and d["dtype_class"] == "tensor16"
    assert latency.decode_step_seconds_lower_bound(PRESETS["llama2-70b"], 8, 4096, HW["H100-SXM5"], "fp16",
                                               tp=8) == step.seconds
    fp32 = latency.decode_step_latency(PRESETS["llama2-7b"], 1, 0, HW["A100-SXM4-80GB"], "float32")
    assert fp32.dtype_class == "tf32" and fp32.comm_s == 0


def test_kv_heads_are_replicated_beyond_their_count():
    """Llama-2-70B has 8 KV heads: at tp=16 each GPU still holds one, so its KV traffic stops shrinking."""
    cfg, h100 = PRESETS["llama2-70b"], HW["H100-SXM5"]
    def kv_part(tp):
        with_kv = latency.decode_step_latency(cfg, 4, 8192, h100, "bf16", tp)
        without = latency.decode_step_latency(cfg, 4, 0, h100, "bf16", tp)
        return with_kv.bytes - without.bytes
    assert kv_part(2) == pytest.approx(kv_part(1) / 2)
    assert kv_part(8) == pytest.approx(kv_part(1) / 8)
    assert kv_part(16) == pytest.approx(kv_part(8))
    mha = dataclasses.replace(cfg, n_kv_heads=64)
    assert latency.decode_step_latency(mha, 1, 10, h100, "bf16", 16).comm_latency_s == 80 * 4 * 10e-6


def test_link_bandwidth():
    assert latency.link_bandwidth_for(HW["H100-SXM5"]) == 450e9
    with pytest.raises(UsageError, match="no interconnect bandwidth known for H100-PCIE"):
        latency.decode_step_latency(PRESETS["llama2-7b"], 1, 0, HW["H100-PCIE"], "bf16", tp=2)
    pcie = latency.decode_step_latency(PRESETS["llama2-7b"], 1, 0, HW["H100-PCIE"], "bf16", tp=2,
                                   link_bandwidth=32e9)
    assert pcie.comm_transfer_s == pytest.approx(32 * 4 * 4096 * 2 / 32e9)
    assert latency.tp_comm_seconds(M52, 100, 1, "bf16", link_bandwidth=1.0) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: latency.decode_step_latency(M52, 1, 0, SEED_A100, "bf16", tp=3), r"tp: must divide n_heads"),
        (lambda: latency.decode_step_latency(M52, 1, 0, SEED_A100, "bf16", tp=0), "tp: expected a positive"),
        (lambda: latency.decode_step_latency(M52, 0, 0, SEED_A100, "bf16"), "batch: expected a positive"),
        (lambda: latency.decode_step_latency(M52, 1, -5, SEED_A100, "bf16"),
         "context: expected a non-negative"),
        (lambda: latency.prefill_latency(M52, 1, 0, SEED_A100, "bf16"), "seq: expected a positive"),
        (lambda: latency.tp_comm_seconds(M52, 1, 2, "bf16", link_bandwidth=0), "link_bandwidth"),
        (lambda: latency.kv_projection(M52, SEED_A100, tokens=0), "tokens: expected a positive"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(UsageError, match=match):
        call()
