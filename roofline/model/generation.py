"""A whole generation, PREDICTED from the per-step lower bounds of :mod:`roofline.model.latency`: ``batch``
prompts of ``prompt`` tokens, each growing by ``output`` tokens.

The prefill computes the first output token (time to first token, TTFT); each of the ``output - 1``
decode steps that follow runs at a context of ``prompt``, ``prompt + 1``, ..., ``prompt + output - 2``
cached tokens. TPOT (time per output token) is the mean decode step; end-to-end is TTFT plus every decode
step; tokens/s per GPU is ``batch * output / end-to-end / tp``. The compute/memory/communication split
gives each step's time to the roof that bounds it (its ``max(compute, memory)``), plus communication.
No queueing, no scheduling gaps, no kernel launch overhead: a floor, never a measurement.

:func:`anchored` turns a predicted generation into one on MEASURED steps (a ``--model`` step run's): the
decode steps take the level of a decode step measured at one context and the growth with the context
from the model (the predicted step at each context over the predicted step at the measured one); TTFT
is a measured prefill scaled the same way to the generation's batch and prompt (or stays predicted).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from roofline.errors import UsageError, require_positive
from roofline.model.hardware import HardwareSpec
from roofline.model.latency import (
    LatencyBreakdown,
    decode_compute_bound_batch,
    decode_step_latency,
    prefill_latency,
)
from roofline.model.precision import as_precision
from roofline.model.transformer import ModelConfig


def _split(steps: Iterable[LatencyBreakdown]) -> dict[str, float]:
    out = {"compute": 0.0, "memory": 0.0, "communication": 0.0}
    for s in steps:
        out[s.bound] += max(s.compute_s, s.memory_s)
        out["communication"] += s.comm_s
    return out


@dataclass(frozen=True)
class Generation:
    """One predicted generation (seconds; module docstring for the definitions)."""

    model: str
    hardware: str
    precision: dict
    attention: str
    tp: int
    batch: int
    prompt: int
    output: int
    ttft_s: float
    decode_s: float
    tpot_s: float | None  # None when output == 1 (no decode step)
    tpot_first_s: float | None
    tpot_last_s: float | None
    prefill_bound: str
    decode_bound: str  # of the last step
    split_s: dict | None  # None when anchored on measurements (measured kernels do not split by roof)
    ridge_batch: int | None  # smallest compute-bound decode batch at the mid-generation context
    ridge_batch_weights: int | None  # the same with an empty cache: weights only, ridge x bytes/2
    measured: tuple[str, ...] = ()  # what is anchored on a measurement: "ttft", "tpot" (:func:`anchored`)

    @property
    def e2e_s(self) -> float:
        return self.ttft_s + self.decode_s

    @property
    def tokens_per_s(self) -> float:
        return self.batch * self.output / self.e2e_s

    @property
    def tokens_per_s_per_gpu(self) -> float:
        return self.tokens_per_s / self.tp

    @property
    def decode_tokens_per_s_per_gpu(self) -> float | None:
        """Steady-state decode rate: ``batch / TPOT / tp``."""
        return None if self.tpot_s is None else self.batch / self.tpot_s / self.tp

    def to_dict(self) -> dict:
        return {"model": self.model, "hardware": self.hardware, "precision": self.precision,
                "attention": self.attention, "tp": self.tp, "batch": self.batch, "prompt": self.prompt,
                "output": self.output, "ttft_s": self.ttft_s, "tpot_s": self.tpot_s,
                "tpot_first_s": self.tpot_first_s, "tpot_last_s": self.tpot_last_s,
                "decode_s": self.decode_s,
                "e2e_s": self.e2e_s, "tokens_per_s": self.tokens_per_s,
                "tokens_per_s_per_gpu": self.tokens_per_s_per_gpu,
                "decode_tokens_per_s_per_gpu": self.decode_tokens_per_s_per_gpu,
                "prefill_bound": self.prefill_bound, "decode_bound": self.decode_bound,
                "split_s": self.split_s,
                "ridge_batch": self.ridge_batch, "ridge_batch_weights": self.ridge_batch_weights,
                "predicted": not self.measured, "measured_parts": list(self.measured)}


def generation(cfg: ModelConfig, spec: HardwareSpec, dtype: object, batch: int, prompt: int, output: int,
               tp: int = 1, *, attention: str = "fused", **comm) -> Generation:
    """Predict one generation (``dtype``: a dtype or a :class:`~roofline.model.precision.Precision`;
    ``comm``: :func:`roofline.model.latency.decode_step_latency`'s communication options)."""
    require_positive(batch=batch, prompt=prompt, output=output)
    p = as_precision(dtype)
    pre = prefill_latency(cfg, batch, prompt, spec, p, tp, attention=attention, **comm)
    steps = [decode_step_latency(cfg, batch, prompt + i, spec, p, tp, attention=attention, **comm)
             for i in range(output - 1)]
    decode_s = sum(s.seconds for s in steps)
    split = _split([pre, *steps])
    ridge = decode_compute_bound_batch(cfg, spec, p, prompt + output // 2, tp, attention=attention, **comm)
    ridge0 = decode_compute_bound_batch(cfg, spec, p, 0, tp, attention=attention, **comm)
    return Generation(cfg.name, spec.name, p.to_dict(), attention, tp, batch, prompt, output, pre.seconds,
                      decode_s, decode_s / len(steps) if steps else None,
                      steps[0].seconds if steps else None, steps[-1].seconds if steps else None,
                      pre.bound, steps[-1].bound if steps else pre.bound, split, ridge, ridge0)


def sweep(cfg: ModelConfig, spec: HardwareSpec, dtype: object, batches: Iterable[int], prompt: int,
          output: int, tp: int = 1, **options) -> list[Generation]:
    """:func:`generation` at each batch size."""
    return [generation(cfg, spec, dtype, b, prompt, output, tp, **options) for b in batches]


def anchored(predicted: Generation, cfg: ModelConfig, spec: HardwareSpec, dtype: object, *,
             decode_s: float, decode_context: int, prefill_s: float | None = None, prefill_batch: int = 1,
             prefill_prompt: int | None = None, **comm) -> Generation:
    """``predicted`` (:func:`generation` of ``cfg`` on ``spec`` in ``dtype``, with ``comm``) with its
    times anchored on measured steps: every decode step x ``decode_s`` (a decode step measured at
    ``predicted.batch`` sequences of ``decode_context`` cached tokens) / the predicted step there, so the
    level is measured and the growth with the context predicted; TTFT x ``prefill_s`` (a prefill
    measured at ``prefill_batch`` prompts of ``prefill_prompt`` tokens, default the generation's prompt)
    / the predicted prefill there, or predicted when ``prefill_s`` is None. ``split_s`` becomes None."""
    for name, seconds in (("decode_s", decode_s), ("prefill_s", prefill_s)):
        if seconds is not None and not seconds > 0:
            raise UsageError(f"{name}: expected measured seconds > 0, got {seconds!r}")
    p, tp = as_precision(dtype), predicted.tp
    options = {"attention": predicted.attention, **comm}
    k = decode_s / decode_step_latency(cfg, predicted.batch, decode_context, spec, p, tp, **options).seconds
    ttft, parts = predicted.ttft_s, ("tpot",)
    if prefill_s is not None:
        require_positive(prefill_batch=prefill_batch)
        prompt = predicted.prompt if prefill_prompt is None else prefill_prompt
        ttft = prefill_s * ttft / prefill_latency(cfg, prefill_batch, prompt, spec, p, tp, **options).seconds
        parts = ("ttft", "tpot")

    def scaled(seconds: float | None) -> float | None:
        return None if seconds is None else seconds * k

    return replace(predicted, ttft_s=ttft, decode_s=predicted.decode_s * k, tpot_s=scaled(predicted.tpot_s),
                   tpot_first_s=scaled(predicted.tpot_first_s), tpot_last_s=scaled(predicted.tpot_last_s),
                   split_s=None, measured=parts)
