"""``pytest --device``: its default and its refusal without a GPU, and the pieces tests/conftest.py uses
to run the kernel tests on a GPU (seeded tensors on the device, interpreter-only skips lifted, the stop
on a sticky CUDA error), exercised here on the CPU."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("ridgebench_tests_conftest", ROOT / "tests" / "conftest.py")
tc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tc)


def test_default_device_follows_the_gpu_and_cuda_needs_one():
    assert tc.resolve_device(None, cuda_available=True) == "cuda"
    assert tc.resolve_device(None, cuda_available=False) == "cpu"
    assert tc.resolve_device("cpu", cuda_available=True) == "cpu"
    with pytest.raises(pytest.UsageError, match="--device cuda: no CUDA device is visible"):
        tc.resolve_device("cuda", cuda_available=False)


def test_this_run_uses_the_interpreter_exactly_when_on_cpu(device):
    assert device.type in ("cpu", "cuda")
    assert (os.environ.get("TRITON_INTERPRET") == "1") == (device.type == "cpu")


def test_device_cuda_without_a_gpu_is_one_line_and_exit_4():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TRITON_INTERPRET"))}
    env["CUDA_VISIBLE_DEVICES"] = ""  # no GPU, also on a GPU machine
    proc = subprocess.run([sys.executable, "-m", "pytest", "--device", "cuda", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert lines == ["ERROR: --device cuda: no CUDA device is visible (torch.cuda.is_available() is False); "
                     "run on a GPU machine or use --device cpu (the Triton interpreter)"]


def test_tensors_on_draws_seeded_numbers_on_the_cpu_and_moves_them():
    plain = torch.randn(3, 4, generator=torch.Generator().manual_seed(7))
    with tc.TensorsOn("meta"):  # any device other than the CPU: here, one with no storage
        moved = torch.randn(3, 4, generator=torch.Generator().manual_seed(7))
        zeros = torch.zeros(2)
        ints = torch.tensor([1, 2], dtype=torch.int32)
        explicit = torch.ones(2, device="cpu")
        index = torch.randint(0, 5, (3,))
    assert moved.device.type == "meta" and moved.shape == plain.shape
    assert zeros.device.type == ints.device.type == index.device.type == "meta"
    assert explicit.device.type == "cpu"  # an explicit device is left alone
    with tc.TensorsOn("cpu"):  # the values: the same seed gives the same numbers
        again = torch.randn(3, 4, generator=torch.Generator().manual_seed(7))
    assert torch.equal(again, plain)


def test_only_interpreter_skips_are_lifted_on_the_gpu():
    assert tc.interpreter_only_skip(pytest.mark.skip(reason="bf16 tl.dot is garbage under the Triton "
                                                            "interpreter (triton-lang/triton#11584)").mark)
    assert tc.interpreter_only_skip(pytest.mark.skip("tl.dot ... under the Triton interpreter").mark)
    assert not tc.interpreter_only_skip(pytest.mark.skip(reason="needs 40 GB").mark)
    assert not tc.interpreter_only_skip(pytest.mark.slow.mark)


def test_sticky_cuda_error_is_detected_by_a_probe():
    assert tc.sticky_cuda_error(lambda: None) is None

    def broken():
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nCUDA kernel errors ...")

    expected = "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert tc.sticky_cuda_error(broken) == expected


def test_kernel_test_modules_exist():
    names = {p.stem for p in (ROOT / "tests").glob("test_*.py")}
    assert tc.KERNEL_TEST_MODULES <= names and set(tc.CPU_RUN_MODULES) <= names


def test_every_kernel_test_module_runs_on_the_device():
    """Derived from the table of ops, so a new kernel's tests (and a kernel's second test file, such as
    the sm_90 TMA ones) run on the GPU under --device cuda without a list to keep up to date."""
    assert {"test_qkv", "test_qkv_tma", "test_attention", "test_attention_hopper", "test_attention_api",
            "test_gemv", "test_softmax", "test_gelu"} <= tc.KERNEL_TEST_MODULES
    assert not {"test_cost", "test_compiled", "test_audit", "test_validation"} & tc.KERNEL_TEST_MODULES
    assert tc.is_kernel_test_module("test_newop_edge_cases") is False


def test_fp32_attention_on_the_gpu_is_reported_as_interpreter_only():
    """What the conftest recognises is the launcher's own refusal (its text, not a drifting copy)."""
    import inspect

    from kernels.attention import _validate

    source = inspect.getsource(_validate)
    assert all(e in source for e in tc.INTERPRETER_ONLY_ERRORS)
    exc = TypeError("q: float32 is for CPU (interpreter) runs only; use float16 or bfloat16 on a GPU")
    assert tc.interpreter_only_failure(exc)
    assert not tc.interpreter_only_failure(ValueError(str(exc)))
    assert not tc.interpreter_only_failure(TypeError("q: dtype float64"))


def test_on_device_keeps_every_view():
    base = torch.arange(96, dtype=torch.float16).reshape(4, 6, 4)
    views = [base, base.transpose(0, 2), base[::2, ::2], base[1:, 2:], torch.ones(1, 8).expand(3, 8),
             torch.ones(8, 2).t(), base.view(-1)[5:29].view(4, 6)]
    moved = tc.on_device(({"x": views[0]}, [views[1], 3], *views[2:], "text"), "meta")
    flat = [moved[0]["x"], moved[1][0], *moved[2:-1]]
    assert moved[1][1] == 3 and moved[-1] == "text"
    for old, new in zip(views, flat, strict=True):
        assert new.device.type == "meta" and new.dtype == old.dtype
        layout = (new.shape, new.stride(), new.storage_offset())
        assert layout == (old.shape, old.stride(), old.storage_offset())
    same = tc.on_device(views[3], "cpu")  # the values, where they can be read
    assert torch.equal(same, views[3]) and same.stride() == views[3].stride()
    assert same.untyped_storage().data_ptr() != views[3].untyped_storage().data_ptr()
