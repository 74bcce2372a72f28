"""The audit's static efficiency column: the steady-state loop of a kernel's SASS and what it costs.

A loop in SASS is a backward branch: ``/*2e30*/ @!P3 BRA 0x1530 ;`` at address ``b`` jumping to ``t <= b``
closes the loop ``[t, b]``. An unconditional branch to itself (the ``BRA`` trap ptxas puts after the
last ``EXIT``) is no loop. :func:`find_loops` lists every loop with its instruction count, tensor-core
instructions (``HMMA``/``HGMMA``) and global loads (``LDG``, ``LDGSTS``, ``UTMALDG``);
:func:`steady_state_loop` picks the one a long run spends its time in:

1. innermost loops only (no other loop inside; a barrier-retry block at the end of the function that
   branches back into the main loop makes an outer "loop" that contains the retry loop, so it drops out);
2. the most tensor-core instructions, then the most global loads (a loop unrolled by 4 beats its
   remainder loop; a barrier spin loop with no load loses to the streaming loop);
3. the fewest instructions: of the unmasked and the masked copy of a KV loop (same MMAs, same loads),
   the unmasked one, which is where a long sequence spends its iterations.

A kernel with no loop (one tile per program: GELU, single-block softmax) is costed over its whole body.

What one iteration streams comes from the case (:func:`stream_per_iteration`, one rule per kernel and
variant, reading the tile sizes from the case's constexprs): bytes of K and V for attention, bytes of
both operand tiles for the GEMMs, elements for row and elementwise kernels. The figure of merit is
*warp instructions per KiB* (or per element): loop instructions x ``num_warps`` / KiB (elements) per
iteration, the issue slots a CTA spends on each KiB it streams. It is a static count, not a
measurement: no gate reads it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from kernels._lib.device import MMA_OPCODES
from roofline.cost import dtype_bytes

# "/*2e30*/   @!P3 BRA 0x1530 ;" or "... BRA `(.L_x_3) ;" (labels are resolved by the caller's text)
_INSTR_RE = re.compile(
    r"^\s*/\*([0-9a-f]{4,})\*/\s+(@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)(.*)$"
)
_BRA_TARGET_RE = re.compile(r"^\s*(0x[0-9a-f]+)")
LOAD_OPCODES = ("LDG", "LDGSTS", "UTMALDG")


@dataclass(frozen=True)
class Instruction:
    address: int
    opcode: str  # full opcode with modifiers, e.g. "LDG.E.128"
    predicated: bool
    target: int | None  # branch target address of a BRA with an immediate target

    @property
    def base(self) -> str:
        return self.opcode.split(".", 1)[0]


def parse_instructions(sass: str) -> list[Instruction]:
    """Every SASS instruction of ``cuobjdump -sass`` text, in address order."""
    out = []
    for line in sass.splitlines():
        m = _INSTR_RE.match(line)
        if not m:
            continue
        addr, pred, opcode, rest = int(m.group(1), 16), bool(m.group(2)), m.group(3), m.group(4)
        target = None
        if opcode.split(".", 1)[0] == "BRA":
            t = _BRA_TARGET_RE.match(rest)
            if t:
                target = int(t.group(1), 16)
        out.append(Instruction(addr, opcode, pred, target))
    return out


@dataclass(frozen=True)
class Loop:
    """The SASS instructions ``[start, end]`` closed by the backward branch at ``end`` (addresses)."""

    start: int
    end: int
    instructions: int
    mma: int
    loads: int

    def contains(self, other: Loop) -> bool:
        return self != other and self.start <= other.start and other.end <= self.end


def find_loops(sass: str) -> list[Loop]:
    """Every loop (backward branch) in ``sass``, in address order of the branch."""
    instrs = parse_instructions(sass)
    loops = []
    for br in instrs:
        if br.target is None or br.target > br.address:
            continue
        if br.target == br.address and not br.predicated:
            continue  # the trap after EXIT
        body = [i for i in instrs if br.target <= i.address <= br.address]
        loops.append(Loop(
            start=br.target, end=br.address, instructions=len(body),
            mma=sum(i.base in MMA_OPCODES for i in body),
            loads=sum(i.base in LOAD_OPCODES for i in body),
        ))
    return loops


def steady_state_loop(loops: list[Loop]) -> Loop | None:
    """The innermost loop with the most MMAs, then the most global loads, then the fewest instructions
    (the module docstring says why); ``None`` when there is no loop."""
    inner = [lp for lp in loops if not any(lp.contains(o) for o in loops)]
    if not inner:
        return None
    return min(inner, key=lambda lp: (-lp.mma, -lp.loads, lp.instructions, lp.start))


# ----------------------------------------------------------------------------------------------
# What one loop iteration (or, with no loop, one program) streams, per kernel and variant
# ----------------------------------------------------------------------------------------------

def _gemm_bytes(c: Mapping, elem_bytes: int) -> float:
    return (c["BLOCK_M"] * c["BLOCK_K"] + c["BLOCK_K"] * c["BLOCK_N"]) * elem_bytes


def stream_per_iteration(kernel: str, variant: str, dtype: str, constexprs: Mapping,
                         looped: bool) -> tuple[float, str] | None:
    """``(amount, unit)`` streamed by one steady-state iteration (``looped``) or by one whole program
    (no loop): unit ``"KiB"`` (bytes / 1024) or ``"elem"``; ``None`` for a kernel with no rule here.

    Rules (tile sizes from the case's constexprs, ``elem_bytes`` bytes per input element):

    - attention prefill / splitkv: one ``BLOCK_N``-key tile of K and of V,
      ``2 * BLOCK_N * HEAD_DIM * elem_bytes``;
    - attention splitkv-combine: ``SPLIT_TILE * HEAD_DIM`` fp32 partial-output elements;
    - qkv and gemv tiled: the x and W tiles, ``(BLOCK_M*BLOCK_K + BLOCK_K*BLOCK_N) * elem_bytes``;
    - gemv splitk: the weight and x tiles, ``(BLOCK_N + BLOCK_B) * BLOCK_K * elem_bytes``; its reduce kernel
      (no ``BLOCK_K``) adds ``4 * BLOCK_N`` fp32 partials per iteration (the loop is unrolled by 4);
    - softmax: ``BLOCK_N`` elements per iteration (online) or ``ROWS * BLOCK_N`` per program (single);
    - gelu: ``BLOCK_M * BLOCK_N`` elements per program;
    - any other kernel: a GEMM if it has ``BLOCK_M``/``BLOCK_N``/``BLOCK_K``, else ``BLOCK`` elements.
    """
    c = dict(constexprs)
    try:
        elem_bytes = dtype_bytes(dtype)
    except ValueError:
        return None
    if kernel == "attention" and variant in ("prefill", "splitkv"):
        return 2 * c["BLOCK_N"] * c["HEAD_DIM"] * elem_bytes / 1024, "KiB"
    if kernel == "attention" and variant == "splitkv-combine":
        return float(c["SPLIT_TILE"] * c["HEAD_DIM"]), "elem"
    if kernel == "qkv" or (kernel == "gemv" and "BLOCK_M" in c):
        return _gemm_bytes(c, elem_bytes) / 1024, "KiB"
    if kernel == "gemv":
        if "BLOCK_K" in c:
            return (c["BLOCK_N"] + c.get("BLOCK_B", 1)) * c["BLOCK_K"] * elem_bytes / 1024, "KiB"
        return float(4 * c["BLOCK_N"]), "elem"
    if kernel == "softmax":
        return float(c["BLOCK_N"] * (1 if looped else c.get("ROWS", 1))), "elem"
    if kernel == "gelu":
        return float(c.get("BLOCK_M", 1) * c["BLOCK_N"]), "elem"
    # any other kernel (the tests' fixtures): GEMM tiles, or one BLOCK of elements
    if {"BLOCK_M", "BLOCK_N", "BLOCK_K"} <= c.keys():
        return _gemm_bytes(c, elem_bytes) / 1024, "KiB"
    if "BLOCK" in c:
        return float(c["BLOCK"]), "elem"
    return None


@dataclass(frozen=True)
class Efficiency:
    """The efficiency column of one audit line (a static count, reported, never gated).

    ``scope``: ``"loop"`` (the steady-state loop ``[start, end]``) or ``"body"`` (no loop: the whole
    function). ``instructions``/``mma``/``loads``: SASS instructions in that scope (per warp, one pass).
    ``stream``/``unit``: KiB or elements one pass moves (:func:`stream_per_iteration`);
    ``per_unit``: ``instructions * num_warps / stream``, warp instructions per KiB (element), or
    ``None`` when the kernel has no streaming rule.
    """

    scope: str
    start: int | None
    end: int | None
    loops: int
    instructions: int
    mma: int
    loads: int
    stream: float | None
    unit: str | None
    per_unit: float | None

    def to_dict(self) -> dict:
        return asdict(self)

    def cell(self) -> str:
        """The table cell: ``401i 12mma 100.3/KiB`` (``body:`` prefix when there is no loop)."""
        head = f"{'' if self.scope == 'loop' else 'body:'}{self.instructions}i"
        if self.mma:
            head += f" {self.mma}mma"
        if self.per_unit is None:
            return head
        per = f"{self.per_unit:.1f}" if self.per_unit >= 1 else f"{self.per_unit:.3f}"
        return f"{head} {per}/{self.unit}"


def efficiency(sass: str, *, kernel: str, variant: str, dtype: str, constexprs: Mapping,
               num_warps: int) -> Efficiency:
    """The :class:`Efficiency` of one compiled case from its SASS text."""
    loops = find_loops(sass)
    loop = steady_state_loop(loops)
    if loop is not None:
        scope, start, end = "loop", loop.start, loop.end
        n, mma, loads = loop.instructions, loop.mma, loop.loads
    else:
        instrs = parse_instructions(sass)
        scope, start, end = "body", None, None
        n = len(instrs)
        mma = sum(i.base in MMA_OPCODES for i in instrs)
        loads = sum(i.base in LOAD_OPCODES for i in instrs)
    stream = stream_per_iteration(kernel, variant, dtype, constexprs, looped=loop is not None)
    amount, unit = stream if stream else (None, None)
    per = n * num_warps / amount if amount else None
    return Efficiency(scope=scope, start=start, end=end, loops=len(loops), instructions=n, mma=mma,
                      loads=loads, stream=amount, unit=unit,
                      per_unit=per)
