"""``python -m roofline model PRESET|config.json [--batch B] [--seq S] [--dtype DT] [--hardware HW]
[--tp N] [--json]``: parameters, FLOPs, KV cache and predicted latency bounds of one transformer.

``--seq`` is the prompt length for the forward pass and prefill, and the number of cached tokens for
the decode step (default: the model's context length). Latencies are PREDICTED lower bounds from the
hardware preset's datasheet ceilings (:mod:`roofline.latency`), not measurements.
"""

from __future__ import annotations

import argparse
import json

from roofline import accounting, latency
from roofline.cost import CONVENTIONS, MODEL_CONVENTIONS, dtype_name
from roofline.errors import UsageError
from roofline.hardware import (
    DEFAULT_HARDWARE,
    HardwareSpec,
    UnknownHardwareError,
    dtype_class,
    get_preset,
    lookup_device,
)
from roofline.model import PRESETS, ModelConfig, get_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=f"a preset ({', '.join(PRESETS)}) or a JSON config file")
    parser.add_argument("--batch", default="1", help="sequences per step (default 1)")
    parser.add_argument("--seq", default=None, help="tokens per sequence (default: the model's context)")
    parser.add_argument("--dtype", default="bfloat16",
                        help="weights, activations and KV cache (default bfloat16)")
    parser.add_argument("--hardware", default=DEFAULT_HARDWARE,
                        help=f"hardware preset or CUDA device name (default {DEFAULT_HARDWARE})")
    parser.add_argument("--tp", default="1", help="tensor-parallel GPUs (default 1)")
    parser.add_argument("--link-bandwidth", default=None,
                        help="one-way GPU-to-GPU GB/s for --tp > 1 (default: the preset's NVLink)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set n_kv_heads=8 (repeatable)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _int(name: str, text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--{name}: expected an integer, got {text!r}") from None
    if value < minimum:
        raise UsageError(f"--{name}: expected an integer >= {minimum}, got {value}")
    return value


def _config(args: argparse.Namespace) -> ModelConfig:
    cfg = get_model(args.model)
    if not args.set:
        return cfg
    data = cfg.to_dict()
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep:
            raise UsageError(f"--set: expected KEY=VALUE, got {item!r}")
        try:
            data[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            data[key.strip()] = text
    return ModelConfig.from_dict(data)


def _hardware(name: str) -> HardwareSpec:
    try:
        return get_preset(name)
    except UnknownHardwareError:
        try:
            return lookup_device(name)
        except UnknownHardwareError:
            raise UnknownHardwareError(f"unknown hardware {name!r}: neither a preset (see `python -m "
                                       f"roofline hardware`) nor a device name ridgebench knows") from None


def report(cfg: ModelConfig, batch: int, seq: int, dtype: str, spec: HardwareSpec, tp: int,
           link_bandwidth: float | None = None) -> dict:
    """Everything ``model`` prints, as a JSON-ready dict."""
    counts = accounting.param_counts(cfg)
    full = accounting.forward_flops(cfg, batch, seq)
    causal = accounting.forward_flops_causal(cfg, batch, seq)
    comm = {} if link_bandwidth is None else {"link_bandwidth": link_bandwidth}
    prefill = latency.prefill_latency(cfg, batch, seq, spec, dtype, tp, **comm)
    decode = latency.decode_step_latency(cfg, batch, seq, spec, dtype, tp, **comm)
    train = accounting.training_flops(cfg, seq, seq)
    return {
        "model": cfg.to_dict(),
        "inputs": {"batch": batch, "seq": seq, "decode_context": seq, "dtype": dtype, "hardware": spec.name,
                   "hardware_source": spec.source, "dtype_class": dtype_class(dtype, matmul=True), "tp": tp},
        "params_total": counts.total,
        "params_non_embedding": counts.non_embedding,
        "params_embedding": counts.embedding,
        "params_components": dict(counts.components),
        "weight_bytes": accounting.weight_bytes(cfg, dtype),
        "forward_flops": full.total,
        "forward_flops_breakdown": full.to_dict(),
        "forward_flops_causal": causal.total,
        "forward_flops_causal_breakdown": causal.to_dict(),
        "decode_flops_per_token": accounting.decode_flops_per_token(cfg, seq),
        "naive_decode_flops_per_token": accounting.naive_decode_flops_per_token(cfg, seq),
        "kv_cache_bytes_per_token": accounting.kv_cache_bytes_per_token(cfg, dtype),
        "kv_cache_bytes": accounting.kv_cache_bytes(cfg, batch, seq, dtype),
        "kv_outgrows_weights_tokens": accounting.kv_outgrows_weights_tokens(cfg, dtype),
        "prefill_seconds_lower_bound": prefill.seconds,
        "prefill": prefill.to_dict(),
        "decode_step_seconds_lower_bound": decode.seconds,
        "decode_step": decode.to_dict(),
        "decode_compute_bound_batch": latency.decode_compute_bound_batch(cfg, spec, dtype, seq, tp),
        "decode_compute_bound_batch_empty_cache": latency.decode_compute_bound_batch(cfg, spec, dtype, 0, tp),
        "kv_projection_breakeven_tokens": latency.kv_projection_time_ratio(spec, dtype),
        "training_flops_per_token": {"six_n": train.six_n / seq, "detailed": train.detailed / seq,
                                     "detailed_causal": train.detailed_causal / seq},
        "predicted": True,
        "conventions": {**CONVENTIONS, **MODEL_CONVENTIONS},
    }


def _n(x: float) -> str:
    """Engineering notation that keeps exact integers readable."""
    if float(x).is_integer() and abs(x) < 1e20:
        return f"{int(x):,}"
    return f"{x:.4g}"


def _ms(s: float) -> str:
    return f"{s * 1e3:.3f} ms"


def _rows(title: str, rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(k) for k, _ in rows)
    return [title, *(f"  {k.ljust(width)}  {v}" for k, v in rows), ""]


def text(r: dict) -> str:
    i, m = r["inputs"], r["model"]
    gib = r["weight_bytes"] / 2**30
    out = [f"{m['name']}: {m['n_layers']} layers, d_model {m['d_model']}, {m['n_heads']} heads "
           f"({m['n_kv_heads']} KV), d_ff {m['d_ff']} {m['mlp']}, vocab {m['vocab_size']}, "
           f"{'tied' if m['tied_embeddings'] else 'untied'} embeddings, {m['positions']} positions", ""]
    comps = r["params_components"]
    out += _rows("Parameters", [("total", _n(r["params_total"])),
                                ("non-embedding", _n(r["params_non_embedding"])),
                                *((k, _n(v)) for k, v in comps.items()),
                                (f"weights in {i['dtype']}", f"{_n(r['weight_bytes'])} B "
                                 f"({r['weight_bytes'] / 1e9:.2f} GB, {gib:.2f} GiB)")])
    for key, title in (("forward_flops_breakdown", "full T x T attention, as seed 002"),
                       ("forward_flops_causal_breakdown", "causal: unmasked pairs only")):
        b = r[key]
        rows = [(k, f"{_n(v):>26}  {100 * b['shares'][k]:5.1f}%") for k, v in b["components"].items()]
        out += _rows(f"Forward FLOPs, batch {i['batch']} x {i['seq']} tokens ({title})",
                     [*rows, ("total", f"{_n(b['total']):>26}")])
    out += _rows(f"Decode, {i['seq']} tokens cached", [
        ("FLOPs per token (KV cache)", _n(r["decode_flops_per_token"])),
        ("naive 2*N*S rule", _n(r["naive_decode_flops_per_token"])),
        ("KV cache bytes per token", _n(r["kv_cache_bytes_per_token"])),
        (f"KV cache, batch {i['batch']}", f"{_n(r['kv_cache_bytes'])} B"),
        ("KV outgrows weights at", f"batch*context = {r['kv_outgrows_weights_tokens']:,.0f} tokens")])
    tp = f" over {i['tp']} GPUs (tensor parallel)" if i["tp"] > 1 else ""
    rows = []
    for name, key in (("prefill", "prefill"), ("decode step", "decode_step")):
        d = r[key]
        comm = f", comm {_ms(d['comm_s'])}" if i["tp"] > 1 else ""
        rows.append((name, f"{_ms(d['seconds'])}  (compute {_ms(d['compute_s'])}, memory {_ms(d['memory_s'])}"
                           f"{comm}; {d['bound']}-bound)"))
    cb = r["decode_compute_bound_batch"]
    rows.append(("decode compute-bound from batch",
                 f"{cb} at {i['seq']} cached" if cb else f"never at {i['seq']} cached (KV reads dominate)"))
    rows.append(("  ... with an empty cache", str(r["decode_compute_bound_batch_empty_cache"])))
    out += _rows(f"PREDICTED lower bounds on {i['hardware']} ({i['hardware_source']} ceilings, "
                 f"{i['dtype_class']}){tp}, batch {i['batch']}", rows)
    out.append("Predictions from datasheet ceilings, not measurements. FLOPs: matmuls + bias adds, FMA = 2.")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    cfg = _config(args)
    batch = _int("batch", args.batch, 1)
    seq = cfg.context_length if args.seq is None else _int("seq", args.seq, 1)
    tp = _int("tp", args.tp, 1)
    try:
        dtype = dtype_name(args.dtype)
        dtype_class(dtype, matmul=True)
    except ValueError as exc:
        raise UsageError(f"--dtype: {exc}") from None
    link = None
    if args.link_bandwidth is not None:
        try:
            link = float(args.link_bandwidth) * 1e9
        except ValueError:
            raise UsageError(f"--link-bandwidth: expected GB/s, got {args.link_bandwidth!r}") from None
        if link <= 0:
            raise UsageError(f"--link-bandwidth: expected GB/s > 0, got {args.link_bandwidth}")
    r = report(cfg, batch, seq, dtype, _hardware(args.hardware), tp, link)
    print(json.dumps(r, indent=2) if args.json else text(r))
    return 0
