"""Who else computes each kernel: the provider registry.

A provider is a name and, per kernel, a callable that takes **the same inputs as that kernel's Triton
launcher** and returns the same outputs (the signatures are listed above the torch baselines below).
The benchmark checks every provider's first call before timing it, exactly as it checks ``triton`` and
``torch``: the launcher's contract (outputs' shapes, dtype, device; inputs left unchanged) and one
accuracy gate for all (:mod:`bench.accuracy`: at most ``ACCURACY_FACTOR`` times the error plain PyTorch
makes in the same dtype against a float64 reference, plus one ulp of the output); a provider that
cannot run a case is recorded in ``skipped.json`` (``unavailable``: package not installed, wrong device,
no C++ compiler; ``unsupported``: the callable raised ``NotImplementedError``), never an error.

Built in: ``triton`` (the launchers), ``torch`` (the eager baseline), both declared per op in
``kernels/<op>/spec.py``; ``inductor`` (``torch.compile`` of it), one
``sdpa-*`` per forced SDPA backend and, when installed (never a dependency), ``flash-attn``,
``flashinfer`` (decode) and ``liger`` (softmax). Users add their own with ``--provider-module MODULE``
(``PROVIDERS = {name: {kernel: callable}}``) or the entry point group ``ridgebench.providers``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import sys
import time
from collections.abc import Callable, Iterable, Mapping

import torch

from roofline.model.ops import KERNELS
from roofline.rundir import BASELINE  # the eager PyTorch baseline every speedup is relative to

ENTRY_POINT_GROUP = "ridgebench.providers"
OURS = "triton"  # the Triton launchers: the kernels this project benchmarks


class ProviderError(ValueError):
    """A provider module or entry point that cannot be used (import failure, malformed ``PROVIDERS``)."""


@dataclasses.dataclass(frozen=True)
class Provider:
    """One provider: ``impls`` maps a kernel to its callable (the launcher's signature, see the module
    docstring) or, with ``per_case``, to a factory called once per benchmark case that returns it (a
    fresh ``torch.compile``, so its compile is timed apart and its caches stay bounded).

    ``requires``: modules that must be importable; ``device_kinds``: where it can run at all;
    ``variant``: what it runs, per kernel (recorded as the benchmark's ``variant``). ``later``: per
    kernel, the callable for the calls after the first (checked) one, where it differs (the launcher
    without its host-side checks).

    How the benchmark treats it: ``interpreted``: without a GPU it runs under the Triton interpreter,
    checked at a small shape and not timed; ``launch_records``: its variant and config come from the
    launch records of :mod:`kernels._lib.launch` (and the static audit's line for that config);
    ``value_error_unsupported``: a ``ValueError`` is the callable refusing a shape (an ``unsupported``
    skip, not a failure); ``compile_modules``: exceptions raised from these modules are compile failures."""

    name: str
    impls: Mapping[str, Callable]
    doc: str
    requires: tuple[str, ...] = ()
    device_kinds: tuple[str, ...] = ("cpu", "cuda")
    per_case: bool = False
    source: str = "built-in"
    variant: Mapping[str, str] = dataclasses.field(default_factory=dict)
    extra_check: Callable[[], str | None] | None = None
    later: Mapping[str, Callable] = dataclasses.field(default_factory=dict)
    interpreted: bool = False
    launch_records: bool = False
    value_error_unsupported: bool = False
    compile_modules: tuple[str, ...] = ()

    def unavailable(self, device_kind: str) -> str | None:
        """Why this provider cannot run on ``device_kind`` here (``None``: it can)."""
        missing = [m for m in self.requires if not module_present(m)]
        if missing:
            return f"{self.name}: package not installed ({', '.join(missing)} cannot be imported)"
        if device_kind not in self.device_kinds:
            return (f"{self.name} runs on {' or '.join(k.upper() for k in self.device_kinds)} only; this run "
                    f"is on a {device_kind.upper()}")
        if self.extra_check is not None:
            return self.extra_check()
        return None

    def bind(self, kernel: str) -> Callable:
        """The callable for one case of ``kernel`` (a per-case provider builds a fresh one)."""
        impl = self.impls[kernel]
        return impl() if self.per_case else impl

    def calls(self, kernel: str) -> tuple[Callable, Callable]:
        """``(first, later)``: the callables of one case's first (checked) call and of the calls after it."""
        first = self.bind(kernel)
        return first, (self.later[kernel] if kernel in self.later else first)


def module_present(name: str) -> bool:
    """Whether ``name`` can be imported (a stand-in placed in ``sys.modules`` counts)."""
    if sys.modules.get(name) is not None:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# ------------------------------------------------------------------------------------------------
# ``triton`` and ``torch``: each op's launcher and eager baseline, from its spec (kernels/<op>/spec.py)
# ------------------------------------------------------------------------------------------------
# Every provider's signature, per kernel (tensors on the run's device, in the sweep's dtype):
# qkv         ``fn(x, weight, bias, *, n_heads, n_kv_heads) -> (q, k, v)``; x ``[B, T, D]``, weight
#             ``[(Hq + 2 Hkv) Dh, D]``, bias ``[(Hq + 2 Hkv) Dh]`` or None; q ``[B, Hq, T, Dh]``,
#             k/v ``[B, Hkv, T, Dh]``
# gemv        ``fn(x, weight, bias) -> y``; x ``[B, K]``, weight ``[N, K]``, bias ``[N]`` or None;
#             y ``[B, N]``
# attention   ``fn(q, k_cache, v_cache, cache_len) -> o``; q ``[B, Hq, q_len, Dh]``, caches
#             ``[B, Hkv, cache_len + q_len, Dh]`` already holding the new tokens, cache_len int32 ``[B]``
#             (tokens before this step; the host copy is :func:`kernels._lib.host.host_lengths`);
#             o ``[B, Hq, q_len, Dh]``, causal (query i sees keys ``0 .. cache_len + i``)
# softmax     ``fn(x) -> y``; softmax over the last dimension of x ``[rows, cols]``
# gelu        ``fn(x, bias, *, approximate) -> y``; ``gelu(x + bias)``, x ``[..., n]``, bias ``[n]`` or
#             None, approximate ``"none"`` (erf) or ``"tanh"``


@functools.cache
def _kmod(kernel: str):
    return importlib.import_module(f"kernels.{kernel}")


def op_spec(kernel: str):
    """``kernels/<kernel>/spec.py``'s declaration (imported on first use: after the interpreter switch)."""
    from kernels._lib.spec import op_spec as spec

    return spec(kernel)


def torch_baseline(kernel: str):
    """The eager-PyTorch baseline of ``kernel`` (:class:`kernels._lib.spec.Baseline`: the function, in the
    launcher's signature, and what it runs, in words), which every speedup is relative to."""
    return op_spec(kernel).baseline


class FromSpecs(Mapping):
    """``{kernel: pick(its spec)}`` for every Triton op of the table, each spec imported when first read
    (so the registry can be built before the interpreter decision)."""

    def __init__(self, pick: Callable) -> None:
        self._pick = pick

    def __getitem__(self, kernel: str):
        if kernel not in KERNELS:
            raise KeyError(kernel)
        return self._pick(op_spec(kernel))

    def __contains__(self, kernel: object) -> bool:  # without importing the spec
        return kernel in KERNELS

    def __iter__(self):
        return iter(KERNELS)

    def __len__(self) -> int:
        return len(KERNELS)


def _later(spec) -> Callable:
    """The launcher as called after the first, checked, call (``spec.later_kwargs`` bound)."""
    return functools.partial(spec.launcher, **spec.later_kwargs) if spec.later_kwargs else spec.launcher


# ------------------------------------------------------------------------------------------------
# inductor: torch.compile of the baseline, a fresh compile per case
# ------------------------------------------------------------------------------------------------

class Compiled:
    """One case's ``torch.compile(baseline, dynamic=False)``. Dynamo's caches are reset first, so every
    case compiles once for its own shape (no recompile limit reached, memory bounded), and the graphs
    compiled are counted: ``stats()`` says how many the first call compiled (the checked call, whose
    time is ``first_call_s``, compile included, never in the timed rounds) and how many more compiled
    after it (a recompile inside the timed rounds would show here)."""

    def __init__(self, kernel: str) -> None:
        import torch._dynamo

        torch._dynamo.reset()
        self.kernel = kernel
        baseline = torch_baseline(kernel)
        self.to_compilable = baseline.to_compilable
        self.compiled = torch.compile(baseline.compilable or baseline.fn, dynamic=False)
        self.calls = 0
        self.first_call_s: float | None = None
        self.graphs_first = self.graphs_later = 0

    @staticmethod
    def _graphs() -> int:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])

    def __call__(self, *args, **kwargs):
        if self.to_compilable is not None:
            args = self.to_compilable(args)
        if self.calls:
            before = self._graphs()
            out = self.compiled(*args, **kwargs)
            self.graphs_later += self._graphs() - before
            return out
        before, t0 = self._graphs(), time.perf_counter()
        out = self.compiled(*args, **kwargs)
        self.first_call_s = time.perf_counter() - t0
        self.graphs_first = self._graphs() - before
        self.calls = 1
        return out

    def stats(self) -> dict:
        return {"first_call_s": self.first_call_s, "graphs_compiled_first_call": self.graphs_first,
                "recompiles_after_first_call": self.graphs_later, "dynamic": False,
                "backend": "inductor", "note": "the first (checked) call compiles; it is never timed"}


_COMPILER: list[str | None] = []


def inductor_compiler_missing() -> str | None:
    """On a CPU Inductor emits C++: the reason it cannot run when no C++ compiler is found."""
    if not _COMPILER:
        reason = None
        if not torch.cuda.is_available():
            try:
                from torch._inductor import cpp_builder

                cpp_builder.get_cpp_compiler()
            except Exception as exc:  # noqa: BLE001 - any failure to find one is the reason
                reason = (f"inductor: no C++ compiler for Inductor's CPU code ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); install g++ or set CXX")
        _COMPILER.append(reason)
    return _COMPILER[0]


# ------------------------------------------------------------------------------------------------
# SDPA with one backend forced
# ------------------------------------------------------------------------------------------------

SDPA_BACKENDS = {"sdpa-flash": "FLASH_ATTENTION", "sdpa-efficient": "EFFICIENT_ATTENTION",
                 "sdpa-cudnn": "CUDNN_ATTENTION", "sdpa-math": "MATH"}


def _rocm_cudnn_missing() -> str | None:
    """On ROCm SDPA has flash (AOTriton/CK), memory-efficient and math backends, and no cuDNN."""
    from bench import rocm

    return rocm.cudnn_missing()


def torch_attention_int(q, k_cache, v_cache, past: int):
    """The attention baseline (:func:`kernels.attention.attention_sdpa`) with the cache length as an int."""
    return _kmod("attention").attention_sdpa(q, k_cache, v_cache, past)


def sdpa_backend(backend: str) -> Callable:
    """The attention baseline (:func:`kernels.attention.attention_sdpa`: the cheapest mask for the case)
    with SDPA restricted to ``backend``; a shape the backend refuses is ``unsupported``."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    chosen = getattr(SDPBackend, backend)

    def run(q, k_cache, v_cache, cache_len):
        from kernels._lib.host import uniform_length

        past = uniform_length(cache_len)
        with sdpa_kernel(chosen):
            try:
                return torch_attention_int(q, k_cache, v_cache, past)
            except RuntimeError as exc:
                if "no available kernel" in str(exc).lower():
                    raise NotImplementedError(f"SDPA's {backend} backend cannot run this case: "
                                              f"{str(exc).splitlines()[0]}") from None
                raise
    run.__name__ = f"sdpa_{backend.lower()}"
    return run


# ------------------------------------------------------------------------------------------------
# Third-party kernels (imported only when called)
# ------------------------------------------------------------------------------------------------

def _half_only(name: str, t: torch.Tensor) -> None:
    if t.dtype not in (torch.float16, torch.bfloat16):
        raise NotImplementedError(f"{name} takes fp16/bf16 only, not {t.dtype}")


def flash_attn_attention(q, k_cache, v_cache, cache_len):
    """flash-attn: ``flash_attn_func(causal=True)`` when no token was cached before (prefill);
    ``flash_attn_with_kvcache(cache_seqlens=cache_len + q_len, causal=True)`` otherwise (decode, chunked
    prefill): both align the causal mask bottom-right, as this benchmark's attention does. flash-attn
    takes ``[B, S, H, Dh]``; the transposes are views (last dimension stays contiguous)."""
    import flash_attn

    from kernels._lib.host import host_lengths, per_tensor

    _half_only("flash-attn", q)
    q_len = q.shape[2]
    qt = q.transpose(1, 2)
    if max(host_lengths(cache_len), default=0) == 0:
        out = flash_attn.flash_attn_func(qt, k_cache[:, :, :q_len].transpose(1, 2),
                                         v_cache[:, :, :q_len].transpose(1, 2), causal=True)
    else:
        seqlens = per_tensor(cache_len, f"+{q_len}", lambda: cache_len + q_len)  # not a launch per call
        out = flash_attn.flash_attn_with_kvcache(qt, k_cache.transpose(1, 2), v_cache.transpose(1, 2),
                                                 cache_seqlens=seqlens, causal=True)
    return out.transpose(1, 2)


def flashinfer_decode(q, k_cache, v_cache, cache_len):
    """FlashInfer decode: ``single_decode_with_kv_cache`` (``kv_layout="HND"``, our cache layout) once per
    sequence, one query token each. A batch is a loop of single-sequence launches (FlashInfer's paged
    batch wrapper needs a page table this benchmark does not build), so its time is an upper bound on
    FlashInfer's batched decode."""
    import flashinfer

    from kernels._lib.host import host_lengths

    _half_only("FlashInfer", q)
    if q.shape[2] != 1:
        raise NotImplementedError(f"FlashInfer decode takes one query token per sequence, not {q.shape[2]}")
    outs = [flashinfer.single_decode_with_kv_cache(q[b, :, 0], k_cache[b, :, :n + 1], v_cache[b, :, :n + 1],
                                                   kv_layout="HND")
            for b, n in enumerate(host_lengths(cache_len))]
    return torch.stack(outs)[:, :, None, :]


def liger_softmax(x):
    """Liger-Kernel's softmax over the last dimension (``liger_kernel.ops.softmax``)."""
    from liger_kernel.ops.softmax import LigerSoftmaxFunction

    return LigerSoftmaxFunction.apply(x)


# ------------------------------------------------------------------------------------------------
# The registry
# ------------------------------------------------------------------------------------------------

def _inductor_factory(kernel: str) -> Callable[[], Compiled]:
    return lambda: Compiled(kernel)


BUILTIN: dict[str, Provider] = {
    OURS: Provider(OURS, FromSpecs(lambda spec: spec.launcher),
                   "this project's Triton launchers (kernels/)", later=FromSpecs(_later), interpreted=True,
                   launch_records=True, value_error_unsupported=True),
    BASELINE: Provider(BASELINE, FromSpecs(lambda spec: spec.baseline.fn), "eager PyTorch, the baseline "
                       "every speedup is relative to", variant=FromSpecs(lambda spec: spec.baseline.variant)),
    "inductor": Provider(
        "inductor", {k: _inductor_factory(k) for k in KERNELS},
        "torch.compile(the torch baseline, dynamic=False): Triton on a GPU, C++ on a CPU; compiled once "
        "per case before timing", requires=("torch._inductor",),
        per_case=True, variant=FromSpecs(lambda spec: f"torch.compile({spec.baseline.variant})"),
        extra_check=inductor_compiler_missing, compile_modules=("torch._dynamo", "torch._inductor")),
    **{name: Provider(name, {"attention": sdpa_backend(backend)},
                      f"SDPA with only its {backend} backend enabled (torch.nn.attention.sdpa_kernel)",
                      device_kinds=("cpu", "cuda") if backend == "MATH" else ("cuda",),
                      variant={"attention": f"sdpa[{backend}]"},
                      extra_check=_rocm_cudnn_missing if backend == "CUDNN_ATTENTION" else None)
       for name, backend in SDPA_BACKENDS.items()},
    "flash-attn": Provider("flash-attn", {"attention": flash_attn_attention},
                           "flash-attn 2: flash_attn_func (prefill) / flash_attn_with_kvcache (decode)",
                           requires=("flash_attn",), device_kinds=("cuda",),
                           variant={"attention": "flash_attn_func / flash_attn_with_kvcache"}),
    "flashinfer": Provider("flashinfer", {"attention": flashinfer_decode},
                           "FlashInfer single_decode_with_kv_cache per sequence (decode only)",
                           requires=("flashinfer",), device_kinds=("cuda",),
                           variant={"attention": "single_decode_with_kv_cache (HND), per sequence"}),
    "liger": Provider("liger", {"softmax": liger_softmax}, "Liger-Kernel's Triton softmax",
                      requires=("liger_kernel",), device_kinds=("cuda",),
                      variant={"softmax": "LigerSoftmaxFunction"}),
}
RESERVED = tuple(BUILTIN)
_USER: dict[str, Provider] = {}
# entry points that could not be used: {source: why}; they block only runs that name an unknown provider
_BROKEN: dict[str, str] = {}


def registry() -> dict[str, Provider]:
    """Every provider: built-in (``triton`` first, then ``torch``), then the user's."""
    return {**BUILTIN, **_USER}


def names() -> tuple[str, ...]:
    """Every provider name ``--providers`` accepts (besides ``all``)."""
    return tuple(registry())


def get(name: str) -> Provider:
    try:
        return registry()[name]
    except KeyError:
        raise ValueError(f"provider: expected one of {', '.join(names())}, got {name!r}") from None


def broken_entry_points() -> dict[str, str]:
    """The ``ridgebench.providers`` entry points the last :func:`load_user_providers` could not use:
    ``{source: why}`` (their providers are unknown; a run that asks for one is refused, naming them)."""
    return dict(_BROKEN)


def has_kernel(name: str, kernel: str) -> bool:
    return kernel in get(name).impls


def runnable_here(device_kind: str) -> tuple[str, ...]:
    """``--providers all``: ours and every registered provider that can run on ``device_kind`` here."""
    return tuple(n for n, p in registry().items() if p.unavailable(device_kind) is None)


# ------------------------------------------------------------------------------------------------
# The user's providers: --provider-module and the ridgebench.providers entry points
# ------------------------------------------------------------------------------------------------

def providers_from(table: object, source: str) -> dict[str, Provider]:
    """Validate a ``PROVIDERS`` table (``{name: {kernel: callable}}``) and wrap it; ``ProviderError``
    naming ``source`` and the bad entry otherwise."""
    if not isinstance(table, dict) or not table:
        raise ProviderError(f"{source}: PROVIDERS must be a non-empty dict {{provider name: {{kernel: "
                            f"callable}}}}, got {type(table).__name__}")
    out = {}
    for name, impls in table.items():
        if not isinstance(name, str) or not name or "," in name or name != name.strip() or name == "all":
            raise ProviderError(f"{source}: provider name {name!r}: expected a non-empty string without "
                                "commas or surrounding spaces, not 'all'")
        if name in RESERVED:
            raise ProviderError(f"{source}: provider name {name!r} is built in; choose another name")
        if not isinstance(impls, dict) or not impls:
            raise ProviderError(f"{source}: PROVIDERS[{name!r}] must be a non-empty dict "
                                f"{{kernel: callable}}, got {type(impls).__name__}")
        for kernel, fn in impls.items():
            if kernel not in KERNELS:
                raise ProviderError(f"{source}: PROVIDERS[{name!r}][{kernel!r}]: unknown kernel; expected "
                                    f"one of {', '.join(KERNELS)}")
            if not callable(fn):
                raise ProviderError(f"{source}: PROVIDERS[{name!r}][{kernel!r}] is a {type(fn).__name__}, "
                                    "not a callable")
        out[name] = Provider(name, dict(impls), f"user provider from {source}", source=source,
                             variant={k: f"{source}:{getattr(f, '__qualname__', type(f).__name__)}"
                                      for k, f in impls.items()})
    return out


def _entry_points() -> list:
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def _load(source: str, load: Callable[[], object]) -> dict[str, Provider]:
    """One module's (or entry point's) providers; ``ProviderError`` in one line otherwise. Any
    ``BaseException`` at import but ``KeyboardInterrupt`` (a ``sys.exit`` in the module, a
    ``GeneratorExit``) is the module's failure, not the benchmark's."""
    try:
        obj = load()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - any import failure is the user's to fix: one line
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ProviderError(f"{source}: import failed: {type(exc).__name__}: {first}") from None
    table = obj if isinstance(obj, dict) else getattr(obj, "PROVIDERS", None)
    if table is None:
        raise ProviderError(f"{source}: defines no PROVIDERS = {{provider name: {{kernel: callable}}}}")
    return providers_from(table, source)


def load_user_providers(modules: Iterable[str] = (), *, use_entry_points: bool = True) -> dict[str, Provider]:
    """Import each ``--provider-module`` and every ``ridgebench.providers`` entry point (a module with
    ``PROVIDERS``, or the table itself), validate, and register them (replacing any loaded before).

    A ``--provider-module`` that cannot be used raises ``ProviderError`` with one line naming it and
    what is wrong (it was asked for). An entry point that cannot be used (it comes with an installed
    package, whether this run needs it or not) is set aside in :func:`broken_entry_points`: a run that
    asks for a provider nobody defines is refused naming it (:func:`unknown_providers_error`), any other
    run goes on with a warning."""
    found: dict[str, Provider] = {}
    _BROKEN.clear()

    def add(providers: dict[str, Provider], source: str) -> None:
        for name, provider in providers.items():
            if name in found:
                raise ProviderError(f"{source}: provider {name!r} is also defined by {found[name].source}")
            found[name] = provider

    for m in modules:
        source = f"--provider-module {m}"
        add(_load(source, lambda m=m: importlib.import_module(m)), source)
    if use_entry_points:
        try:
            eps = _entry_points()
        except Exception as exc:  # noqa: BLE001 - broken metadata: set aside, in one line
            eps = []
            _BROKEN[f"entry points {ENTRY_POINT_GROUP}"] = f"{type(exc).__name__}: {exc}"
        for ep in eps:
            source = f"entry point {ep.name} ({ep.value})"
            try:
                loaded = _load(source, ep.load)
            except ProviderError as exc:
                _BROKEN[source] = str(exc)
                continue
            add(loaded, source)
    _USER.clear()
    _USER.update(found)
    return found


def unknown_providers_error(option: str, value: str, unknown: list[str]) -> str:
    """The one line refusing ``unknown`` provider names (of ``option value``), naming the broken entry
    points that might have defined them."""
    msg = f"{option} {value}: unknown provider {', '.join(map(repr, unknown))}; expected a comma-separated " \
          f"subset of {', '.join(names())}"
    if _BROKEN:
        msg += "; entry points that failed to load (one may define it): " + "; ".join(_BROKEN.values())
    return msg
