"""Load and validate a benchmark run: a results directory or a bare pytest-benchmark JSON.

A run directory (``results/<device-slug>/<UTC timestamp>/``) holds ``benchmark.json`` (pytest-benchmark's
JSON; each benchmark's ``extra_info`` carries ridgebench's fields), ``ceilings.json`` (measured and
datasheet ceilings), ``provenance.json`` and ``skipped.json``. :func:`load_results` turns either form into
:class:`Results`: typed :class:`Record` objects plus the roofs they are judged against. A corrupt file, a
JSON file that is not pytest-benchmark's, or a pytest-benchmark file without one usable ridgebench record
raises :class:`~roofline.errors.UsageError` with a one-line message (the CLI exits 2).

What degrades instead of failing, each with a :class:`ResultsWarning` (kept in ``Results.warnings``):
one unusable record among usable ones (a half-timed record an interrupted run saved) is skipped; a
corrupt ``skipped.json`` or ``provenance.json`` is read as empty; a run that never finished (no
``benchmark.json``, its ``parts/*/records.jsonl`` still there) is read from its parts.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from roofline.errors import UsageError
from roofline.model.cost import Cost, dtype_name
from roofline.model.hardware import MIG_NOTE, PRESETS, HardwareSpec, is_mig
from roofline.model.ops import kernel_cost
from roofline.model.roof import RunRoofs, attainable_flops_per_s, judge_run, kernel_class, peak_for, ridge_for
from roofline.rundir import (
    BENCHMARK,
    CEILINGS,
    PARTS,
    PROVENANCE,
    SKIPPED,
    Ceilings,
    parse_ceilings,
    part_dirs,
    positive_number,
    unfinished_benchmarks,
)

__all__ = ["Record", "Ceilings", "Results", "load_results", "as_results", "attainable_flops_per_s",
           "peak_for", "ridge_for", "size_label", "slug"]

REQUIRED_EXTRA = ("kernel", "provider", "shape", "dtype")


class ResultsWarning(UserWarning):
    """Part of a run could not be used and was left out (the rest was loaded)."""


@dataclass(frozen=True)
class Record:
    """One benchmark: what ran, at which shape, how long it took (seconds) and what it cost (FLOP, bytes).

    ``flops``/``bytes`` are the values the benchmark recorded (the cost model's, by the results contract);
    :meth:`cost` recomputes them from the shape so a mismatch can be reported.
    """

    name: str
    kernel: str
    variant: str | None
    provider: str
    sweep: str
    shape: dict
    dtype: str
    device: str
    device_kind: str
    flops: float
    bytes: float
    median_s: float
    p20_s: float
    p80_s: float
    dtype_class: str
    hardware: str | None = None
    max_error: float | None = None
    tolerance: object = None
    timing_method: str | None = None
    config: object = None
    extra: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def host_launch_s(self) -> float | None:
        """Host seconds per call, launcher entry to return (``extra_info.timing.host_launch_s``, measured
        on a GPU); None on a CPU or in a run from before it was recorded."""
        value = (self.extra.get("timing") or {}).get("host_launch_s")
        return float(value) if isinstance(value, (int, float)) and value > 0 else None

    @property
    def launch_bound(self) -> bool:
        """Its device time is below its host launch time: without CUDA graphs the host sets the pace."""
        return self.host_launch_s is not None and self.median_s < self.host_launch_s

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP/byte."""
        return self.flops / self.bytes

    @property
    def achieved_flops_per_s(self) -> float:
        """FLOP/s at the median time."""
        return self.flops / self.median_s

    @property
    def achieved_bytes_per_s(self) -> float:
        return self.bytes / self.median_s

    @property
    def flops_per_s_band(self) -> tuple[float, float]:
        """(low, high) FLOP/s at the p80 and p20 times: the error bar."""
        return self.flops / self.p80_s, self.flops / self.p20_s

    def cost(self) -> Cost | None:
        """The cost model's FLOPs and bytes for this shape, or None for a kernel it does not model."""
        try:
            return kernel_cost(self.kernel, self.shape, self.dtype)
        except (KeyError, TypeError, ValueError):
            return None

    def size_label(self, keys: list[str] | None = None) -> str:
        return size_label(self.shape, keys)


def size_label(shape: dict, keys: list[str] | None = None) -> str:
    """``"batch=16, k=4k"``-style label from a shape (only ``keys`` when given)."""
    items = [(k, v) for k, v in shape.items() if keys is None or k in keys]
    return ", ".join(f"{k}={_short(v)}" for k, v in items)


def _short(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and value >= 1 << 20 and value % (1 << 20) == 0:
        return f"{value >> 20}M"
    if isinstance(value, int) and value >= 1024 and value % 1024 == 0:
        return f"{value // 1024}k"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_short(v) for v in value[:3]) + (",..]" if len(value) > 3 else "]")
    return str(value)


@dataclass
class Results:
    """A loaded run. ``directory`` is where figures and ``claims.md`` go."""

    source: Path
    directory: Path
    records: list[Record]
    ceilings: Ceilings | None = None
    provenance: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    warnings: list = field(default_factory=list)  # what was left out and why (one line each)

    @property
    def device(self) -> str:
        if self.ceilings is not None:
            return self.ceilings.device
        return self.records[0].device if self.records else "unknown"

    @property
    def device_kind(self) -> str:
        return self.records[0].device_kind if self.records else "unknown"

    def roof_spec(self) -> HardwareSpec | None:
        """The spec measured points are judged against (measured ceilings first), if any is known."""
        if self.ceilings is not None and self.ceilings.roof is not None:
            return self.ceilings.roof
        names = {r.hardware for r in self.records if r.hardware}
        for name in names:
            if name in PRESETS:
                return PRESETS[name]
        return None

    def run_roofs(self) -> RunRoofs | None:
        """Every record against :meth:`roof_spec` (:func:`roofline.model.roof.judge_run`): the one roof the
        plots and claims use. None when no roof is known."""
        spec = self.roof_spec()
        if spec is None:
            return None
        ceilings = self.ceilings
        datasheet = ceilings.datasheet if ceilings is not None and ceilings.datasheet is not spec else None
        measured = ceilings.raw if ceilings is not None and spec.source == "measured" else None
        if measured is None and ceilings is not None and ceilings.measured is not None:
            measured = {}
        notes = (MIG_NOTE,) if is_mig(self.device) else ()
        return judge_run(self.records, spec, datasheet, measured, notes)


def slug(text: str) -> str:
    """File-name-safe form of a name: ``"NVIDIA A100-SXM4-80GB"`` -> ``nvidia-a100-sxm4-80gb``."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "unknown"


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------

def _read_json(path: Path, what: str) -> object:
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


def _record(bench: object, index: int, path: Path) -> Record:
    if not isinstance(bench, dict):
        raise UsageError(f"{path}: benchmarks[{index}] is not an object; not a pytest-benchmark JSON")
    name = str(bench.get("name") or bench.get("fullname") or f"benchmarks[{index}]")
    where = f"{path}: benchmark {name!r}"
    extra = bench.get("extra_info")
    if not isinstance(extra, dict) or not all(k in extra for k in REQUIRED_EXTRA):
        have = sorted(extra) if isinstance(extra, dict) else []
        missing = [k for k in REQUIRED_EXTRA if k not in have]
        raise UsageError(f"{where} has no ridgebench extra_info (missing {', '.join(missing)}); "
                         "not a ridgebench run")
    stats = bench.get("stats") if isinstance(bench.get("stats"), dict) else {}
    kernel, shape = str(extra["kernel"]), extra["shape"]
    if not isinstance(shape, dict):
        raise UsageError(f"{where}: extra_info.shape must be an object of cost-function arguments")
    try:
        dtype = dtype_name(extra["dtype"])
    except ValueError as exc:
        raise UsageError(f"{where}: extra_info.{exc}") from None
    median = extra.get("median_s", stats.get("median"))
    median_s = positive_number(median, f"{where}: median_s")
    p20_s = positive_number(extra.get("p20_s") or median_s, f"{where}: p20_s")
    p80_s = positive_number(extra.get("p80_s") or median_s, f"{where}: p80_s")
    flops, nbytes = extra.get("flops"), extra.get("bytes")
    if flops is None or nbytes is None:
        try:
            cost = kernel_cost(kernel, shape, dtype)
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{where}: no flops/bytes recorded and no cost model for it ({exc})") from None
        flops, nbytes = cost.flops, cost.bytes
    flops = positive_number(flops, f"{where}: flops")
    nbytes = positive_number(nbytes, f"{where}: bytes")
    cls = extra.get("dtype_class") or kernel_class(kernel, dtype)
    return Record(
        name=name, kernel=kernel, variant=extra.get("variant"), provider=str(extra["provider"]),
        sweep=str(extra.get("sweep") or kernel), shape=dict(shape), dtype=dtype,
        device=str(extra.get("device") or "unknown"), device_kind=str(extra.get("device_kind") or "unknown"),
        flops=flops, bytes=nbytes, median_s=median_s, p20_s=min(p20_s, median_s), p80_s=max(p80_s, median_s),
        dtype_class=str(cls), hardware=extra.get("hardware"), max_error=extra.get("max_error"),
        tolerance=extra.get("tolerance"), timing_method=extra.get("timing_method"),
        config=extra.get("config"), extra=extra,
    )


def parse_benchmark_json(data: object, path: Path, skipped: list[str] | None = None) -> list[Record]:
    """Records from a parsed pytest-benchmark JSON document.

    An unusable record (no ridgebench ``extra_info``, a non-positive time, ...) among usable ones is left
    out and its one-line reason appended to ``skipped`` (when given; otherwise it raises). A document
    with no usable record raises the first record's :class:`UsageError`."""
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise UsageError(f"{path}: not a pytest-benchmark JSON (no 'benchmarks' list)")
    if any(not isinstance(b, dict) for b in data["benchmarks"]):
        _record(next(b for b in data["benchmarks"] if not isinstance(b, dict)), 0, path)  # raises
    records, errors = [], []
    for i, bench in enumerate(data["benchmarks"]):
        try:
            records.append(_record(bench, i, path))
        except UsageError as exc:
            if skipped is None:
                raise
            errors.append(exc)
    if errors and not records:
        raise errors[0]
    if skipped is not None:
        skipped += [f"{exc.args[0]}; record skipped" for exc in errors]
    return records


def _optional_json(path: Path, what: str, expected: type, notes: list[str]) -> object | None:
    """An optional file of a run: None (with a note) when it is missing, corrupt or of the wrong kind."""
    if not path.is_file():
        return None
    try:
        doc = _read_json(path, what)
    except UsageError as exc:
        notes.append(f"{exc.args[0]}; ignored")
        return None
    if not isinstance(doc, expected):
        notes.append(f"{path}: expected a JSON {'list' if expected is list else 'object'}; ignored")
        return None
    return doc


def load_results(path: str | Path) -> Results:
    """Load a results directory (with ``benchmark.json``, or only the ``parts/`` of a run that never
    finished) or a pytest-benchmark JSON file.

    ``ceilings.json``, ``provenance.json`` and ``skipped.json`` are read from the same directory when
    present. Raises :class:`UsageError` (one line) for a missing, corrupt or foreign benchmark file or a
    corrupt ``ceilings.json``; what is only left out (an unusable record among usable ones, a corrupt
    ``skipped.json`` or ``provenance.json``) is a :class:`ResultsWarning`, listed in ``Results.warnings``.
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
        data = _read_json(source, "benchmark JSON")
    records = parse_benchmark_json(data, source, skipped=notes)
    if not records:
        raise UsageError(f"{source}: no benchmarks in this run (see skipped.json beside it)")
    directory = path if source.name == PARTS else source.parent
    # A run read from its parts has its optional files in the first part that has each.
    parts = part_dirs(directory)
    homes = [directory] if source.name != PARTS else parts

    def find(name: str) -> Path:
        return next((d / name for d in homes if (d / name).is_file()), directory / name)

    ceilings = None
    if find(CEILINGS).is_file():
        where = find(CEILINGS)
        ceilings = parse_ceilings(_read_json(where, "ceilings"), where)
    provenance = _optional_json(find(PROVENANCE), "provenance", dict, notes) or {}
    skipped: list = []
    if source.name == PARTS:
        for part in parts:
            skipped += _optional_json(part / SKIPPED, "skipped list", list, notes) or []
    else:
        skipped = _optional_json(directory / SKIPPED, "skipped list", list, notes) or []
    for note in notes:
        warnings.warn(note, ResultsWarning, stacklevel=2)
    return Results(source=source, directory=directory, records=records, ceilings=ceilings,
                   provenance=provenance, skipped=skipped, warnings=notes)


def as_results(run: str | Path | Results) -> Results:
    """``run`` itself when it is already loaded (the end of a benchmark run loads its directory once and
    hands the :class:`Results` to every report), else :func:`load_results` of it."""
    return run if isinstance(run, Results) else load_results(run)
