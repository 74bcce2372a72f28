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
Tensor-core instructions are every MMA class of the architecture table (``HMMA``, ``HGMMA``, ``UTC*MMA``);
a loop made of barrier waits only (``SYNCS`` try-wait, ``USETMAXREG`` retries, ``NOP``) is a spin loop and
never the steady state. A branch may carry a uniform predicate operand (``BRA.U !UP0, 0x37d0``).

A warp-specialized kernel (``tl.range(..., warp_specialize=True)``; Triton 3.9 on sm_100) runs one loop
per partition: the default partition's warps execute the code up to the worker dispatch, and each worker
partition's warps jump (``BRX``, a jump table) to their own region, which ends with a branch back to the
dispatch. :func:`partition_regions` finds the regions in the SASS, :func:`partition_warps` reads each
partition's warps from the TTGIR (``partitionN(...) num_warps(W)``, in order; the default partition has
the kernel's ``num_warps``). Worker regions with a loop map onto the TTGIR's partitions in address order
(regions without one are the idle warps that pad the block to a warpgroup multiple). Each partition's
steady-state loop is picked inside its region as above (in a partition that neither multiplies nor loads:
its largest innermost loop; in a kernel with several warp-specialized loops, whose default region holds
one copy of its loop per sweep, the cheapest copy that synchronises with the workers through mbarriers,
``SYNCS``: the unmasked sweep), and the figure of merit is their warp-weighted
sum, ``sum(instructions_p * warps_p) / stream``: the issue slots the whole CTA spends per KiB, on the
same scale as a plain kernel's ``instructions * num_warps / stream``. A partition whose loop has no MMA
and streams no operand tile (no asynchronous copy into shared memory, ``LDGSTS``/``UTMALDG``; a fused
epilogue's plain ``LDG`` of a bias or the KV cache's lengths is no stream) runs once per output tile in
a GEMM (the epilogue); its cost is spread over the tile's ``k_steps`` K iterations when the case gives
them (in attention every partition loops per K/V tile).

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
from roofline.model.cost import dtype_bytes

# "/*2e30*/   @!P3 BRA 0x1530 ;" or "... BRA `(.L_x_3) ;" (labels are resolved by the caller's text)
_INSTR_RE = re.compile(
    r"^\s*/\*([0-9a-f]{4,})\*/\s+(@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)(.*)$"
)
_BRA_TARGET_RE = re.compile(r"^\s*(?:!?U?P[T0-9]+\s*,\s*)?(0x[0-9a-f]+)")
LOAD_OPCODES = ("LDG", "LDGSTS", "UTMALDG")
# The asynchronous copies into shared memory a GEMM's load partition streams its operand tiles with (an
# epilogue's plain LDG of a bias or cache lengths is none of these).
STREAM_OPCODES = ("LDGSTS", "UTMALDG")
# What a barrier spin loop is made of (a loop of these only waits; it is never the steady state).
SPIN_OPCODES = ("NOP", "BRA", "SYNCS", "NANOSLEEP", "USETMAXREG", "YIELD", "WARPSYNC")


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
    spin: bool = False  # barrier waits only
    streams: int = 0  # of the loads, asynchronous copies into shared memory (STREAM_OPCODES)
    syncs: int = 0  # mbarrier operations (SYNCS: waits, arrives): the loop hands data to or from other warps

    def contains(self, other: Loop) -> bool:
        return self != other and self.start <= other.start and other.end <= self.end


def find_loops(sass: str | list[Instruction]) -> list[Loop]:
    """Every loop (backward branch) in ``sass`` (text, or instructions already parsed, e.g. from AMDGCN by
    :mod:`kernels.audit.amdgcn`), in address order of the branch."""
    instrs = parse_instructions(sass) if isinstance(sass, str) else sass
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
            spin=all(i.base in SPIN_OPCODES for i in body),
            streams=sum(i.base in STREAM_OPCODES for i in body),
            syncs=sum(i.base == "SYNCS" for i in body),
        ))
    return loops


def steady_state_loop(loops: list[Loop]) -> Loop | None:
    """The innermost loop with the most MMAs, then the most global loads, then the fewest instructions
    (the module docstring says why), spin loops excluded; ``None`` when there is no such loop."""
    real = [lp for lp in loops if not lp.spin]
    inner = [lp for lp in real if not any(lp.contains(o) for o in real)]
    if not inner:
        return None
    return min(inner, key=lambda lp: (-lp.mma, -lp.loads, lp.instructions, lp.start))


# ----------------------------------------------------------------------------------------------
# Warp-specialized kernels: one region and one loop per partition
# ----------------------------------------------------------------------------------------------

_PARTITION_RE = re.compile(r"^\s*partition(\d+)\(.*\bnum_warps\((\d+)\)", re.MULTILINE)


def partition_warps(ttgir: str) -> tuple[int, ...]:
    """Warps of each worker partition of a warp-specialized kernel, in partition order, from the TTGIR
    (``partition0(...) num_warps(1) {``); ``()`` for a kernel without warp specialization."""
    found = sorted((int(i), int(w)) for i, w in _PARTITION_RE.findall(ttgir))
    return tuple(w for _, w in found)


@dataclass(frozen=True)
class Region:
    """A partition's code ``[start, end]`` (addresses); ``index`` -1 is the default partition."""

    index: int
    start: int
    end: int


def partition_regions(instrs: list[Instruction]) -> list[Region] | None:
    """The default partition's region and every worker region (module docstring), in address order, or
    ``None`` when the SASS has no worker dispatch (a ``BRX`` after an ``EXIT`` whose targets branch back
    to a common dispatch address)."""
    exits = [i for i, ins in enumerate(instrs) if ins.base == "EXIT" and not ins.predicated]
    if not exits:
        return None
    brx = next((i for i in range(exits[0], len(instrs)) if instrs[i].base == "BRX"), None)
    if brx is None:
        return None
    backs = [ins.target for ins in instrs[brx + 1:] if ins.base == "BRA" and not ins.predicated
             and ins.target is not None and ins.target < instrs[brx].address]
    if not backs:
        return None
    dispatch = max(set(backs), key=backs.count)
    regions = [Region(-1, instrs[0].address, max(ins.address for ins in instrs if ins.address < dispatch))]
    start = None
    for ins in instrs[brx + 1:]:
        if start is None:
            start = ins.address
        if ins.base == "BRA" and not ins.predicated and ins.target == dispatch:
            regions.append(Region(len(regions) - 1, start, ins.address))
            start = None
    return regions


def _default_copies_loop(loops: list[Loop]) -> Loop | None:
    """The default partition's steady-state loop in a kernel with several warp-specialized loops. Its
    region holds one copy of its loop per ``ttg.warp_specialize`` op (a sweep whose trip count the
    compiler knows to be one has none), beside set-up loops (a tensor-memory allocation retry). The
    copies are the innermost loops that hand tiles to or from the workers through mbarriers (``SYNCS``);
    of them, as for the workers' copies, the one with the fewest instructions is the steady state (the
    unmasked sweep). Without such a loop, or where the default partition multiplies or loads itself:
    :func:`_partition_loop`."""
    loop = steady_state_loop(loops)
    if loop is None or loop.mma or loop.loads:
        return loop
    real = [lp for lp in loops if not lp.spin]
    copies = [lp for lp in real if lp.syncs and not any(lp.contains(o) for o in real)]
    if not copies:
        return _partition_loop(loops)
    return min(copies, key=lambda lp: (lp.instructions, lp.start))


# ---- kernels with more than one warp-specialized loop (one ``ttg.warp_specialize`` op per loop) ----

_WS_OP_RE = re.compile(r"ttg\.warp_specialize\(")
_REQUESTED_RE = re.compile(r"requestedRegisters\s*=\s*array<i32:\s*([0-9,\s]+)>")
_DEALLOC_RE = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+USETMAXREG\.DEALLOC\S*\s+(0x[0-9a-f]+|\d+)",
                         re.MULTILINE)
_MMA_OPS = ("tc_gen5_mma", "warp_group_dot")
_LOAD_OPS = ("async_tma_copy_global_to_local", "descriptor_load", "async_copy_global_to_local")


@dataclass(frozen=True)
class WorkerPartition:
    """One worker partition of one ``ttg.warp_specialize`` op in the TTGIR: its ``warps``, the
    ``registers`` it asks for (``requestedRegisters``; ``None`` when not given) and its ``role``:
    ``"mma"`` (issues the tensor-core MMAs), ``"load"`` (issues the global/TMA loads) or ``"other"``."""

    op: int
    index: int
    warps: int
    registers: int | None
    role: str


def ws_partitions(ttgir: str) -> list[list[WorkerPartition]]:
    """The worker partitions of every ``ttg.warp_specialize`` op of ``ttgir``, op by op, in order."""
    starts = [m.start() for m in _WS_OP_RE.finditer(ttgir)]
    ops = []
    for n, start in enumerate(starts):
        text = ttgir[start:starts[n + 1] if n + 1 < len(starts) else len(ttgir)]
        req = _REQUESTED_RE.search(text.split("\n", 1)[0])
        regs = [int(r) for r in req.group(1).split(",")] if req else []
        heads = list(_PARTITION_RE.finditer(text))
        parts = []
        for i, h in enumerate(heads):
            body = text[h.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
            role = ("mma" if any(o in body for o in _MMA_OPS) else
                    "load" if any(o in body for o in _LOAD_OPS) else "other")
            index = int(h.group(1))
            parts.append(WorkerPartition(n, index, int(h.group(2)),
                                         regs[index] if index < len(regs) else None, role))
        ops.append(parts)
    return ops


def _split_at_dealloc(sass: str, regions: list[Region]) -> list[tuple[Region, int | None]]:
    """Worker regions cut where a partition's entry sets its register count
    (``USETMAXREG.DEALLOC.CTAPOOL 0x58``): with several warp-specialized loops, several partitions'
    code can share one span between branches back to the dispatch. Each piece with its register count
    (``None`` before the first marker)."""
    marks = [(int(a, 16), int(v, 0)) for a, v in _DEALLOC_RE.findall(sass)]
    out = []
    for r in regions:
        inside = [(a, v) for a, v in marks if r.start <= a <= r.end]
        if not inside:
            out.append((r, None))
            continue
        if inside[0][0] > r.start:
            out.append((Region(r.index, r.start, inside[0][0] - 1), None))
        for k, (a, v) in enumerate(inside):
            end = inside[k + 1][0] - 1 if k + 1 < len(inside) else r.end
            out.append((Region(r.index, a, end), v))
    return out


def _in(loop: Loop, region: Region) -> bool:
    return region.start <= loop.start and loop.end <= region.end


def _partition_loop(loops: list[Loop]) -> Loop | None:
    """A partition's steady-state loop: :func:`steady_state_loop`, except that in a partition that
    neither multiplies nor loads (an epilogue, a softmax) the largest innermost loop is its work and the
    small ones are set-up (a tensor-memory allocation retry, a barrier initialisation)."""
    loop = steady_state_loop(loops)
    if loop is None or loop.mma or loop.loads:
        return loop
    real = [lp for lp in loops if not lp.spin]
    return max((lp for lp in real if not any(lp.contains(o) for o in real)),
               key=lambda lp: (lp.instructions, -lp.start))


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

    A warp-specialized kernel has ``scope`` ``"partitions"``: ``partitions`` lists each partition's
    loop (``index`` -1 = default, ``warps``, ``start``/``end``, ``instructions``, ``mma``, ``loads``,
    ``per_tile``: a GEMM epilogue loop spread over ``k_steps``), ``instructions``/``mma``/``loads`` are
    their sums, and ``per_unit`` is the warp-weighted sum per KiB (module docstring). ``partitions`` is
    left out of :meth:`to_dict` for a plain kernel.
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
    partitions: tuple[dict, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        if not self.partitions:
            del d["partitions"]
        else:
            d["partitions"] = [dict(p) for p in self.partitions]
        return d

    def cell(self) -> str:
        """The table cell: ``401i 12mma 100.3/KiB`` (``body:`` prefix when there is no loop; ``ws:`` and
        warps x instructions per partition for a warp-specialized kernel)."""
        if self.partitions:
            head = "ws:" + "+".join(f"{p['warps']}x{p['instructions']}i" for p in self.partitions)
        else:
            head = f"{'' if self.scope == 'loop' else 'body:'}{self.instructions}i"
        if self.mma:
            head += f" {self.mma}mma"
        if self.per_unit is None:
            return head
        per = f"{self.per_unit:.1f}" if self.per_unit >= 1 else f"{self.per_unit:.3f}"
        return f"{head} {per}/{self.unit}"


def efficiency(sass: str | list[Instruction], *, kernel: str, variant: str, dtype: str, constexprs: Mapping,
               num_warps: int, ttgir: str = "", k_steps: int | None = None) -> Efficiency:
    """The :class:`Efficiency` of one compiled case from its SASS text or parsed instructions (AMDGCN
    comes parsed; warps are wavefronts there), and its TTGIR, which names the partitions of a
    warp-specialized kernel; ``k_steps``: K iterations per output tile of a GEMM."""
    instrs = parse_instructions(sass) if isinstance(sass, str) else sass
    loops = find_loops(instrs)
    workers = partition_warps(ttgir)
    regions = partition_regions(instrs) if workers else None
    ops = ws_partitions(ttgir) if regions is not None and isinstance(sass, str) else []  # SASS only
    if len(ops) > 1:
        return _multi_partitioned(sass, loops, regions, ops, kernel=kernel, variant=variant, dtype=dtype,
                                  constexprs=constexprs, num_warps=num_warps, k_steps=k_steps)
    if regions is not None:
        return _partitioned(loops, regions, workers, kernel=kernel, variant=variant, dtype=dtype,
                            constexprs=constexprs, num_warps=num_warps, k_steps=k_steps)
    loop = steady_state_loop(loops)
    if loop is not None:
        scope, start, end = "loop", loop.start, loop.end
        n, mma, loads = loop.instructions, loop.mma, loop.loads
    else:
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


def _partitioned(loops: list[Loop], regions: list[Region], workers: tuple[int, ...], *, kernel: str,
                 variant: str, dtype: str, constexprs: Mapping, num_warps: int,
                 k_steps: int | None) -> Efficiency:
    """A warp-specialized kernel's :class:`Efficiency`: each partition's loop, warp-weighted."""
    found = [(r, _partition_loop([lp for lp in loops if _in(lp, r)])) for r in regions]
    default = [(r, lp) for r, lp in found if r.index < 0]
    busy = [(r, lp) for r, lp in found if r.index >= 0 and lp is not None]
    chosen = [(index, loop, warps) for (_, loop), warps, index in
              zip(default + busy, (num_warps, *workers), (-1, *range(len(busy))), strict=False)
              if loop is not None]
    return _weighted(chosen, loops, kernel=kernel, variant=variant, dtype=dtype, constexprs=constexprs,
                     k_steps=k_steps)


def _weighted(chosen: list[tuple[int, Loop, int]], loops: list[Loop], *, kernel: str, variant: str,
              dtype: str, constexprs: Mapping, k_steps: int | None) -> Efficiency:
    """The warp-weighted :class:`Efficiency` of the partitions' loops ``(index, loop, warps)``: each
    loop's instructions times its warps (a GEMM's epilogue-only partition per K step: divided by
    ``k_steps``), per unit streamed. A GEMM partition runs per output tile when its loop neither
    multiplies nor streams operands (no MMA, no asynchronous copy into shared memory,
    :data:`STREAM_OPCODES`): a fused epilogue that loads a bias or the KV cache's lengths is still an
    epilogue."""
    stream = stream_per_iteration(kernel, variant, dtype, constexprs, looped=True)
    amount, unit = stream if stream else (None, None)
    gemm = not (kernel == "attention" or "HEAD_DIM" in constexprs and "BLOCK_K" not in constexprs)
    parts, weighted = [], 0.0
    for index, loop, warps in chosen:
        per_tile = gemm and not loop.mma and not loop.streams and bool(k_steps)
        weighted += loop.instructions * (warps / k_steps if per_tile else warps)
        parts.append({"index": index, "warps": warps, "start": loop.start, "end": loop.end,
                      "instructions": loop.instructions, "mma": loop.mma, "loads": loop.loads,
                      "per_tile": per_tile})
    return Efficiency(scope="partitions", start=None, end=None, loops=len(loops),
                      instructions=sum(p["instructions"] for p in parts), mma=sum(p["mma"] for p in parts),
                      loads=sum(p["loads"] for p in parts), stream=amount, unit=unit,
                      per_unit=weighted / amount if amount else None, partitions=tuple(parts))


def _multi_partitioned(sass: str, loops: list[Loop], regions: list[Region], ops: list[list[WorkerPartition]],
                       *, kernel: str, variant: str, dtype: str, constexprs: Mapping, num_warps: int,
                       k_steps: int | None) -> Efficiency:
    """A kernel with several warp-specialized loops (attention's unmasked and masked KV sweeps, each
    its own ``ttg.warp_specialize``): every partition's steady-state loop, warp-weighted as in
    :func:`_partitioned`. The worker regions (cut at the partitions' register set-up,
    :func:`_split_at_dealloc`) are matched to the TTGIR's partitions by what their loop does (MMA, loads,
    neither) and, among partitions of the same role, by the registers they set; of the copies of one
    partition (one per op), the loop with the fewest instructions is the steady state (the unmasked
    sweep, as for a plain kernel's two loops); the default partition's copies share its one region
    (:func:`_default_copies_loop`)."""
    first = ops[0]
    best: dict[int, Loop] = {}
    default = _default_copies_loop([lp for lp in loops if _in(lp, regions[0])])
    if default is not None:
        best[-1] = default
    for region, regs in _split_at_dealloc(sass, regions[1:]):
        loop = _partition_loop([lp for lp in loops if _in(lp, region)])
        if loop is None:
            continue
        role = "mma" if loop.mma else "load" if loop.loads else "other"
        same = [p for p in first if p.role == role]
        if regs is not None and len(same) > 1:
            same = [p for p in same if p.registers == regs] or same
        if len(same) != 1:
            continue  # no partition, or one we cannot tell apart: left out rather than guessed
        index = same[0].index
        if index not in best or loop.instructions < best[index].instructions:
            best[index] = loop
    warps = {-1: num_warps, **{p.index: p.warps for p in first}}
    return _weighted([(index, best[index], warps[index]) for index in sorted(best)], loops, kernel=kernel,
                     variant=variant, dtype=dtype, constexprs=constexprs, k_steps=k_steps)
