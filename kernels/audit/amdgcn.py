"""Reading AMDGCN assembly (what Triton's HIP backend returns as ``compiled.asm["amdgcn"]`` for gfx942 and
gfx950, with no ROCm installed) into the audit's evidence.

The resource figures come from the comments and metadata LLVM's AMDGPU backend prints after the kernel:
``; NumVgprs:``, ``; NumAgprs:``, ``; TotalNumSgprs:``, ``; ScratchSize:`` (private bytes per work-item:
spills and stack arrays), ``; Occupancy:`` (waves per SIMD the registers allow, as the compiler computed
it; it does not know the LDS Triton allocates at launch) and ``.vgpr_spill_count``/``.sgpr_spill_count``.

The instructions are mapped onto the audit's SASS vocabulary so the gates and the loop metric
(:mod:`kernels.audit.efficiency`) read one form: ``v_mfma_*``/``v_smfmac_*`` -> ``MFMA``;
``global_load_*``/``buffer_load_*`` -> ``LDG.<bits>`` (``dwordx4`` is 128 bits); ``global_store_*``/
``buffer_store_*`` -> ``STG.<bits>``; ``global_load_lds_*``/``buffer_load_*  ... lds`` (direct-to-LDS, gfx950)
-> ``LDGSTS.<bits>``; ``scratch_load_*``/``scratch_store_*`` -> ``LDL``/``STL``; ``ds_read*``/``ds_write*`` ->
``LDS``/``STS``; ``s_branch``/``s_cbranch_*`` -> ``BRA`` (conditional ones predicated); ``s_nop`` -> ``NOP``,
``s_sleep`` -> ``NANOSLEEP``; ``s_barrier`` -> ``BAR``. Addresses are instruction indexes (AMDGCN text has
no byte offsets); a branch to a label defined earlier closes a loop, as a backward ``BRA`` does in SASS.
Pure functions over text: ``tests/test_audit_amdgcn.py`` checks them on a stored snippet.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from kernels._lib.device import ARCHS
from kernels.audit.efficiency import Instruction
from kernels.audit.sass import COUNTED_OPCODES, WIDTHS, SassSummary, access_width

_FIELDS = {
    "vgprs": re.compile(r"^;\s*NumVgprs:\s*(\d+)", re.MULTILINE),
    "agprs": re.compile(r"^;\s*NumAgprs:\s*(\d+)", re.MULTILINE),
    "sgprs": re.compile(r"^;\s*TotalNumSgprs:\s*(\d+)", re.MULTILINE),
    "scratch_bytes": re.compile(r"^;\s*ScratchSize:\s*(\d+)", re.MULTILINE),
    "waves_per_simd": re.compile(r"^;\s*Occupancy:\s*(\d+)", re.MULTILINE),
    "vgpr_spills": re.compile(r"^\s*\.vgpr_spill_count:\s*(\d+)", re.MULTILINE),
    "sgpr_spills": re.compile(r"^\s*\.sgpr_spill_count:\s*(\d+)", re.MULTILINE),
}
# the audit's name for a matrix instruction on AMD: the table's opcode for its MFMA class
_MATRIX_OPCODE = next(s.mma_opcodes[0] for s in ARCHS.values() if s.backend == "hip")
_LABEL_RE = re.compile(r"^([.\w$]+):")
_WIDTH_SUFFIX = {"dwordx4": 128, "b128": 128, "dwordx3": 96, "b96": 96, "dwordx2": 64, "b64": 64,
                 "dword": 32, "b32": 32, "ushort": 16, "sshort": 16, "short": 16, "b16": 16,
                 "ubyte": 8, "sbyte": 8, "byte": 8, "b8": 8}


@dataclass(frozen=True)
class AmdResources:
    """The kernel's registers per lane (VGPRs, AGPRs), scalar registers per wave, scratch bytes per
    work-item, the compiler's waves per SIMD and the spill counts."""

    vgprs: int
    agprs: int
    sgprs: int
    scratch_bytes: int
    waves_per_simd: int
    vgpr_spills: int
    sgpr_spills: int


def parse_resources(text: str) -> AmdResources:
    """The resource figures of the (first) kernel in ``text``; ``ValueError`` naming a missing one."""
    values = {}
    for name, pattern in _FIELDS.items():
        m = pattern.search(text)
        if m is None:
            raise ValueError(f"amdgcn: no {pattern.pattern!r} line in the assembly")
        values[name] = int(m.group(1))
    return AmdResources(**values)


def _bits(opcode: str) -> int:
    """Bits per work-item of a memory opcode, from its suffix (``global_load_dwordx4`` -> 128)."""
    for part in reversed(opcode.split("_")):
        if part in _WIDTH_SUFFIX:
            return min(_WIDTH_SUFFIX[part], 128) if _WIDTH_SUFFIX[part] != 96 else 64
        if part.startswith("d16"):
            return 16
    return 32


def _width_mod(bits: int) -> str:
    return {128: ".128", 64: ".64", 16: ".U16", 8: ".U8"}.get(bits, "")


def canonical(opcode: str, operands: str) -> tuple[str, bool]:
    """``(audit opcode, is a conditional branch)`` for one AMDGCN mnemonic and its operand text."""
    if opcode.startswith(("v_mfma", "v_smfmac")):
        return _MATRIX_OPCODE, False
    if opcode.startswith(("global_load_lds", "buffer_load")) and (
            "lds" in opcode or re.search(r"\blds\b", operands)):
        return "LDGSTS" + _width_mod(_bits(opcode.replace("_lds", ""))), False
    if opcode.startswith(("global_load", "buffer_load")):
        return "LDG" + _width_mod(_bits(opcode)), False
    if opcode.startswith(("global_store", "buffer_store")):
        return "STG" + _width_mod(_bits(opcode)), False
    if opcode.startswith(("global_atomic", "buffer_atomic")):
        return "ATOMG", False
    if opcode.startswith("scratch_load"):
        return "LDL", False
    if opcode.startswith("scratch_store"):
        return "STL", False
    if opcode.startswith(("ds_read", "ds_load")):
        return "LDS", False
    if opcode.startswith(("ds_write", "ds_store")):
        return "STS", False
    if opcode == "s_branch":
        return "BRA", False
    if opcode.startswith("s_cbranch"):
        return "BRA", True
    if opcode == "s_nop":
        return "NOP", False
    if opcode == "s_sleep":
        return "NANOSLEEP", False
    if opcode == "s_barrier":
        return "BAR", False
    return opcode, False


def parse_instructions(text: str) -> list[Instruction]:
    """The instructions of the kernel body (up to ``s_endpgm``), addresses being their indexes; a branch's
    ``target`` is the index of the first instruction after its label."""
    raw: list[tuple[str, str]] = []
    labels: dict[str, int] = {}
    started = False
    for line in text.splitlines():
        code = line.split(";", 1)[0].strip()
        if not code:
            continue
        m = _LABEL_RE.match(code)
        if m:
            labels[m.group(1)] = len(raw)
            started = started or not m.group(1).startswith(".")
            continue
        if not started or code.startswith("."):
            continue
        mnemonic, _, operands = code.partition(" ")
        raw.append((mnemonic.strip(), operands.strip()))
        if mnemonic == "s_endpgm":
            break
    out = []
    for index, (mnemonic, operands) in enumerate(raw):
        opcode, conditional = canonical(mnemonic, operands)
        target = labels.get(operands.split(",")[0].strip()) if opcode == "BRA" else None
        out.append(Instruction(index, opcode, conditional, target))
    return out


def summarize(instrs: list[Instruction]) -> SassSummary:
    """The audit's instruction evidence (counted opcodes, global access widths) of ``instrs``."""
    opcodes: Counter = Counter()
    widths: dict[str, Counter] = {"LDG": Counter(), "STG": Counter(), "LDGSTS": Counter()}
    for ins in instrs:
        if ins.base in COUNTED_OPCODES:
            opcodes[ins.base] += 1
        if ins.base in widths:
            widths[ins.base][access_width(ins.opcode)] += 1
    return SassSummary(
        opcodes=dict(sorted(opcodes.items())),
        ldg_bits={str(w): widths["LDG"].get(w, 0) for w in WIDTHS},
        stg_bits={str(w): widths["STG"].get(w, 0) for w in WIDTHS},
        ldgsts_bits={str(w): widths["LDGSTS"].get(w, 0) for w in WIDTHS},
        instructions=len(instrs),
    )
