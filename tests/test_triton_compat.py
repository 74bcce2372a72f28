"""kernels/_triton_compat.py: the triton < 3.7 interpreter fix for numpy >= 2.4 is installed exactly on
the tritons that need it, and a kernel with a runtime loop bound runs under the interpreter (on triton
3.6 with numpy 2.4 it fails without the fix: scripts/compat.sh 3.6.0 runs this file)."""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl

from kernels import _triton_compat as compat


@pytest.mark.parametrize("version,needed", [("3.3.1", True), ("3.6.0", True), ("3.7.0", False),
                                            ("3.9.0+git0abc", False), ("4.0.0", False)])
def test_needs_index_fix(version, needed):
    assert compat.needs_index_fix(version) is needed


def test_version_tuple_refuses_garbage():
    with pytest.raises(ValueError, match="version: expected a version like"):
        compat.version_tuple("nightly")


def test_apply_is_active_exactly_on_old_tritons_and_idempotent():
    expected = compat.needs_index_fix(triton.__version__)
    assert compat.apply() is expected
    assert compat.apply() is expected  # kernels/__init__ already applied it once


@triton.jit
def _sum_rows_kernel(x_ptr, out_ptr, n_rows, n_cols, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for r in range(n_rows):  # a runtime loop bound: int() of the interpreter's 1-element array
        acc += tl.load(x_ptr + r * n_cols + offs, mask=offs < n_cols, other=0.0)
    tl.store(out_ptr + offs, acc, mask=offs < n_cols)


def test_runtime_loop_bound_runs(device):
    x = torch.arange(15, dtype=torch.float32, device=device).reshape(5, 3)
    out = torch.empty(3, dtype=torch.float32, device=device)
    _sum_rows_kernel[(1,)](x, out, 5, 3, BLOCK=4)
    assert torch.equal(out, x.sum(0))
