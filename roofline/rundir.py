"""The run directory's format, in one place for the writer (bench) and every reader (roofline.report).

A run is ``results/<device-slug>/<UTC timestamp>/``, never overwritten. Each pytest process that runs
benchmarks (the only one, one xdist worker per GPU, or one subprocess per kernel family) writes its files
into ``<run>/parts/<part>/`` as it goes: ``records.jsonl`` (one pytest-benchmark record per line,
appended and flushed the moment a benchmark finishes, so an interrupted or killed run keeps every
finished one), ``benchmark-header.json`` (pytest-benchmark's machine and commit info, written at the end),
``skipped.json``, ``ceilings.json``, ``provenance.json``. :func:`merge_parts` then writes the run's
top-level files from all parts (one part: copied; several: benchmarks and skips concatenated, each
part's device kept) and removes ``parts/``. A run whose end never came (SIGKILL, power loss) keeps
``parts/``; :func:`unfinished_benchmarks` reads it as is.

``ceilings.json`` is ``{"device", "measured", "datasheet"}``: :func:`parse_ceilings` reads it into
:class:`Ceilings`, and :func:`measured_spec` is the one way a measured hardware spec is built from it
(the bench's roofs while it runs, and every report afterwards). ``provenance.json`` ends with the run's
:class:`EndState`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from roofline.errors import UsageError
from roofline.model.hardware import DTYPE_CLASSES, PRESETS, HardwareSpec, from_measured

BENCHMARK = "benchmark.json"  # pytest-benchmark's document, every record in it
CEILINGS = "ceilings.json"
PROVENANCE = "provenance.json"
SKIPPED = "skipped.json"
RUN_FILES = (BENCHMARK, CEILINGS, PROVENANCE, SKIPPED)
RECORDS = "records.jsonl"
HEADER = "benchmark-header.json"
PARTS = "parts"
# the provider every speedup is relative to (eager PyTorch); records name it in their "provider" field
BASELINE = "torch"


def device_slug(device_name: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``nvidia-h100-80gb-hbm3``; ``"cpu: AMD EPYC"`` -> ``cpu-amd-epyc``."""
    return re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-") or "unknown-device"


def utc_stamp(when: dt.datetime) -> str:
    """``20261122T051000Z`` (the run directory's name); ``when`` must be timezone-aware."""
    if when.tzinfo is None:
        raise ValueError("when: expected a timezone-aware datetime")
    return when.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def new_run_dir(root: Path, device_name: str, when: dt.datetime) -> Path:
    """Create and return a fresh ``root/<device-slug>/<stamp>/``; if that exists (two runs in one
    second), ``<stamp>-2``, ``<stamp>-3``, ... An existing directory is never reused."""
    parent = Path(root) / device_slug(device_name)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = utc_stamp(when)
    for n in range(1, 1000):
        candidate = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{parent}: 999 runs already named {stamp}")


def part_dir(run_dir: Path, part: str) -> Path:
    """Where one process writes its files (``part``: ``main`` or the xdist worker id)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", part):
        raise ValueError(f"part: expected a worker id like 'gw0' or 'main', got {part!r}")
    path = Path(run_dir) / PARTS / part
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, doc: object) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> object | None:
    """A JSON file of a run or of one of its parts, or None when it is missing or unreadable (a process
    killed mid-write)."""
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def append_record(part: Path, record: dict) -> None:
    """Append one finished benchmark's record to ``part/records.jsonl`` and push it to the disk, so a
    run interrupted (or killed) later still has it."""
    line = json.dumps(record, default=str, allow_nan=True) + "\n"
    with open(Path(part) / RECORDS, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_records(path: Path) -> tuple[list[dict], list[str]]:
    """The records of a ``records.jsonl`` and a description of each line that could not be read (a
    line cut short when the process was killed mid-write)."""
    records: list[dict] = []
    bad: list[str] = []
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return [], [f"{path}: cannot read ({exc})"]
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            bad.append(f"{path}:{n}: not a complete record (cut short when the run was killed?)")
            continue
        if isinstance(doc, dict):
            records.append(doc)
        else:
            bad.append(f"{path}:{n}: not a JSON object")
    return records, bad


def part_dirs(run_dir: Path) -> list[Path]:
    """A run's ``parts/*`` directories in part order (``gw2`` before ``gw10``)."""
    return sorted((p for p in (Path(run_dir) / PARTS).glob("*") if p.is_dir()),
                  key=lambda p: (len(p.name), p.name))


def unfinished_benchmarks(run_dir: Path, notes: list[str]) -> dict | None:
    """A pytest-benchmark document assembled from ``parts/*/records.jsonl``: the records each process
    of a run wrote as its benchmarks finished, when the run never reached its end (no benchmark.json).
    None when there are none; each line that cannot be read is a note."""
    files = [p / RECORDS for p in part_dirs(run_dir) if (p / RECORDS).is_file()]
    if not files:
        return None
    benchmarks: list = []
    for path in files:
        records, bad = read_records(path)
        benchmarks += records
        notes += [f"{b}; skipped" for b in bad]
    notes.append(f"{run_dir}: no benchmark.json (the run did not finish); {len(benchmarks)} records "
                 f"read from {len(files)} parts/*/records.jsonl")
    return {"benchmarks": benchmarks}


def _part_benchmarks(part: Path) -> dict | None:
    """One part's pytest-benchmark document: its header plus its ``records.jsonl`` (or, for a part
    written whole, its ``benchmark.json``)."""
    if (part / RECORDS).is_file():
        records, _ = read_records(part / RECORDS)
        header = read_json(part / HEADER)
        doc = dict(header) if isinstance(header, dict) else {"machine_info": {}, "commit_info": {}}
        doc["benchmarks"] = records
        return doc
    doc = read_json(part / BENCHMARK)
    return doc if isinstance(doc, dict) else None


def merge_benchmark_json(docs: list[dict]) -> dict | None:
    """One pytest-benchmark document from several: the first's metadata, every part's benchmarks."""
    docs = [d for d in docs if d]
    if not docs:
        return None
    merged = dict(docs[0])
    merged["benchmarks"] = [b for d in docs for b in d.get("benchmarks", [])]
    if len(docs) > 1:
        merged["machine_info"] = dict(merged.get("machine_info") or {})
        merged["machine_info"]["ridgebench_parts"] = len(docs)
    return merged


def merge_parts(run_dir: Path, run_info: dict | None = None) -> dict[str, Path]:
    """Write the run's top-level files from ``parts/*`` and remove the parts; returns what was written.

    Several parts (xdist workers, one GPU each; or kernel families, one subprocess each): benchmarks
    and skips concatenated in part order; ``ceilings.json`` is the first part's with every part's under
    ``per_worker``; ``provenance.json`` the first part's with every part's device, clocks and
    environment under ``per_worker``. ``run_info`` (the controller's exit status, ``interrupted``, ...)
    is written at the top of ``provenance.json``.
    """
    run_dir = Path(run_dir)
    parts = part_dirs(run_dir)
    if not parts:
        return {}
    loaded = {name: [(p.name, read_json(p / name)) for p in parts] for name in RUN_FILES}
    loaded[BENCHMARK] = [(p.name, _part_benchmarks(p)) for p in parts]
    written: dict[str, Path] = {}

    bench = merge_benchmark_json([d for _, d in loaded[BENCHMARK]
                                  if isinstance(d, dict) and d.get("benchmarks")])
    if bench is not None:
        written[BENCHMARK] = run_dir / BENCHMARK
        write_json(written[BENCHMARK], bench)

    skipped = [dict(s, worker=name) if len(parts) > 1 else s
               for name, doc in loaded[SKIPPED] if isinstance(doc, list) for s in doc]
    written[SKIPPED] = run_dir / SKIPPED
    write_json(written[SKIPPED], skipped)

    for name in (CEILINGS, PROVENANCE):
        docs = [(part, d) for part, d in loaded[name] if isinstance(d, dict)]
        if not docs and not (name == PROVENANCE and run_info):
            continue
        doc = dict(docs[0][1]) if docs else {}
        if name == PROVENANCE and run_info:
            doc.update(run_info)
        if len(docs) > 1:
            doc["per_worker"] = {part: d for part, d in docs}
        written[name] = run_dir / name
        write_json(written[name], doc)

    shutil.rmtree(run_dir / PARTS)
    return written


# ---------------------------------------------------------------------------------- ceilings.json

@dataclass(frozen=True)
class Ceilings:
    """The roofs of the device a run measured: measured (solid on plots) and datasheet (dashed)."""

    device: str
    measured: HardwareSpec | None
    datasheet: HardwareSpec | None
    method: str = ""
    raw: dict | None = field(default=None, repr=False, compare=False)  # the file's ``measured`` block


def measured_spec(device_name: str, measured: dict, datasheet: HardwareSpec | None) -> HardwareSpec:
    """The spec built from a ``measured`` block: its ceilings, with caches, SMs and the architecture
    from the datasheet preset when there is one (whose L2 is the device-reported one, see
    ``bench.ceilings.datasheet_for``). The bench's roofs and every report build it here."""
    return from_measured(device_name, measured["mem_bandwidth"], measured["peak_flops"], base=datasheet,
                         notes=(str(measured.get("method", "")),) if measured.get("method") else ())


def positive_number(value: object, where: str) -> float:
    """A finite positive number, or a one-line UsageError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{where}: expected a finite number, got {value!r}")
    if value <= 0:
        raise UsageError(f"{where}: expected a positive number, got {value!r}")
    return float(value)


def spec_from_dict(data: dict, where: str) -> HardwareSpec:
    """A hardware spec as ``HardwareSpec.to_dict`` wrote it (a preset's name gives the preset)."""
    try:
        name = str(data["name"])
        if name in PRESETS and data.get("source", "datasheet") != "measured":
            return PRESETS[name]
        return HardwareSpec(
            name=name, peak_flops={str(k): float(v) for k, v in data["peak_flops"].items()},
            mem_bandwidth=float(data["mem_bandwidth"]), source=str(data.get("source", "datasheet")),
            l2_bytes=data.get("l2_bytes"), sm_count=data.get("sm_count"), arch=data.get("arch"),
            description=str(data.get("description", "")), notes=tuple(data.get("notes") or ()),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{where}: malformed hardware spec ({type(exc).__name__}: {exc})") from None


def parse_ceilings(data: object, path: Path) -> Ceilings:
    """:class:`Ceilings` from a parsed ``ceilings.json``; a one-line UsageError naming the bad field."""
    if not isinstance(data, dict) or "measured" not in data or "datasheet" not in data:
        raise UsageError(f"{path}: not a ridgebench ceilings.json (no measured/datasheet keys)")
    device = str(data.get("device") or "unknown")
    datasheet = None
    if data["datasheet"] is not None:
        if not isinstance(data["datasheet"], dict):
            raise UsageError(f"{path}: 'datasheet' must be a hardware spec object or null")
        datasheet = spec_from_dict(data["datasheet"], f"{path}: datasheet")
    measured = None
    m = data["measured"]
    if m is not None:
        if not isinstance(m, dict) or not isinstance(m.get("peak_flops"), dict):
            raise UsageError(f"{path}: 'measured' must hold mem_bandwidth and a peak_flops object")
        bw = positive_number(m.get("mem_bandwidth"), f"{path}: measured.mem_bandwidth")
        peaks = {str(k): positive_number(v, f"{path}: measured.peak_flops.{k}")
                 for k, v in m["peak_flops"].items() if v is not None}
        unknown = [k for k in peaks if k not in DTYPE_CLASSES]
        if unknown or not peaks:
            raise UsageError(f"{path}: measured.peak_flops needs dtype classes from {DTYPE_CLASSES}, "
                             f"got {sorted(m['peak_flops'])}")
        measured = measured_spec(device, dict(m, mem_bandwidth=bw, peak_flops=peaks), datasheet)
    method = str(m.get("method", "")) if isinstance(m, dict) else ""
    return Ceilings(device=device, measured=measured, datasheet=datasheet, method=method,
                    raw=m if isinstance(m, dict) else None)


# ------------------------------------------------------------------------------------------ reading

def load_json(path: Path, what: str) -> object:
    """A JSON file a reader needs, or a one-line :class:`UsageError` saying why it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not valid JSON (not UTF-8 text)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise UsageError(f"{path}: not valid JSON ({exc.msg} at {where})") from None
    except RecursionError:
        raise UsageError(f"{path}: not valid JSON (nested too deeply)") from None


def _optional_json(path: Path, what: str, expected: type, notes: list[str]) -> object | None:
    """An optional file of a run: None (with a note) when it is missing, corrupt or of the wrong kind."""
    if not path.is_file():
        return None
    try:
        doc = load_json(path, what)
    except UsageError as exc:
        notes.append(f"{exc.args[0]}; ignored")
        return None
    if not isinstance(doc, expected):
        notes.append(f"{path}: expected a JSON {'list' if expected is list else 'object'}; ignored")
        return None
    return doc


@dataclass
class RunFiles:
    """A run's files as :func:`read_run` found them. ``source`` is ``benchmark.json``, a bare
    pytest-benchmark file, or the ``parts/`` of a run that never finished (``benchmarks`` then assembled
    from its records); ``directory`` is the run's. ``notes``: what was left out, one line each."""

    source: Path
    directory: Path
    benchmarks: object  # the pytest-benchmark document, parsed but not yet checked
    ceilings: Ceilings | None
    provenance: dict
    skipped: list
    notes: list[str]


def read_run(path: str | Path) -> RunFiles:
    """Read a results directory (with ``benchmark.json``, or only the ``parts/`` of a run that never
    finished) or a pytest-benchmark JSON file, with the ``ceilings.json``, ``provenance.json`` and
    ``skipped.json`` beside it (a run read from its parts: from the first part that has each).

    A missing or corrupt benchmark file or a corrupt ``ceilings.json`` raises a one-line
    :class:`UsageError`; a corrupt ``provenance.json`` or ``skipped.json`` is read as empty, with a note.
    """
    path = Path(path)
    notes: list[str] = []
    data = None
    if path.is_dir():
        source = path / BENCHMARK
        if not source.is_file():
            data = unfinished_benchmarks(path, notes)
            if data is None:
                raise UsageError(f"{path}: no benchmark.json in this directory; expected a ridgebench "
                                 "results directory or a pytest-benchmark JSON file")
            source = path / PARTS
    elif path.is_file():
        source = path
    else:
        raise UsageError(f"{path}: no such results directory or file")
    if data is None:
        data = load_json(source, "benchmark JSON")
    unfinished = source.name == PARTS
    directory = path if unfinished else source.parent
    parts = part_dirs(directory)
    homes = parts if unfinished else [directory]

    def find(name: str) -> Path:
        return next((d / name for d in homes if (d / name).is_file()), directory / name)

    where = find(CEILINGS)
    ceilings = parse_ceilings(load_json(where, "ceilings"), where) if where.is_file() else None
    provenance = _optional_json(find(PROVENANCE), "provenance", dict, notes) or {}
    skipped: list = []
    for home in homes:
        skipped += _optional_json(home / SKIPPED, "skipped list", list, notes) or []
    return RunFiles(source, directory, data, ceilings, provenance, skipped, notes)


# ---------------------------------------------------------------------------------- provenance.json

@dataclass(frozen=True)
class EndState:
    """How a run ended, at the top of ``provenance.json`` (and in each part's): pytest's exit status
    (2 when a signal stopped it), whether it was interrupted and by which signal, when it finished, and
    under per-family isolation each family's own end state."""

    exit_status: int
    interrupted: bool
    signal: str | None
    finished_utc: str
    families: dict | None = None

    def to_dict(self) -> dict:
        doc = {"exit_status": self.exit_status, "interrupted": self.interrupted, "signal": self.signal,
               "finished_utc": self.finished_utc}
        if self.families:
            doc["families"] = self.families
        return doc
