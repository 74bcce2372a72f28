"""The peers' anchors (``python -m kernels.audit.anchors``): extracting a tutorial's ``@triton.jit``
functions from its source, and the command's skip when the tutorials are not on this machine. The
compile itself needs the tutorials (not in the repository); the numbers it gives are in the kernels'
DESIGN.md files."""

from __future__ import annotations

import ast

import pytest

from kernels.audit.anchors import ATTENTION_FILE, MATMUL_FILE, default_tutorials_dir, jit_source, main

# A made-up tutorial: host-side helpers, an autotuned kernel with launch metadata, a plain jit helper.
SNIPPET = '''
import torch
import triton
import triton.language as tl

DEVICE = triton.runtime.driver.active.get_active_torch_device()


def is_blackwell():
    return torch.cuda.get_device_capability()[0] == 10


@triton.jit
def _helper(x, SCALE: tl.constexpr):
    return x * SCALE


@triton.autotune(configs=[triton.Config({"BLOCK": 64})], key=["n"])
@triton.jit(launch_metadata=lambda grid, kernel, args: {})
def _kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, _helper(tl.load(x_ptr + offs), 2), mask=offs < n)


class _Launcher:
    pass
'''


def test_jit_source_keeps_only_the_jit_functions_under_a_plain_decorator():
    out = jit_source(SNIPPET)
    tree = ast.parse(out)
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert [f.name for f in funcs] == ["_helper", "_kernel"]
    for f in funcs:
        assert [ast.unparse(d) for d in f.decorator_list] == ["triton.jit"]
    assert "autotune" not in out and "launch_metadata" not in out
    assert "get_active_torch_device" not in out and "is_blackwell" not in out and "_Launcher" not in out
    assert out.startswith("import triton\nimport triton.language as tl\n")
    assert "tl.store(x_ptr + offs, _helper(tl.load(x_ptr + offs), 2), mask=offs < n)" in out


def test_jit_source_refuses_a_file_without_kernels():
    with pytest.raises(ValueError, match="no top-level @triton.jit"):
        jit_source("import triton\n\ndef f():\n    return 1\n")


def test_the_command_skips_with_a_reason_when_the_tutorials_are_absent(tmp_path, capsys):
    (tmp_path / ATTENTION_FILE).write_text(SNIPPET)  # one of the two only
    assert main(["--tutorials", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and MATMUL_FILE in out and ATTENTION_FILE not in out.split("skipped")[1]


def test_the_tutorials_directory_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RIDGEBENCH_TRITON_TUTORIALS", str(tmp_path))
    assert default_tutorials_dir() == tmp_path
    monkeypatch.delenv("RIDGEBENCH_TRITON_TUTORIALS")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_tutorials_dir() == tmp_path / "ridgebench" / "triton-tutorials"


def test_the_anchors_are_built_without_the_tutorials():
    """Both anchor lists build on this machine (no GPU, no tutorial source): tutorial 09 persistent over
    the B200 preset's SMs on the QKV shape, tutorial 06 on the prefill shape."""
    from kernels.audit.anchors import GEMM_PRESET, GEMM_SHAPE, attention_anchors, matmul_anchors
    from roofline.model.hardware import get_preset

    matmul = matmul_anchors()
    assert matmul and {a.constexprs["NUM_SMS"] for a in matmul} == {get_preset(GEMM_PRESET).sm_count}
    assert all(a.k_steps == GEMM_SHAPE["k"] // a.tiles["BLOCK_K"] for a in matmul)
    assert matmul_anchors(n_sms=7)[0].constexprs["NUM_SMS"] == 7
    assert all(a.kernel == "attention" for a in attention_anchors())
