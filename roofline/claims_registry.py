"""The registry of memory- vs compute-bound claims and their checks.

Each :class:`Claim` has an id, the statement, its source (a seed document's file name under
``shared/seeds/``, or ``"ridgebench"``), a check on the analytic model for any hardware spec, and,
where a benchmark measures it, a check on measured results. A check returns a :class:`Verdict`:
``supported``, ``refuted`` or ``inconclusive``, with the numbers behind it. Evaluation and the report
live in :mod:`roofline.claims`; the shared arithmetic in :mod:`roofline.claims_checks`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from roofline import claims_accounting as CA
from roofline import claims_checks as C
from roofline.claims_checks import INCONCLUSIVE, REFUTED, STATUSES, SUPPORTED, Verdict
from roofline.hardware import HardwareSpec
from roofline.results import Results
from roofline.step_report import decode_knee_measured, decode_knee_model

SEED_000 = "000_997912504fe949f9.txt"  # FLOPs per token from the scaling-laws paper (forum thread)
SEED_001 = "001_73c622d9138b535f.txt"  # "How many FLOPs" blog (GPT-4o / Grok answers)
SEED_002 = "002_8eaabdfaba62962c.txt"  # GPT-2 XL resource accounting
SEED_003 = "003_2fdff13b4af33bc8.txt"  # decoder-only transformer notes (App. D: compute vs memory)
SEED_004 = "004_9e198411fc46d055.txt"  # transformer inference arithmetic


ModelCheck = Callable[[HardwareSpec, str], Verdict]
MeasuredCheck = Callable[[Results, HardwareSpec], Verdict]


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    source: str
    model_check: ModelCheck | None
    measured_check: MeasuredCheck | None = None
    quote: str = ""
    # The measured verdict reads the run's roof (ridge, peak, bandwidth share): with suspect ceilings it
    # becomes "inconclusive (ceilings suspect)". Every measured check here does.
    roof_dependent: bool = True


CLAIMS: tuple[Claim, ...] = (
    Claim("elementwise-memory-bound",
          "Softmax and GELU are memory-bound at every size: their intensity is a few FLOP/byte, far below "
          "the ridge.", f"{SEED_003}; {SEED_004}", C.elementwise_model, C.elementwise_measured,
          quote="element-wise operation ... is *always* memory-bound (003, App. D); softmax will always be "
                "bounded by memory bandwidth (004)"),
    Claim("gemv-decode-crossover",
          "Decode GEMV (weights [N, K], batch B) is memory-bound below a batch of about ridge x bytes/2 "
          "(bytes per weight element; the ridge in FLOP/byte) and compute-bound above it.",
          f"{SEED_003}; {SEED_004}", C.gemv_crossover_model, C.gemv_crossover_measured,
          quote="we need to be able to process batch sizes B ~ O(200) in order to saturate our compute "
                "(003); the min batch size for memory bandwidth bound is A_bw/A_c = 208 (004)"),
    Claim("kv-projection-208",
          "Computing K and V for one token costs about the same time as for up to ridge x bytes/2 tokens "
          "(bytes per weight element; counting weight bytes only: 208.0 on the seed's 312 TFLOP/s, "
          "1.5 TB/s A100 in bf16).",
          SEED_004, C.kv_projection_model, C.qkv_crossover_measured,
          quote="if we're going to compute kv for one token, it'll take the same amount of time to compute "
                "for up to 208 tokens! For 52B this is 11.4 milliseconds"),
    Claim("prefill-projections-compute-bound",
          "Large prefill projection GEMMs (QKV, attention output, MLP over >= 1k tokens) are compute-bound.",
          "ridgebench", C.prefill_model, C.prefill_measured),
    Claim("matmuls-always-compute-bound",
          "Matrix multiplies are essentially always compute-bound.", SEED_003, C.matmuls_always_model,
          C.matmuls_always_measured,
          quote="plugging in any realistic numbers, shows that such matrix-multiplies are essentially "
                "always compute-bound (App. D)"),
    Claim("decode-attention-memory-bound",
          "Decode attention over a KV cache (one new token per sequence) is memory-bound at any batch size "
          "for multi-head attention.", "ridgebench", C.decode_attention_model, C.decode_attention_measured),
    Claim("gqa-raises-intensity",
          "Grouped-query attention raises decode attention's intensity by the group size (Hq / Hkv).",
          "ridgebench", C.gqa_model, C.gqa_measured),
    Claim("seed003-kv-decode-compute-bound",
          "With a KV cache, generation is compute-bound.", SEED_003, CA.kv_decode_compute_bound_model,
          quote="kv-Cache Inference ... The computation is now compute bound (again, see App. D) and has "
                "per-token-latency of approximately M_infer / lambda_mem (Sec. 7)"),
    Claim("flops-per-token-2NS",
          "FLOPs per generated token ~ 2 x N x S (N non-embedding parameters, S context length).",
          SEED_001, CA.two_n_s_model,
          quote="FLOPs per token: ~ 2 x N x S where S is the context length"),
    Claim("flops-per-token-2N-plus-linear",
          "With a KV cache, FLOPs per generated token ~ 2 x N (plus the LM head) plus an attention term "
          "linear in the context: 4 x n_layers x Hq x Dh per cached token.", f"{SEED_000}; {SEED_003}",
          CA.two_n_linear_model,
          quote="2N FLOPs per token (and then you add masking) (000); reduced to being *linear* in S when "
                "the kv-cache is used (003)"),
    Claim("gpt2xl-attention-share-16k",
          "At 16,384 tokens, attention's share (QK^T and PV) of GPT-2 XL forward FLOPs passes 50%.",
          SEED_002, CA.attention_share_model,
          quote="the attention score computations ... grow from ~7% to ~55% of the total FLOPs"),
    Claim("kv-outgrows-weights",
          "The KV cache outgrows the weights once batch x context passes weight bytes / KV bytes per "
          "token (stated per model below).", "ridgebench", CA.kv_outgrows_model),
    Claim("seed003-kv-exceeds-weights-at-BS-D",
          "The KV cache takes more memory than the parameters once B x S >~ D.", SEED_003, CA.kv_bs_d_model,
          quote="the cache takes up more memory when BS >~ D (Sec. 6)"),
    Claim("decode-flat-until-ridge-batch",
          "A decode step's latency is flat in batch up to the ridge batch, then grows linearly; judged on a "
          "model-step run's measured step time vs batch (pytest --benchmark --model ... --batch ...): a "
          "measured knee within 2x of the predicted ridge batch supports it.", SEED_004, decode_knee_model,
          decode_knee_measured,
          quote="mem bandwidth time = 2P/(N A_bm); flops time = B 2P/(N A_f) ... the memory bandwidth is "
                "not affected by B, while flops is ... the min batch size for memory bandwidth bound is "
                "A_bw/A_c = 208"),
    Claim("no-point-above-roof",
          "No measured point lies above its roof; one that does is a counting or caching error, never a "
          "result.", "ridgebench", None, C.above_roof_measured),
)

BY_ID: dict[str, Claim] = {c.id: c for c in CLAIMS}
__all__ = ["CLAIMS", "BY_ID", "Claim", "Verdict", "STATUSES", "SUPPORTED", "REFUTED", "INCONCLUSIVE"]
