"""One benchmarking process: its device (pinned per xdist worker), flush buffer, ceilings and records.

Scale-out: ``pytest --benchmark -n <gpus>`` starts one xdist worker per GPU; the controller hands each
worker its GPU (:mod:`bench.isolation`), and :func:`open_session` pins the worker to it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench import ceilings as ceilings_mod
from bench import rocm
from bench.provenance import cpu_info
from bench.record import Roofs
from bench.timing import CudaBackend, cpu_llc_bytes, flush_bytes
from roofline.rundir import CEILINGS, SKIPPED, append_record, part_dir, write_json


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
    ceilings_budget_s: float = 0.5
    ceilings_from: Path | None = None
    ceilings_reused: bool = False  # True when ceilings_from was used: the first family owns the passes
    fatal: str | None = None  # why this process stopped early (a sticky CUDA error)
    _flush_buffer: torch.Tensor | None = None
    _timing_backend: object | None = None

    @property
    def device_kind(self) -> str:
        return self.device.type

    @property
    def cache_name(self) -> str:
        if self.device_kind != "cuda":
            return "last-level cache"
        return "Infinity Cache" if rocm.is_rocm() else "L2"

    @property
    def part_dir(self) -> Path:
        return part_dir(self.run_dir, self.part)

    @property
    def flush_nbytes(self) -> int:
        return flush_bytes(self.cache_bytes)

    def flush(self) -> None:
        """Zero a buffer twice the cache's size so the next call starts with a cold cache (a spin, where a
        timing method needs one, is the method's: :mod:`bench.timing`)."""
        if self._flush_buffer is None:
            self._flush_buffer = torch.empty(self.flush_nbytes, dtype=torch.uint8, device=self.device)
        self._flush_buffer.zero_()

    @property
    def timing_backend(self) -> object:
        """The device behind :func:`bench.timing.measure` (:class:`bench.timing.CudaBackend` on a GPU)."""
        if self._timing_backend is None:
            self._timing_backend = CudaBackend(self.device)
        return self._timing_backend

    def synchronize(self) -> None:
        if self.device_kind == "cuda":
            torch.cuda.synchronize(self.device)

    def ensure_ceilings(self, budget_s: float | None = None) -> Roofs:
        """Measure this device's ceilings (once) and write ``ceilings.json`` into this process's part.

        ``ceilings_from`` (a ``ceilings.json`` another part of this run measured on this device: the
        per-family subprocesses share the first family's) is reused instead of measuring again."""
        if self.roofs is None:
            reused = _read_ceilings(self.ceilings_from, self.device_name)
            if reused is not None:  # another family's before/after ceilings on this device: no pass here
                self.ceilings_reused = True
                self.roofs, self.ceilings = ceilings_mod.roofs_and_document(
                    self.device, self.device_name, self.cache_bytes, reused)
            else:
                budget = self.ceilings_budget_s if budget_s is None else budget_s
                self.roofs, self.ceilings = ceilings_mod.before_sweep(self.device, self.device_name,
                                                                     self.cache_bytes, budget_s=budget)
            write_json(self.part_dir / CEILINGS, self.ceilings)
        return self.roofs

    def add_skip(self, record: dict) -> None:
        self.skipped.append(record)
        write_json(self.part_dir / SKIPPED, self.skipped)

    def add_record(self, record: dict) -> None:
        """Keep one finished benchmark (its full pytest-benchmark record) on disk now."""
        append_record(self.part_dir, record)
        self.timed += 1

    def release_memory(self) -> None:
        """Return freed device memory to the driver between cases (the caller dropped its tensors)."""
        if self.device_kind == "cuda":
            torch.cuda.empty_cache()


def _read_ceilings(path: Path | None, device_name: str) -> dict | None:
    """The ``measured`` block of a ``ceilings.json`` measured on ``device_name``; None if there is none
    or it is unusable (then this process measures its own)."""
    if path is None:
        return None
    try:
        doc = json.loads(Path(path).read_text())
        measured = doc["measured"]
        if doc.get("device") != device_name or not measured.get("peak_flops") or not measured.get(
                "mem_bandwidth"):
            return None
        return measured
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def open_session(*, run_dir: Path, worker_id: str | None, sweep: str, started: dt.datetime,
                 force_interpreter: bool, gpu_index: int | None = None, part: str | None = None
                 ) -> BenchSession:
    """The session for this process: the pinned GPU when CUDA is available, the CPU otherwise.

    ``gpu_index``: the GPU the xdist controller assigned (:class:`bench.isolation.GpuAllocator`); without
    it, worker ``gwN`` takes ``cuda:N``. ``part``: the name of this process's part (default: the worker id, or
    ``main``)."""
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        if gpu_index is not None and not 0 <= gpu_index < count:
            raise RuntimeError(f"xdist worker {worker_id} was assigned CUDA device {gpu_index}, but only "
                               f"{count} are visible")
        index = gpu_index if gpu_index is not None else pinned_device_index(worker_id, count)
        torch.cuda.set_device(index)
        device = torch.device("cuda", index)
        props = torch.cuda.get_device_properties(index)
        name, cache = props.name, getattr(props, "L2_cache_size", None)
        if rocm.is_rocm():  # the flush must cover the Infinity Cache behind the L2 the device reports
            cache, _ = rocm.flush_cache_bytes(name, cache)
        triton_timed = not force_interpreter
    else:
        device, name, cache, triton_timed = torch.device("cpu"), cpu_device_name(), cpu_llc_bytes(), False
    part = part or (worker_id if worker_id and worker_id != "master" else "main")
    return BenchSession(device=device, device_name=name, run_dir=run_dir, part=part, sweep=sweep,
                        triton_timed=triton_timed, cache_bytes=cache, started=started)
