"""The audit's outputs: the terminal table, the JSON file, and lookups the benchmark uses.

JSON layout (``results/audit/audit-<UTC timestamp>.json`` unless ``--json PATH``)::

    {"tool": "kernels.audit", "schema": 1, "timestamp": ISO-8601 UTC, "triton_version": ...,
     "torch_version": ..., "targets": [{"backend": "cuda", "arch": 80, "warp_size": 32}, ...],
     "limits": {"80": ArchLimits, ...},
     "exceptions": [{"kernel", "variant", "gate", "arch", "condition", "reason"}],
     "wall_s": ..., "jobs": ..., "summary": {"lines", "passed", "failed", "compile_cpu_s"},
     "lines": [AuditLine.to_dict(), ...]}

A benchmark attaches "its" line with :func:`lookup` (kernel, variant, dtype, config id and the
architecture of the GPU it ran on, e.g. ``major * 10 + minor`` of ``torch.cuda.get_device_capability()``),
which reads the newest audit JSON and returns :meth:`AuditLine.summary`, or ``None``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from kernels._lib.device import MMA_GATES, MMA_OPCODES
from kernels.audit.compile import AuditLine, canonical_dtype
from kernels.audit.efficiency import Efficiency
from kernels.audit.gates import exceptions
from kernels.audit.occupancy import LIMITS

RESULTS_DIR = Path(__file__).resolve().parents[2] / "results" / "audit"

_ABBREV = (("BLOCK_SIZE_", ""), ("BLOCK_", ""), ("num_warps", "w"), ("num_stages", "s"))


def short_config(config: str) -> str:
    """``BLOCK_M=64,BLOCK_N=128,num_warps=4,num_stages=3`` -> ``M=64,N=128,w=4,s=3``."""
    for old, new in _ABBREV:
        config = config.replace(old, new)
    return config


def short_shape(shape: Mapping[str, object]) -> str:
    """The shape's sizes for the table (free-text notes such as a model name source are left out)."""
    return ",".join(f"{k}={v}" for k, v in shape.items() if not (isinstance(v, str) and len(v) > 12))


def _widths(bits: Mapping[str, int]) -> str:
    return "/".join(str(bits.get(w, 0)) for w in ("128", "64", "32", "16", "8"))


COLUMNS = ("kernel", "variant", "dtype", "shape", "config", "sm", "gated", "regs", "L/S", "stack", "smem",
           "occ", "limit", "mma", "loop", "async", "ld128", "LDG 128/64/32/16/8", "STG 128/64/32/16/8",
           "comp_s", "gates")


def _gate_marks() -> dict[str, str]:
    """One letter per opt-in gate: T, V, and for each MMA-class gate its first letter not yet taken
    (wgmma W, tcgen05 C)."""
    marks = {"tensor_cores": "T", "vec128_loads": "V"}
    for gate in MMA_GATES:
        marks[gate] = next(c for c in gate.upper() if c.isalpha() and c not in marks.values())
    return marks


_GATE_MARK = _gate_marks()


def _gated(line: AuditLine) -> str:
    return "".join(_GATE_MARK.get(g, "?") for g in sorted(line.gates)) or "-"


def _loop_cell(line: AuditLine) -> str:
    if not line.efficiency:
        return "-"
    return Efficiency(**line.efficiency).cell()


def table_row(line: AuditLine) -> tuple[str, ...]:
    """One table row (strings) for ``line``."""
    if not line.compiled:
        status = "FAIL " + (line.error or "not compiled")[:60]
        head = (line.kernel, line.variant, line.dtype, short_shape(line.shape), short_config(line.config),
                str(line.arch), _gated(line))
        return head + ("-",) * (len(COLUMNS) - len(head) - 2) + (f"{line.compile_s:.1f}", status)
    occ = line.occupancy or {}
    mma = [f"{op}:{line.count(op)}" for op in MMA_OPCODES if line.count(op)]
    asyn = []
    if line.count("LDGSTS"):
        asyn.append(f"LDGSTS:{line.count('LDGSTS')}")
    if line.tma:
        asyn.append(f"TMA:{line.tma}")
    gates = "ok" if not line.failures else "FAIL " + ",".join(f.split(":", 1)[0] for f in line.failures)
    if line.waived and not line.failures:
        gates += " (waived " + ",".join(line.waived) + ")"
    return (
        line.kernel, line.variant, line.dtype, short_shape(line.shape), short_config(line.config),
        str(line.arch), _gated(line), str(line.registers), f"{line.local_loads}/{line.local_stores}",
        str(line.stack_bytes),
        str(line.shared_bytes), f"{occ.get('warps_per_sm', '?')}/{occ.get('max_warps_per_sm', '?')}",
        str(occ.get("limiter", "?")), " ".join(mma) or "-", _loop_cell(line), " ".join(asyn) or "-",
        f"{line.wide_load_fraction:.0%}", _widths(line.ldg_bits), _widths(line.stg_bits),
        f"{line.compile_s:.1f}", gates,
    )


def format_table(lines: Sequence[AuditLine]) -> str:
    """A fixed-width table, one row per case and architecture, with a legend."""
    rows = [COLUMNS] + [table_row(line) for line in lines]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    out.append("")
    out.append("gated: T tensor_cores (+ the arch's MMA class: wgmma on sm_90, tcgen05 on sm_100, mfma on "
               "gfx942/gfx950), V vec128_loads (every line: compiles, no_spills, shared_memory; on AMD also "
               "occupancy >= 2 waves/SIMD);")
    out.append("regs: registers/thread (AMD: VGPRs); L/S: LDL/STL (local-memory; AMD: scratch) instructions; "
               "stack, smem: bytes/block; occ: resident warps (AMD: waves) per SM (CU), theoretical, and its "
               "limiter;")
    out.append("loop: the steady-state loop (innermost backward branch; the unmasked copy where there are "
               "two; body: = no loop, the whole function): SASS instructions per warp, tensor-core "
               "instructions in it, and warp instructions (x num_warps) per KiB (GEMM, attention: operand "
               "or K/V bytes) or per element (row/elementwise kernels) streamed; a static count, not gated.")
    out.append("mma: tensor-core instructions; async: LDGSTS (cp.async) and TMA instructions; "
               "ld128: share of global-load bits (LDG + LDGSTS) in 128-bit instructions; LDG/STG: "
               "global load/store instruction counts by width in bits (static SASS counts); "
               "comp_s: compile seconds.")
    return "\n".join(out)


def summary(lines: Sequence[AuditLine]) -> dict:
    failed = [line for line in lines if not line.passed]
    return {"lines": len(lines), "passed": len(lines) - len(failed), "failed": len(failed),
            "compile_cpu_s": round(sum(line.compile_cpu_s for line in lines), 1)}


def to_json(lines: Sequence[AuditLine], *, archs: Iterable[int], wall_s: float | None = None,
            jobs: int | None = None) -> dict:
    import torch
    import triton

    return {
        "tool": "kernels.audit",
        "schema": 1,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "triton_version": triton.__version__,
        "torch_version": torch.__version__,
        "targets": [dict(zip(("backend", "arch", "warp_size"), LIMITS[a].gpu_target, strict=True))
                    for a in archs],
        "limits": {str(a): LIMITS[a].limits_dict() for a in archs},
        "exceptions": [
            {"kernel": k, "variant": v, "gate": g, "arch": a, "condition": c, "reason": r}
            for (k, v, g, a, c), r in exceptions().items()
        ],
        "wall_s": wall_s,
        "jobs": jobs,
        "summary": summary(lines),
        "lines": [line.to_dict() for line in lines],
    }


def default_json_path() -> Path:
    return RESULTS_DIR / f"audit-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"


def write_json(data: dict, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    return path


def latest_json(directory: Path | str = RESULTS_DIR) -> Path | None:
    """The newest ``audit-*.json`` in ``directory`` (names sort by time), or ``None``."""
    files = sorted(Path(directory).glob("audit-*.json"))
    return files[-1] if files else None


def load_lines(path: Path | str) -> list[AuditLine]:
    """The :class:`AuditLine`\\ s stored in an audit JSON file."""
    data = json.loads(Path(path).read_text())
    return [AuditLine.from_dict(d) for d in data["lines"]]


def find_line(
    lines: Iterable[AuditLine],
    kernel: str,
    variant: str,
    dtype: str,
    config: str,
    arch: int | None = None,
    shape: Mapping[str, object] | None = None,
) -> AuditLine | None:
    """The audit line for the config a benchmark ran, or ``None`` if the audit has none.

    Matches kernel, variant, dtype (``"fp16"``/``"bf16"``/``"fp32"``, also accepting ``torch.float16``
    style names) and config id (:func:`kernels._lib.launch.config_id`), and ``arch`` when given (a GPU of
    compute capability 9.0 is ``90``). The audit compiles each config at one or two representative
    shapes; a line with the same ``shape`` wins, else the first match.
    """
    dtype = canonical_dtype(dtype)
    matches = [
        line for line in lines
        if line.kernel == kernel and line.variant == variant and canonical_dtype(line.dtype) == dtype
        and line.config == config and (arch is None or line.arch == arch)
    ]
    if shape is not None:
        for line in matches:
            if dict(line.shape) == dict(shape):
                return line
    return matches[0] if matches else None


_LOADED: dict[Path, list[AuditLine]] = {}


def lookup(kernel: str, variant: str, dtype: object, config: str, arch: int,
           path: Path | str | None = None, shape: Mapping[str, object] | None = None) -> dict | None:
    """The :meth:`AuditLine.summary` for a config that ran, from ``path`` (default: the newest
    ``results/audit/audit-*.json``), plus the file it came from; ``None`` when there is no audit file or
    no line for that kernel, variant, dtype, config and architecture (e.g. an sm_86 GPU)."""
    source = Path(path) if path is not None else latest_json()
    if source is None or not source.exists():
        return None
    if source not in _LOADED:
        _LOADED[source] = load_lines(source)
    line = find_line(_LOADED[source], kernel, variant, str(dtype), config, arch=arch, shape=shape)
    return None if line is None else {**line.summary(), "audit_json": str(source)}
