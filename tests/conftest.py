"""Tests run every Triton kernel under the interpreter on CPU tensors.

Triton decides interpreter-or-compiler when ``@triton.jit`` decorates, so the variable is set at
configure time, before any test module imports a kernel. pytest loads this file under
``pytest --benchmark`` too (tests/ is a testpath), where it must leave the choice to the benchmark
plugin: on a GPU the kernels are compiled, not interpreted. The static sm_80/sm_90 audit needs the
compiler, so it runs in a subprocess with the interpreter off (see tests/test_audit*.py).
"""

import os

import pytest
import torch


def pytest_configure(config) -> None:
    if not config.getoption("--benchmark", default=False):
        os.environ["TRITON_INTERPRET"] = "1"


@pytest.fixture
def nan_filled_allocations(monkeypatch):
    """While a test runs, ``torch.empty`` returns NaN-filled floating tensors, so an output element a
    kernel never writes fails the comparison instead of passing on leftover memory."""
    real_empty = torch.empty

    def nan_empty(*args, **kwargs):
        t = real_empty(*args, **kwargs)
        return t.fill_(float("nan")) if t.is_floating_point() else t

    monkeypatch.setattr(torch, "empty", nan_empty)
