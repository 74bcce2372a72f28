"""``python -m roofline model PRESET|config.json [--batch B] [--seq S] [--dtype DT] [--weights W]
[--activations A] [--kv K] [--group-size G] [--attention fused|unfused] [--hardware HW] [--tp N]
[--capacity] [--output-tokens N [--prompt P] [--batches 1,8,64] [--generate-on HW,HW] [--figure PATH]]
[--json]``: parameters, FLOPs, KV cache, predicted latency bounds, memory capacity and a whole
generation of one transformer.

``--seq`` is the prompt length for the forward pass and prefill, and the number of cached tokens for
the decode step (default: the model's context length). ``--weights``/``--activations``/``--kv`` pick
each format (default ``--dtype``; :mod:`roofline.model.precision`). A ``config.json`` from Hugging Face is
read
offline (:mod:`roofline.model.hf_config`). Latencies are PREDICTED lower bounds from the hardware preset's
datasheet ceilings (:mod:`roofline.model.latency`), not measurements.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from roofline.errors import UsageError
from roofline.model import accounting, latency
from roofline.model.capacity import capacity
from roofline.model.cost import CONVENTIONS, MODEL_CONVENTIONS
from roofline.model.generation import Generation, sweep
from roofline.model.hardware import (
    DEFAULT_HARDWARE,
    HardwareSpec,
    UnknownHardwareError,
    get_preset,
    lookup_device,
)
from roofline.model.hf_config import is_hf_config, read_hf_config
from roofline.model.precision import (
    PRECISION_CONVENTIONS,
    Precision,
    parse_precision,
    precision_options,
    resolve_math,
)
from roofline.model.transformer import PRESETS, ModelConfig, get_model

CAPACITY_GPUS = (1, 2, 4, 8)
_PLAIN = ("float16", "bfloat16", "float32")  # the dtypes the kernel-level cost model knows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=f"a preset ({', '.join(PRESETS)}), a JSON config file, or a Hugging "
                                      "Face config.json (read offline)")
    parser.add_argument("--batch", default="1", help="sequences per step (default 1)")
    parser.add_argument("--seq", default=None, help="tokens per sequence (default: the model's context)")
    parser.add_argument("--dtype", default="bfloat16",
                        help="weights, activations and KV cache (default bfloat16)")
    for option, help_text in precision_options("--dtype").items():
        parser.add_argument(option, default=None, help=help_text)
    parser.add_argument("--attention", default="fused", choices=accounting.ATTENTION_IMPLEMENTATIONS,
                        help="fused (FlashAttention, default) or unfused (HF eager: scores in memory)")
    parser.add_argument("--capacity", action="store_true",
                        help=f"memory capacity on {', '.join(map(str, CAPACITY_GPUS))} and --tp GPUs "
                             "(weights, KV, activations at --batch x --seq, what fits)")
    parser.add_argument("--output-tokens", default=None,
                        help="predict a whole generation of this many output tokens per sequence")
    parser.add_argument("--prompt", default="128", help="prompt tokens for --output-tokens (default 128)")
    parser.add_argument("--batches", default="1,8,64",
                        help="batch sizes for --output-tokens (default 1,8,64)")
    parser.add_argument("--generate-on", default=None,
                        help="comma-separated hardware presets for --output-tokens (default --hardware)")
    parser.add_argument("--figure", default=None,
                        help="with --output-tokens: write tokens/s per GPU vs batch to PATH.png and .svg")
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


def _load(name_or_path: str) -> ModelConfig:
    """A preset, a ridgebench JSON config, or a Hugging Face ``config.json`` (read offline; its unknown
    fields and approximations are printed to stderr as warnings)."""
    path = Path(name_or_path)
    if name_or_path not in PRESETS and path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            data = None  # ModelConfig.from_json reports it
        if is_hf_config(data):
            reading = read_hf_config(path)
            for line in reading.warnings():
                print(f"python -m roofline model: warning: {line}", file=sys.stderr)
            return reading.config
    return get_model(name_or_path)


def _config(args: argparse.Namespace) -> ModelConfig:
    cfg = _load(args.model)
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


def precision_from(args: argparse.Namespace) -> Precision:
    """The :class:`Precision` of ``--dtype`` and the per-tensor overrides
    (:func:`roofline.model.precision.parse_precision`)."""
    return parse_precision(args.dtype, args.weights, args.activations, args.kv, args.group_size)


def report(cfg: ModelConfig, batch: int, seq: int, dtype: object, spec: HardwareSpec, tp: int,
           link_bandwidth: float | None = None, *, attention: str = "fused", capacity_gpus: tuple = (),
           generations: Mapping[str, Sequence[Generation]] | None = None) -> dict:
    """Everything ``model`` prints, as a JSON-ready dict. ``dtype``: a dtype or a :class:`Precision`;
    ``capacity_gpus``: GPU counts for the capacity table; ``generations``: hardware -> predicted
    generations (:func:`roofline.model.generation.sweep`) for the generation table."""
    p = dtype if isinstance(dtype, Precision) else Precision.uniform(dtype)
    counts = accounting.param_counts(cfg)
    full = accounting.forward_flops(cfg, batch, seq)
    causal = accounting.forward_flops_causal(cfg, batch, seq)
    comm = {} if link_bandwidth is None else {"link_bandwidth": link_bandwidth}
    prefill = latency.prefill_latency(cfg, batch, seq, spec, p, tp, attention=attention, **comm)
    decode = latency.decode_step_latency(cfg, batch, seq, spec, p, tp, attention=attention, **comm)
    prefill_attn = latency.attention_latency(cfg, batch, seq, 0, spec, p, tp, attention=attention)
    decode_attn = latency.attention_latency(cfg, batch, 1, seq, spec, p, tp, attention=attention)
    train = accounting.training_flops(cfg, seq, seq)
    out = {
        "model": cfg.to_dict(),
        "inputs": {"batch": batch, "seq": seq, "decode_context": seq, "dtype": p.label, "hardware": spec.name,
                   "hardware_source": spec.source, "dtype_class": resolve_math(spec, p.matmul_math)[0],
                   "tp": tp, "attention": attention},
        "precision": p.to_dict(),
        "params_total": counts.total,
        "params_non_embedding": counts.non_embedding,
        "params_embedding": counts.embedding,
        "params_components": dict(counts.components),
        "weight_bytes": accounting.weight_bytes(cfg, p),
        "forward_flops": full.total,
        "forward_flops_breakdown": full.to_dict(),
        "forward_flops_causal": causal.total,
        "forward_flops_causal_breakdown": causal.to_dict(),
        "decode_flops_per_token": accounting.decode_flops_per_token(cfg, seq),
        "naive_decode_flops_per_token": accounting.naive_decode_flops_per_token(cfg, seq),
        "kv_cache_bytes_per_token": accounting.kv_cache_bytes_per_token(cfg, p),
        "kv_cache_bytes": accounting.kv_cache_bytes(cfg, batch, seq, p),
        "kv_outgrows_weights_tokens": accounting.kv_outgrows_weights_tokens(cfg, p),
        "prefill_seconds_lower_bound": prefill.seconds,
        "prefill": prefill.to_dict(),
        "decode_step_seconds_lower_bound": decode.seconds,
        "decode_step": decode.to_dict(),
        "prefill_attention": prefill_attn.to_dict(),
        "decode_attention": decode_attn.to_dict(),
        "decode_compute_bound_batch": latency.decode_compute_bound_batch(cfg, spec, p, seq, tp,
                                                                         attention=attention),
        "decode_compute_bound_batch_empty_cache": latency.decode_compute_bound_batch(cfg, spec, p, 0, tp,
                                                                                     attention=attention),
        "kv_projection_breakeven_tokens": (latency.kv_projection_time_ratio(spec, p.weights)
                                           if p.is_uniform and p.weights in _PLAIN else None),
        "training_flops_per_token": {"six_n": train.six_n / seq, "detailed": train.detailed / seq,
                                     "detailed_causal": train.detailed_causal / seq},
        "predicted": True,
        "conventions": {**CONVENTIONS, **MODEL_CONVENTIONS, **PRECISION_CONVENTIONS},
    }
    if capacity_gpus:
        out["capacity"] = [capacity(cfg, spec, g, p, batch, seq, attention=attention).to_dict()
                           for g in capacity_gpus]
    if generations:
        out["generation"] = [g.to_dict() for gens in generations.values() for g in gens]
    return out


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


def _gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB"


def _capacity_rows(r: dict) -> list[str]:
    i = r["inputs"]
    rows = []
    for c in r["capacity"]:
        fit = "fits" if c["fits"] else "DOES NOT FIT"
        rows.append((f"{c['gpus']} x {c['hardware']}",
                     f"weights {_gb(c['weight_bytes'])}/GPU, KV {_n(c['kv_bytes_per_token'])} B/token/GPU, "
                     f"activations {_gb(c['prefill_activation_bytes'])} (prefill of one prompt); "
                     f"batch {c['batch']} x {c['context']}: {_gb(c['used_bytes'])} of "
                     f"{_gb(c['memory_bytes'])} {fit}; max batch x context {c['kv_tokens']:,} tokens, "
                     f"max batch {c['max_batch']} "
                     f"at {c['context']}"))
    return _rows(f"PREDICTED memory capacity, tensor parallel ({i['dtype']}; datasheet GB, no CUDA context "
                 "or fragmentation allowance)", rows)


def _generation_rows(r: dict) -> list[str]:
    g0 = r["generation"][0]
    head = (f"{'hardware':<16}{'batch':>6}{'TTFT':>12}{'TPOT':>12}{'end-to-end':>14}{'tok/s/GPU':>12}"
            f"  {'compute / memory / comm (s)':<30}{'ridge batch':>12}")
    lines = [f"PREDICTED generation: {g0['prompt']} prompt + {g0['output']} output tokens per sequence, "
             f"{r['inputs']['dtype']}, tp {g0['tp']}, {g0['attention']} attention", "  " + head]
    for g in r["generation"]:
        sp = g["split_s"]
        tpot = "-" if g["tpot_s"] is None else _ms(g["tpot_s"])
        ridge = ("never" if g["ridge_batch"] is None else str(g["ridge_batch"])) + \
            f" ({g['ridge_batch_weights']} at 0)"
        lines.append(f"  {g['hardware']:<16}{g['batch']:>6}{_ms(g['ttft_s']):>12}{tpot:>12}"
                     f"{_ms(g['e2e_s']):>14}{g['tokens_per_s_per_gpu']:>12,.0f}  "
                     f"{sp['compute']:.4f} / {sp['memory']:.4f} / {sp['communication']:.4f}"
                     f"{ridge:>22}")
    lines += ["  TTFT: the prefill (first token); TPOT: mean decode step as the context grows; ridge batch: "
              "smallest compute-bound decode batch at mid context (at an empty cache).", ""]
    return lines


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
    for name, key in (("prefill", "prefill"), ("  its attention alone", "prefill_attention"),
                      ("decode step", "decode_step"), ("  its attention alone", "decode_attention")):
        d = r[key]
        comm = f", comm {_ms(d['comm_s'])}" if i["tp"] > 1 and d["comm_s"] else ""
        roofs = ", ".join(c for c, f in d["flops_by_class"].items() if f) or "-"
        rows.append((name, f"{_ms(d['seconds'])}  (compute {_ms(d['compute_s'])} on {roofs}, memory "
                           f"{_ms(d['memory_s'])}{comm}; {d['bound']}-bound)"))
    cb = r["decode_compute_bound_batch"]
    rows.append(("decode compute-bound from batch",
                 f"{cb} at {i['seq']} cached" if cb else f"never at {i['seq']} cached (KV reads dominate)"))
    rows.append(("  ... with an empty cache", str(r["decode_compute_bound_batch_empty_cache"])))
    out += _rows(f"PREDICTED lower bounds on {i['hardware']} ({i['hardware_source']} ceilings, "
                 f"{i['dtype_class']}, {i['attention']} attention){tp}, batch {i['batch']}", rows)
    if "capacity" in r:
        out += _capacity_rows(r)
    if "generation" in r:
        out += _generation_rows(r)
    out.append("Predictions from datasheet ceilings, not measurements. FLOPs: matmuls + bias adds, FMA = 2.")
    return "\n".join(out)


def _int_list(name: str, text: str) -> tuple[int, ...]:
    values = tuple(_int(name, t.strip(), 1) for t in text.split(",") if t.strip())
    if not values:
        raise UsageError(f"--{name}: expected comma-separated integers, got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    cfg = _config(args)
    batch = _int("batch", args.batch, 1)
    seq = cfg.context_length if args.seq is None else _int("seq", args.seq, 1)
    tp = _int("tp", args.tp, 1)
    p = precision_from(args)
    link = None
    if args.link_bandwidth is not None:
        try:
            link = float(args.link_bandwidth) * 1e9
        except ValueError:
            raise UsageError(f"--link-bandwidth: expected GB/s, got {args.link_bandwidth!r}") from None
        if link <= 0:
            raise UsageError(f"--link-bandwidth: expected GB/s > 0, got {args.link_bandwidth}")
    spec = _hardware(args.hardware)
    gpus: tuple[int, ...] = ()
    if args.capacity:
        if spec.memory_bytes is None:
            raise UsageError(f"--capacity: ridgebench has no memory capacity for {spec.name}")
        gpus = tuple(sorted({g for g in (*CAPACITY_GPUS, tp) if cfg.n_heads % g == 0}))
    runs = None
    if args.output_tokens is not None:
        names = args.generate_on.split(",") if args.generate_on else [args.hardware]
        prompt, output = _int("prompt", args.prompt, 1), _int("output-tokens", args.output_tokens, 1)
        batches = _int_list("batches", args.batches)
        comm = {} if link is None else {"link_bandwidth": link}
        runs = {hw.name: sweep(cfg, hw, p, batches, prompt, output, tp, attention=args.attention, **comm)
                for hw in (_hardware(n.strip()) for n in names if n.strip())}
    elif args.figure is not None:
        raise UsageError("--figure: draws the generation; give --output-tokens too")
    r = report(cfg, batch, seq, p, spec, tp, link, attention=args.attention, capacity_gpus=gpus,
               generations=runs)
    if args.figure is not None:
        from roofline.report.plot.generation import (
            plot_generation,  # matplotlib only when a figure is asked for
        )

        r["figure"] = [str(x) for x in plot_generation(runs, Path(args.figure))]
    print(json.dumps(r, indent=2) if args.json else text(r))
    if args.figure is not None and not args.json:
        print("figure: " + ", ".join(r["figure"]))
    return 0
