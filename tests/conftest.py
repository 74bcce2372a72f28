"""Where the tests run the Triton kernels: ``pytest --device cpu|cuda``.

- ``cpu`` (the default without a GPU): the Triton interpreter on CPU tensors. ``TRITON_INTERPRET=1`` is
  set at configure time, before any test module imports a kernel (Triton decides interpreter-or-compiler
  when ``@triton.jit`` decorates).
- ``cuda`` (the default when a GPU is visible): the kernels are compiled and the kernel tests' tensors
  live on the GPU; ``TRITON_INTERPRET`` is removed. The kernel test modules build their inputs with
  seeded CPU generators; :class:`TensorsOn` draws every random tensor on the CPU and moves it, so both
  devices see the same numbers; tensors made in ``parametrize`` are moved as the same views
  (:func:`on_device`). Skips whose reason is the interpreter (bf16 ``tl.dot``) do not apply;
  a test reaching an input the GPU path refuses by design (fp32 attention) is reported skipped, saying so.
  ``--device cuda`` without a GPU is a usage error (exit 4). A sticky CUDA error (an illegal address, a
  device-side assert) stops the session with one message naming the test: every later test in the
  process would fail with it.

pytest loads this file under ``pytest --benchmark`` too (tests/ is a testpath), where it must leave the
choice to the benchmark plugin. The static sm_80/sm_90 audit needs the compiler, so it runs in a
subprocess with the interpreter off (see tests/test_audit*.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

from roofline.model import machine
from roofline.model.ops import KERNELS

DEVICE = pytest.StashKey[str]()


def is_kernel_test_module(name: str) -> bool:
    """``test_<op>`` and ``test_<op>_*`` for every op in the table of ops: the modules whose tests run the
    kernels, so their tensors go to --device. The other tests (cost model, roofline, bench plumbing,
    audit) are device-independent or start their own processes."""
    return any(name == f"test_{op}" or name.startswith(f"test_{op}_") for op in KERNELS)


KERNEL_TEST_MODULES = frozenset(p.stem for p in Path(__file__).parent.glob("test_*.py")
                                if is_kernel_test_module(p.stem))
# Tests about CPU tensors themselves (refused when the interpreter is off): CPU tensors on any device.
CPU_TENSOR_TESTS = frozenset({"test_cpu_tensor_without_interpreter_is_refused"})
# Modules that stand in for the GPU on the CPU and run kernels on CPU tensors under the interpreter.
CPU_RUN_MODULES = {"test_bench_gpu_path": "runs the benchmark's GPU branch with CUDA stood in for on CPU "
                                          "tensors under the Triton interpreter; run it with --device cpu"}
INTERPRETER_SKIP = "under the Triton interpreter"  # in the reason of every interpreter-only skip
STICKY_CUDA_ERRORS = ("illegal memory access", "device-side assert", "unspecified launch failure",
                      "misaligned address", "illegal instruction", "an illegal", "unrecoverable")


def resolve_device(requested: str | None, cuda_available: bool) -> str:
    """``--device``'s value: cuda when a GPU is visible and nothing was asked, else what was asked."""
    if requested is None:
        return "cuda" if cuda_available else "cpu"
    if requested == "cuda" and not cuda_available:
        raise pytest.UsageError("--device cuda: no CUDA device is visible (torch.cuda.is_available() is "
                                "False); run on a GPU machine or use --device cpu (the Triton interpreter)")
    if requested not in ("cuda", "cpu"):
        raise pytest.UsageError(f"--device {requested}: expected cuda or cpu")
    return requested


def pytest_configure(config) -> None:
    if config.getoption("--benchmark", default=False):
        return
    try:
        machine.forced()
    except machine.MachineError as exc:
        raise pytest.UsageError(str(exc)) from None
    device = resolve_device(config.getoption("--device", default=None), torch.cuda.is_available())
    config.stash[DEVICE] = device
    if device == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"
    else:
        os.environ.pop("TRITON_INTERPRET", None)


def pytest_report_header(config) -> str | None:
    device = config.stash.get(DEVICE, None)
    if device is None:
        return None
    forced = machine.describe()
    if forced:
        return f"ridgebench: --device {device}, {forced}: launch plans and sweep dtype of that machine"
    if device == "cuda":
        return f"ridgebench: --device cuda ({torch.cuda.get_device_name()}): Triton kernels compiled"
    return "ridgebench: --device cpu: Triton kernels under the interpreter (TRITON_INTERPRET=1)"


def pytest_collection_modifyitems(config, items) -> None:
    """On the GPU, drop the skips that exist only because of the interpreter (bf16 ``tl.dot``), and skip
    the modules that need a CPU run (saying so)."""
    if config.stash.get(DEVICE, "cpu") != "cuda":
        return
    for item in items:
        module = getattr(getattr(item, "module", None), "__name__", "").rpartition(".")[2]
        if module in CPU_RUN_MODULES:
            item.add_marker(pytest.mark.skip(reason=f"--device cpu only: {CPU_RUN_MODULES[module]}"))
            continue
        item.own_markers[:] = [m for m in item.own_markers if not interpreter_only_skip(m)]


def interpreter_only_skip(mark) -> bool:
    """A ``skip`` mark whose reason is the interpreter (it does not apply to compiled kernels)."""
    reason = mark.kwargs.get("reason", mark.args[0] if mark.args else "")
    return mark.name == "skip" and INTERPRETER_SKIP in str(reason)


def _is_random_constructor(func: Callable) -> bool:
    return func in (torch.rand, torch.randn, torch.randint, torch.randperm, torch.normal)


def _constructors() -> set:
    try:
        from torch.utils._device import _device_constructors
        return set(_device_constructors())
    except ImportError:  # pragma: no cover - a torch without it: the common factories
        return {torch.empty, torch.zeros, torch.ones, torch.full, torch.arange, torch.tensor, torch.eye,
                torch.linspace, torch.empty_strided, torch.as_tensor, torch.rand, torch.randn,
                torch.randint, torch.randperm}


class TensorsOn(TorchFunctionMode):
    """Like ``torch.set_default_device(device)``, except that random tensors are drawn on the CPU (with
    the generator given, or the global CPU one) and then moved, so a seed gives the same numbers on
    either device. An explicit ``device=`` is left alone."""

    def __init__(self, device: str | torch.device) -> None:
        super().__init__()
        self.device = torch.device(device)
        self.constructors = _constructors()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in self.constructors and kwargs.get("device") is None:
            if _is_random_constructor(func):
                try:
                    return func(*args, **kwargs, device="cpu").to(self.device)
                except TypeError:  # an overload without a device (normal(mean_tensor, std_tensor))
                    return func(*args, **kwargs)
            kwargs["device"] = self.device
        return func(*args, **kwargs)


@pytest.fixture(scope="session")
def device(request) -> torch.device:
    """The device the kernel tests run on (``--device``)."""
    return torch.device(request.config.stash.get(DEVICE, "cpu"))


@pytest.fixture(autouse=True)
def _kernel_tensors_on_device(request):
    """With ``--device cuda``, the kernel test modules' tensors are created on the GPU, and their launchers
    run the first config that survives pruning, as under the interpreter (those tests assert which config
    ran; tests/test_compiled.py runs every config and the autotuner on the GPU)."""
    kind = request.config.stash.get(DEVICE, "cpu")
    module = getattr(request.module, "__name__", "").rpartition(".")[2]
    if (kind == "cpu" or module not in KERNEL_TEST_MODULES
            or getattr(request.node, "originalname", request.node.name) in CPU_TENSOR_TESTS):
        yield
        return
    request.getfixturevalue("monkeypatch").setenv("RIDGEBENCH_AUTOTUNE", "0")
    with TensorsOn(kind):
        yield


def on_device(value, device: str | torch.device):
    """``value`` with every CPU tensor in it (also inside tuples, lists and dicts) on ``device``, each the
    same view of a copy of its storage: strides, storage offset, overlap (``expand``) and gaps (``[::2]``)
    are kept, as a test of layouts needs."""
    if isinstance(value, torch.Tensor):
        if value.device.type != "cpu":
            return value
        storage = value.untyped_storage()
        flat = torch.empty(0, dtype=value.dtype).set_(storage, 0, (storage.nbytes() // value.element_size(),))
        return flat.to(device, copy=True).as_strided(value.size(), value.stride(), value.storage_offset())
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(on_device(v, device) for v in value)
    if isinstance(value, list):
        return [on_device(v, device) for v in value]
    if isinstance(value, dict):
        return {k: on_device(v, device) for k, v in value.items()}
    return value


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """With ``--device cuda``, tensors made at collection time (in ``parametrize``) go to the GPU too."""
    kind = pyfuncitem.config.stash.get(DEVICE, "cpu")
    module = getattr(getattr(pyfuncitem, "module", None), "__name__", "").rpartition(".")[2]
    if (kind != "cpu" and module in KERNEL_TEST_MODULES
            and getattr(pyfuncitem, "originalname", pyfuncitem.name) not in CPU_TENSOR_TESTS):
        params = getattr(getattr(pyfuncitem, "callspec", None), "params", {})
        for name in params:
            if name in pyfuncitem.funcargs:
                pyfuncitem.funcargs[name] = on_device(pyfuncitem.funcargs[name], kind)
    return (yield)


def sticky_cuda_error(probe: Callable[[], object]) -> str | None:
    """Run ``probe`` (a tiny CUDA op and a synchronize): the error text if the context is broken."""
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure of a trivial op means the context is gone
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


def _cuda_probe() -> None:
    torch.ones(1, device="cuda").add_(1).item()
    torch.cuda.synchronize()


# The kernels refuse these on a GPU by design; a test that reaches one there tests an interpreter-only
# path (fp32 attention: exact dots under the interpreter) and is reported skipped, saying so.
INTERPRETER_ONLY_ERRORS = ("float32 is for CPU (interpreter) runs only",)


def interpreter_only_failure(exc: BaseException) -> bool:
    """A launcher's refusal of an interpreter-only input on the GPU (see INTERPRETER_ONLY_ERRORS)."""
    return isinstance(exc, TypeError) and any(e in str(exc) for e in INTERPRETER_ONLY_ERRORS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if (report.failed and call.when == "call" and item.config.stash.get(DEVICE, "cpu") == "cuda"
            and call.excinfo is not None and interpreter_only_failure(call.excinfo.value)):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0,
                           f"Skipped: interpreter-only on --device cuda ({call.excinfo.value}); "
                           "run it with --device cpu")
        return report
    if report.failed and item.config.stash.get(DEVICE, "cpu") == "cuda" and call.excinfo is not None:
        text = str(call.excinfo.value).lower()
        broken = sticky_cuda_error(_cuda_probe) if (
            any(s in text for s in STICKY_CUDA_ERRORS) or "cuda" in text) else None
        if broken:
            item.session.shouldstop = (
                f"sticky CUDA error in {item.nodeid} ({broken}); the CUDA context is unusable, so the "
                f"session stops here. Rerun that test alone to see the error: pytest '{item.nodeid}'")
    return report


@pytest.fixture
def nan_filled_allocations(monkeypatch):
    """While a test runs, every output and workspace a launcher allocates (through the one allocation
    seam, ``kernels._lib.launch.empty``) starts as NaN, so an element a kernel never writes fails the
    comparison instead of passing on leftover memory."""
    from kernels._lib import launch  # here, not at the top: TRITON_INTERPRET is set before kernels load

    def nan_empty(shape, dtype, device):
        t = torch.empty(shape, dtype=dtype, device=device)
        return t.fill_(float("nan")) if t.is_floating_point() else t

    monkeypatch.setattr(launch, "empty", nan_empty)


@pytest.fixture
def audited_triton(monkeypatch):
    """The launch plans of the triton the warp-specialized configs were audited with
    (``kernels._lib.device.WARP_SPECIALIZE_MIN_TRITON``), whichever triton runs the tests
    (``scripts/compat.sh`` runs them under triton 3.6, which plans no warp-specialized tile)."""
    import triton

    from kernels._lib.device import WARP_SPECIALIZE_MIN_TRITON

    monkeypatch.setattr(triton, "__version__", ".".join(map(str, WARP_SPECIALIZE_MIN_TRITON)) + ".0")


@pytest.fixture(autouse=True)
def _kernel_outputs_start_as_nan(request):
    """Every kernel test module (:func:`is_kernel_test_module`) runs with :func:`nan_filled_allocations`."""
    module = getattr(request.module, "__name__", "").rpartition(".")[2]
    if is_kernel_test_module(module):
        request.getfixturevalue("nan_filled_allocations")
