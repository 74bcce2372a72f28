"""One benchmark, start to finish: build inputs on the device, run once, check against the reference,
time, and record; or, without a GPU, check the Triton kernel under the interpreter and say it was not
timed. ``bench/test_ops.py`` makes one :class:`KernelBench` per op of the table, driven by the op's
declaration (``kernels/<op>/spec.py``); this module does the rest.

A timed case: inputs built on the device (seeded); one call on them, checked by
:meth:`KernelBench.check`: the provider contract and the accuracy gate of :mod:`bench.accuracy` (one rule
for every provider and dtype; a wrong result or a broken contract fails with the reason and no time); then
:mod:`bench.timing` warms up, picks the rounds and times them; ``extra_info`` from
:func:`bench.record.extra_info`. Every provider (``triton`` and ``torch`` included: :mod:`bench.providers`)
goes through the same steps, its callable on :meth:`KernelBench.launch_args`; what differs between
providers is declared on the :class:`bench.providers.Provider`. A provider that cannot run here (not
installed, wrong device, no compiler) or refuses a case (``NotImplementedError``) is a recorded skip.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import importlib
import json
import time
from collections.abc import Callable

import pytest
import torch

from bench import accuracy, timing
from bench import providers as registry
from bench.accuracy import Check, ContractError
from bench.record import extra_info, skip_record
from bench.session import BenchSession
from roofline.model.ops import MATMUL_KERNELS
from roofline.model.sweeps import SweepPoint


class KernelBench:
    """One op's benchmark, driven by its declaration (:class:`kernels._lib.spec.OpSpec`, imported on first
    use: after the interpreter switch). ``build`` returns a dict of device tensors and sizes."""

    def __init__(self, kernel: str) -> None:
        self.kernel = kernel

    @functools.cached_property
    def spec(self):
        from kernels._lib.spec import op_spec

        return op_spec(self.kernel)

    def build(self, point: SweepPoint, device: torch.device) -> dict:
        return self.spec.build(point, device)

    def launch_args(self, x: dict) -> tuple[tuple, dict]:
        """The launcher's inputs, ``(args, kwargs)``: what every provider's callable takes
        (:mod:`bench.providers` documents the signature per kernel)."""
        return self.spec.launch_args(x)

    def interpreter_shape(self, shape: dict) -> dict:
        """The shape the interpreter checks for a point (small enough to run in seconds on a CPU)."""
        return self.spec.interpreter_shape(shape)

    def calls(self, provider: str, x: dict) -> tuple[Callable[[], object], Callable[[], object], Callable]:
        """``(first, fn, impl)``: the provider's first (checked) call on the case's inputs, the call that is
        timed, and the callable behind the first (a per-case provider builds, compiles, here)."""
        first_impl, later_impl = registry.get(provider).calls(self.kernel)
        return self.provider_fn(first_impl, x), self.provider_fn(later_impl, x), first_impl

    def triton_fn(self, x: dict, *, first: bool) -> Callable[[], object]:
        """Our launcher's call on ``x``; ``first`` is the checked call (launchers may skip host-side checks
        afterwards)."""
        first_impl, later_impl = registry.get(registry.OURS).calls(self.kernel)
        return self.provider_fn(first_impl if first else later_impl, x)

    def provider_fn(self, impl: Callable, x: dict) -> Callable[[], object]:
        """One call of a provider's callable on the case's inputs (the closure holds ``x``, not its
        tensors, so :func:`_release` frees them)."""
        def call() -> object:
            args, kwargs = self.launch_args(x)
            return impl(*args, **kwargs)
        return call

    def check(self, x: dict, out: object, *, pristine: tuple[tuple, dict] | None = None) -> Check:
        """The provider contract and the accuracy gate (:mod:`bench.accuracy`) of ``out``, one call's
        result on ``x``'s inputs. ``pristine``: copies of the inputs taken before the call
        (:func:`bench.accuracy.snapshot`); the inputs must still equal them, and the reference and the
        plain PyTorch run use them. Without it, the inputs as they are now. Raises
        :class:`bench.accuracy.ContractError` for a broken contract."""
        spec = self.spec
        args, kwargs = self.launch_args(x)
        if pristine is not None:
            accuracy.check_inputs_unchanged(args, kwargs, pristine, spec.inplace)
            args, kwargs = pristine
        dtype, device = args[0].dtype, args[0].device
        with accuracy.plain_precision(dtype, device):
            plain = spec.baseline.fn(*args, **kwargs)
        accuracy.check_outputs(out, plain, dtype, device, spec.contiguous)
        return self.accuracy(out, plain, args, kwargs)

    def accuracy(self, out: object, plain: object, args: tuple, kwargs: dict) -> Check:
        """The accuracy gate of ``out`` against the float64 reference on ``(args, kwargs)``: the whole
        output, or the parts the op's ``reference_parts`` names when the whole would not fit."""
        parts = self.spec.reference_parts(args, kwargs) if self.spec.reference_parts else None
        if parts is None:
            ref, rdtype = self.reference_on(args, kwargs)
            return accuracy.gate(out, plain, ref, args[0].dtype, reference=rdtype)
        checks = []
        for part_args, part_kwargs, select in parts[0]:
            ref, rdtype = self.reference_on(part_args, part_kwargs)
            checks.append(accuracy.gate(select(out), select(plain), ref, args[0].dtype, reference=rdtype))
        return accuracy.combine(checks, parts[1])

    def reference_on(self, args: tuple, kwargs: dict) -> tuple[object, torch.dtype]:
        """``(the reference's output, its dtype)``: float64 (float32 on a device without it)."""
        rdtype = accuracy.reference_dtype(args[0].device)
        rargs, rkwargs = accuracy.to_reference(args, kwargs, rdtype)
        return self.spec.reference(*rargs, **rkwargs, compute_dtype=rdtype), rdtype


def _skip(session: BenchSession, request: pytest.FixtureRequest, point: SweepPoint, provider: str,
          category: str, reason: str, **details: object) -> None:
    session.add_skip(skip_record(nodeid=request.node.nodeid, point=point, provider=provider,
                                 category=category, reason=reason, **details))
    pytest.skip(f"[{category}] {reason}")


def classify(exc: BaseException, provider: str) -> str | None:
    """The skip category of an exception that means "cannot run here", or None for a real failure."""
    if is_out_of_memory(exc):
        return "out-of-memory"
    if is_sticky_cuda_error(exc):
        return None  # a real failure, and the end of this process's benchmarks
    spec = registry.get(provider)
    module = type(exc).__module__ or ""
    if module.startswith("triton") or type(exc).__name__ in ("OutOfResources", "CompilationError"):
        return "compile-failure"
    if spec.compile_modules and module.startswith(spec.compile_modules):
        return "compile-failure"
    # A launcher rejects a shape it does not support with ValueError (naming the argument); a TypeError
    # would be this suite passing something wrong, a real failure.
    if isinstance(exc, NotImplementedError) or (spec.value_error_unsupported and isinstance(exc, ValueError)):
        return "unsupported"
    return None


def interpreter_check(bench: KernelBench, provider: str, point: SweepPoint, session: BenchSession,
                      request: pytest.FixtureRequest) -> None:
    """Without a GPU: run an ``interpreted`` provider's kernel (ours) under the interpreter on the CPU at
    ``bench.interpreter_shape`` and compare; fail if wrong, else record it as checked, not timed, and
    skip. bf16 matmul kernels are checked in fp16: the interpreter's bf16 ``tl.dot`` is unsupported."""
    shape = bench.interpreter_shape(point.shape)
    dtype, note = point.dtype, ""
    if point.kernel in MATMUL_KERNELS and dtype == "bfloat16":
        dtype = "float16"
        note = ("checked in float16: the interpreter's bf16 tl.dot is unsupported "
                "(triton-lang/triton#11584); bf16 is covered by the sm_80/sm_90 compile audit")
    small = dataclasses.replace(point, shape=shape, dtype=dtype)
    key = (point.kernel, point.sweep, json.dumps(shape, sort_keys=True), dtype)
    if key not in session.checks:
        x = bench.build(small, torch.device("cpu"))
        pristine = accuracy.snapshot(*bench.launch_args(x))
        try:
            out = bench.calls(provider, x)[0]()
        except Exception as exc:
            category = classify(exc, provider)
            if category is None:
                raise
            session.checks[key] = (None, category, f"{type(exc).__name__}: {exc}")
        else:
            try:
                check = bench.check(x, out, pristine=pristine)
            except ContractError as exc:
                check = exc
            session.checks[key] = (check, None, kmod_last_launch(point.kernel))
    check, category, third = session.checks[key]
    if check is None:
        _skip(session, request, point, provider, category, f"under the interpreter: {third}")
    if isinstance(check, ContractError):
        pytest.fail(f"{provider} {point.kernel} under the interpreter at {shape} {dtype}: {check}")
    if not check.ok:
        pytest.fail(f"{provider} {point.kernel} is wrong under the interpreter at {shape} {dtype}: "
                    f"{check.describe()}")
    reason = (f"not timed: no GPU. Checked under the Triton interpreter at {shape} {dtype} "
              f"(max error {check.max_error:.3g}, {check.ratio:.2f}x plain PyTorch's)")
    _skip(session, request, point, provider, "not-timed", reason, checked_shape=shape, checked_dtype=dtype,
          max_error=check.max_error, tolerance=[check.bound, 0.0], accuracy=check.fields(),
          check_note=" ".join(filter(None, [note, check.note])), variant=third.variant if third else None,
          config=third.config if third else None)


def kmod_last_launch(kernel: str):
    from kernels._lib.launch import last_launch

    return last_launch(kernel)


AUDIT_FIELDS = ("arch", "shape", "compiled", "error", "registers", "stack_bytes", "local_loads",
                "local_stores", "shared_bytes", "occupancy", "mma_versions", "failures", "waived")
_AUDIT: dict = {}


def audit_line(kernel: str, variant: str | None, config: str | None, dtype: str, arch: int | None) -> object:
    """The static audit's findings for the config this launch ran on this GPU's architecture, from the
    newest ``results/audit/audit-*.json`` (``python -m kernels.audit``); None when there is none."""
    if config is None or variant is None or arch is None:
        return None
    try:
        audit = importlib.import_module("kernels.audit")
        if "lines" not in _AUDIT:
            path = audit.latest_json()
            _AUDIT.update(path=path, lines=audit.load_lines(path) if path else [])
        line = audit.find_line(_AUDIT["lines"], kernel, variant, dtype, config, arch=arch)
    except Exception as exc:  # noqa: BLE001 - the audit is advisory here; say why it is missing
        return {"error": f"audit lookup failed: {type(exc).__name__}: {exc}"}
    if line is None:
        return None
    found = {k: getattr(line, k, None) for k in AUDIT_FIELDS}
    found.update(passed=line.passed, wide_load_fraction=line.wide_load_fraction, tma=line.tma,
                 file=str(_AUDIT["path"]))
    return found


STICKY_CUDA_ERRORS = ("illegal memory access", "illegal instruction", "unspecified launch failure",
                      "misaligned address", "device-side assert", "invalid program counter",
                      "hardware stack error", "uncorrectable ecc error")


# How allocators say it: CUDA and HIP ("... out of memory"), the CPU's ("DefaultCPUAllocator: can't
# allocate memory: you tried to allocate ..."), and plain MemoryError.
OUT_OF_MEMORY_TEXT = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory")


def is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return (isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError))
            or any(s in text for s in OUT_OF_MEMORY_TEXT))


def is_sticky_cuda_error(exc: BaseException) -> bool:
    """An error after which the CUDA context is unusable: every later call in this process fails too."""
    text = str(exc).lower()
    return not is_out_of_memory(exc) and any(s in text for s in STICKY_CUDA_ERRORS)


def _stop_on_sticky_error(exc: BaseException, session: BenchSession, request: pytest.FixtureRequest) -> None:
    """Stop this process's benchmarks after a sticky CUDA error: the rest would fail for its sake. With
    per-family isolation (the default on CUDA) only the rest of this kernel family is lost."""
    if session.device_kind == "cuda" and is_sticky_cuda_error(exc):
        session.fatal = (f"sticky CUDA error in {request.node.nodeid}: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}")
        request.session.shouldfail = session.fatal  # like -x: a failed run, exit 1 (not "interrupted")


def _release(x: dict, session: BenchSession, collect: bool = False) -> None:
    """Drop a case's tensors: the launch closures hold the dict ``x``, not the tensors, so clearing it
    frees them (by reference count) even while a closure (or a traceback) is still alive. ``collect``
    after an exception, whose traceback may hold tensors in reference cycles (``gc.collect`` costs
    ~0.5 s with torch and Triton loaded: not after every case)."""
    x.clear()
    if collect:
        gc.collect()
    session.release_memory()


def run_case(bench: KernelBench, case: tuple[str, SweepPoint], benchmark, session: BenchSession,
             request: pytest.FixtureRequest) -> None:
    """Check, time and record one (provider, point). The record is written to this process's part the
    moment it is complete; a case interrupted before that leaves nothing behind. Running out of memory
    at any step (ceilings, build, first call, check, warm-up, timing) is recorded as an
    ``out-of-memory`` skip and the run goes on."""
    provider, point = case
    try:
        bench.spec  # noqa: B018 - imports the op's package and its declaration
    except Exception as exc:  # a missing or broken kernel module fails only its own benchmarks
        _skip(session, request, point, provider, "unavailable",
              f"kernels.{point.kernel} cannot be imported: {type(exc).__name__}: {exc}")
    spec = registry.get(provider)
    if point.kernel not in spec.impls:
        _skip(session, request, point, provider, "unsupported",
              f"{provider} has no {point.kernel} implementation")
    reason = spec.unavailable(session.device_kind)
    if reason is not None:
        _skip(session, request, point, provider, "unavailable", reason, provider_source=spec.source)
    if spec.interpreted and not session.triton_timed:
        interpreter_check(bench, provider, point, session, request)
        return
    x: dict = {}  # the case's inputs; cleared whatever happens
    try:
        _timed_case(bench, provider, point, x, benchmark, session, request)
    finally:
        _release(x, session)


def _timed_case(bench: KernelBench, provider: str, point: SweepPoint, x: dict, benchmark,
                session: BenchSession, request: pytest.FixtureRequest) -> None:
    failure = contract = None
    step = "measuring the ceilings"
    impl = None
    try:
        roofs = session.ensure_ceilings()
        step = "building the inputs"
        x.update(bench.build(point, session.device))
        step = "the first (checked) call"
        first, fn, impl = bench.calls(provider, x)  # per-case providers build (compile) here
        # copies the reference and the plain run use and the inputs are compared with (freed before timing)
        x["pristine"] = accuracy.snapshot(*bench.launch_args(x))
        t_first = time.perf_counter()
        out = first()
        session.synchronize()
        first_call_s = time.perf_counter() - t_first
        step = "the check against the reference"
        check = bench.check(x, out, pristine=x.pop("pristine"))
        del out
    except ContractError as exc:
        contract = str(exc)
    except Exception as exc:
        _stop_on_sticky_error(exc, session, request)
        category = classify(exc, provider)
        if category is None:
            raise
        failure = (category, f"{type(exc).__name__} in {step}: {exc}")
    if failure is not None:  # outside the handler, so the traceback's tensors can be freed first
        fn = first = out = None  # noqa: F841 - the skip keeps this frame alive
        _release(x, session, collect=True)
        _skip(session, request, point, provider, *failure)
    if contract is not None:
        pytest.fail(f"{provider} {point.kernel} {point.label} {point.dtype}: breaks the launcher's contract: "
                    f"{contract}; no time recorded")
    if not check.ok:
        pytest.fail(f"{provider} {point.kernel} {point.label} {point.dtype}: wrong result, "
                    f"{check.describe()}; no time recorded")
    spec = registry.get(provider)
    variant, config = spec.variant.get(point.kernel, provider), None
    if spec.launch_records:
        launch = kmod_last_launch(point.kernel)
        variant, config = (launch.variant, launch.config) if launch else (None, None)
    try:
        step = "warm-up"
        seconds_per_round = timing.warm_up(fn, flush=session.flush, synchronize=session.synchronize)
        rounds = timing.rounds_for(seconds_per_round, request, session.device_kind)
        benchmark.group = f"{point.sweep} {point.dtype}"
        step = "timing"
        summary, timing_info = time_point(benchmark, fn, session, request, rounds)
    except Exception as exc:
        _stop_on_sticky_error(exc, session, request)
        if not is_out_of_memory(exc):
            raise
        failure = ("out-of-memory", f"{type(exc).__name__} in {step}: {exc}")
    if failure is not None:  # the half-timed stats pytest-benchmark holds are dropped at session end
        fn = first = None  # noqa: F841
        _release(x, session, collect=True)
        _skip(session, request, point, provider, *failure)
    if summary is None:
        return  # --benchmark-disable: checked, not timed, nothing to record
    method = timing.timing_method(session.device_kind, flush_nbytes=session.flush_nbytes,
                                  cache_name=session.cache_name, rounds=summary.rounds,
                                  threads=torch.get_num_threads() if session.device_kind == "cpu" else None,
                                  method=timing_info["method"], warmup_calls=timing_info.pop("calls_before"))
    arch = None
    if session.device_kind == "cuda":
        # kernels load after the interpreter switch (bench/plugin.py), so not at the top
        from kernels._lib.device import arch as compute_capability

        arch = compute_capability(session.device)
    benchmark.extra_info.update(extra_info(
        point=point, provider=provider, variant=variant, config=config, device_name=session.device_name,
        device_kind=session.device_kind, summary=summary, roofs=roofs, max_error=check.max_error,
        tolerance=(check.bound, 0.0), timing_method=method, timing=timing_info,
        audit=audit_line(point.kernel, variant, config, point.dtype, arch) if spec.launch_records else None,
        details={"layout": x.get("layout"), "check": check.note or "full output vs reference",
                 "worst_over_tolerance": check.worst, "first_call_s": first_call_s},
    ))
    benchmark.extra_info["accuracy"] = check.fields()  # the gate: error, plain PyTorch's, their ratio
    if impl is not None and hasattr(impl, "stats"):
        benchmark.extra_info["compile"] = impl.stats()  # inductor: compile time and graph counts
    session.add_record(benchmark.stats.as_dict(include_data=True))


CPU_LAUNCH_NOTE = "n/a on the CPU: the call runs on the host, so its host time is its time"


def time_point(benchmark, fn: Callable[[], object], session: BenchSession, request: pytest.FixtureRequest,
               rounds: int) -> tuple[timing.Summary | None, dict]:
    """Time one point's ``rounds`` and say how: its ``extra_info["timing"]``. On a GPU (an item with
    a :class:`bench.timing.DeviceClock`): the host launch cost per call and Triton's bare launch of the
    same kernels (recorded through :func:`kernels._lib.launch.recording`), then the rounds by the
    ``--timing`` method (:func:`bench.timing.measure`), replayed into pytest-benchmark. On the CPU:
    pytest-benchmark's host timer around the call (:func:`bench.timing.time_rounds`)."""
    clock = timing.item_clock(request.node)
    if session.device_kind != "cuda" or clock is None:
        summary = timing.time_rounds(benchmark, fn, flush=session.flush, rounds=rounds)
        return summary, {"method": "host-wall",
                         **timing.launch_fields(0.0, None, None), "note": CPU_LAUNCH_NOTE,
                         "calls_before": timing.CALLS_BEFORE_TIMING}
    if benchmark.disabled:
        fn()
        return None, {}
    from kernels._lib.launch import recording  # kernels load after the interpreter switch

    backend = session.timing_backend
    with recording() as launches:
        fn()
    host_s = timing.host_seconds_per_call(fn, backend)
    bare_s = timing.bare_launch_seconds(launches, backend)
    measured = timing.measure(fn, flush=session.flush, backend=backend, rounds=rounds,
                              method=request.config.getoption("--timing", "auto"), host_s=host_s)
    summary = timing.record_rounds(benchmark, clock, measured.samples)
    if summary is None:
        return None, {}
    return summary, {"method": measured.method, "requested": measured.requested,
                     "not_used": measured.not_used, "kernel_launches": len(launches),
                     **timing.launch_fields(summary.median_s, host_s, bare_s),
                     "calls_before": 1 + timing.WARMUP_CALLS + timing.COST_ROUNDS + 1 + timing.HOST_CALLS}


def finished(stats: object) -> bool:
    """Whether a pytest-benchmark record is complete: timed rounds and ridgebench's ``extra_info``. A
    case interrupted (Ctrl-C, SIGTERM, out of memory) inside its timed loop leaves an unfinished one."""
    data = getattr(getattr(stats, "stats", None), "data", None)
    extra = getattr(stats, "extra_info", None) or {}
    return bool(data) and extra.get("median_s") is not None
