"""The claims about kernels (elementwise ops, GEMV/QKV crossover, prefill projections, matmuls,
decode attention, GQA), each declared beside its checks. Model checks evaluate the cost model
(:mod:`roofline.model.cost`) on a hardware spec. Measured checks place measured points against the run's
measured ceilings and, for the batch sweeps, read the crossover off the measured times: a skinny GEMM's
time is flat in the batch while the weight reads dominate and grows linearly once the FLOPs do, so
``t(B) ~ max(a, b*B)`` and the measured crossover is ``a / b``.
"""

from __future__ import annotations

from collections.abc import Callable

from roofline.model.cost import (
    Cost,
    attention_cost,
    dtype_bytes,
    gelu_cost,
    gemm_cost,
    gemv_cost,
    qkv_cost,
    softmax_cost,
)
from roofline.model.hardware import PRESETS as HW
from roofline.model.hardware import HardwareSpec, dtype_class
from roofline.model.latency import kv_projection
from roofline.model.ops import MATMUL_KERNELS, OPS
from roofline.model.roof import peak_for, record_roof, ridge_for, with_matmul_class
from roofline.model.transformer import PRESETS as MODELS
from roofline.model.verdict import (
    CROSSOVER_AGREEMENT,
    CROSSOVER_GROWTH,
    INCONCLUSIVE,
    MEMORY_EVIDENCE,
    REFUTED,
    SUPPORTED,
    Verdict,
    combine,
    overhead_label,
)
from roofline.report.claims.registry import SEED_003, SEED_004, claim
from roofline.report.results import Record, Results


def _ridge(roof: HardwareSpec, r: Record) -> float:
    """The measured ridge of record ``r``'s roof (:mod:`roofline.model.roof` decides the class)."""
    return record_roof(roof, r).ridge


def _peak(roof: HardwareSpec, r: Record) -> float:
    return record_roof(roof, r).peak_flops


def _mm_ridge(spec: HardwareSpec, dtype: str) -> float:
    return ridge_for(spec, dtype_class(dtype, matmul=True))


def _min_ridge(spec: HardwareSpec) -> tuple[float, str]:
    cls = min(spec.peak_flops, key=lambda c: spec.peak_flops[c])
    return ridge_for(spec, cls), cls


def _f(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:,.0f}"


def crossover(cost_at: Callable[[int], Cost], ridge: float, limit: int = 1 << 26) -> int | None:
    """Smallest size ``m >= 1`` whose ``cost_at(m).intensity >= ridge`` (None if none up to ``limit``)."""
    hi = 1
    while cost_at(hi).intensity < ridge:
        hi *= 2
        if hi > limit:
            return None
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if cost_at(mid).intensity >= ridge else (mid, hi)
    return hi if hi > 1 or cost_at(1).intensity < ridge else 1


# ---------------------------------------------------------------------------------------- elementwise

ELEMENTWISE = claim(
    "elementwise-memory-bound",
    "Softmax and GELU are memory-bound at every size: their intensity is a few FLOP/byte, far below "
    "the ridge.", f"{SEED_003}; {SEED_004}",
    quote="element-wise operation ... is *always* memory-bound (003, App. D); softmax will always be "
          "bounded by memory bandwidth (004)")


@ELEMENTWISE.model
def elementwise_model(spec: HardwareSpec, dtype: str) -> Verdict:
    costs = [("softmax", softmax_cost(r, c, dtype)) for r, c in ((1, 1), (4096, 1024), (4096, 262144))]
    costs += [("gelu", gelu_cost(n, dtype, a, b)) for n in (64, 1 << 20, 1 << 28) for a in ("none", "tanh")
              for b in (0, 64)]
    worst_kernel, worst = max(costs, key=lambda kc: kc[1].intensity)
    ridge, cls = _min_ridge(spec)
    status = SUPPORTED if worst.intensity < ridge else REFUTED
    return Verdict(status, f"highest intensity {_f(worst.intensity)} FLOP/B ({worst_kernel}) vs the lowest "
                           "ridge "
                   f"{_f(ridge)} FLOP/B ({cls}): {_f(ridge / worst.intensity)}x below, at every size "
                   "(intensity does not depend on the size)",
                   numbers={"max_intensity": worst.intensity, "ridge": ridge})


@ELEMENTWISE.measured
def elementwise_measured(results: Results, roof: HardwareSpec) -> Verdict:
    recs = [r for r in results.records if r.kernel in OPS and not OPS[r.kernel].matmul]
    if not recs:
        return Verdict(INCONCLUSIVE, "no softmax or GELU benchmark in this run")
    above = [r for r in recs if r.intensity >= _ridge(roof, r)]
    util = [r.achieved_bytes_per_s / roof.mem_bandwidth for r in recs]
    status = REFUTED if above else SUPPORTED
    return Verdict(status, f"{len(recs) - len(above)}/{len(recs)} points below the measured ridge; achieved "
                   f"{min(util):.1%}-{max(util):.1%} of the measured bandwidth "
                   f"{roof.mem_bandwidth / 1e9:,.1f} GB/s",
                   tuple(f"above the ridge: {r.name}" for r in above))


# ---------------------------------------------------------------------------------- GEMV / QKV crossover

GEMV_SHAPES = (("llama2-7b mlp_up", 11008, 4096), ("llama2-70b mlp_up", 28672, 8192),
               ("52B mlp_up", 32768, 8192), ("gpt2-xl mlp_up", 6400, 1600))


GEMV_CROSSOVER = claim(
    "gemv-decode-crossover",
    "Decode GEMV (weights [N, K], batch B) is memory-bound below a batch of about ridge x bytes/2 "
    "(bytes per weight element; the ridge in FLOP/byte) and compute-bound above it.",
    f"{SEED_003}; {SEED_004}",
    quote="we need to be able to process batch sizes B ~ O(200) in order to saturate our compute "
          "(003); the min batch size for memory bandwidth bound is A_bw/A_c = 208 (004)")
KV_PROJECTION = claim(
    "kv-projection-208",
    "Computing K and V for one token costs about the same time as for up to ridge x bytes/2 tokens "
    "(bytes per weight element; counting weight bytes only: 208.0 on the seed's 312 TFLOP/s, "
    "1.5 TB/s A100 in bf16).", SEED_004,
    quote="if we're going to compute kv for one token, it'll take the same amount of time to compute "
          "for up to 208 tokens! For 52B this is 11.4 milliseconds")


@GEMV_CROSSOVER.model
def gemv_crossover_model(spec: HardwareSpec, dtype: str) -> Verdict:
    ridge = _mm_ridge(spec, dtype)
    rule = ridge * dtype_bytes(dtype) / 2
    lines, statuses, numbers = [], [], {}
    for name, n, k in GEMV_SHAPES:
        bx = crossover(lambda b, n=n, k=k: gemv_cost(b, n, k, dtype), ridge)
        ok = bx is not None and rule / 1.5 <= bx <= rule * 1.5
        statuses.append(SUPPORTED if ok else REFUTED)
        numbers[name] = bx
        lines.append(f"{name} (N={n}, K={k}): compute-bound from batch {bx}" if bx else
                     f"{name}: never compute-bound (intensity saturates below the ridge)")
    return Verdict(combine(statuses), f"rule ridge x bytes/2 = {_f(rule)}; exact crossover batch "
                   f"{', '.join(str(v) for v in numbers.values())} (activations add bytes, so slightly "
                   "above)",
                   tuple(lines), {"rule": rule, **numbers})


def _measured_crossover(records: list[Record], size_key: str, cost_at, roof: HardwareSpec, label: str
                        ) -> Verdict:
    groups: dict[tuple, list[Record]] = {}
    for r in records:
        key = (r.provider, r.dtype, tuple(sorted((k, repr(v)) for k, v in r.shape.items() if k != size_key)))
        groups.setdefault(key, []).append(r)
    lines, statuses, numbers = [], [], {}
    for (provider, dtype, rest), recs in sorted(groups.items()):
        by_size = {r.shape[size_key]: r for r in sorted(recs, key=lambda r: r.shape[size_key])}
        if len(by_size) < 3:
            continue
        sizes = sorted(by_size)
        lo, hi = by_size[sizes[0]], by_size[sizes[-1]]
        growth = hi.median_s / lo.median_s
        shape = dict(lo.shape)
        predicted = crossover(lambda m, s=shape, d=dtype: cost_at(s, m, d), _ridge(roof, lo))
        pred = "never" if predicted is None else str(predicted)
        where = f"{label} {provider} {dtype} {', '.join(f'{k}={v}' for k, v in rest)}"
        share = lo.achieved_bytes_per_s / roof.mem_bandwidth
        if share < MEMORY_EVIDENCE:
            statuses.append(INCONCLUSIVE)
            lines.append(f"{where}: at {size_key}={sizes[0]} "
                         f"{overhead_label(lo.median_s, lo.host_launch_s, share)}; its flat time is "
                         f"overhead, not weight reads: no crossover to read (predicted on the measured "
                         f"roof: {pred})")
            continue
        if growth < CROSSOVER_GROWTH:
            reached = predicted is not None and predicted <= sizes[-1] / 4
            statuses.append(REFUTED if reached else INCONCLUSIVE)
            lines.append(f"{where}: time grew only {growth:.2f}x from {size_key}={sizes[0]} to {sizes[-1]}; "
                         f"no crossover measured (predicted on the measured roof: {pred})")
            continue
        measured = lo.median_s * sizes[-1] / hi.median_s
        numbers[where] = (measured, predicted)
        agree = (predicted is not None
                 and 1 / CROSSOVER_AGREEMENT <= measured / predicted <= CROSSOVER_AGREEMENT)
        statuses.append(SUPPORTED if agree else REFUTED)
        lines.append(f"{where}: measured crossover {size_key} ~ {_f(measured)} (time x{growth:.2f} from "
                     f"{sizes[0]} to {sizes[-1]}), predicted {pred}")
    if not lines:
        return Verdict(INCONCLUSIVE, f"no {label} sweep with 3 or more {size_key} values in this run")
    return Verdict(combine(statuses), lines[0] + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""),
                   tuple(lines), {"crossovers": numbers})


@GEMV_CROSSOVER.measured
def gemv_crossover_measured(results: Results, roof: HardwareSpec) -> Verdict:
    recs = [r for r in results.records if r.kernel == "gemv"]
    return _measured_crossover(recs, "batch", lambda s, m, d: gemv_cost(**{**s, "batch": m}, dtype=d), roof,
                               "gemv")


@KV_PROJECTION.measured
def qkv_crossover_measured(results: Results, roof: HardwareSpec) -> Verdict:
    recs = [r for r in results.records if r.kernel == "qkv"]
    return _measured_crossover(recs, "m", lambda s, m, d: qkv_cost(**{**s, "m": m}, dtype=d), roof, "qkv")


@KV_PROJECTION.model
def kv_projection_model(spec: HardwareSpec, dtype: str) -> Verdict:
    cfg = MODELS["anthropic-52b"]

    def times(s: HardwareSpec, tokens: int) -> tuple[float, float]:
        c = gemm_cost(tokens, 2 * cfg.d_model, cfg.d_model, dtype)
        return (cfg.n_layers * c.flops / peak_for(s, dtype_class(dtype, matmul=True))[0],
                cfg.n_layers * c.bytes / s.mem_bandwidth)

    def breakeven(s: HardwareSpec) -> tuple[int, float]:
        t = 1
        while times(s, t)[0] < times(s, t)[1]:
            t += 1
        return t, max(times(s, t)) / max(times(s, 1))

    # Seed 004's definition: weight bytes only (W_k, W_v streamed once) -> ridge x bytes/2 tokens.
    rule = kv_projection(cfg, with_matmul_class(spec, dtype), dtype).breakeven_tokens
    seed = HW["A100-SEED-1.5TB"]
    seed_rule = kv_projection(cfg, seed, dtype).breakeven_tokens
    # Activation-inclusive variant (X read, K/V written too): a little later than the weight-only rule.
    tokens, slowdown = breakeven(spec)
    seed_tokens, _ = breakeven(seed)
    seed_ms = times(seed, 1)[1] * 1e3
    ok = abs(tokens / rule - 1) < 0.15 and slowdown < 1.1 and abs(seed_rule / 208 - 1) < 0.01
    return Verdict(SUPPORTED if ok else REFUTED,
                   f"52B K/V projection on {spec.name}: weight bytes only, rule ridge x bytes/2 = {_f(rule)} "
                   f"tokens; counting activation bytes too, up to {tokens} tokens cost {slowdown:.2f}x one "
                   f"token's time. On the seed's A100 (1.5 TB/s): {_f(seed_rule)} tokens (weight bytes only; "
                   f"{seed_tokens} activation-inclusive), {seed_ms:.1f} ms for one token (seed: 208, "
                   "11.4 ms)",
                   numbers={"rule": rule, "tokens": tokens, "seed_rule": seed_rule,
                            "seed_tokens": seed_tokens, "seed_ms": seed_ms})


# ---------------------------------------------------------------------------------------- matmuls

PREFILL_MODELS = ("gpt2-xl", "llama2-7b", "llama2-70b", "anthropic-52b")


def _projection_costs(cfg, m: int, dtype: str) -> dict[str, Cost]:
    return {"qkv": qkv_cost(m, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, dtype),
            "attn_out": gemm_cost(m, cfg.d_model, cfg.n_heads * cfg.head_dim, dtype),
            "mlp_up": gemm_cost(m, cfg.d_ff, cfg.d_model, dtype),
            "mlp_down": gemm_cost(m, cfg.d_model, cfg.d_ff, dtype)}


PREFILL = claim(
    "prefill-projections-compute-bound",
    "Large prefill projection GEMMs (QKV, attention output, MLP over >= 1k tokens) are compute-bound.",
    "ridgebench")


@PREFILL.model
def prefill_model(spec: HardwareSpec, dtype: str) -> Verdict:
    ridge = _mm_ridge(spec, dtype)
    worst = min(((f"{name} {op} m={m}", c.intensity) for name in PREFILL_MODELS for m in (1024, 4096)
                 for op, c in _projection_costs(MODELS[name], m, dtype).items()), key=lambda x: x[1])
    status = SUPPORTED if worst[1] >= ridge else REFUTED
    return Verdict(status, f"lowest intensity {_f(worst[1])} FLOP/B ({worst[0]}) vs ridge {_f(ridge)}: "
                   f"{worst[1] / ridge:.2f}x the ridge", numbers={"min_intensity": worst[1], "ridge": ridge})


@PREFILL.measured
def prefill_measured(results: Results, roof: HardwareSpec) -> Verdict:
    recs = [r for r in results.records if r.kernel == "qkv" and r.shape.get("m", 0) >= 1024]
    if not recs:
        largest = max((r.shape.get("m", 0) for r in results.records if r.kernel == "qkv"), default=None)
        return Verdict(INCONCLUSIVE, "no prefill-sized (m >= 1024) QKV projection in this run (largest m: "
                                     f"{largest})")
    below = [r for r in recs if r.intensity < _ridge(roof, r)]
    frac = [r.achieved_flops_per_s / _peak(roof, r) for r in recs]
    return Verdict(REFUTED if below else SUPPORTED,
                   f"{len(recs) - len(below)}/{len(recs)} prefill QKV points above the measured ridge; "
                   f"{min(frac):.1%}-{max(frac):.1%} of the measured compute peak")


MATMULS_ALWAYS = claim(
    "matmuls-always-compute-bound", "Matrix multiplies are essentially always compute-bound.", SEED_003,
    quote="plugging in any realistic numbers, shows that such matrix-multiplies are essentially "
          "always compute-bound (App. D)")


@MATMULS_ALWAYS.model
def matmuls_always_model(spec: HardwareSpec, dtype: str) -> Verdict:
    ridge = _mm_ridge(spec, dtype)
    l7 = MODELS["llama2-7b"]
    gemv1 = gemv_cost(1, l7.d_ff, l7.d_model, dtype)
    attn = attention_cost(1, l7.n_heads, l7.n_kv_heads, l7.head_dim, 1, 4096, dtype)
    big = gemm_cost(4096, l7.d_ff, l7.d_model, dtype)
    status = REFUTED if min(gemv1.intensity, attn.intensity) < ridge else SUPPORTED
    return Verdict(status, f"decode (one token): llama2-7b mlp_up GEMV {_f(gemv1.intensity)} FLOP/B and "
                           "attention "
                   f"over a 4k cache {_f(attn.intensity)} FLOP/B vs ridge {_f(ridge)}: memory-bound; the "
                   "same "
                   f"GEMM at 4096 tokens is {_f(big.intensity)} FLOP/B (compute-bound)",
                   numbers={"decode_gemv": gemv1.intensity, "ridge": ridge})


@MATMULS_ALWAYS.measured
def matmuls_always_measured(results: Results, roof: HardwareSpec) -> Verdict:
    recs = [r for r in results.records if r.kernel in MATMUL_KERNELS]
    if not recs:
        return Verdict(INCONCLUSIVE, "no matmul benchmark in this run")
    below = sorted((r for r in recs if r.intensity < _ridge(roof, r)),
                   key=lambda r: r.intensity)
    if not below:
        return Verdict(SUPPORTED, f"all {len(recs)} measured matmuls sit above the measured ridge")
    r = below[0]
    return Verdict(REFUTED, f"{len(below)}/{len(recs)} measured matmuls sit below the measured ridge, e.g. "
                            f"{r.name}: "
                   f"{_f(r.intensity)} FLOP/B, "
                   f"{r.achieved_flops_per_s / _peak(roof, r):.2%} of "
                   "the measured compute peak")


# ---------------------------------------------------------------------------------------- attention

DECODE_ATTENTION = claim(
    "decode-attention-memory-bound",
    "Decode attention over a KV cache (one new token per sequence) is memory-bound at any batch size "
    "for multi-head attention.", "ridgebench")


@DECODE_ATTENTION.model
def decode_attention_model(spec: HardwareSpec, dtype: str) -> Verdict:
    ridge = _mm_ridge(spec, dtype)
    worst = max(((name, b, c, attention_cost(b, m.n_heads, m.n_heads, m.head_dim, 1, c, dtype).intensity)
                 for name, m in (("llama2-7b", MODELS["llama2-7b"]), ("gpt2-xl", MODELS["gpt2-xl"]))
                 for b in (1, 16, 256, 4096) for c in (128, 4096, 131072)), key=lambda x: x[3])
    status = SUPPORTED if worst[3] < ridge else REFUTED
    return Verdict(status, f"MHA decode attention: at most {_f(worst[3])} FLOP/B ({worst[0]}, batch "
                           f"{worst[1]}, "
                   f"cache {worst[2]}) vs ridge {_f(ridge)}; batch does not change it (each sequence reads "
                   "its "
                   "own cache)", numbers={"max_intensity": worst[3], "ridge": ridge})


@DECODE_ATTENTION.measured
def decode_attention_measured(results: Results, roof: HardwareSpec) -> Verdict:
    recs = [r for r in results.records if r.kernel == "attention" and r.shape.get("q_len") == 1
            and r.shape.get("n_kv_heads") == r.shape.get("n_heads")]
    if not recs:
        return Verdict(INCONCLUSIVE, "no multi-head decode attention (q_len=1, Hkv=Hq) in this run")
    above = [r for r in recs if r.intensity >= _ridge(roof, r)]
    util = [r.achieved_bytes_per_s / roof.mem_bandwidth for r in recs]
    return Verdict(REFUTED if above else SUPPORTED,
                   f"{len(recs) - len(above)}/{len(recs)} MHA decode points below the measured ridge; "
                   f"{min(util):.1%}-{max(util):.1%} of the measured bandwidth")


GQA = claim(
    "gqa-raises-intensity",
    "Grouped-query attention raises decode attention's intensity by the group size (Hq / Hkv).",
    "ridgebench")


@GQA.model
def gqa_model(spec: HardwareSpec, dtype: str) -> Verdict:
    lines, statuses = [], []
    for name in ("llama2-70b", "falcon-40b"):
        m = MODELS[name]
        group = m.n_heads // m.n_kv_heads
        gqa = attention_cost(1, m.n_heads, m.n_kv_heads, m.head_dim, 1, 4096, dtype).intensity
        mha = attention_cost(1, m.n_heads, m.n_heads, m.head_dim, 1, 4096, dtype).intensity
        statuses.append(SUPPORTED if abs(gqa / mha / group - 1) < 0.1 else REFUTED)
        bound = "memory" if gqa < _mm_ridge(spec, dtype) else "compute"
        lines.append(f"{name}: group {group}, intensity {_f(gqa)} vs {_f(mha)} FLOP/B with MHA heads "
                     f"(x{gqa / mha:.2f}); still {bound}-bound on {spec.name}")
    return Verdict(combine(statuses), "; ".join(lines))


@GQA.measured
def gqa_measured(results: Results, roof: HardwareSpec) -> Verdict:
    dec = [r for r in results.records if r.kernel == "attention" and r.shape.get("q_len") == 1]
    mha = {(r.provider, r.dtype, r.shape["cache_len"]): r for r in dec
           if r.shape["n_kv_heads"] == r.shape["n_heads"]}
    lines, statuses = [], []
    for r in dec:
        group = r.shape["n_heads"] // r.shape["n_kv_heads"]
        other = mha.get((r.provider, r.dtype, r.shape["cache_len"]))
        if group == 1 or other is None:
            continue
        ratio = r.achieved_flops_per_s / other.achieved_flops_per_s
        share = other.achieved_bytes_per_s / roof.mem_bandwidth  # the MHA reference must be memory-bound
        if share < MEMORY_EVIDENCE:
            statuses.append(INCONCLUSIVE)
            lines.append(f"{r.provider} cache {r.shape['cache_len']}: GQA reached {ratio:.2f}x the FLOP/s of "
                         f"MHA, but MHA is {overhead_label(other.median_s, other.host_launch_s, share)}: "
                         "no evidence about intensity")
            continue
        statuses.append(SUPPORTED if group / 2 <= ratio <= group * 2 else REFUTED)
        lines.append(f"{r.provider} cache {r.shape['cache_len']}: GQA (group {group}) reached {ratio:.2f}x "
                     "the "
                     f"FLOP/s of MHA (memory-bound: expected ~{group}x)")
    if not lines:
        return Verdict(INCONCLUSIVE, "no GQA and MHA decode attention at the same cache length in this run")
    return Verdict(combine(statuses), lines[0] + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""),
                   tuple(lines))
