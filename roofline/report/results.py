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

import contextlib
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from roofline.errors import UsageError
from roofline.model.cost import Cost, dtype_name
from roofline.model.hardware import MIG_NOTE, PRESETS, HardwareSpec, is_mig
from roofline.model.ops import kernel_cost, modelled_cost
from roofline.model.roof import (
    RunRoofs,
    attainable_flops_per_s,
    flops_per_s_band,
    judge_run,
    kernel_class,
    peak_for,
    ridge_for,
)
from roofline.rundir import Ceilings, positive_number, read_run

__all__ = ["Record", "Ceilings", "Results", "load_results", "as_results", "attainable_flops_per_s",
           "peak_for", "ridge_for", "size_label"]

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
        return flops_per_s_band(self.flops, self.p20_s, self.p80_s)

    def cost(self) -> Cost | None:
        """The cost model's FLOPs and bytes for this shape, or None for a kernel it does not model."""
        return modelled_cost(self.kernel, self.shape, self.dtype)

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

    @cached_property
    def roof(self) -> HardwareSpec | None:
        """The spec measured points are judged against, if any is known: the measured ceilings, else the
        datasheet's, else a preset the records name."""
        roof = (self.ceilings.measured or self.ceilings.datasheet) if self.ceilings is not None else None
        if roof is not None:
            return roof
        names = {r.hardware for r in self.records if r.hardware}
        for name in names:
            if name in PRESETS:
                return PRESETS[name]
        return None

    @cached_property
    def judged(self) -> RunRoofs | None:
        """Every record against :attr:`roof` (:func:`roofline.model.roof.judge_run`), judged once per
        loaded run: the one judgement the plots, claims, page and step report read. None when no roof is
        known."""
        spec = self.roof
        if spec is None:
            return None
        ceilings = self.ceilings
        datasheet = ceilings.datasheet if ceilings is not None and ceilings.datasheet is not spec else None
        measured = ceilings.raw if ceilings is not None and spec.source == "measured" else None
        if measured is None and ceilings is not None and ceilings.measured is not None:
            measured = {}
        notes = (MIG_NOTE,) if is_mig(self.device) else ()
        try:
            return judge_run(self.records, spec, datasheet, measured, notes)
        except KeyError as exc:  # a spec with no peak for a record's class nor any below it
            raise UsageError(f"{self.source}: cannot judge this run: {exc.args[0]}; the roof needs a peak "
                             "for that class or fp32") from None


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------

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


def load_results(path: str | Path) -> Results:
    """Load a results directory (with ``benchmark.json``, or only the ``parts/`` of a run that never
    finished) or a pytest-benchmark JSON file (:func:`roofline.rundir.read_run` reads its files).

    Raises :class:`UsageError` (one line) for a missing, corrupt or foreign benchmark file or a corrupt
    ``ceilings.json``; what is only left out (an unusable record among usable ones, a corrupt
    ``skipped.json`` or ``provenance.json``) is a :class:`ResultsWarning`, listed in ``Results.warnings``.
    """
    run = read_run(path)
    notes = run.notes
    records = parse_benchmark_json(run.benchmarks, run.source, skipped=notes)
    if not records:
        raise UsageError(f"{run.source}: no benchmarks in this run (see skipped.json beside it)")
    for note in notes:
        warnings.warn(note, ResultsWarning, stacklevel=2)
    results = Results(source=run.source, directory=run.directory, records=records, ceilings=run.ceilings,
                      provenance=run.provenance, skipped=run.skipped, warnings=notes)
    with contextlib.suppress(UsageError):  # a run that cannot be judged still loads (compare reads times)
        _ = results.judged  # judged once, as loaded: the plots, claims, page and step report read this one
    return results


def as_results(run: str | Path | Results) -> Results:
    """``run`` itself when it is already loaded (the end of a benchmark run loads its directory once and
    hands the :class:`Results` to every report), else :func:`load_results` of it."""
    return run if isinstance(run, Results) else load_results(run)
