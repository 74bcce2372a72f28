"""The static sm_80/sm_90 audit gates every shipped kernel config (issue 6).

The audit runs ONCE per test session, as ``python -m kernels.audit`` in a subprocess with
``TRITON_INTERPRET=0`` (this session imports kernels under the interpreter, and an interpreted kernel
cannot be compiled), writing JSON to a temporary directory. Each case of each kernel module is then a
parametrized test, so a failure names the kernel, variant, dtype, shape, config and architecture.
The cases are listed here from the same ``compile_cases(arch)`` functions, so a case the audit dropped
fails too. A kernel module that is missing or has no ``compile_cases`` is a failing test, not a skip.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernels.audit import SUPPORTED_ARCHS, AuditLine, exceptions, required_gates
from kernels.audit.gates import config_matches, waiver_key
from roofline.model.ops import KERNELS

ROOT = Path(__file__).resolve().parents[1]
# The case budget per op and architecture: CI compiles every case on 2 cores. 36 since every code path a
# launcher can pick is compiled (qkv: 32 cases on sm_90, 35 on sm_100; a TMA path ~2-3 s to compile here).
MAX_CASES_PER_KERNEL_ARCH = 36


def _enumerate() -> tuple[list, dict[str, str]]:
    """``(params, problems)``: one param per (kernel, arch, case index); problems per broken module."""
    params, problems = [], {}
    for name in KERNELS:
        try:
            module = importlib.import_module(f"kernels.{name}.cases")
            fn = module.compile_cases
            for arch in SUPPORTED_ARCHS:
                for i, case in enumerate(fn(arch)):
                    tag = f"sm{arch}" if isinstance(arch, int) else arch  # sm80-..., gfx942-...
                    params.append(pytest.param(name, arch, i, case.case_id, id=f"{tag}-{case.case_id}"))
        except Exception as exc:  # reported by test_every_kernel_module_has_compile_cases
            problems[name] = f"{type(exc).__name__}: {exc}"
    return params, problems


PARAMS, PROBLEMS = _enumerate()


@pytest.fixture(scope="session")
def audit_data(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("audit") / "audit.json"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "kernels.audit", "--json", str(out), "--quiet",
         "--arch", *(str(a) for a in SUPPORTED_ARCHS)],
        cwd=ROOT, env={**os.environ, "TRITON_INTERPRET": "0"}, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode in (0, 1), f"audit could not run (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    assert out.exists(), proc.stderr[-3000:]
    data = json.loads(out.read_text())
    data["test_wall_s"] = time.perf_counter() - start
    data["index"] = {(d["kernel"], d["arch"], d["index"]): AuditLine.from_dict(d) for d in data["lines"]}
    return data


def test_every_kernel_module_has_compile_cases():
    assert not PROBLEMS, f"kernel modules without usable compile_cases: {PROBLEMS}"
    for name in KERNELS:
        for arch in SUPPORTED_ARCHS:
            n = sum(1 for p in PARAMS if p.values[0] == name and p.values[1] == arch)
            assert 1 <= n <= MAX_CASES_PER_KERNEL_ARCH, f"kernels.{name}: {n} compile cases for sm_{arch}"


@pytest.mark.parametrize("kernel, arch, index, case_id", PARAMS)
def test_case_passes_gates(audit_data, kernel, arch, index, case_id):
    line = audit_data["index"].get((kernel, arch, index))
    assert line is not None, f"the audit has no line for {case_id} on sm_{arch}"
    assert line.case_id == case_id, f"the audit compiled {line.case_id}, the module lists {case_id}"
    assert line.compiled, f"sm_{arch}: {line.error}"
    assert not line.failures, f"{case_id} sm_{arch}: " + "; ".join(line.failures)


def test_audit_has_no_error_lines(audit_data):
    errors = [f"{d['case_id']}: {d['error']}" for d in audit_data["lines"] if d["index"] < 0]
    assert not errors, errors
    assert audit_data["summary"]["lines"] == len(PARAMS)


@pytest.mark.parametrize("key", list(required_gates()), ids=lambda k: f"{k[0]}/{k[1]}")
def test_required_gates_are_declared(audit_data, key):
    """The issue's gates are opted into: tensor cores for the GEMM family and attention, 128-bit loads
    for the memory-bound streams (at least one case per architecture; each declared gate then holds)."""
    kernel, variant = key
    for arch in SUPPORTED_ARCHS:
        lines = [v for (k, a, _), v in audit_data["index"].items()
                 if k == kernel and a == arch and variant in (v.variant, "*")]
        assert lines, f"no {kernel}/{variant} case for sm_{arch}"
        for gate in required_gates()[key]:
            assert any(gate in line.gates for line in lines), f"no {kernel}/{variant} case declares {gate}"


@pytest.mark.parametrize("key", list(exceptions()), ids=str)
def test_every_exception_is_needed(audit_data, key):
    """An exception must waive a gate that fails on some line; a stale or shadowed one fails here."""
    kernel, variant, gate, arch, condition = key
    used = [line for line in audit_data["index"].values()
            if line.kernel == kernel and variant in (line.variant, "*") and arch in (line.arch, "*")
            and config_matches(waiver_key(line), condition) and line.waived.get(gate) == exceptions()[key]]
    assert used, f"exception {key} waives nothing: remove it"
