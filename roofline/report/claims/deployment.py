"""The claims about deploying a model (issue 27): where decode turns compute-bound for each weight width
(:mod:`roofline.model.precision`), and seed 004's capacity arithmetic for the 52B model
(:mod:`roofline.model.capacity`),
each declared beside its check."""

from __future__ import annotations

import math

from roofline.model import accounting
from roofline.model.capacity import capacity
from roofline.model.hardware import PRESETS as HW
from roofline.model.hardware import HardwareSpec
from roofline.model.latency import decode_compute_bound_batch
from roofline.model.precision import Precision, linear_cost, matrix_bytes, resolve_math
from roofline.model.transformer import PRESETS as MODELS
from roofline.model.verdict import REFUTED, SUPPORTED, CannotJudge, Verdict
from roofline.report.claims.registry import SEED_004, claim

GEMV = ("llama2-7b mlp_up", 11008, 4096)  # N, K


def weight_widths(dtype: str) -> dict[str, Precision]:
    """The deployments the per-width claim states: ``dtype`` activations with bf16-class, weight-only
    int8 and int4 (g128) weights, and W8A8 on int8 and fp8 tensor cores."""
    return {dtype: Precision.uniform(dtype), "int8 weight-only": Precision("int8", dtype, dtype),
            "int4 weight-only (g128)": Precision("int4", dtype, dtype),
            "W8A8 int8": Precision("int8", "int8", dtype), "W8A8 fp8": Precision("fp8", "fp8", dtype)}


def _crossover(spec: HardwareSpec, p: Precision, n: int, k: int, peak: float) -> int:
    """Smallest batch whose GEMV time on ``peak`` reaches its memory time."""
    b = 1
    while True:
        c = linear_cost(b, n, k, p)
        if c.flops / peak >= c.bytes / spec.mem_bandwidth:
            return b
        b += 1


RIDGE_PER_WIDTH = claim(
    "decode-crossover-per-weight-width",
    "Decode turns compute-bound at a batch of about ridge x (bytes per weight element)/2, with the ridge "
    "of the math the weights run on: weight-only int8 (dequantized to 16-bit math) halves the 16-bit "
    "crossover and int4 about quarters it, while W8A8 on int8 or fp8 tensor cores keeps it (half the "
    "bytes, twice the peak).", SEED_004,
    quote="the min batch size for memory bandwidth bound is A_bw/A_c = 208 ... (like int8 would call for "
          "different math)")


@RIDGE_PER_WIDTH.model
def ridge_per_width_model(spec: HardwareSpec, dtype: str) -> Verdict:
    name, n, k = GEMV
    llama = MODELS["llama2-7b"]
    lines, numbers, ok = [], {}, True
    for label, p in weight_widths(dtype).items():
        try:
            cls, peak = resolve_math(spec, p.matmul_math)
        except KeyError as exc:  # a spec without the matmul roof (V100 fp32, a CPU)
            raise CannotJudge(str(exc)) from None
        per_weight = matrix_bytes(k, n, p.weights, p.group_size) / (k * n)
        rule = peak / spec.mem_bandwidth * per_weight / 2
        exact = _crossover(spec, p, n, k, peak)
        model = decode_compute_bound_batch(llama, spec, p)
        ok &= rule / 1.5 <= exact <= rule * 1.5
        fallback = f" ({p.matmul_math} requested: no such tensor cores)" if cls != p.matmul_math else ""
        numbers[label] = {"math": cls, "bytes_per_weight": per_weight, "rule": rule, "gemv": exact,
                          "llama2_7b_decode": model}
        lines.append(f"{label}: {cls} math{fallback}, {per_weight:.4g} B/weight: rule {rule:.1f}, {name} "
                     f"GEMV compute-bound from batch {exact}, whole Llama-2-7B decode step (empty cache) "
                     f"from batch {model}")
    base = numbers[dtype]["gemv"]
    halves = numbers["int8 weight-only"]["gemv"] / base
    ok &= abs(halves - 0.5) <= 0.05
    w8a8 = numbers["W8A8 int8"]
    summary = (f"{spec.name}: {dtype} GEMV compute-bound from batch {base}, int8 weight-only "
               f"{numbers['int8 weight-only']['gemv']} ({halves:.2f}x), int4 "
               f"{numbers['int4 weight-only (g128)']['gemv']}, W8A8 int8 {w8a8['gemv']} on {w8a8['math']}, "
               f"fp8 {numbers['W8A8 fp8']['gemv']} on {numbers['W8A8 fp8']['math']}")
    return Verdict(SUPPORTED if ok else REFUTED, summary, tuple(lines), numbers)


# ---------------------------------------------------------------------------------------- capacity

SEED_52B_PARAMS = 52_076_478_464  # seed 004's parameter count
SEED_KV_PER_TOKEN = 2 * 64 * 8192 * 2  # 2 * n_layers * n_heads * d_head * 2 bytes (its formula)
GIB = 2**30

CAPACITY_THREE = claim(
    "seed004-52b-three-40gb-gpus",
    "The 52B model's bf16 weights take ~104 GB, so at least three 40 GB A100s; the 16 GB left hold "
    "~8,000 tokens of KV cache at ~2 MB (0.002 GB) per token.", SEED_004,
    quote="52,076,478,464 * 2 = 104,152,956,928 bytes ~ 104GB ... we'd need at least three GPUs ... "
          "120-104 = 16GB left for our kv cache ... 16/0.002 ~ 8000 tokens")
CAPACITY_FOUR = claim(
    "seed004-52b-four-40gb-gpus",
    "With four 40 GB A100s, ~23,000 tokens of the 52B model's KV cache fit.", SEED_004,
    quote="For four GPUs, we'd get 56/0.002 ~ 23000")


def _seed_pooled(gpus: int, memory: float) -> float:
    """The seed's arithmetic done exactly: memory summed over GPUs, its parameter count, its KV per token."""
    return (gpus * memory - 2 * SEED_52B_PARAMS) / SEED_KV_PER_TOKEN


@CAPACITY_THREE.model
def capacity_three_model(spec: HardwareSpec, dtype: str) -> Verdict:
    """Independent of ``spec`` and ``dtype``: the seed's bf16 52B on 40 GB A100s."""
    cfg = MODELS["anthropic-52b"]
    weights = 2 * SEED_52B_PARAMS
    preset_weights = accounting.weight_bytes(cfg, "bfloat16")
    kv = accounting.kv_cache_bytes_per_token(cfg, "bfloat16")
    need = math.ceil(weights / 40e9)
    exact = _seed_pooled(3, 40e9)
    rounded_16gb = 16e9 / kv
    ok = (abs(weights / 1e9 - 104) < 1 and need == 3 and kv == SEED_KV_PER_TOKEN
          and abs(exact / 8000 - 1) < 0.1)
    tp3 = cfg.n_heads % 3 != 0
    lines = (f"weights: 2 x {SEED_52B_PARAMS:,} = {weights:,} B = {weights / 1e9:.2f} GB (the seed's "
             f"104 GB holds); the anthropic-52b preset (untied 65,536-token embeddings, biases, norms) holds "
             f"{preset_weights / 1e9:.2f} GB",
             f"KV per token: 2 x 64 x 8192 x 2 x 2 B = {kv:,} B (the seed's '0.002 GB' rounds 2.10 MB "
             "down 5%)",
             f"three GPUs: {3 * 40e9 / 1e9:.0f} - {weights / 1e9:.2f} = {(3 * 40e9 - weights) / 1e9:.2f} GB "
             f"-> {exact:,.0f} tokens exactly; {rounded_16gb:,.0f} with the seed's rounded 16 GB; 16/0.002 = "
             "8,000 only with both roundings (the '~8,000' holds within 6%)",
             f"but {cfg.n_heads} heads do not split over 3 GPUs: tensor parallelism needs 4 (or an uneven or "
             "pipeline split); the seed's 'painful to divide ... into three'" if tp3 else "",
             f"the unit matters: read as binary (40 GiB, as NVIDIA states cache sizes), three GPUs hold "
             f"{3 * 40 * GIB / 1e9:.2f} GB -> {_seed_pooled(3, 40 * GIB):,.0f} tokens; the tables use the "
             "datasheet's decimal GB, as the seed does")
    return Verdict(SUPPORTED if ok else REFUTED,
                   f"104.15 GB of weights need 3 x 40 GB; the 15.85 GB left hold {exact:,.0f} tokens at "
                   f"{kv:,} B/token (seed: ~8,000; its 16/0.002 rounds both numbers)",
                   tuple(line for line in lines if line),
                   {"weights_bytes": weights, "kv_bytes_per_token": kv, "gpus_needed": need,
                    "tokens_three_gpus": exact, "tokens_three_gpus_rounded_16gb": rounded_16gb})


def capacity_table(cfg_name: str = "anthropic-52b", gpus: tuple[int, ...] = (1, 2, 4, 8),
                   context: int = 2048) -> list[str]:
    """One line per hardware preset with a memory capacity: the KV tokens that fit on each GPU count
    (tensor parallel, weights and a decode step's activations subtracted)."""
    cfg = MODELS[cfg_name]
    lines = []
    for spec in HW.values():
        if spec.memory_bytes is None:
            continue
        cells = []
        for g in gpus:
            c = capacity(cfg, spec, g, "bfloat16", 1, context)
            cells.append(f"{g}: {c.kv_tokens:,}" if c.kv_tokens > 0 else f"{g}: does not fit")
        lines.append(f"{spec.name} ({spec.memory_bytes / 1e9:.0f} GB): bf16 KV tokens on "
                     + ", ".join(cells))
    skipped = [s.name for s in HW.values() if s.memory_bytes is None]
    if skipped:
        lines.append(f"no memory capacity in ridgebench for: {', '.join(skipped)}")
    return lines


@CAPACITY_FOUR.model
def capacity_four_model(spec: HardwareSpec, dtype: str) -> Verdict:
    """Independent of ``spec`` and ``dtype``: the seed's four-GPU figure, then the same arithmetic on every
    preset with a memory capacity."""
    cfg = MODELS["anthropic-52b"]
    exact = _seed_pooled(4, 40e9)
    own = (4 * 40e9 - 104e9) / 2e6  # the seed's own 56/0.002
    tp = capacity(cfg, HW["A100-SXM4-40GB"], 4, "bfloat16", 1, 2048)
    ok = abs(exact / 23_000 - 1) <= 0.1
    lines = (f"the seed's own numbers: 160 - 104 = 56 GB, 56/0.002 = {own:,.0f}, not ~23,000",
             f"exactly: ({4 * 40e9:,.0f} - {2 * SEED_52B_PARAMS:,}) / {SEED_KV_PER_TOKEN:,} = "
             f"{exact:,.0f} tokens",
             f"tensor parallel over 4 (16 heads each) on the preset (52.6B parameters, a decode step's "
             f"activations): {tp.kv_tokens:,} tokens, {tp.weight_bytes / 1e9:.2f} GB of weights and "
             f"{tp.kv_bytes_per_token:,.0f} B/token per GPU; batch {tp.max_batch} at 2,048 tokens",
             "the same table on every preset (52B, bf16, context 2,048; datasheet GB, no CUDA-context "
             "allowance):", *capacity_table())
    return Verdict(SUPPORTED if ok else REFUTED,
                   f"four 40 GB A100s hold {exact:,.0f} KV tokens (tensor parallel on the preset: "
                   f"{tp.kv_tokens:,}), {exact / 23_000 - 1:.0%} more than the seed's ~23,000; its own "
                   f"56/0.002 is {own:,.0f}",
                   lines, {"tokens_four_gpus": exact, "tokens_four_gpus_tp": tp.kv_tokens, "seed_own": own})
