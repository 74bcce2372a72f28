"""The audit's gates, and how the gates each kernel must carry and its waivers are collected from the
ops' ``cases.py``.

Universal gates (every case, every architecture):

- ``compiles``: the case compiles for the architecture (a case that does not compile is checked for
  nothing else).
- ``no_spills``: no register spills and no local memory: no ``STL``/``LDL`` in the SASS, a stack frame
  of 0 bytes and 0 bytes of local memory (``cuobjdump -res-usage``).
- ``shared_memory``: shared memory per block within the architecture's per-block maximum (166,912 B on
  sm_80, 232,448 B on sm_90 and sm_100, 101,376 B on sm_120, 64 KiB of LDS on gfx942, 160 KiB on gfx950;
  :mod:`roofline.model.arch`), so the launch cannot fail with Triton's ``OutOfResources``.

On AMD (gfx942, gfx950) ``no_spills`` reads the AMDGCN's ``.vgpr_spill_count``, ``ScratchSize`` and
``scratch_*`` instructions. SGPRs spilled into VGPR lanes (``v_writelane``/``v_readlane``, counted as
``sgpr_spills``) are reported, not gated: they move no memory, and an SGPR spill that needs memory shows
as scratch. The architecture's row may add gates every case carries there (:data:`ARCH_GATES`):

- ``occupancy``: at least ``ArchSpec.min_waves_per_simd`` resident waves per SIMD (AMD rows: 2), from the
  compiler's register occupancy and the LDS per CU (:func:`kernels.audit.occupancy.amd_occupancy`).

Gates a case opts into through ``CompileCase.gates``:

- ``tensor_cores``: the SASS has tensor-core MMAs of any class the architecture table names
  (``HMMA``, ``HGMMA``, ``UTC*MMA``), on every architecture.
- the architecture's MMA-class gate (``ArchSpec.mma_gate``, implied by ``tensor_cores``): ``wgmma`` on
  sm_90 (the SASS has ``HGMMA``, the warpgroup MMA that reaches H100's tensor peak) and ``tcgen05`` on
  sm_100 (``UTCHMMA`` and its fp8/int8/fp4 siblings: the tensor-memory MMA of B200); none on sm_80 and
  sm_120, whose widest class is ``mma.sync`` (``HMMA``, required by ``tensor_cores``). Triton lowers a
  ``tl.dot`` to wgmma/tcgen05 only when the tile allows it (``ArchSpec.native_mma_min_rows``: at least
  64 rows per warpgroup of 4 warps, operands it can stage in shared memory); otherwise it emits
  ``mma.sync`` (``HMMA``), which those GPUs run well below their tensor peak. Where a small tile is the
  principled choice (decode: a handful of rows, bound by memory anyway) :func:`exceptions` waives the
  class gate for exactly those configs, with the reason; ``tensor_cores`` still requires ``HMMA`` there.
- ``vec128_loads``: the stream uses 128-bit global loads: at least :data:`VEC128_MIN_FRACTION` of the
  global-load bits in the SASS (static count x width over ``LDG`` and ``LDGSTS``; Triton pipelines loop
  loads through ``LDGSTS`` async copies) come from 128-bit instructions. A scalar side load (a bias
  element, a length) is allowed; an unvectorised 16-bit stream (8 x the instructions of a 128-bit
  one) is not. A stream loaded by TMA (``UTMALDG``: whole tiles copied to shared memory) passes.

:func:`required_gates` names, per kernel variant, the gates the issue requires it to carry (tensor cores
for the GEMM family and attention, 128-bit loads for the memory-bound streams); the test suite checks
each variant declares them on its cases. :func:`exceptions` is the only place a gate can be waived, and
every entry must be needed: the tests fail on an exception that matches no case or waives nothing.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Mapping
from types import ModuleType

from kernels._lib.device import MMA_GATES, MMA_OPCODES, arch_label
from kernels.audit.compile import AuditLine
from kernels.audit.occupancy import LIMITS
from roofline.model.ops import KERNELS

UNIVERSAL_GATES: tuple[str, ...] = ("compiles", "no_spills", "shared_memory")
OPT_IN_GATES: tuple[str, ...] = ("tensor_cores", *MMA_GATES, "vec128_loads")
# Gates every case carries on an architecture whose row asks for them (AMD: the occupancy floor).
ARCH_GATES: tuple[str, ...] = ("occupancy",)
ALL_GATES: tuple[str, ...] = UNIVERSAL_GATES + OPT_IN_GATES + ARCH_GATES

VEC128_MIN_FRACTION = 0.75


def _cases_modules() -> dict[str, ModuleType]:
    return {name: importlib.import_module(f"kernels.{name}.cases") for name in KERNELS}


@functools.cache
def required_gates() -> dict[tuple[str, str], frozenset[str]]:
    """``(kernel, variant) -> gates`` that variant's cases must declare (on at least one case per
    architecture; a case may drop ``vec128_loads`` at an unaligned shape, e.g. softmax rows of 50257).
    Each op declares its own in ``kernels/<op>/cases.py`` (``REQUIRED_GATES``, variant ``"*"`` = all)."""
    return {(kernel, variant): frozenset(gates) for kernel, module in _cases_modules().items()
            for variant, gates in module.REQUIRED_GATES.items()}


@functools.cache
def exceptions() -> dict[tuple[str, str, str, int, str], str]:
    """``(kernel, variant, gate, arch, condition) -> reason``: every waiver, collected from each op's
    ``kernels/<op>/cases.py`` (``GATE_EXCEPTIONS``, keyed ``(variant, gate, arch, condition)``).

    ``variant`` may be ``"*"`` (every variant), ``arch`` ``"*"`` (every architecture the gate applies to:
    a waiver of an MMA-class gate is a fact about the class, so it covers each architecture of that
    class); ``condition`` is ``"*"`` (every config), ``"NAME=VALUE"`` or
    ``"NAME<VALUE"`` on a part of the config id. The waivers in use are for the MMA-class gates
    (``wgmma``, ``tcgen05``): Triton lowers a ``tl.dot`` to those only for tiles of at least 64 rows per
    warpgroup of 4 warps; smaller tiles get mma.sync, as ``tests/audit_fixtures.py`` (``bad_wgmma``)
    shows. Decode paths choose small tiles on purpose (their rows are the new tokens, or a GQA group's
    query heads, and they are bound by the weight or KV stream), and ``tensor_cores`` still requires
    mma.sync on them.
    """
    return {(kernel, *key): reason for kernel, module in _cases_modules().items()
            for key, reason in module.GATE_EXCEPTIONS.items()}


_CONDITION_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)([=<])(-?\d+|\w+)$")


def config_matches(config: str, condition: str) -> bool:
    """Whether a config id (``BLOCK_M=16,...,num_stages=4``, plus ``,dtype=fp16`` as
    :func:`waiver_key` adds it) satisfies an exception's condition."""
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
    """The gates that apply to ``line``: the universal ones, the case's own, and the architecture's
    MMA-class gate (``wgmma`` on sm_90, ``tcgen05`` on sm_100) for a ``tensor_cores`` case."""
    gates = list(UNIVERSAL_GATES)
    opted = set(line.gates)
    if "tensor_cores" in opted:
        gates.append("tensor_cores")
    class_gate = LIMITS[line.arch].mma_gate
    if class_gate and ("tensor_cores" in opted or class_gate in opted):
        gates.append(class_gate)
    if "vec128_loads" in opted:
        gates.append("vec128_loads")
    if LIMITS[line.arch].min_waves_per_simd:
        gates.append("occupancy")
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
            "spilled registers": line.spilled_registers,
        }
        bad = [f"{k}={v}" for k, v in found.items() if v]
        return None if not bad else "uses local memory: " + ", ".join(bad)
    if gate == "shared_memory":
        limit = LIMITS[line.arch].smem_per_block
        used = line.shared_bytes or 0
        return None if used <= limit else \
            f"shared memory {used} B > {arch_label(line.arch)} per-block limit {limit} B"
    if gate == "tensor_cores":
        n = sum(line.count(op) for op in MMA_OPCODES)
        return None if n else f"no tensor-core instruction ({'/'.join(MMA_OPCODES)}) in the SASS"
    if gate in MMA_GATES:
        spec = LIMITS[line.arch]
        if spec.mma_gate == gate and any(line.count(op) for op in spec.mma_opcodes):
            return None
        found = ", ".join(f"{op}: {line.count(op)}" for op in MMA_OPCODES if line.count(op)) or "none"
        wanted = "/".join(spec.mma_opcodes) if spec.mma_gate == gate else f"the {gate} class"
        return f"no {wanted} ({gate}) in the {arch_label(line.arch)} SASS (tensor-core instructions: {found})"
    if gate == "vec128_loads":
        if line.count("UTMALDG"):
            return None  # the stream comes by TMA: whole tiles per copy, no per-thread width
        frac = line.wide_load_fraction
        if line.wide_loads and frac >= VEC128_MIN_FRACTION:
            return None
        ldg = "/".join(str(line.ldg_bits.get(w, 0)) for w in ("128", "64", "32", "16", "8"))
        return (f"{frac:.0%} of global-load bits in 128-bit loads (< {VEC128_MIN_FRACTION:.0%}); "
                f"LDG 128/64/32/16/8 = {ldg}, LDGSTS.128 = {line.ldgsts_bits.get('128', 0)}")
    if gate == "occupancy":
        floor = LIMITS[line.arch].min_waves_per_simd
        occ = line.occupancy or {}
        waves = occ.get("waves_per_simd") or 0
        return None if waves >= floor else (
            f"{waves} resident waves per SIMD < floor {floor} on {arch_label(line.arch)} "
            f"(limited by {occ.get('limiter', '?')}: {occ.get('blocks_by')} workgroups per CU)")
    raise ValueError(f"gate: unknown gate {gate!r}, expected one of {list(ALL_GATES)}")


def waiver_key(line: AuditLine) -> str:
    """What an exception's condition is matched against: the config id and the dtype
    (``...,num_stages=2,dtype=fp32``), so a waiver can name a dtype (``"dtype=fp32"``)."""
    return f"{line.config},dtype={line.dtype}"


def exception_for(line: AuditLine, gate: str,
                  waivers: Mapping[tuple[str, str, str, int, str], str] | None = None) -> str | None:
    """The reason ``gate`` is waived for ``line`` (from ``waivers``, default :func:`exceptions`), or
    ``None``. ``compiles`` is never waived."""
    if gate == "compiles":
        return None
    table = exceptions() if waivers is None else waivers
    for (kernel, variant, g, arch, condition), reason in table.items():
        if (kernel == line.kernel and variant in (line.variant, "*") and g == gate
                and arch in (line.arch, "*") and config_matches(waiver_key(line), condition)):
            return reason
    return None


def check_gates(line: AuditLine, case: object | None = None, *,
                waivers: Mapping[tuple[str, str, str, int, str], str] | None = None) -> list[str]:
    """Every gate ``line`` fails, as ``"<gate>: <why>"`` strings (empty when all pass).

    Waived gates (see :func:`exceptions`) are recorded in ``line.waived`` instead. ``line.failures`` is
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
        reason = exception_for(line, gate, waivers)
        if reason:
            waived[gate] = reason
        else:
            failures.append(f"{gate}: {why}")
    line.failures = failures
    line.waived = waived
    return failures
