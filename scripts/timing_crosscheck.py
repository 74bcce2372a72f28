"""Timing-method cross-check for scripts/gpu-check.sh: the same kernels timed every way the suite can,
against the two clocks that cannot count host time, and the device's read / write / copy bandwidth on 1 GiB.

For ~7 representative benchmark cases (points of the quick sweep, built by the suite's own builders in
kernels/<kernel>/spec.py), the median per call by:
- ``suite``: what the suite records for the point (``--timing auto``, bench.timing.measure; the method
  it chose is listed per case);
- ``events``: CUDA events around the Python call after the flush and a fixed ~100 us spin (the suite's
  clock before issue 22); ``no-spin``: the same without the spin; ``no-flush``: without the flush;
- ``sized-spin``: events after a spin sized to 2x the call's host time;
- ``graph``: CUDA-graph replay of one call, flushed, spin-covered, timed by events;
- ``profiler``: the summed device durations of the call's kernels in torch.profiler's CUDA records;
- ``do_bench``: ``triton.testing.do_bench`` (its own flush, its own event timing);
- ``host``: host seconds per call, launcher entry to return, on an idle device;
- ``bare``: Triton's bare launch (``kernel[grid](*args)``) of the kernels that call launched, same
  arguments, host seconds; ``host/bare`` is what the launcher's own Python costs on top.
A case whose ``events``, ``no-spin`` or ``do_bench`` time exceeds the host-free reference (the lower of
``graph`` and ``profiler``) by more than the noise (both methods' p20-p80 spread, at least
:data:`NOISE_FLOOR`) is flagged: host time inside a device clock. Nothing here is predicted: every number
is measured on this machine.

The ops are the table's Triton ops (``roofline.model.ops.KERNELS``), each timed through its
``bench.runner.KernelBench``. The GPU cases are each op's ``gpu_cases`` (``kernels/<op>/spec.py``); an op
without one, or a case the quick sweep no longer has, is reported as NOT COVERED rather than dropped in
silence.
``--budget SECONDS`` stops starting cases once the next one (estimated at the longest so far) would pass
it; the output is written either way and says which cases the budget left out.

``--dry-run`` runs the plumbing on a CPU: the smoke sweep's tiny cases, Triton under the interpreter,
host wall time in place of events, 16 MiB buffers, the CUDA-only methods marked "n/a (no GPU)".

    python scripts/timing_crosscheck.py --out DIR [--dry-run] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

METHODS = ("suite", "events", "no-spin", "no-flush", "sized-spin", "graph", "profiler", "do_bench", "host",
           "bare")
HOST_FREE = ("graph", "profiler")  # the references: neither can count host time
EVENT_CLOCKS = ("events", "no-spin", "do_bench")  # clocks that time the Python call: may count host time
GIB = 2**30
DISAGREE = 0.25  # |do_bench / suite - 1| above this is reported
NOISE_FLOOR = 0.10  # an event clock is flagged only past max(10%, the two methods' p20-p80 spreads)
BANDWIDTH_RESERVE_S = 30.0  # --budget keeps this for the bandwidth step


def _benches() -> dict[str, object]:
    """Each Triton op of the table (roofline.model.ops.KERNELS) with its :class:`bench.runner.KernelBench`."""
    from bench.runner import KernelBench
    from roofline.model.ops import KERNELS

    return {kernel: KernelBench(kernel) for kernel in KERNELS}


def gpu_cases() -> list[tuple[str, str, str]]:
    """``(kernel, sweep, label)`` of the quick sweep on a GPU, memory- and compute-bound, each kernel family:
    each op's ``gpu_cases`` (``kernels/<op>/spec.py``)."""
    return [(kernel, sweep, label) for kernel, bench in _benches().items()
            for sweep, label in bench.spec.gpu_cases]


def gpu_points(quick: list, cases: list[tuple[str, str, str]] | None = None) -> tuple[list, list[str]]:
    """The quick-sweep points named by :func:`gpu_cases` (or ``cases``), and a note per Triton op without one
    (or per case that is no longer a point of the quick sweep), so a new op or a renamed sweep is said, not
    silently left out."""
    from roofline.model.ops import KERNELS

    cases = gpu_cases() if cases is None else cases
    by_key = {(p.kernel, p.sweep, p.label): p for p in quick}
    notes = [f"{kernel}: no example case (add its quick-sweep points to gpu_cases in "
             f"kernels/{kernel}/spec.py)" for kernel in KERNELS if all(c[0] != kernel for c in cases)]
    notes += [f"{kernel} {sweep} {label}: not a point of the quick sweep (skipped)"
              for kernel, sweep, label in cases if (kernel, sweep, label) not in by_key]
    return [by_key[c] for c in cases if c in by_key], notes


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def time_methods(fn: Callable[[], object], session, *, reps: int, cuda: bool) -> dict:
    """``{"seconds": {method: median s per call or None}, "spread": {method: p80/p20 - 1},
    "notes": {method: why it did not run / what it chose}}`` for every method in :data:`METHODS`."""
    from bench import timing

    seconds: dict[str, float | None] = dict.fromkeys(METHODS)
    spread: dict[str, float] = {}
    notes: dict[str, str] = {}

    def take(name: str, samples: list[float]) -> None:
        seconds[name] = _median(samples)
        spread[name] = timing.percentile(samples, 80) / max(timing.percentile(samples, 20), 1e-30) - 1

    if not cuda:  # the plumbing only: host wall time stands in for the device clock
        samples = []
        for _ in range(reps):
            session.flush()
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        take("suite", samples)
        seconds["host"] = seconds["suite"]
        notes["suite"] = "host-wall (no GPU)"
        return {"seconds": seconds, "spread": spread, "notes": notes}

    from kernels._lib.launch import recording

    backend = session.timing_backend
    with recording() as launches:
        fn()
    host_s = timing.host_seconds_per_call(fn, backend)
    seconds["host"] = host_s
    seconds["bare"] = timing.bare_launch_seconds(launches, backend)
    if seconds["bare"] is None:
        notes["bare"] = "no Triton launch recorded"
    suite = timing.measure(fn, flush=session.flush, backend=backend, rounds=reps, host_s=host_s)
    take("suite", suite.samples)
    notes["suite"] = suite.method + (f" (passed over: {'; '.join(suite.not_used)})" if suite.not_used else "")
    ways = {"events": dict(flush=session.flush, spin=timing.LAUNCH_COVER_CYCLES),
            "no-spin": dict(flush=session.flush, spin=0),
            "no-flush": dict(flush=lambda: None, spin=timing.LAUNCH_COVER_CYCLES)}
    for name, way in ways.items():
        take(name, timing.event_rounds(fn, flush=way["flush"], backend=backend, rounds=reps,
                                        spin_cycles=way["spin"]))
    for name in ("sized-spin", "graph", "profiler"):
        try:
            take(name, timing.MEASURE[name](fn, flush=session.flush, backend=backend, rounds=reps,
                                            host_s=host_s))
        except timing.TimingError as exc:
            notes[name] = str(exc)
    import triton.testing

    seconds["do_bench"] = triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median") / 1e3
    return {"seconds": seconds, "spread": spread, "notes": notes}


def host_time_flags(name: str, seconds: dict, spread: dict) -> list[str]:
    """One line per event clock of a case whose time exceeds the host-free reference (the lower of
    :data:`HOST_FREE`) past the noise."""
    refs = [(seconds[m], m) for m in HOST_FREE if seconds.get(m)]
    if not refs:
        return []
    ref, ref_name = min(refs)
    flags = []
    for clock in EVENT_CLOCKS:
        got = seconds.get(clock)
        if not got:
            continue
        noise = max(NOISE_FLOOR, spread.get(clock, 0.0) + spread.get(ref_name, 0.0))
        if got > ref * (1 + noise):
            flags.append(f"{name}: {clock} {got * 1e6:.2f} us vs {ref_name} {ref * 1e6:.2f} us "
                         f"({got / ref:.2f}x, noise {noise:.0%}): host time inside the device clock")
    return flags


def bandwidth(device, nbytes: int, reps: int, cuda: bool) -> dict[str, float]:
    """Measured GB/s (1e9 B/s) of reading (a sum), writing (a fill) and copying ``nbytes``."""
    import torch

    x = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    y = torch.empty_like(x)
    ops = {"read": (lambda: x.sum(), nbytes), "write": (lambda: y.fill_(1.0), nbytes),
           "copy": (lambda: y.copy_(x), 2 * nbytes)}
    out = {}
    for name, (op, moved) in ops.items():
        op()
        samples = []
        for _ in range(reps):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                op()
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                op()
                samples.append(time.perf_counter() - t0)
        out[f"{name}_GB_per_s"] = moved / _median(samples) / 1e9
    out["buffer_bytes"] = nbytes
    return out


def run(out_dir: Path, dry_run: bool, budget_s: float | None = None) -> dict:
    """Time every case (stopping before one that would pass ``budget_s``), then the bandwidth."""
    started = time.monotonic()
    if dry_run:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before any kernels.* import
    import datetime as dt

    import torch

    from bench.session import open_session
    from roofline.model.sweeps import sweep_points

    cuda = torch.cuda.is_available() and not dry_run
    session = open_session(run_dir=out_dir / "session", worker_id=None,
                           sweep="smoke" if dry_run else "quick",
                           started=dt.datetime.now(dt.timezone.utc), force_interpreter=dry_run)
    benches = _benches()
    if dry_run:
        points, notes = sweep_points("smoke", "cpu"), []
    else:
        points, notes = gpu_points(sweep_points("quick", "cuda"))
    points = [p for p in points if p.kernel in benches]  # a torch-only op has no Triton launcher to time
    reps = 2 if dry_run else 30
    cases, longest = [], 0.0
    reserve = 0.0 if budget_s is None else min(BANDWIDTH_RESERVE_S, budget_s / 4)
    for i, point in enumerate(points):
        elapsed = time.monotonic() - started
        if budget_s is not None and elapsed + longest + reserve > budget_s:
            why = (f"not started, the --budget of {budget_s:g} s was near ({elapsed:.0f} s spent, longest "
                   f"case took {longest:.0f} s)")
            notes += [f"{p.kernel} {p.sweep} {p.label}: {why}" for p in points[i:]]
            break
        t_case = time.monotonic()
        bench = benches[point.kernel]
        if dry_run:
            point = type(point)(point.kernel, point.sweep, bench.interpreter_shape(point.shape), "float16",
                                point.label)
        x = bench.build(point, session.device)
        fn = bench.triton_fn(x, first=True)
        fn()  # compile, autotune, check once
        chk = bench.check(x, fn())
        fn = bench.triton_fn(x, first=False)
        timed = time_methods(fn, session, reps=reps, cuda=cuda)
        cases.append({"kernel": point.kernel, "sweep": point.sweep, "label": point.label,
                      "dtype": point.dtype, "shape": point.shape, "check_ok": chk.ok,
                      "max_error": chk.max_error, **timed})
        del x, fn
        if cuda:
            torch.cuda.empty_cache()
        longest = max(longest, time.monotonic() - t_case)
    bw = bandwidth(session.device, 16 * 2**20 if dry_run else GIB, 3 if dry_run else 20, cuda)
    return {"device": session.device_name, "device_kind": "cuda" if cuda else "cpu", "dry_run": dry_run,
            "methods": METHODS, "cases": cases, "not_covered": notes, "bandwidth": bw,
            "budget_s": budget_s, "elapsed_s": time.monotonic() - started,
            "note": "measured on this machine"
                    + ("; dry run: interpreter, host wall time" if dry_run else "")}


def _cell(value: float | None) -> str:
    return f"{value * 1e6:9.2f}" if value is not None else f"{'n/a':>9s}"


def report(doc: dict) -> list[str]:
    """The table, the method each case's suite time used, the host-time flags, the host launch cost
    against Triton's bare launch, and the do_bench disagreements; one line each."""
    head = (f"{'case':40s} " + " ".join(f"{m:>9s}" for m in METHODS) + f" {'host/bare':>9s}"
            + "   (us per call)")
    lines = [f"timing cross-check on {doc['device']}" + (" (DRY RUN)" if doc["dry_run"] else ""), head]
    flags, disagree, launch, chosen = [], [], [], []
    for c in doc["cases"]:
        s, spread, notes = c["seconds"], c.get("spread", {}), c.get("notes", {})
        name = f"{c['kernel']} {c['sweep'].split('/', 1)[1]} {c['label']}"
        ratio = s["host"] / s["bare"] if s.get("host") and s.get("bare") else None
        lines.append(f"{name[:40]:40s} " + " ".join(_cell(s.get(m)) for m in METHODS)
                     + (f" {ratio:8.2f}x" if ratio else f" {'n/a':>9s}")
                     + ("" if c["check_ok"] else "   WRONG RESULT"))
        chosen.append(f"{name}: suite = {notes.get('suite', '?')}")
        chosen += [f"{name}: {m} not run: {notes[m]}" for m in ("graph", "profiler") if m in notes]
        flags += host_time_flags(name, s, spread)
        if s.get("do_bench") and s.get("suite") and abs(s["do_bench"] / s["suite"] - 1) > DISAGREE:
            disagree.append(f"{name}: do_bench {s['do_bench'] * 1e6:.2f} us vs suite "
                            f"{s['suite'] * 1e6:.2f} us ({s['do_bench'] / s['suite']:.2f}x)")
        if ratio:
            launch.append(f"{name}: host {s['host'] * 1e6:.2f} us per call vs Triton's bare launch "
                          f"{s['bare'] * 1e6:.2f} us ({ratio:.2f}x); device time {s['suite'] * 1e6:.2f} us"
                          + (" (LAUNCH-BOUND)" if s["suite"] < s["host"] else ""))
    bw = doc["bandwidth"]
    lines.append(f"bandwidth on {bw['buffer_bytes'] / GIB:.3g} GiB: read {bw['read_GB_per_s']:.1f} GB/s, "
                 f"write {bw['write_GB_per_s']:.1f} GB/s, copy {bw['copy_GB_per_s']:.1f} GB/s (measured)")
    lines += chosen
    lines += [f"NOT COVERED: {note}" for note in doc.get("not_covered", [])]
    if doc["dry_run"]:
        lines.append("dry run: the CUDA-only methods were not run; host launch vs bare launch: n/a (no GPU)")
        return lines
    lines += [f"HOST TIME IN EVENTS: {f}" for f in flags] or [
        f"event clocks agree with the host-free ones ({', '.join(HOST_FREE)}) within noise on every case"]
    lines += [f"LAUNCH: {x}" for x in launch] or ["LAUNCH: no Triton launch recorded (host vs bare: n/a)"]
    lines += [f"DISAGREE >{DISAGREE:.0%}: {d}" for d in disagree] or [
        f"do_bench agrees with the suite within {DISAGREE:.0%}"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for crosscheck.json")
    parser.add_argument("--dry-run", action="store_true", help="CPU plumbing check (interpreter, tiny)")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="start no case that would end past this many seconds (the output is "
                             "written either way)")
    args = parser.parse_args(argv)
    if args.budget is not None and not args.budget >= 0:
        parser.error(f"--budget {args.budget}: expected a number of seconds >= 0")
    args.out.mkdir(parents=True, exist_ok=True)
    doc = run(args.out, args.dry_run, args.budget)
    (args.out / "crosscheck.json").write_text(json.dumps(doc, indent=2, default=str))
    lines = report(doc)
    (args.out / "crosscheck.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(c["check_ok"] for c in doc["cases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
