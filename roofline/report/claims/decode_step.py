"""The claim that a decode step's latency is flat in batch up to the ridge batch, then linear (seed 004):
on the analytic model, and on a model-step run through the step report's reading
(:func:`roofline.report.step_report.decode_knee_from_report`)."""

from __future__ import annotations

from roofline.model.hardware import HardwareSpec
from roofline.model.latency import decode_compute_bound_batch, decode_step_latency
from roofline.model.step import read_request
from roofline.model.transformer import PRESETS as MODELS
from roofline.model.verdict import INCONCLUSIVE, REFUTED, SUPPORTED, Verdict
from roofline.report.claims.registry import SEED_004, claim
from roofline.report.results import Results
from roofline.report.step_report import build_report, decode_knee_from_report

DECODE_KNEE = claim(
    "decode-flat-until-ridge-batch",
    "A decode step's latency is flat in batch up to the ridge batch, then grows linearly; judged on a "
    "model-step run's measured step time vs batch (pytest --benchmark --model ... --batch ...): a "
    "measured knee within 2x of the predicted ridge batch supports it.", SEED_004,
    quote="mem bandwidth time = 2P/(N A_bm); flops time = B 2P/(N A_f) ... the memory bandwidth is "
          "not affected by B, while flops is ... the min batch size for memory bandwidth bound is "
          "A_bw/A_c = 208")


@DECODE_KNEE.measured
def decode_knee_measured(results: Results, roof: HardwareSpec) -> Verdict:
    """The claim's measured check (``roof`` unused: the step report judges on the measured ceilings)."""
    request = read_request(results.directory)
    if request is None:
        return Verdict(INCONCLUSIVE, "no model-step run (pytest --benchmark --model ... --batch ...)")
    return decode_knee_from_report(build_report(results, request))


@DECODE_KNEE.model
def decode_knee_model(spec: HardwareSpec, dtype: str) -> Verdict:
    """On the analytic model: the 52B model's decode step at a short context is flat (within 10%) up to
    half the predicted ridge batch and doubles (within 10%) from 2x to 4x it; with 2048 cached tokens
    the KV reads make it grow from the start (stated in the details)."""
    cfg = MODELS["anthropic-52b"]

    def t(b: int, ctx: int) -> float:
        return decode_step_latency(cfg, b, ctx, spec, dtype).seconds

    ctx = 0
    ridge = decode_compute_bound_batch(cfg, spec, dtype, ctx)
    if ridge is None:
        return Verdict(INCONCLUSIVE, "no compute-bound decode batch on this spec")
    flat = t(max(1, ridge // 2), ctx) / t(1, ctx)
    linear = t(4 * ridge, ctx) / t(2 * ridge, ctx)
    ok = flat <= 1.1 and abs(linear - 2) <= 0.2
    long_ridge = decode_compute_bound_batch(cfg, spec, dtype, 2048)
    growth = t(64, 2048) / t(1, 2048)
    return Verdict(SUPPORTED if ok else REFUTED,
                   f"anthropic-52b, short context: ridge batch {ridge}; t(B={max(1, ridge // 2)}) / t(1) = "
                   f"{flat:.3f}, t(4x ridge) / t(2x ridge) = {linear:.2f}",
                   (f"with 2048 cached tokens per sequence the KV reads grow with batch: t(64) / t(1) = "
                    f"{growth:.2f}, compute-bound from batch "
                    + ("never" if long_ridge is None else str(long_ridge)),),
                   {"ridge_batch": ridge, "flat_ratio": flat, "linear_ratio": linear,
                    "ridge_batch_context_2048": long_ridge})
