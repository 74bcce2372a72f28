"""Memory capacity (roofline/model/capacity.py): weights, KV cache and activations per GPU under tensor
parallelism, what fits, and seed 004's 52B figures."""

from __future__ import annotations

import math

import pytest

from roofline.errors import UsageError
from roofline.model import accounting
from roofline.model.capacity import LOGIT_BYTES, activation_bytes, capacity
from roofline.model.hardware import PRESETS as HW
from roofline.model.precision import Precision
from roofline.model.transformer import PRESETS

M52, LLAMA7, LLAMA70 = PRESETS["anthropic-52b"], PRESETS["llama2-7b"], PRESETS["llama2-70b"]
A40, A80, H200 = HW["A100-SXM4-40GB"], HW["A100-SXM4-80GB"], HW["H200"]


def test_seed_004_52b_on_four_40gb_a100s():
    """Four GPUs, 64 heads split 16 each: the room left after 105.2 GB of weights (26.3 GB per GPU) holds
    26,110 tokens (the pooled arithmetic gives 26,111; the seed's "~23,000" is 56/0.002 = 28,000
    miscomputed), at 2,097,152 / 4 bytes per token per GPU."""
    c = capacity(M52, A40, 4, "bfloat16", 1, 2048)
    assert c.weight_bytes_total == accounting.weight_bytes(M52, "bf16")
    assert c.weight_bytes == c.weight_bytes_total / 4
    assert c.kv_bytes_per_token == 2_097_152 / 4 and c.kv_bytes_per_token_total == 2_097_152
    pooled = accounting.kv_capacity_tokens(M52, 4 * 40e9)
    assert c.kv_tokens == math.floor((40e9 - c.weight_bytes - activation_bytes(M52, 1, 1, 2048, "bf16", 4))
                                     / c.kv_bytes_per_token)
    assert c.kv_tokens == pytest.approx(pooled, abs=2) and c.kv_tokens == 26_110
    assert c.fits and c.max_batch == 12  # 12 x 2048 = 24,576 tokens, and room to prefill one prompt
    assert not capacity(M52, A40, 4, "bfloat16", 13, 2048).fits


def test_three_gpus_cannot_split_64_heads():
    with pytest.raises(UsageError, match="gpus: tensor parallelism over 3 GPUs must divide n_heads"):
        capacity(M52, A40, 3)


def test_weights_that_do_not_fit_leave_no_room():
    c = capacity(M52, A80, 1)
    assert not c.fits and c.kv_tokens == 0 and c.max_batch == 0 and c.free_bytes < 0


def test_gqa_replicates_kv_heads_past_their_count():
    """Llama-2-70B has 8 KV heads: on 8 GPUs each holds one; on 16 each still holds a whole head (two GPUs
    replicate it), so the per-GPU KV stops shrinking."""
    per = accounting.kv_cache_bytes_per_token(LLAMA70, "bf16")
    assert capacity(LLAMA70, A80, 8).kv_bytes_per_token == per / 8
    assert capacity(LLAMA70, A80, 16, memory_bytes=80e9).kv_bytes_per_token == per / 8


def test_quantization_buys_kv_room():
    """Llama-2-70B on one H200: 138 GB of bf16 weights leave room for one 4k sequence (9,296 tokens),
    not four; int4 weights and an fp8 cache leave room for hundreds."""
    bf16 = capacity(LLAMA70, H200, 1, "bf16", 4, 4096)
    w4 = capacity(LLAMA70, H200, 1, Precision(weights="int4", kv="fp8"), 4, 4096)
    assert not bf16.fits and bf16.max_batch == 1 and bf16.kv_tokens == 9296
    assert w4.fits and w4.max_batch > 100
    assert w4.kv_bytes_per_token == bf16.kv_bytes_per_token / 2
    assert w4.kv_tokens == pytest.approx((141e9 - w4.weight_bytes) / w4.kv_bytes_per_token, rel=1e-3)


def test_activation_bytes():
    """Residual + its normed copy + the widest projection per token, plus the last positions' fp32 logits;
    unfused attention adds the scores and probabilities of the GPU's heads."""
    widest = 2 * 11008  # Llama's gate and up
    logits = 2 * 32000 * LOGIT_BYTES
    assert activation_bytes(LLAMA7, 2, 10, 10, "bf16") == 20 * (2 * 4096 + widest) * 2 + logits
    fused = activation_bytes(LLAMA7, 1, 4096, 4096, "bf16", 2)
    eager = activation_bytes(LLAMA7, 1, 4096, 4096, "bf16", 2, "unfused")
    assert eager - fused == 2 * 16 * 4096 * 4096 * 2
    c = capacity(LLAMA7, A80, 1, "bf16", 1, 4096, attention="unfused")
    assert c.prefill_activation_bytes == activation_bytes(LLAMA7, 1, 4096, 4096, "bf16", 1, "unfused")


def test_capacity_errors_are_named():
    with pytest.raises(UsageError, match="no memory capacity"):
        capacity(LLAMA7, HW["V100-SXM2"], 1)
    with pytest.raises(UsageError, match="batch"):
        capacity(LLAMA7, A80, 1, "bf16", 0)
    with pytest.raises(UsageError, match="gpus"):
        capacity(LLAMA7, A80, 0)
