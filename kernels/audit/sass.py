"""Reading a cubin: ``cuobjdump`` (shipped in the triton wheel) and parsers for its output.

``cuobjdump -res-usage -sass <cubin>`` prints, per function, a resource line
(``REG:40 STACK:0 SHARED:0 LOCAL:0 ...``) and the SASS. From the SASS the audit counts:

- tensor-core instructions: every MMA class the architecture table names (:data:`MMA_OPCODES`:
  ``mma.sync``, ``wgmma``, ``tcgen05``; :mod:`roofline.model.arch` lists their SASS opcodes);
- asynchronous copies: ``LDGSTS`` (``cp.async``, sm_80+) and the TMA/bulk-copy unit (sm_90 and later)
  (``UTMALDG``/``UTMASTG``/``UTMAPF``/``UBLKCP``);
- local-memory traffic: ``STL``/``LDL`` (register spills and stack arrays);
- the width of every global load/store (``LDG``/``STG``, and ``LDGSTS`` for async copies), from the
  opcode modifiers: ``.128``/``.64``, ``.U16``/``.S16``, ``.U8``/``.S8``, otherwise 32 bits.

The parsers are pure functions over text so they can be unit-tested on captured output.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kernels._lib.device import MMA_OPCODES

WIDTHS: tuple[int, ...] = (128, 64, 32, 16, 8)

# Opcodes (the part before the first '.') the audit counts.
COUNTED_OPCODES: tuple[str, ...] = MMA_OPCODES + (
    "LDGSTS", "LDGDEPBAR", "UTMALDG", "UTMASTG", "UTMAPF", "UBLKCP",
    "LDSM", "STL", "LDL", "LDG", "STG", "RED", "ATOM", "ATOMG", "REDG", "BAR", "SHFL",
)
TMA_OPCODES: tuple[str, ...] = ("UTMALDG", "UTMASTG", "UTMAPF", "UBLKCP")

_RESOURCE_RE = re.compile(r"^\s*Function\s+(\S+?):?\s*$")
_FIELD_RE = re.compile(r"([A-Z_]+(?:\[\d+\])?):(\d+)")
# A SASS instruction line: "/*0120*/   @!P0 LDG.E.128 R8, desc[UR4][R2.64] ;"
_SASS_RE = re.compile(r"^\s*/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)")


@dataclass(frozen=True)
class ResourceUsage:
    """One function's line of ``cuobjdump -res-usage``: registers per thread and bytes of stack,
    static shared memory and local memory per thread."""

    function: str
    registers: int
    stack_bytes: int
    static_shared_bytes: int
    local_bytes: int


def parse_resource_usage(text: str) -> list[ResourceUsage]:
    """Every ``Function <name>:`` block of ``cuobjdump -res-usage`` output, in order."""
    out: list[ResourceUsage] = []
    name: str | None = None
    for line in text.splitlines():
        m = _RESOURCE_RE.match(line)
        if m and "REG:" not in line:
            name = m.group(1)
            continue
        if name is not None and "REG:" in line:
            fields = {k: int(v) for k, v in _FIELD_RE.findall(line)}
            out.append(ResourceUsage(
                function=name,
                registers=fields.get("REG", 0),
                stack_bytes=fields.get("STACK", 0),
                static_shared_bytes=fields.get("SHARED", 0),
                local_bytes=fields.get("LOCAL", 0),
            ))
            name = None
    return out


def access_width(opcode: str) -> int:
    """Bits moved per thread by a global load/store opcode such as ``LDG.E.128`` or ``STG.E.U16``.

    ``LTC128B`` (an L2 prefetch hint on ``LDGSTS``) is a modifier, not a width; only whole modifiers
    count.
    """
    mods = opcode.split(".")[1:]
    for mod in mods:
        if mod in ("128", "64"):
            return int(mod)
        if mod in ("U16", "S16", "16"):
            return 16
        if mod in ("U8", "S8", "8"):
            return 8
    return 32


@dataclass
class SassSummary:
    """Instruction evidence from one function's SASS."""

    opcodes: dict[str, int] = field(default_factory=dict)   # COUNTED_OPCODES present -> count
    ldg_bits: dict[str, int] = field(default_factory=dict)  # width -> LDG count
    stg_bits: dict[str, int] = field(default_factory=dict)  # width -> STG count
    ldgsts_bits: dict[str, int] = field(default_factory=dict)  # width -> LDGSTS count
    instructions: int = 0

    def count(self, opcode: str) -> int:
        return self.opcodes.get(opcode, 0)

    @property
    def tma(self) -> int:
        return sum(self.count(op) for op in TMA_OPCODES)

    def to_dict(self) -> dict:
        return asdict(self)


def _widths(counter: Counter) -> dict[str, int]:
    return {str(w): counter.get(w, 0) for w in WIDTHS}


def parse_sass(text: str) -> SassSummary:
    """Count the audited opcodes and global access widths in ``cuobjdump -sass`` text."""
    opcodes: Counter = Counter()
    widths: dict[str, Counter] = {"LDG": Counter(), "STG": Counter(), "LDGSTS": Counter()}
    n = 0
    for line in text.splitlines():
        m = _SASS_RE.match(line)
        if not m:
            continue
        n += 1
        full = m.group(1)
        base = full.split(".", 1)[0]
        if base in COUNTED_OPCODES:
            opcodes[base] += 1
        if base in widths:
            widths[base][access_width(full)] += 1
    return SassSummary(
        opcodes=dict(sorted(opcodes.items())),
        ldg_bits=_widths(widths["LDG"]),
        stg_bits=_widths(widths["STG"]),
        ldgsts_bits=_widths(widths["LDGSTS"]),
        instructions=n,
    )


_MMA_VERSION_RE = re.compile(r"nvidia_mma<\{versionMajor\s*=\s*(\d+)")


def mma_versions(ttgir: str) -> list[int]:
    """The MMA generations Triton chose in the TTGIR (``nvidia_mma`` layouts: 2 = ``mma.sync``, 3 =
    ``wgmma``; tcgen05 (sm_100) uses tensor-memory layouts instead and adds no number here)."""
    return sorted({int(v) for v in _MMA_VERSION_RE.findall(ttgir)})


def cuobjdump_path() -> Path:
    """The ``cuobjdump`` shipped inside the triton wheel."""
    import triton

    path = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if not path.exists():
        raise FileNotFoundError(f"cuobjdump not found at {path}; the audit needs triton's NVIDIA backend")
    return path


def dump_cubin(cubin: bytes) -> str:
    """``cuobjdump -res-usage -sass`` of a cubin (bytes), as text."""
    fd, name = tempfile.mkstemp(suffix=".cubin")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(cubin)
        proc = subprocess.run(
            [str(cuobjdump_path()), "-res-usage", "-sass", name],
            capture_output=True, text=True, check=False,
        )
    finally:
        os.unlink(name)
    if proc.returncode != 0:
        raise RuntimeError(f"cuobjdump failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
    return proc.stdout
