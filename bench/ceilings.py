"""This device's ceilings, measured the way the Empirical Roofline Toolkit does it: the best over a set of
probes, measured before the sweep and again after it, the best kept.

- **Memory** (GPU: 16x L2, or on ROCm 16x the Infinity Cache, at least 1 GiB; CPU: 8x the LLC, at least
  64 MiB): ``copy`` (read + write
  counted), ``read`` (``torch.sum``) and ``write`` (``fill_``); the memory roof is the best of the three.
- **Compute**, per dtype class (``tensor16``: bf16 and fp16; ``tf32``, GPU only; ``fp32``): sizes x
  layouts (``square`` ``A @ B``, ``linear`` ``A @ B^T``, ``skinny`` ``F.linear`` of ``SKINNY_ROWS``
  rows) x the class's dtypes. On a CPU the size grows only while the next call fits half the budget.
- **No native math** (a CPU without bf16/fp16 arithmetic, :func:`roofline.model.roof.native_math`): those
  probes are fp32 math, so they count towards the fp32 ceiling and their class is floored at it.
- **Stability**: best and median, per pass, with the load: the 1-minute load average (which lags a
  minute behind) and, over the pass itself, how busy the usable cores were (``/proc/stat``) against this
  process's own CPU time, so neighbours are seen while they run (:class:`LoadWindow`);
  :func:`roofline.model.roof.assess_ceilings` turns them into the above-roof tolerance and the suspicions.
  Each call is timed by :func:`bench.timing.call_timer`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch.nn import functional

from bench import rocm
from bench.record import Roofs, reroof_benchmark_doc
from bench.timing import MiB, call_timer, percentile, tf32_matmul
from roofline.model.hardware import (
    MIG_NOTE,
    HardwareSpec,
    UnknownHardwareError,
    is_mig,
    lookup_device,
)
from roofline.model.roof import MEMORY, assess_ceilings
from roofline.rundir import CEILINGS, RECORDS, measured_spec, read_records

GiB = 1024 * MiB
CLASS_DTYPES: dict[str, tuple[torch.dtype, ...]] = {
    "tensor16": (torch.bfloat16, torch.float16),
    "tf32": (torch.float32,),
    "fp32": (torch.float32,),
}
LAYOUTS: tuple[str, ...] = ("square", "linear", "skinny")
SKINNY_ROWS = {"cpu": 64, "cuda": 512}  # the largest decode batch of the CPU / GPU quick sweep
CPU_SIZES = (128, 256, 512, 1024, 2048)
CPU_MIN_SIZE = 256  # always probed: a small GEMM on a busy CPU is all thread-sync latency
GPU_SIZES = (4096, 8192)
MEMORY_KINDS: tuple[str, ...] = ("copy", "read", "write")


def _repeat(fn: Callable[[], object], timer, *, budget_s: float, min_reps: int = 3,
            max_reps: int = 50, warmed: bool = False) -> list[float]:
    if not warmed:
        fn()  # warm-up: allocation, library initialisation, CPU thread pool
    times: list[float] = []
    spent = 0.0
    while len(times) < max_reps and (len(times) < min_reps or spent < budget_s):
        t = timer(fn)
        times.append(t)
        spent += t
    return times


def _stats(work: float, times: list[float]) -> dict:
    return {"best": work / min(times), "median": work / percentile(times, 50), "repeats": len(times)}


# ------------------------------------------------------------------------------------------- memory

def memory_bandwidths(device: torch.device, nbytes: int, *, budget_s: float = 0.5) -> dict[str, dict]:
    """Bandwidth (B/s, best and median) of a copy (read+write counted), a read-only stream and a fill,
    each over ``nbytes``-byte buffers."""
    timer = call_timer(device)
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    nbytes = src.numel() * 4
    probes = {"copy": (lambda: dst.copy_(src), 2 * nbytes, "read+write"),
              "read": (lambda: torch.sum(src), nbytes, "read"),
              "write": (lambda: dst.fill_(1.0), nbytes, "write")}
    out = {}
    for kind, (fn, moved, counted) in probes.items():
        times = _repeat(fn, timer, budget_s=budget_s)
        out[kind] = {**_stats(moved, times), "buffer_bytes": nbytes, "counted": counted}
    return out


# ------------------------------------------------------------------------------------------ compute

def _dtype_key(dtype: torch.dtype, cls: str) -> str:
    return f"{str(dtype).replace('torch.', '')}{'+tf32' if cls == 'tf32' else ''}"


def _gemm(layout: str, n: int, dtype: torch.dtype, device: torch.device) -> tuple[Callable[[], object], dict]:
    """The call and its (m, n, k) for one probe."""
    if layout == "square":
        a = torch.randn(n, n, dtype=dtype, device=device)
        b = torch.randn(n, n, dtype=dtype, device=device)
        return (lambda: a @ b), {"m": n, "n": n, "k": n}
    m = n if layout == "linear" else SKINNY_ROWS[device.type]
    x = torch.randn(m, n, dtype=dtype, device=device)
    w = torch.randn(n, n, dtype=dtype, device=device)
    return (lambda: functional.linear(x, w)), {"m": m, "n": n, "k": n}


def gemm_probes(device: torch.device, dtype: torch.dtype, *, cls: str, budget_s: float = 0.5,
                sizes: tuple[int, ...] | None = None) -> list[dict]:
    """Every (layout, size) probe of ``dtype``: ``{dtype, class, layout, m, n, k, best, median, repeats}``
    in FLOP/s. Per layout the size grows while the next call (8x the work) fits in half the budget."""
    timer = call_timer(device)
    cuda = device.type == "cuda"
    sizes = sizes or (GPU_SIZES if cuda else CPU_SIZES)
    per_probe = budget_s / 10
    out = []
    with tf32_matmul(cls == "tf32"):  # the current torch API (the legacy flag raises once it is used)
        for layout in LAYOUTS:
            for n in sizes:
                fn, mnk = _gemm(layout, n, dtype, device)
                first = timer(fn)  # the warm-up call, timed to decide the next size
                times = _repeat(fn, timer, budget_s=per_probe, min_reps=2 if first > per_probe else 3,
                                warmed=True)
                flops = 2.0 * mnk["m"] * mnk["n"] * mnk["k"]
                out.append({"dtype": _dtype_key(dtype, cls), "class": cls, "layout": layout, **mnk,
                            **_stats(flops, times)})
                del fn
                if not cuda and n >= CPU_MIN_SIZE and min(times) * 8 > budget_s / 2:
                    break
    return out


# ------------------------------------------------------------------------------------------ passes

PROC_STAT = Path("/proc/stat")


def read_proc_stat() -> str | None:
    """``/proc/stat``'s text, or None where there is none (not Linux)."""
    try:
        return PROC_STAT.read_text()
    except OSError:
        return None


def usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(os.cpu_count() or 1))


def cpu_jiffies(stat: str | None, cpus: Iterable[int]) -> tuple[int, int, int] | None:
    """``(busy, total, cpus counted)`` jiffies over the per-CPU lines of ``cpus`` in a ``/proc/stat``
    text; busy is all but idle and iowait (steal counts as busy: another guest had the core). None
    when the text has none of those lines."""
    if not stat:
        return None
    per: dict[int, list[int]] = {}
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit():
            try:
                per[int(name[3:])] = [int(v) for v in rest.split()]
            except ValueError:
                continue
    chosen = [per[c] for c in cpus if c in per and len(per[c]) >= 4]
    if not chosen:
        return None
    busy = total = 0
    for v in chosen:
        t = sum(v[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
        busy += t - v[3] - (v[4] if len(v) > 4 else 0)
        total += t
    return busy, total, len(chosen)


class LoadWindow:
    """How busy the usable cores were over a window (a ceilings pass), from ``/proc/stat``, and how much
    of that was this process (its CPU time, every thread): ``other_busy_cores`` is the rest, neighbours
    seen while they run (the load average trails them by a minute). ``read_stat``, ``clock`` and
    ``own_cpu_s`` are replaceable for tests."""

    def __init__(self, read_stat: Callable[[], str | None] = read_proc_stat,
                 cpus: Iterable[int] | None = None, clock: Callable[[], float] = time.monotonic,
                 own_cpu_s: Callable[[], float] = time.process_time) -> None:
        self.read_stat, self.clock, self.own_cpu_s = read_stat, clock, own_cpu_s
        self.cpus = list(cpus) if cpus is not None else usable_cpus()
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, tuple[int, int, int] | None]:
        return self.clock(), self.own_cpu_s(), cpu_jiffies(self.read_stat(), self.cpus)

    def finish(self) -> dict:
        """``window_s``, ``own_busy_cores`` and, where ``/proc/stat`` was read, ``busy_cores`` and
        ``other_busy_cores`` (averages over the window, in cores)."""
        (t0, own0, stat0), (t1, own1, stat1) = self.start, self._sample()
        wall = max(t1 - t0, 1e-9)
        out = {"window_s": wall, "own_busy_cores": (own1 - own0) / wall, "usable_cores": len(self.cpus),
               "source": "/proc/stat and this process's CPU time over the pass"}
        if stat0 is not None and stat1 is not None and stat1[1] > stat0[1]:
            busy = (stat1[0] - stat0[0]) / (stat1[1] - stat0[1]) * stat1[2]
            out.update(busy_cores=busy, other_busy_cores=max(0.0, busy - out["own_busy_cores"]))
        return out


def _load(device: torch.device) -> dict:
    try:
        load = list(os.getloadavg())
    except (OSError, AttributeError):
        load = None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    # The run's own load: its compute threads after the sweep (a CPU run), this one process otherwise.
    return {"loadavg": load, "usable_cores": cores, "torch_threads": torch.get_num_threads()}


def measure_pass(device: torch.device, cache_bytes: int | None, *, budget_s: float = 0.5,
                 when: str = "before", read_stat: Callable[[], str | None] = read_proc_stat) -> dict:
    """One pass over every probe: ``memory`` (per kind), ``probes`` (every GEMM probe) and ``load``
    (``load["during"]``: the cores' use over this pass, :class:`LoadWindow`)."""
    cuda = device.type == "cuda"
    window = LoadWindow(read_stat)
    load = _load(device)
    load["own_threads"] = 1 if when == "before" or cuda else load["torch_threads"]
    load["device_kind"] = device.type  # a GPU's device-timed ceilings do not share the host's cores
    cache = cache_bytes or 32 * MiB
    nbytes = max(16 * cache, GiB) if cuda else max(8 * cache, 64 * MiB)
    memory = memory_bandwidths(device, nbytes, budget_s=budget_s * 0.3)
    probes: list[dict] = []
    for cls in ("tensor16", "tf32", "fp32") if cuda else ("tensor16", "fp32"):
        for dtype in CLASS_DTYPES[cls]:
            probes += gemm_probes(device, dtype, cls=cls, budget_s=budget_s)
    load["during"] = window.finish()
    return {"when": when, "load": load, "memory": memory, "probes": probes, "buffer_bytes": nbytes,
            "cache_bytes": cache}


def _best(items: list[dict]) -> dict:
    return max(items, key=lambda p: p["best"])


def combine(passes: list[dict], native: dict | None, device_kind: str) -> dict:
    """The ``measured`` block of ``ceilings.json`` from one or two passes (before, after): every ceiling
    is the best over probes and passes; the median and per-pass bests sit beside it.

    ``native`` (:func:`roofline.model.roof.native_math`, CPU only): a dtype without native math is converted
    and
    multiplied in fp32, so (1) the class holding it is floored at the fp32 ceiling and (2) its probes are
    fp32 math too, so they count towards the fp32 ceiling.
    """
    ceilings: dict[str, dict] = {}
    per_pass: dict[str, dict[str, float]] = {}
    for p in passes:
        per_pass.setdefault(MEMORY, {})[p["when"]] = _best(list(p["memory"].values()))["best"]
    all_mem = [dict(v, kind=k, when=p["when"]) for p in passes for k, v in p["memory"].items()]
    top = _best(all_mem)
    ceilings[MEMORY] = {"best": top["best"], "median": top["median"],
                        "probe": f"{top['kind']} ({top['when']})"}
    all_probes = [dict(pr, when=p["when"]) for p in passes for pr in p["probes"]]
    lacking = [d for d, v in (native or {}).items() if not v["native"]]

    def pool(cls: str) -> list[dict]:
        if cls == "fp32":  # a converted bf16/fp16 GEMM is fp32 math on this CPU
            return [pr for pr in all_probes if pr["class"] == "fp32"
                    or (pr["class"] == "tensor16" and pr["dtype"] in lacking)]
        return [pr for pr in all_probes if pr["class"] == cls]

    def entry_of(probes: list[dict]) -> dict:
        top = _best(probes)
        out = {"best": top["best"], "median": top["median"],
               "probe": f"{top['dtype']} {top['layout']} {top['m']}x{top['n']}x{top['k']} ({top['when']})"}
        for p in passes:
            got = [pr["best"] for pr in probes if pr["when"] == p["when"]]
            out[p["when"]] = max(got) if got else None
        return out

    for cls in dict.fromkeys(pr["class"] for pr in all_probes):
        ceilings[cls] = entry_of(pool(cls))
    if lacking and "fp32" in ceilings:
        fp32 = ceilings["fp32"]
        if not fp32["probe"].startswith("float32"):
            fp32["raised_by"] = (f"{fp32['probe'].split()[0]} without native math is fp32 math on this "
                                 "CPU: its probe counts towards the fp32 ceiling")
        t16 = ceilings.get("tensor16")
        if t16 is not None and fp32["best"] >= t16["best"]:
            why = (f"{', '.join(lacking)} without native math on this CPU: converted and multiplied in fp32, "
                   "so this class's roof is at least the fp32 roof")
            ceilings["tensor16"] = {**{k: v for k, v in fp32.items() if k != "raised_by"},
                                    "probe": f"fp32 floor ({fp32['probe']}); the class's own best: "
                                             f"{t16['probe']} at {t16['best'] / 1e9:.3g} GFLOP/s",
                                    "floored_at_fp32": why}
    for p in passes:
        ceilings[MEMORY][p["when"]] = per_pass[MEMORY][p["when"]]
    for entry in ceilings.values():
        entry.setdefault("before", None)
        entry.setdefault("after", None)
    first = passes[0]
    memory = {}
    for kind in MEMORY_KINDS:
        memory[kind] = dict(_best([p["memory"][kind] for p in passes]))
        for p in passes:
            memory[kind][p["when"]] = p["memory"][kind]["best"]
    cuda = device_kind == "cuda"
    library = ("cuBLAS via torch" if cuda else f"torch CPU GEMM ({torch.get_num_threads()} threads)")
    clock = "CUDA events" if cuda else "perf_counter"
    nbytes, cache = first["buffer_bytes"], first["cache_bytes"]
    method = (f"memory: best of copies (read+write counted), read-only sums and fills of a "
              f"{nbytes / MiB:.0f} MiB buffer ({nbytes / cache:.0f}x the "
              f"{'L2' if cuda else 'last-level cache'}); compute: best of "
              f"{len(first['probes'])} GEMM probes per pass (square A@B, F.linear A@B^T, skinny F.linear of "
              f"{SKINNY_ROWS[device_kind]} rows; every dtype of the class; {library}); passes: "
              f"{', '.join(p['when'] for p in passes)} the sweep, best kept; timed with {clock}")
    measured = {
        "mem_bandwidth": ceilings[MEMORY]["best"],
        "peak_flops": {c: v["best"] for c, v in ceilings.items() if c != MEMORY},
        "method": method,
        "ceilings": ceilings,
        "memory": memory,
        "bandwidth": memory["copy"],  # the read+write copy, as earlier files recorded it
        "probes": all_probes,
        "matmul": {pr["dtype"]: {k: pr[k] for k in ("best", "median", "layout", "m", "n", "k", "repeats")}
                   for pr in sorted(all_probes, key=lambda q: q["best"])},  # best probe per dtype
        "load": {p["when"]: p["load"] for p in passes},
        "native": native,
        "buffer_bytes": nbytes,
        "cache_bytes": cache,
    }
    measured["stability"] = assess_ceilings(measured).to_dict()
    return measured


def measure(device: torch.device, cache_bytes: int | None, *, budget_s: float = 0.5,
            native: dict | None = None) -> dict:
    """The ``measured`` block of ``ceilings.json`` from one pass (before the sweep)."""
    native = _native(device) if native is None else native
    return combine([measure_pass(device, cache_bytes, budget_s=budget_s)], native, device.type)


def _native(device: torch.device) -> dict | None:
    if device.type != "cpu":
        return None
    from bench.provenance import this_cpu_features

    return this_cpu_features()["native"]


# ------------------------------------------------------------------------------------------ specs

def datasheet_for(device_name: str, device_kind: str, l2_bytes: int | None = None) -> HardwareSpec | None:
    """The datasheet preset matching a GPU's name (the device-reported L2 replacing the preset's); None for
    a CPU, a MIG slice or a GPU ridgebench has no figures for."""
    if device_kind != "cuda":
        return None
    try:
        spec = lookup_device(device_name)
    except UnknownHardwareError:
        return None
    if l2_bytes and l2_bytes != spec.l2_bytes:
        from dataclasses import replace

        spec = replace(spec, l2_bytes=int(l2_bytes),
                       notes=(*spec.notes, f"L2 {l2_bytes} B as the device reports it "
                                           f"(preset: {spec.l2_bytes})"))
    return spec


def ceilings_document(device_name: str, measured: dict, datasheet: HardwareSpec | None) -> dict:
    """``ceilings.json``: ``{"device", "measured", "datasheet"}`` (the results contract), plus
    ``datasheet_note`` when a GPU has no datasheet preset (a MIG slice, an unknown part)."""
    doc = {"device": device_name, "measured": measured,
           "datasheet": datasheet.to_dict() if datasheet is not None else None}
    if datasheet is None and is_mig(device_name):
        doc["datasheet_note"] = MIG_NOTE
    return doc


# ---------------------------------------------------------------------------------- a session's life

def before_sweep(device: torch.device, device_name: str, cache_bytes: int | None, *,
                 budget_s: float = 0.5) -> tuple[Roofs, dict]:
    """Measure the first pass; the session's :class:`Roofs` and its ``ceilings.json``."""
    measured = measure(device, cache_bytes, budget_s=budget_s)
    return roofs_and_document(device, device_name, cache_bytes, measured)


def roofs_and_document(device, device_name, cache_bytes, measured) -> tuple[Roofs, dict]:
    # on ROCm the session's cache is the Infinity Cache the flush covers (bench.rocm), not the L2
    l2 = cache_bytes if device.type == "cuda" and not rocm.is_rocm() else None
    datasheet = datasheet_for(device_name, device.type, l2)
    roofs = Roofs(measured_spec(device_name, measured, datasheet), datasheet)
    return roofs, ceilings_document(device_name, measured, datasheet)


def after_sweep(session, *, budget_s: float = 0.5) -> None:
    """Measure the second pass, keep the best of both, rewrite the part's ``ceilings.json`` and re-judge
    its ``records.jsonl`` against the final roofs (so that every file agrees on every point's roof)."""
    if session.ceilings is None or session.timed == 0 or getattr(session, "ceilings_reused", False):
        return  # nothing timed here, or another family's process owns the passes (per-family isolation)
    measured = session.ceilings["measured"]
    before = _before_pass(measured)
    after = measure_pass(session.device, session.cache_bytes, budget_s=budget_s, when="after")
    final = combine([before, after], measured.get("native"), session.device.type)
    session.roofs, session.ceilings = roofs_and_document(session.device, session.device_name,
                                                         session.cache_bytes, final)
    _write(session.part_dir / CEILINGS, session.ceilings)
    records_path = session.part_dir / RECORDS  # this process's finished benchmarks, one per line
    if records_path.is_file():
        records, _ = read_records(records_path)
        reroof_benchmark_doc({"benchmarks": records}, session.roofs, assess_ceilings(final))
        tmp = records_path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r, default=str, allow_nan=True) + "\n" for r in records))
        tmp.replace(records_path)


def _before_pass(measured: dict) -> dict:
    """The first pass, rebuilt from a one-pass ``measured`` block."""
    probes = [{k: v for k, v in p.items() if k != "when"} for p in measured["probes"]]
    memory = {k: {kk: vv for kk, vv in v.items() if kk not in ("before", "after")}
              for k, v in measured["memory"].items()}
    return {"when": "before", "load": measured["load"]["before"], "memory": memory, "probes": probes,
            "buffer_bytes": measured["buffer_bytes"], "cache_bytes": measured["cache_bytes"]}


def _write(path: Path, doc: object) -> None:
    from roofline.rundir import write_json

    write_json(path, doc)
