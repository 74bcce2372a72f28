"""Bit-widths (roofline/model/precision.py) through the accounting and the latency bounds: weights,
activations
and KV cache in their own formats, scales counted, each op's FLOPs on the roof of the math it runs."""

from __future__ import annotations

import pytest

from roofline.errors import UsageError
from roofline.model import accounting, latency
from roofline.model.hardware import PRESETS as HW
from roofline.model.precision import Precision, math_of, matrix_bytes, resolve_math
from roofline.model.transformer import PRESETS

LLAMA7, LLAMA70, GPT2 = PRESETS["llama2-7b"], PRESETS["llama2-70b"], PRESETS["gpt2-small"]
A100, H100, H200 = HW["A100-SXM4-80GB"], HW["H100-SXM5"], HW["H200"]
W8 = Precision(weights="int8")
W4 = Precision(weights="int4")
FP8 = Precision("fp8", "fp8", "fp8")
INT8 = Precision("int8", "int8", "int8")


def test_presets_carry_sourced_low_precision_peaks_and_capacity():
    assert HW["A100-SXM4-40GB"].int8_peak_ops == 624e12 and HW["A100-SXM4-40GB"].fp8_peak_flops is None
    assert A100.memory_bytes == 80e9 and HW["A100-SXM4-40GB"].memory_bytes == 40e9
    for name in ("H100-SXM5", "H200"):
        assert HW[name].fp8_peak_flops == HW[name].int8_peak_ops == 1979e12  # 3,958 with sparsity
    assert HW["H100-PCIE"].fp8_peak_flops == 1513e12
    assert H200.memory_bytes == 141e9
    assert HW["V100-SXM2"].int8_peak_ops is None and HW["V100-SXM2"].memory_bytes is None
    assert A100.to_dict()["int8_peak_ops"] == 624e12


@pytest.mark.parametrize("activations, operand, cls", [
    ("bfloat16", "bfloat16", "tensor16"), ("float16", "int4", "tensor16"),
    ("bfloat16", "int8", "tensor16"), ("bfloat16", "fp8", "tensor16"), ("fp8", "fp8", "fp8"),
    ("int8", "int8", "int8"), ("int8", "int4", "int8"),
    ("fp8", "int8", "tensor16"), ("float32", "int4", "tf32"), ("float32", "float32", "tf32"),
    ("fp8", "bfloat16", "tensor16"),
])
def test_math_of_each_operand_pair(activations, operand, cls):
    assert math_of(activations, operand) == cls


def test_resolve_math_falls_back_to_bf16_without_the_tensor_cores():
    assert resolve_math(H100, "fp8") == ("fp8", 1979e12)
    assert resolve_math(A100, "fp8") == ("tensor16", 312e12)  # no fp8 tensor cores on sm_80
    assert resolve_math(A100, "int8") == ("int8", 624e12)
    assert resolve_math(HW["V100-SXM2"], "int8") == ("tensor16", 125e12)


def test_matrix_bytes_count_the_scales():
    assert matrix_bytes(4096, 4096, "bfloat16") == 2 * 4096 * 4096
    assert matrix_bytes(4096, 11008, "int4", 128) == 4096 * 11008 / 2 + 32 * 11008 * 2
    assert matrix_bytes(4096, 11008, "int4", 64) == 4096 * 11008 / 2 + 64 * 11008 * 2
    assert matrix_bytes(100, 8, "int4", 128) == 400 + 1 * 8 * 2  # a partial group still has a scale
    assert matrix_bytes(4096, 11008, "int8") == 4096 * 11008 + 11008 * 2  # per output channel
    assert matrix_bytes(4096, 11008, "fp8") == 4096 * 11008 + 4


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_uniform_precision_is_the_plain_dtype(name, dtype):
    """One copy of the arithmetic: a Precision with one dtype everywhere gives the old numbers exactly."""
    cfg, p = PRESETS[name], Precision.uniform(dtype)
    width = 4 if dtype == "float32" else 2
    assert accounting.weight_bytes(cfg, p) == accounting.param_counts(cfg).total * width
    per_token = 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * width
    assert accounting.kv_cache_bytes_per_token(cfg, p) == per_token
    a = latency.decode_step_latency(cfg, 3, 100, A100, dtype)
    b = latency.decode_step_latency(cfg, 3, 100, A100, p)
    assert a == b and a.flops_by_class == {"tensor16" if width == 2 else "tf32": a.flops}


def test_quantized_weights_keep_embeddings_and_head_in_16_bit():
    counts = accounting.param_counts(LLAMA7)
    shapes = accounting.linear_shapes(LLAMA7)
    block = LLAMA7.n_layers * sum(k * n for k, n in shapes)
    assert block == counts.components["attention"] + counts.components["mlp"]  # no biases in Llama
    int4 = LLAMA7.n_layers * sum(k * n / 2 + (k // 128) * n * 2 for k, n in shapes)
    assert accounting.weight_bytes(LLAMA7, W4) == int4 + 2 * (counts.total - block)
    head = LLAMA7.vocab_size * LLAMA7.d_model
    assert accounting.streamed_weight_bytes(LLAMA7, W4) == int4 + 2 * (counts.non_embedding - block + head)


def test_kv_formats():
    per = 2 * 32 * 32 * 128  # Llama-2-7B: K and V elements per token
    assert accounting.kv_cache_bytes_per_token(LLAMA7, Precision(kv="fp8")) == per
    assert accounting.kv_cache_bytes_per_token(LLAMA7, Precision(kv="int8")) == per * (1 + 2 / 128)
    int4 = Precision(kv="int4", group_size=32)
    assert accounting.kv_cache_bytes_per_token(LLAMA7, int4) == per * (0.5 + 2 / 32)
    # a group larger than the head is one scale per head vector
    assert accounting.kv_cache_bytes_per_token(LLAMA7, Precision(kv="int4", group_size=256)) == \
        per * (0.5 + 2 / 128)


def test_int8_weights_halve_llama7b_decode_on_a100_80gb():
    """Done-when of issue 27: weight-only int8 halves the batch-1 decode step (within 5%) and the
    memory-bound crossover batch (weight-only: bf16 math, half the bytes)."""
    for context in (0, 128):
        bf16 = latency.decode_step_latency(LLAMA7, 1, context, A100, "bfloat16")
        int8 = latency.decode_step_latency(LLAMA7, 1, context, A100, W8)
        assert bf16.bound == int8.bound == "memory"
        assert int8.seconds / bf16.seconds == pytest.approx(0.5, abs=0.025)
        assert int8.dtype_class == "tensor16" and int8.compute_s == bf16.compute_s
    b16 = latency.decode_compute_bound_batch(LLAMA7, A100, "bfloat16")
    b8 = latency.decode_compute_bound_batch(LLAMA7, A100, W8)
    b4 = latency.decode_compute_bound_batch(LLAMA7, A100, W4)
    assert b8 / b16 == pytest.approx(0.5, abs=0.025)
    # int4: the crossover follows the streamed bytes (4 bits + a 2-byte scale per 128, 16-bit LM head)
    ratio = accounting.streamed_weight_bytes(LLAMA7, W4) / accounting.streamed_weight_bytes(LLAMA7, "bf16")
    assert b4 / b16 == pytest.approx(ratio, rel=0.03) and 0.26 < ratio < 0.28
    # W8A8 on int8 tensor cores: half the bytes, twice the peak: the same crossover as bf16
    assert latency.decode_compute_bound_batch(LLAMA7, A100, INT8) == pytest.approx(b16, abs=2)


def test_fp8_on_h100_runs_on_the_fp8_peak():
    step = latency.prefill_latency(LLAMA7, 1, 2048, H100, FP8)
    flops = accounting.prefill_flops(LLAMA7, 1, 2048).components
    head = flops["lm_head"]  # the LM head stays bf16
    assert step.dtype_class == "fp8"
    assert step.flops_by_class == pytest.approx({"fp8": step.flops - head, "tensor16": head})
    assert step.compute_s == pytest.approx((step.flops - head) / 1979e12 + head / 989e12)
    bf16 = latency.prefill_latency(LLAMA7, 1, 2048, H100, "bfloat16")
    assert step.compute_s / bf16.compute_s == pytest.approx(0.5, rel=0.01)
    # the same request on an A100, which has no fp8 tensor cores: bf16 math, fp8 bytes
    a100 = latency.prefill_latency(LLAMA7, 1, 2048, A100, FP8)
    assert a100.dtype_class == "tensor16" and set(a100.flops_by_class) == {"tensor16"}
    assert a100.compute_s == latency.prefill_latency(LLAMA7, 1, 2048, A100, "bfloat16").compute_s
    # fp8 KV with bf16 queries: attention dequantizes, so it stays on the bf16 roof
    mixed = latency.prefill_latency(LLAMA7, 1, 2048, H100, Precision("fp8", "fp8", "bfloat16"))
    attention = flops["attn_scores"] + flops["attn_values"]
    assert mixed.flops_by_class["tensor16"] == pytest.approx(head + attention)


def test_kv_format_moves_the_long_context_decode():
    """At a long context the KV reads dominate (Llama-2-7B, MHA: 0.5 MB per token, 68 GB at 16 x 8192
    against 13.5 GB of weights): an fp8 cache nearly halves the step, int4 weights don't."""
    base = latency.decode_step_latency(LLAMA7, 16, 8192, H200, "bfloat16").seconds
    fp8_kv = latency.decode_step_latency(LLAMA7, 16, 8192, H200, Precision(kv="fp8")).seconds
    int4_w = latency.decode_step_latency(LLAMA7, 16, 8192, H200, W4).seconds
    assert fp8_kv / base < int4_w / base < 1
    assert fp8_kv / base == pytest.approx(0.6, abs=0.1)


def test_unfused_attention_writes_the_scores():
    """Eager attention: every pair computed, scores and probabilities written and read back (4 passes),
    GQA's repeat_kv copies; decode's one query counts the same FLOPs either way."""
    fused = latency.prefill_latency(GPT2, 2, 1024, A100, "bfloat16")
    eager = latency.prefill_latency(GPT2, 2, 1024, A100, "bfloat16", attention="unfused")
    assert eager.bytes - fused.bytes == 12 * 2 * 4 * 2 * 12 * 1024 * 1024  # layers*fb*passes*B*H*T*T
    pairs = 12 * 2 * 12 * (1024 * 1024 - 1024 * 1025 // 2)  # masked pairs, now computed
    assert eager.flops - fused.flops == 4 * 64 * pairs
    gqa = latency.unfused_attention_bytes(LLAMA70, 1, 1, 101, "bfloat16")
    assert gqa == 80 * 2 * (4 * 64 * 101 + 4 * 64 * 101 * 128)
    assert (latency.decode_step_latency(LLAMA7, 4, 500, A100, "bf16", attention="unfused").flops
            == latency.decode_step_latency(LLAMA7, 4, 500, A100, "bf16").flops)
    # the scores are what makes long eager prefill attention memory-bound: its bytes grow as T^2
    long = latency.unfused_attention_bytes(LLAMA7, 1, 8192, 8192, "bfloat16")
    attn_flops = accounting.prefill_flops(LLAMA7, 1, 8192, attention="unfused").attention
    assert long / A100.mem_bandwidth > attn_flops / A100.peak("tensor16")


@pytest.mark.parametrize("kwargs, match", [
    ({"weights": "int3"}, "weights: unsupported"),
    ({"activations": "int4"}, "activations: unsupported"),
    ({"kv": "fp4"}, "kv: unsupported"),
    ({"group_size": 0}, "group_size"),
    ({"group_size": True}, "group_size"),
])
def test_bad_precision_is_named(kwargs, match):
    with pytest.raises(UsageError, match=match):
        Precision(**kwargs)


def test_bad_attention_is_named():
    with pytest.raises(UsageError, match="attention"):
        latency.decode_step_latency(LLAMA7, 1, 0, A100, "bf16", attention="flash")


def test_attention_alone_turns_memory_bound_when_unfused():
    """Issue 27: eager attention at a long prompt is memory-bound where fused attention is compute-bound
    (Llama-2-7B, 4,096 tokens, A100 80GB), though the whole prefill stays compute-bound."""
    fused = latency.attention_latency(LLAMA7, 1, 4096, 0, A100, "bf16")
    eager = latency.attention_latency(LLAMA7, 1, 4096, 0, A100, "bf16", attention="unfused")
    assert fused.bound == "compute" and eager.bound == "memory"
    flops = accounting.prefill_flops(LLAMA7, 1, 4096)
    assert fused.flops == flops.attention and eager.flops > 1.99 * fused.flops
    q_and_o = 32 * 2 * 32 * 4096 * 128 * 2
    kv = 4096 * accounting.kv_cache_bytes_per_token(LLAMA7, "bf16")
    assert fused.bytes == q_and_o + kv
    assert eager.bytes == q_and_o + kv + latency.unfused_attention_bytes(LLAMA7, 1, 4096, 4096, "bf16")
    assert latency.prefill_latency(LLAMA7, 1, 4096, A100, "bf16", attention="unfused").bound == "compute"
    # decode: one query over the cache; tensor parallel splits heads and has no communication here
    one = latency.attention_latency(LLAMA7, 8, 1, 4096, A100, "bf16")
    four = latency.attention_latency(LLAMA7, 8, 1, 4096, A100, "bf16", tp=4)
    assert one.bound == "memory" and four.bytes == pytest.approx(one.bytes / 4) and four.comm_s == 0
    with pytest.raises(UsageError, match="a prefill .* or a decode step"):
        latency.attention_latency(LLAMA7, 1, 16, 16, A100, "bf16")
