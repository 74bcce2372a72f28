"""``python -m roofline hardware [--json]``: the hardware presets and their ceilings.

Peaks are dense datasheet figures (``source`` "seed" marks the seed documents' rounded A100); the
ridge point is peak / bandwidth in FLOP/byte, per dtype class.
"""

from __future__ import annotations

import argparse
import json

from roofline.model.hardware import DTYPE_CLASSES, PRESETS, HardwareSpec, get_preset
from roofline.model.latency import LINK_BANDWIDTH

KiB, MiB = 1024, 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("preset", nargs="?", help="show one preset (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _fmt(value: float | None, scale: float, digits: int = 1) -> str:
    return "-" if value is None else f"{value / scale:.{digits}f}"


def table(specs: list[HardwareSpec]) -> str:
    head = ["preset", "source", "bf16/fp16 TF", "tf32 TF", "fp32 TF", "HBM GB/s", "ridge bf16", "ridge tf32",
            "ridge fp32", "L2 MiB", "SMs", "smem/SM KiB", "smem/blk KiB", "NVLink GB/s"]
    rows = [head]
    for s in specs:
        peaks = [_fmt(s.peak_flops.get(c), 1e12) for c in DTYPE_CLASSES]
        ridges = [_fmt(s.ridge(c) if c in s.peak_flops else None, 1, 0) for c in DTYPE_CLASSES]
        link = LINK_BANDWIDTH.get(s.name)
        rows.append([s.name, s.source, *peaks, _fmt(s.mem_bandwidth, 1e9, 0), *ridges,
                     _fmt(s.l2_bytes, MiB, 0), "-" if s.sm_count is None else str(s.sm_count),
                     _fmt(s.smem_per_sm, KiB, 0), _fmt(s.smem_per_block, KiB, 0), _fmt(link, 1e9, 0)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]

    def line(r: list[str]) -> str:
        cells = zip(r, widths, strict=True)
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(cells))

    lines = [line(r) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("Dense datasheet peaks (never 2:4-sparse), decimal units; ridge = peak / bandwidth in "
                 "FLOP/byte. NVLink: one-way per GPU, used for tensor-parallel estimates.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    specs = [get_preset(args.preset)] if args.preset else list(PRESETS.values())
    if args.json:
        out = {s.name: {**s.to_dict(), "link_bandwidth": LINK_BANDWIDTH.get(s.name)} for s in specs}
        print(json.dumps(out, indent=2))
    else:
        print(table(specs))
    return 0
