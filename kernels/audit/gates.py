"""The audit's gates, and their exceptions, in one place.

Universal gates (every case, every architecture):

- ``compiles``: the case compiles for the architecture.
- ``no_spills``: no register spills and no local memory: no ``STL``/``LDL`` in the SASS, a stack frame
  of 0 bytes and 0 bytes of local memory (``cuobjdump -res-usage``).
- ``shared_memory``: shared memory per block within the architecture's per-block maximum (166,912 B on
  sm_80, 232,448 B on sm_90; see :mod:`kernels.audit.occupancy`), so the launch cannot fail with
  Triton's ``OutOfResources``.

Gates a case opts into through ``CompileCase.gates``:

- ``tensor_cores``: the SASS has tensor-core MMAs, ``HMMA`` or ``HGMMA``, on every architecture.
- ``wgmma`` (implied by ``tensor_cores`` on sm_90): the sm_90 SASS has ``HGMMA`` (warpgroup MMA, the
  instruction that reaches H100's tensor peak). Triton lowers a ``tl.dot`` to ``wgmma`` only when the
  tile allows it (a warpgroup of 4 warps, at least 64 rows per warpgroup, operands it can stage in
  shared memory); otherwise it emits ``mma.sync`` (``HMMA``), which H100 runs at a fraction of its
  tensor peak. Where that is the principled choice (a decode tile with a handful of query rows, bound
  by memory anyway) the case gets an entry in :data:`EXCEPTIONS` that waives ``wgmma`` with a reason;
  ``tensor_cores`` still requires ``HMMA`` there.
- ``vec128_loads``: the memory-bound stream uses 128-bit global loads: at least one 128-bit ``LDG``
  (or ``LDGSTS``, when Triton pipelines the loads through async copies) and no 16- or 8-bit global load
  (a scalar 16-bit load is the signature of an unvectorised fp16/bf16 stream).

:data:`EXCEPTIONS` is the only place a gate can be waived. Every entry must be needed: the test suite
fails on an exception that matches no case or waives a gate that would pass anyway.
"""

from __future__ import annotations

from collections.abc import Mapping

from kernels.audit.compile import AuditLine
from kernels.audit.occupancy import LIMITS

UNIVERSAL_GATES: tuple[str, ...] = ("compiles", "no_spills", "shared_memory")
OPT_IN_GATES: tuple[str, ...] = ("tensor_cores", "wgmma", "vec128_loads")
ALL_GATES: tuple[str, ...] = UNIVERSAL_GATES + OPT_IN_GATES

# (kernel, variant, gate, arch) -> reason. ``variant`` may be "*" (every variant of the kernel).
# Keep each reason a sentence a reviewer can check against the kernel's docstring and the table.
EXCEPTIONS: dict[tuple[str, str, str, int], str] = {}


def applicable_gates(line: AuditLine) -> list[str]:
    """The gates that apply to ``line``: the universal ones, the case's own, and ``wgmma`` for a
    ``tensor_cores`` case on sm_90."""
    gates = list(UNIVERSAL_GATES)
    opted = set(line.gates)
    if "tensor_cores" in opted:
        gates.append("tensor_cores")
        if line.arch >= 90:
            gates.append("wgmma")
    if "wgmma" in opted and line.arch >= 90 and "wgmma" not in gates:
        gates.append("wgmma")
    if "vec128_loads" in opted:
        gates.append("vec128_loads")
    return gates


def gate_failure(gate: str, line: AuditLine) -> str | None:
    """Why ``line`` fails ``gate``, or ``None`` if it passes."""
    if gate == "compiles":
        return None if line.compiled else f"does not compile: {line.error}"
    if not line.compiled:
        return "not checked (did not compile)"
    if gate == "no_spills":
        found = {
            "STL (spill stores)": line.local_stores, "LDL (spill loads)": line.local_loads,
            "stack bytes": line.stack_bytes, "local bytes": line.local_bytes,
        }
        bad = [f"{k}={v}" for k, v in found.items() if v]
        return None if not bad else "uses local memory: " + ", ".join(bad)
    if gate == "shared_memory":
        limit = LIMITS[line.arch].smem_per_block
        used = line.shared_bytes or 0
        return None if used <= limit else f"shared memory {used} B > sm_{line.arch} per-block limit {limit} B"
    if gate == "tensor_cores":
        n = line.count("HMMA") + line.count("HGMMA")
        return None if n else "no tensor-core instruction (HMMA/HGMMA) in the SASS"
    if gate == "wgmma":
        if line.count("HGMMA"):
            return None
        return f"no HGMMA (wgmma) in the sm_{line.arch} SASS (HMMA: {line.count('HMMA')})"
    if gate == "vec128_loads":
        if line.wide_loads and not line.narrow_loads:
            return None
        ldg = "/".join(str(line.ldg_bits.get(w, 0)) for w in ("128", "64", "32", "16", "8"))
        return (f"global loads not 128-bit: {line.wide_loads} 128-bit, {line.narrow_loads} 16/8-bit "
                f"(LDG 128/64/32/16/8 = {ldg})")
    raise ValueError(f"gate: unknown gate {gate!r}, expected one of {list(ALL_GATES)}")


def exception_for(line: AuditLine, gate: str,
                  exceptions: Mapping[tuple[str, str, str, int], str] | None = None) -> str | None:
    """The reason ``gate`` is waived for ``line``, or ``None``."""
    table = EXCEPTIONS if exceptions is None else exceptions
    for variant in (line.variant, "*"):
        reason = table.get((line.kernel, variant, gate, line.arch))
        if reason:
            return reason
    return None


def check_gates(line: AuditLine, case: object | None = None, *,
                exceptions: Mapping[tuple[str, str, str, int], str] | None = None) -> list[str]:
    """Every gate ``line`` fails, as ``"<gate>: <why>"`` strings (empty when all pass).

    Waived gates (see :data:`EXCEPTIONS`) are recorded in ``line.waived`` instead. ``line.failures`` is
    set to the result. ``case`` (the :class:`~kernels._common.CompileCase`) is optional: when given, its
    ``gates`` replace the line's.
    """
    if case is not None:
        line.gates = sorted(getattr(case, "gates", line.gates))
    failures: list[str] = []
    waived: dict[str, str] = {}
    # A case that does not compile fails `compiles` only: nothing else can be checked.
    for gate in applicable_gates(line) if line.compiled else ["compiles"]:
        why = gate_failure(gate, line)
        if why is None:
            continue
        reason = exception_for(line, gate, exceptions) if gate != "compiles" else None
        if reason:
            waived[gate] = reason
        else:
            failures.append(f"{gate}: {why}")
    line.failures = failures
    line.waived = waived
    return failures
