"""Results directories: ``results/<device-slug>/<UTC timestamp>/``, never overwritten.

Each pytest process that runs benchmarks (the only one, one xdist worker per GPU, or one subprocess per
kernel family) writes its files into ``<run>/parts/<part>/`` as it goes: ``records.jsonl`` (one
pytest-benchmark record per line, appended and flushed the moment a benchmark finishes, so an
interrupted or killed run keeps every finished one), ``benchmark-header.json`` (pytest-benchmark's
machine and commit info, written at the end), ``skipped.json``, ``ceilings.json``, ``provenance.json``.
:func:`merge_parts` then writes the run's top-level files from all parts (one part: copied; several:
benchmarks and skips concatenated, each part's device kept) and removes ``parts/``. A run whose end
never came (SIGKILL, power loss) keeps ``parts/``; ``roofline.results.load_results`` reads it as is.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path

RUN_FILES = ("benchmark.json", "ceilings.json", "provenance.json", "skipped.json")
RECORDS = "records.jsonl"
HEADER = "benchmark-header.json"


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
    path = Path(run_dir) / "parts" / part
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
            bad.append(f"{path}:{n}: not a complete JSON record (cut short?)")
            continue
        if isinstance(doc, dict):
            records.append(doc)
        else:
            bad.append(f"{path}:{n}: not a JSON object")
    return records, bad


def _part_benchmarks(part: Path) -> dict | None:
    """One part's pytest-benchmark document: its header plus its ``records.jsonl`` (or, for a part
    written whole, its ``benchmark.json``)."""
    if (part / RECORDS).is_file():
        records, _ = read_records(part / RECORDS)
        header = read_json(part / HEADER)
        doc = dict(header) if isinstance(header, dict) else {"machine_info": {}, "commit_info": {}}
        doc["benchmarks"] = records
        return doc
    doc = read_json(part / "benchmark.json")
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
    parts = sorted((p for p in (run_dir / "parts").glob("*") if p.is_dir()),
                   key=lambda p: (len(p.name), p.name))  # gw2 before gw10
    if not parts:
        return {}
    loaded = {name: [(p.name, read_json(p / name)) for p in parts] for name in RUN_FILES}
    loaded["benchmark.json"] = [(p.name, _part_benchmarks(p)) for p in parts]
    written: dict[str, Path] = {}

    bench = merge_benchmark_json([d for _, d in loaded["benchmark.json"]
                                  if isinstance(d, dict) and d.get("benchmarks")])
    if bench is not None:
        written["benchmark.json"] = run_dir / "benchmark.json"
        write_json(written["benchmark.json"], bench)

    skipped = [dict(s, worker=name) if len(parts) > 1 else s
               for name, doc in loaded["skipped.json"] if isinstance(doc, list) for s in doc]
    written["skipped.json"] = run_dir / "skipped.json"
    write_json(written["skipped.json"], skipped)

    for name in ("ceilings.json", "provenance.json"):
        docs = [(part, d) for part, d in loaded[name] if isinstance(d, dict)]
        if not docs and not (name == "provenance.json" and run_info):
            continue
        doc = dict(docs[0][1]) if docs else {}
        if name == "provenance.json" and run_info:
            doc.update(run_info)
        if len(docs) > 1:
            doc["per_worker"] = {part: d for part, d in docs}
        written[name] = run_dir / name
        write_json(written[name], doc)

    shutil.rmtree(run_dir / "parts")
    return written
