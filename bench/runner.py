"""One benchmark, start to finish: build inputs on the device, run once, check against the reference,
time, and record; or, without a GPU, check the Triton kernel under the interpreter and say it was not
timed. Each ``bench/test_<kernel>.py`` supplies a :class:`KernelBench`; this module does the rest.

A timed case: inputs built on the device (seeded); one call, compared with the kernel's reference at
its ``TOLERANCES[dtype]`` (a wrong result fails with the error size and no time); then
:mod:`bench.timing` warms up, picks the rounds and times them; ``extra_info`` from
:func:`bench.record.extra_info`. Providers: ``triton`` (``KernelBench.triton_fn``), ``torch``
(``KernelBench.torch_fn``) and every other registered provider (its callable on
``KernelBench.launch_args``) go through the same steps. A provider that cannot run here (not installed,
wrong device, no compiler) or refuses a case (``NotImplementedError``) is a recorded skip.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import json
import time
from collections.abc import Callable
from types import ModuleType

import pytest
import torch

from bench import providers as registry
from bench import timing
from bench.record import extra_info, skip_record
from bench.session import BenchSession
from roofline.ops import MATMUL_KERNELS
from roofline.sweeps import SweepPoint

# The torch baseline runs the unfused sequence in the input dtype, rounding each intermediate (x + bias,
# the GEMM output before the transpose copy) where a fused kernel rounds once; it is checked at this
# multiple of the kernel's tolerance: room for those roundings, still far below the O(1) error of a
# wrong mask or layout.
BASELINE_TOLERANCE_FACTOR = 4.0
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclasses.dataclass(frozen=True)
class Check:
    """A comparison with the reference: ``max_error`` (max |out - ref|) and ``worst`` (the largest
    ``|out - ref| / (atol + rtol * |ref|)``; <= 1 passes). ``note`` says what was compared."""

    max_error: float
    worst: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.worst <= 1.0


COMPARE_CHUNK = 1 << 24  # elements per fp64 chunk: a 4 GiB output never needs 40 GiB of temporaries


def _compare_chunk(o: torch.Tensor, r: torch.Tensor, atol: float, rtol: float) -> tuple[float, float]:
    od, rd = o.double(), r.double()
    err = (od - rd).abs()
    err = torch.where((od == rd) & ~torch.isfinite(rd), 0.0, err)  # matching infinities are exact
    err = torch.nan_to_num(err, nan=float("inf"))
    ratio = err / (atol + rtol * rd.abs().nan_to_num(0.0))
    return float(err.max()), float(ratio.max())


def compare(out: object, ref: object, tolerance: tuple[float, float], note: str = "") -> Check:
    """Compare tensors (or tuples of tensors) elementwise in fp64, in chunks; NaN never passes."""
    outs = out if isinstance(out, (tuple, list)) else (out,)
    refs = ref if isinstance(ref, (tuple, list)) else (ref,)
    if len(outs) != len(refs):
        raise ValueError(f"out: {len(outs)} tensors, reference has {len(refs)}")
    atol, rtol = tolerance
    max_error = worst = 0.0
    for o, r in zip(outs, refs, strict=True):
        if tuple(o.shape) != tuple(r.shape):
            return Check(float("inf"), float("inf"), f"shape {tuple(o.shape)} != reference {tuple(r.shape)}")
        o, r = o.reshape(-1), r.reshape(-1)
        for i in range(0, o.numel(), COMPARE_CHUNK):
            e, w = _compare_chunk(o[i:i + COMPARE_CHUNK], r[i:i + COMPARE_CHUNK], atol, rtol)
            max_error, worst = max(max_error, e), max(worst, w)
    return Check(max_error, worst, note)


class KernelBench:
    """What one kernel's benchmark file provides. ``build`` returns a dict of device tensors and sizes."""

    kernel: str = ""

    def build(self, point: SweepPoint, device: torch.device) -> dict:
        raise NotImplementedError

    @property
    def torch_variant(self) -> str:
        """What the torch baseline runs (:data:`bench.providers.TORCH_BASELINES`)."""
        return registry.TORCH_BASELINES[self.kernel].variant

    def torch_fn(self, kmod: ModuleType, x: dict) -> Callable[[], object]:
        """The eager baseline, defined once in :data:`bench.providers.TORCH_BASELINES` (which
        ``inductor`` compiles), on the launcher's inputs."""
        return self.provider_fn(registry.TORCH_BASELINES[self.kernel].fn, x)

    def triton_fn(self, kmod: ModuleType, x: dict, *, first: bool) -> Callable[[], object]:
        """The launch; ``first`` is the checked call (launchers may skip host-side checks afterwards)."""
        raise NotImplementedError

    def launch_args(self, x: dict) -> tuple[tuple, dict]:
        """The Triton launcher's inputs, ``(args, kwargs)``: what every registered provider's callable
        takes (:mod:`bench.providers` documents the signature per kernel)."""
        raise NotImplementedError

    def provider_fn(self, impl: Callable, x: dict) -> Callable[[], object]:
        """One call of a registered provider on the case's inputs (the closure holds ``x``, not its
        tensors, so :func:`_release` frees them)."""
        def call() -> object:
            args, kwargs = self.launch_args(x)
            return impl(*args, **kwargs)
        return call

    def check(self, kmod: ModuleType, x: dict, out: object, tolerance: tuple[float, float]) -> Check:
        raise NotImplementedError

    def interpreter_shape(self, shape: dict) -> dict:
        """The shape the interpreter checks for a point (small enough to run in seconds on a CPU)."""
        return dict(shape)


def randn(gen: torch.Generator, *shape: int, dtype: torch.dtype, device: torch.device,
          scale: float = 1.0) -> torch.Tensor:
    """Seeded normal values made on ``device`` in ``dtype``, times ``scale``."""
    t = torch.randn(shape, generator=gen, dtype=dtype, device=device)
    return t.mul_(scale) if scale != 1.0 else t


def generator(device: torch.device, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def import_kernel(kernel: str) -> ModuleType:
    return importlib.import_module(f"kernels.{kernel}")


def bench_class(kernel: str) -> type[KernelBench]:
    """The one ``KernelBench`` subclass defined by ``bench/test_<kernel>.py`` (which declares ``KERNEL``)."""
    module = importlib.import_module(f"bench.test_{kernel}")
    if getattr(module, "KERNEL", None) != kernel:
        raise ValueError(f"bench/test_{kernel}.py: expected KERNEL = {kernel!r}, "
                         f"got {getattr(module, 'KERNEL', None)!r}")
    found = [obj for obj in vars(module).values() if isinstance(obj, type) and issubclass(obj, KernelBench)
             and obj is not KernelBench and obj.__module__ == module.__name__]
    if len(found) != 1:
        raise ValueError(f"bench/test_{kernel}.py: expected one KernelBench subclass, "
                         f"found {[c.__name__ for c in found]}")
    return found[0]


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
    module = type(exc).__module__ or ""
    if module.startswith("triton") or type(exc).__name__ in ("OutOfResources", "CompilationError"):
        return "compile-failure"
    if provider == "inductor" and module.startswith(("torch._dynamo", "torch._inductor")):
        return "compile-failure"
    # A launcher rejects a shape it does not support with ValueError (naming the argument); a TypeError
    # would be this suite passing something wrong, a real failure.
    if isinstance(exc, NotImplementedError) or (provider == "triton" and isinstance(exc, ValueError)):
        return "unsupported"
    return None


def interpreter_check(bench: KernelBench, kmod: ModuleType, point: SweepPoint, session: BenchSession,
                      request: pytest.FixtureRequest) -> None:
    """Without a GPU: run the Triton kernel under the interpreter on the CPU at
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
        tolerance = kmod.TOLERANCES[DTYPES[dtype]]
        x = bench.build(small, torch.device("cpu"))
        try:
            out = bench.triton_fn(kmod, x, first=True)()
        except Exception as exc:
            category = classify(exc, "triton")
            if category is None:
                raise
            session.checks[key] = (None, category, f"{type(exc).__name__}: {exc}")
        else:
            check = bench.check(kmod, x, out, tolerance)
            launch = kmod_last_launch(point.kernel)
            session.checks[key] = (check, tolerance, launch)
    first, second, third = session.checks[key]
    if first is None:
        _skip(session, request, point, "triton", second, f"under the interpreter: {third}")
    check, tolerance = first, second
    if not check.ok:
        pytest.fail(f"triton {point.kernel} is wrong under the interpreter at {shape} {dtype}: max error "
                    f"{check.max_error:.3g} is {check.worst:.3g}x the tolerance (atol, rtol) = {tolerance}"
                    f"{' (' + check.note + ')' if check.note else ''}")
    reason = (f"not timed: no GPU. Checked under the Triton interpreter at {shape} {dtype} "
              f"(max error {check.max_error:.3g}, {check.worst:.2f}x the tolerance)")
    _skip(session, request, point, "triton", "not-timed", reason, checked_shape=shape, checked_dtype=dtype,
          max_error=check.max_error, tolerance=list(tolerance), check_note=" ".join(filter(None, [
              note, check.note])), variant=third.variant if third else None,
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


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


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
        kmod = import_kernel(point.kernel)
    except Exception as exc:  # a missing or broken kernel module fails only its own benchmarks
        _skip(session, request, point, provider, "unavailable",
              f"kernels.{point.kernel} cannot be imported: {type(exc).__name__}: {exc}")
    tolerance = tuple(kmod.TOLERANCES[DTYPES[point.dtype]])
    if provider == "torch":
        tolerance = tuple(BASELINE_TOLERANCE_FACTOR * t for t in tolerance)
    elif provider != "triton":
        spec = registry.get(provider)
        if point.kernel not in spec.impls:
            _skip(session, request, point, provider, "unsupported",
                  f"{provider} has no {point.kernel} implementation")
        reason = spec.unavailable(session.device_kind)
        if reason is not None:
            _skip(session, request, point, provider, "unavailable", reason, provider_source=spec.source)
        tolerance = tuple(spec.tolerance_factor * t for t in tolerance)
    if provider == "triton" and not session.triton_timed:
        interpreter_check(bench, kmod, point, session, request)
        return
    x: dict = {}  # the case's inputs; cleared whatever happens
    try:
        _timed_case(bench, kmod, provider, point, tolerance, x, benchmark, session, request)
    finally:
        _release(x, session)


def _timed_case(bench: KernelBench, kmod: ModuleType, provider: str, point: SweepPoint,
                tolerance: tuple, x: dict, benchmark, session: BenchSession,
                request: pytest.FixtureRequest) -> None:
    failure = None
    step = "measuring the ceilings"
    impl = None
    try:
        roofs = session.ensure_ceilings()
        step = "building the inputs"
        x.update(bench.build(point, session.device))
        step = "the first (checked) call"
        if provider == "torch":
            first = fn = bench.torch_fn(kmod, x)
        elif provider == "triton":
            first, fn = bench.triton_fn(kmod, x, first=True), bench.triton_fn(kmod, x, first=False)
        else:
            impl = registry.get(provider).bind(point.kernel)  # per-case providers build (compile) here
            first = fn = bench.provider_fn(impl, x)
        t_first = time.perf_counter()
        out = first()
        session.synchronize()
        first_call_s = time.perf_counter() - t_first
        step = "the check against the reference"
        check = bench.check(kmod, x, out, tolerance)
        del out
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
    if not check.ok:
        pytest.fail(f"{provider} {point.kernel} {point.label} {point.dtype}: wrong result, max error "
                    f"{check.max_error:.3g} is {check.worst:.3g}x the tolerance (atol, rtol) = {tolerance}"
                    f"{' (' + check.note + ')' if check.note else ''}; no time recorded")
    variant, config = bench.torch_variant, None
    if provider not in ("torch", "triton"):
        variant = registry.get(provider).variant.get(point.kernel, provider)
    if provider == "triton":
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
        tolerance=tolerance, timing_method=method, timing=timing_info,
        audit=audit_line(point.kernel, variant, config, point.dtype, arch) if provider == "triton" else None,
        details={"layout": x.get("layout"), "check": check.note or "full output vs reference",
                 "worst_over_tolerance": check.worst, "first_call_s": first_call_s},
    ))
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
