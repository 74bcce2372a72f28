"""One benchmarking process: its device (pinned per xdist worker), flush buffer, ceilings and records.

Scale-out: ``pytest --benchmark -n <gpus>`` starts one xdist worker per GPU; worker ``gwN`` runs on
CUDA device ``N`` and nothing else does, so no two benchmarks ever share a GPU. Asking for more
workers than GPUs is an error, not a silent doubling-up.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench import ceilings as ceilings_mod
from bench.provenance import cpu_info
from bench.record import Roofs
from bench.results import part_dir, write_json
from bench.timing import cpu_llc_bytes, flush_bytes

# GPU cycles of busy-wait queued after the flush: ~100-150 us at A100/H100 clocks, longer than the host
# needs to record the start event and launch the timed call, so the GPU never idles inside the timed
# interval waiting for a launch (nvbench's "blocking kernel" idea).
LAUNCH_COVER_CYCLES = 200_000


def worker_index(worker_id: str | None) -> int:
    """``None``/``"master"``/``"main"`` (no xdist) -> 0; ``"gw3"`` -> 3."""
    if worker_id in (None, "", "master", "main"):
        return 0
    match = re.fullmatch(r"gw(\d+)", worker_id)
    if not match:
        raise ValueError(f"worker_id: expected an xdist worker id like 'gw0', got {worker_id!r}")
    return int(match.group(1))


def pinned_device_index(worker_id: str | None, device_count: int) -> int:
    """The CUDA device index worker ``worker_id`` owns; ``RuntimeError`` if there are fewer GPUs than
    workers (two workers would share a GPU and time each other)."""
    index = worker_index(worker_id)
    if device_count < 1:
        raise RuntimeError("no CUDA device to pin a benchmark worker to")
    if index >= device_count:
        raise RuntimeError(f"xdist worker {worker_id} would need CUDA device {index}, but only "
                           f"{device_count} are visible: run pytest --benchmark -n {device_count} or fewer "
                           "(one worker per GPU)")
    return index


def check_worker_count(numprocesses: object, device_count: int, cuda: bool) -> str | None:
    """Why ``-n numprocesses`` cannot run here (None if it can): one worker per GPU, none on a CPU.

    ``RIDGEBENCH_CPU_WORKERS=1`` lets workers run on a CPU anyway: for testing the scale-out plumbing
    only, since CPU workers time each other."""
    if numprocesses in (None, 0, "0"):
        return None
    try:
        n = int(numprocesses)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"-n {numprocesses}: give the number of GPUs explicitly (one worker per GPU)"
    if n <= 0:
        return None
    if not cuda:
        if os.environ.get("RIDGEBENCH_CPU_WORKERS") == "1":
            return None
        return (f"-n {n}: parallel benchmark workers need one GPU each; on the CPU they would time each "
                "other. Run without -n.")
    if n > device_count:
        return (f"-n {n}: only {device_count} CUDA device(s) visible; one worker per GPU means "
                f"-n {device_count}")
    return None


def cpu_device_name() -> str:
    return f"cpu: {cpu_info()['model']}"


@dataclass
class BenchSession:
    """State of one benchmarking process. ``triton_timed`` is False without a GPU (or when the
    interpreter is forced): Triton kernels are then checked under the interpreter and never timed."""

    device: torch.device
    device_name: str
    run_dir: Path
    part: str
    sweep: str
    triton_timed: bool
    cache_bytes: int | None
    started: dt.datetime
    skipped: list[dict] = field(default_factory=list)
    timed: int = 0
    checks: dict = field(default_factory=dict)  # interpreter checks, keyed by (kernel, shape, dtype)
    ceilings: dict | None = None
    roofs: Roofs | None = None
    _flush_buffer: torch.Tensor | None = None

    @property
    def device_kind(self) -> str:
        return self.device.type

    @property
    def cache_name(self) -> str:
        return "L2" if self.device_kind == "cuda" else "last-level cache"

    @property
    def part_dir(self) -> Path:
        return part_dir(self.run_dir, self.part)

    @property
    def flush_nbytes(self) -> int:
        return flush_bytes(self.cache_bytes)

    def flush(self) -> None:
        """Zero a buffer twice the cache's size so the next call starts with a cold cache; on a GPU,
        then queue a short spin (:data:`LAUNCH_COVER_CYCLES`) that hides the host's launch latency."""
        if self._flush_buffer is None:
            self._flush_buffer = torch.empty(self.flush_nbytes, dtype=torch.uint8, device=self.device)
        self._flush_buffer.zero_()
        if self.device_kind == "cuda":
            torch.cuda._sleep(LAUNCH_COVER_CYCLES)

    def synchronize(self) -> None:
        if self.device_kind == "cuda":
            torch.cuda.synchronize(self.device)

    def ensure_ceilings(self, budget_s: float = 0.5) -> Roofs:
        """Measure this device's ceilings (once) and write ``ceilings.json`` into this process's part."""
        if self.roofs is None:
            self.roofs, self.ceilings = ceilings_mod.before_sweep(self.device, self.device_name,
                                                                 self.cache_bytes, budget_s=budget_s)
            write_json(self.part_dir / "ceilings.json", self.ceilings)
        return self.roofs

    def add_skip(self, record: dict) -> None:
        self.skipped.append(record)
        write_json(self.part_dir / "skipped.json", self.skipped)


def open_session(*, run_dir: Path, worker_id: str | None, sweep: str, started: dt.datetime,
                 force_interpreter: bool) -> BenchSession:
    """The session for this process: the pinned GPU when CUDA is available, the CPU otherwise."""
    if torch.cuda.is_available():
        index = pinned_device_index(worker_id, torch.cuda.device_count())
        torch.cuda.set_device(index)
        device = torch.device("cuda", index)
        props = torch.cuda.get_device_properties(index)
        name, cache = props.name, getattr(props, "L2_cache_size", None)
        triton_timed = not force_interpreter
    else:
        device, name, cache, triton_timed = torch.device("cpu"), cpu_device_name(), cpu_llc_bytes(), False
    part = worker_id if worker_id and worker_id != "master" else "main"
    return BenchSession(device=device, device_name=name, run_dir=run_dir, part=part, sweep=sweep,
                        triton_timed=triton_timed, cache_bytes=cache, started=started)
