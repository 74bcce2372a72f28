"""The audit's gates, the gates each kernel must carry, and the exceptions: all in this one file.

Universal gates (every case, every architecture):

- ``compiles``: the case compiles for the architecture (a case that does not compile is checked for
  nothing else).
- ``no_spills``: no register spills and no local memory: no ``STL``/``LDL`` in the SASS, a stack frame
  of 0 bytes and 0 bytes of local memory (``cuobjdump -res-usage``).
- ``shared_memory``: shared memory per block within the architecture's per-block maximum (166,912 B on
  sm_80, 232,448 B on sm_90; see :mod:`kernels.audit.occupancy`), so the launch cannot fail with
  Triton's ``OutOfResources``.

Gates a case opts into through ``CompileCase.gates``:

- ``tensor_cores``: the SASS has tensor-core MMAs, ``HMMA`` or ``HGMMA``, on every architecture.
- ``wgmma`` (implied by ``tensor_cores`` on sm_90): the sm_90 SASS has ``HGMMA`` (warpgroup MMA, the
  instruction that reaches H100's tensor peak). Triton lowers a ``tl.dot`` to ``wgmma`` only when the
  tile allows it (a warpgroup of 4 warps with at least 64 rows of the tile per warpgroup, operands it
  can stage in shared memory); otherwise it emits ``mma.sync`` (``HMMA``), which H100 runs well below
  its tensor peak. Where a small tile is the principled choice (decode: a handful of rows, bound by
  memory anyway) :data:`EXCEPTIONS` waives ``wgmma`` for exactly those configs, with the reason;
  ``tensor_cores`` still requires ``HMMA`` there.
- ``vec128_loads``: the stream uses 128-bit global loads: at least :data:`VEC128_MIN_FRACTION` of the
  global-load bits in the SASS (static count x width over ``LDG`` and ``LDGSTS``; Triton pipelines loop
  loads through ``LDGSTS`` async copies) come from 128-bit instructions. A scalar side load (a bias
  element, a length) is allowed; an unvectorised 16-bit stream (8 x the instructions of a 128-bit
  one) is not. A stream loaded by TMA (``UTMALDG``: whole tiles copied to shared memory) passes.

:data:`REQUIRED_GATES` names, per kernel variant, the gates the issue requires it to carry (tensor cores
for the GEMM family and attention, 128-bit loads for the memory-bound streams); the test suite checks
each variant declares them on its cases. :data:`EXCEPTIONS` is the only place a gate can be waived, and
every entry must be needed: the tests fail on an exception that matches no case or waives nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kernels.audit.compile import AuditLine
from kernels.audit.occupancy import LIMITS

UNIVERSAL_GATES: tuple[str, ...] = ("compiles", "no_spills", "shared_memory")
OPT_IN_GATES: tuple[str, ...] = ("tensor_cores", "wgmma", "vec128_loads")
ALL_GATES: tuple[str, ...] = UNIVERSAL_GATES + OPT_IN_GATES

VEC128_MIN_FRACTION = 0.75

# (kernel, variant) -> gates that variant's cases must declare (on at least one case per architecture;
# a variant's cases may legitimately drop vec128_loads at an unaligned shape, e.g. softmax rows of 50257).
REQUIRED_GATES: dict[tuple[str, str], frozenset[str]] = {
    ("qkv", "fused"): frozenset({"tensor_cores"}),
    ("attention", "prefill"): frozenset({"tensor_cores"}),
    ("attention", "splitkv"): frozenset({"tensor_cores", "vec128_loads"}),  # the decode KV stream
}

# (kernel, variant, gate, arch, condition) -> reason. ``variant`` may be "*" (every variant);
# ``condition`` is "*" (every config), "NAME=VALUE" or "NAME<VALUE" on a part of the config id.
# Keep each reason a sentence a reviewer can check against the kernel's docstring and the table.
EXCEPTIONS: dict[tuple[str, str, str, int, str], str] = {
    # Triton lowers a tl.dot to wgmma (HGMMA) only for tiles of at least 64 rows (a multiple of 64 per
    # warpgroup of 4 warps); smaller tiles get mma.sync (HMMA), seen in this audit for 16- and 32-row
    # tiles and in tests/audit_fixtures.py (bad_wgmma). The decode paths below choose small tiles
    # on purpose: their rows are the new tokens (or a GQA group's query heads), and they are bound by the
    # weight or KV stream, not the tensor-core rate, so padding to 64 rows would waste >= half of every
    # MMA for no gain in bandwidth. tensor_cores still requires HMMA on them.
    ("qkv", "fused", "wgmma", 90, "BLOCK_M<64"):
        "decode tiles (M = batch x new tokens <= 32 rows): weight-stream bound; Triton needs >= 64 rows "
        "for wgmma, so these run HMMA on H100",
    ("attention", "splitkv", "wgmma", 90, "BLOCK_M<64"):
        "decode query tile = one GQA group's query rows padded to 16: KV-stream bound; Triton needs "
        ">= 64 rows for wgmma, so the QK^T and PV dots run HMMA on H100",
}

_CONDITION_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)([=<])(-?\d+|\w+)$")


def config_matches(config: str, condition: str) -> bool:
    """Whether a config id (``BLOCK_M=16,...,num_stages=4``) satisfies an exception's condition."""
    if condition == "*":
        return True
    m = _CONDITION_RE.match(condition)
    if not m:
        raise ValueError(f"condition: expected '*', 'NAME=VALUE' or 'NAME<VALUE', got {condition!r}")
    name, op, value = m.groups()
    parts = dict(p.split("=", 1) for p in config.split(",") if "=" in p)
    if name not in parts:
        return False
    if op == "=":
        return parts[name] == value
    try:
        return float(parts[name]) < float(value)
    except ValueError:
        return False


def applicable_gates(line: AuditLine) -> list[str]:
    """The gates that apply to ``line``: the universal ones, the case's own, and ``wgmma`` for a
    ``tensor_cores`` case on sm_90."""
    gates = list(UNIVERSAL_GATES)
    opted = set(line.gates)
    if "tensor_cores" in opted:
        gates.append("tensor_cores")
    if ("tensor_cores" in opted or "wgmma" in opted) and line.arch >= 90:
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
        if line.count("UTMALDG"):
            return None  # the stream comes by TMA: whole tiles per copy, no per-thread width
        frac = line.wide_load_fraction
        if line.wide_loads and frac >= VEC128_MIN_FRACTION:
            return None
        ldg = "/".join(str(line.ldg_bits.get(w, 0)) for w in ("128", "64", "32", "16", "8"))
        return (f"{frac:.0%} of global-load bits in 128-bit loads (< {VEC128_MIN_FRACTION:.0%}); "
                f"LDG 128/64/32/16/8 = {ldg}, LDGSTS.128 = {line.ldgsts_bits.get('128', 0)}")
    raise ValueError(f"gate: unknown gate {gate!r}, expected one of {list(ALL_GATES)}")


def exception_for(line: AuditLine, gate: str,
                  exceptions: Mapping[tuple[str, str, str, int, str], str] | None = None) -> str | None:
    """The reason ``gate`` is waived for ``line``, or ``None``. ``compiles`` is never waived."""
    if gate == "compiles":
        return None
    table = EXCEPTIONS if exceptions is None else exceptions
    for (kernel, variant, g, arch, condition), reason in table.items():
        if (kernel == line.kernel and variant in (line.variant, "*") and g == gate and arch == line.arch
                and config_matches(line.config, condition)):
            return reason
    return None


def check_gates(line: AuditLine, case: object | None = None, *,
                exceptions: Mapping[tuple[str, str, str, int, str], str] | None = None) -> list[str]:
    """Every gate ``line`` fails, as ``"<gate>: <why>"`` strings (empty when all pass).

    Waived gates (see :data:`EXCEPTIONS`) are recorded in ``line.waived`` instead. ``line.failures`` is
    set to the result. ``case`` (the :class:`~kernels._lib.aot.CompileCase`) is optional: when given, its
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
        reason = exception_for(line, gate, exceptions)
        if reason:
            waived[gate] = reason
        else:
            failures.append(f"{gate}: {why}")
    line.failures = failures
    line.waived = waived
    return failures
