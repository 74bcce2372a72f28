"""Run the audit over many cases in parallel worker processes with the Triton interpreter off.

Workers are started with the ``spawn`` method and ``TRITON_INTERPRET=0`` in the environment they start
with (whatever the caller's setting), so ``@triton.jit`` yields compilable ``JITFunction``\\ s, Triton's
own library functions included, even when the caller (a test session, say) runs with the interpreter on.
Each worker imports the kernel modules once and compiles cases by index; Triton's on-disk cache
(``~/.triton/cache``) makes a repeated run fast.

Case sources:

- a kernel name from :data:`roofline.model.ops.KERNELS`: ``kernels.<name>.cases.compile_cases(arch)``. A
module
  that is missing, has no ``compile_cases``, raises, or returns no case becomes an error line (the
  ``compiles`` gate fails): never a silent skip;
- an extra source ``"package.module:function"`` or ``"path/to/file.py:function"``: ``function(arch)``
  returns a list of :class:`~kernels._lib.aot.CompileCase` (the tests' deliberately bad kernels).
"""

from __future__ import annotations

import importlib
import importlib.util
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from kernels._lib.device import arch_label, get_arch
from kernels.audit.compile import AuditEnvironmentError, AuditLine, audit_case
from kernels.audit.gates import check_gates
from kernels.audit.occupancy import DEFAULT_ARCHS, SUPPORTED_ARCHS
from roofline.model.ops import KERNELS

_CASES: dict[tuple[str, int], list] = {}


def _load_source(source: str) -> Callable[[int], list]:
    """The ``compile_cases``-like function behind a case source (see the module docstring)."""
    if ":" not in source:
        if source not in KERNELS:
            raise ValueError(f"unknown kernel {source!r}, expected one of {list(KERNELS)}")
        try:
            module = importlib.import_module(f"kernels.{source}.cases")
        except ModuleNotFoundError as exc:
            if exc.name in (f"kernels.{source}", f"kernels.{source}.cases"):
                raise LookupError(f"kernel package kernels/{source}/ has no cases.py") from exc
            raise
        fn = getattr(module, "compile_cases", None)
        if not callable(fn):
            raise LookupError(f"kernels.{source}.cases has no compile_cases(arch) function")
        return fn
    where, _, func = source.rpartition(":")
    if where.endswith(".py"):
        path = Path(where).resolve()
        name = f"_audit_extra_{path.stem}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None or not path.exists():
                raise LookupError(f"extra cases: no such file {where}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    fn = getattr(module, func, None)
    if not callable(fn):
        raise LookupError(f"extra cases: {where} has no function {func!r}")
    return fn


def _cases(source: str, arch: int) -> list:
    key = (source, arch)
    if key not in _CASES:
        cases = list(_load_source(source)(arch))
        if not cases:
            raise LookupError(f"{source}: compile_cases({arch}) returned no case")
        _CASES[key] = cases
    return _CASES[key]


def _init_worker(fresh: bool) -> None:
    os.environ["TRITON_INTERPRET"] = "0"
    # Triton 3.9 warns once per process that its fp-fusion default will change; the audit compiles with
    # the default a real launch gets, so the warning is noise here (pyproject filters it in pytest too).
    warnings.filterwarnings("ignore", message="TRITON_DEFAULT_FP_FUSION is unset")
    if fresh:
        os.environ["TRITON_ALWAYS_COMPILE"] = "1"


def _count_task(task: tuple[str, int]) -> tuple[str, int, int, str | None]:
    source, arch = task
    try:
        return source, arch, len(_cases(source, arch)), None
    except Exception as exc:  # reported as an error line by the parent
        return source, arch, 0, f"{type(exc).__name__}: {exc}"


def _compile_task(task: tuple[str, int, int]) -> dict:
    source, arch, index = task
    line = audit_case(_cases(source, arch)[index], arch)
    line.index = index
    return line.to_dict()


def _error_line(source: str, arch: int, error: str) -> AuditLine:
    kernel = source if ":" not in source else source.rpartition(":")[2]
    line = AuditLine(kernel=kernel, variant="-", dtype="-", shape={}, config="-", arch=arch, gates=[],
                     num_warps=0, num_stages=0, case_id=f"{source}/{arch_label(arch)}", error=error)
    return line


def validate(kernels: Iterable[str] | None, archs: Iterable[int]) -> tuple[list[str], list[int]]:
    """Check kernel names and architectures; raise ``ValueError`` with a one-line message."""
    names = list(KERNELS) if kernels is None else list(kernels)
    unknown = [k for k in names if k not in KERNELS]
    if unknown:
        raise ValueError(f"unknown kernel {unknown[0]!r}; expected one of: {', '.join(KERNELS)}")
    arch_list = []
    for a in archs:
        try:
            value = get_arch(a).arch
        except ValueError:
            value = None
        if value not in SUPPORTED_ARCHS:
            raise ValueError(f"unknown architecture {a!r}; expected one of: "
                             f"{', '.join(str(x) for x in SUPPORTED_ARCHS)}")
        arch_list.append(value)
    return names, list(dict.fromkeys(arch_list))


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_audit(
    kernels: Sequence[str] | None = None,
    archs: Sequence[int] = DEFAULT_ARCHS,
    jobs: int | None = None,
    *,
    extra: Sequence[str] = (),
    fresh: bool = False,
    progress: Callable[[int, int, AuditLine], None] | None = None,
) -> list[AuditLine]:
    """Compile every case of ``kernels`` (default: all of :data:`roofline.model.ops.KERNELS`, or none when
    only ``extra`` sources are given) for each of ``archs`` in ``jobs`` worker processes, check the
    gates, and return the lines ordered by source, case and architecture.

    ``fresh=True`` makes Triton recompile instead of using its cache (true compile times).
    ``progress(done, total, line)`` is called as lines arrive. Raises ``ValueError`` for an unknown
    kernel or architecture and :class:`~kernels.audit.compile.AuditEnvironmentError` if a worker gets
    interpreter functions.
    """
    if kernels is None and extra:
        kernels = []
    names, arch_list = validate(kernels, archs)
    sources = names + list(extra)
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs: expected a positive integer, got {jobs}")
    ctx = multiprocessing.get_context("spawn")
    # keyed by (source, case, architecture) positions: archs mix ints (sm_90) and strings (gfx942)
    keyed: dict[tuple[int, int, int], AuditLine] = {}
    # Workers inherit the environment when they start, and they import triton (through this package)
    # before their initializer runs: the interpreter must be off in the environment they start with, or
    # Triton's own library functions are built as interpreter functions there.
    saved = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "0"
    try:
        pool = ctx.Pool(processes=jobs, initializer=_init_worker, initargs=(fresh,))
    finally:
        if saved is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = saved
    with pool:
        count_tasks = [(s, a) for s in sources for a in arch_list]
        tasks: list[tuple[str, int, int]] = []
        for source, arch, n, error in pool.map(_count_task, count_tasks, chunksize=1):
            if error is not None:
                keyed[(sources.index(source), -1, arch_list.index(arch))] = _error_line(source, arch, error)
            tasks += [(source, arch, i) for i in range(n)]
        total = len(tasks) + len(keyed)
        done = 0
        for line in keyed.values():
            check_gates(line)
            done += 1
            if progress:
                progress(done, total, line)
        try:
            for data in pool.imap_unordered(_compile_task_keyed, tasks, chunksize=1):
                key, line_dict = data
                line = AuditLine.from_dict(line_dict)
                check_gates(line)
                keyed[(sources.index(key[0]), key[2], arch_list.index(key[1]))] = line
                done += 1
                if progress:
                    progress(done, total, line)
        except AuditEnvironmentError:
            pool.terminate()
            raise
    return [keyed[k] for k in sorted(keyed)]


def _compile_task_keyed(task: tuple[str, int, int]) -> tuple[tuple[str, int, int], dict]:
    return task, _compile_task(task)
