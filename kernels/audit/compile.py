"""Compile one :class:`~kernels._lib.aot.CompileCase` for one architecture and read back the evidence.

:func:`audit_case` runs ``triton.compile(ASTSource(...), target=GPUTarget("cuda", arch, 32))`` (the
target the architecture table names) on this
CPU-only machine, then reads the cubin with ``cuobjdump`` and returns an :class:`AuditLine`. It needs
real ``JITFunction`` kernels: with ``TRITON_INTERPRET=1`` set when a kernel module was imported,
``@triton.jit`` produced interpreter functions that cannot be compiled, and :func:`audit_case` refuses
with :class:`AuditEnvironmentError`. ``python -m kernels.audit`` (and :func:`~kernels.audit.run_audit`)
compile in worker processes with the interpreter forced off, so they work from anywhere.

What a real launch specialises, an AOT compile only knows from the case: pointers and integers in
``CompileCase.divisible_by_16`` get ``tt.divisibility=16`` (16-byte alignment / multiple of 16), which
decides the load width. Triton's JIT also turns an integer argument equal to 1 into the constant 1; a
case mirrors that by giving such an argument the type ``"constexpr"`` and the value 1.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field

from kernels._lib.aot import HIP_OPTIONS, CompileCase
from kernels._lib.device import MMA_OPCODES, arch_label
from kernels.audit.efficiency import efficiency
from kernels.audit.occupancy import LIMITS, amd_occupancy, occupancy
from kernels.audit.sass import dump_cubin, mma_versions, parse_resource_usage, parse_sass


class AuditEnvironmentError(RuntimeError):
    """The audit was asked to compile interpreter functions (``TRITON_INTERPRET=1`` at import)."""


@dataclass
class AuditLine:
    """What the audit found for one compile case on one architecture (one row of the table).

    Sizes are bytes; ``registers`` is per thread; ``local_loads``/``local_stores`` count ``LDL``/``STL``
    instructions (spills or stack arrays); ``ldg_bits``/``stg_bits``/``ldgsts_bits`` map an access
    width in bits (``"128"``, ``"64"``, ``"32"``, ``"16"``, ``"8"``) to a count of SASS instructions
    (static counts, not executions). ``tmem_columns``: tensor-memory columns a block allocates (sm_100;
    0 elsewhere). ``efficiency`` is :meth:`kernels.audit.efficiency.Efficiency.to_dict`
    (the steady-state loop and its warp instructions per KiB or element streamed; reported, not gated).
    ``compile_s`` is the wall time of ``triton.compile`` (small when Triton's cache already held the
    kernel; ``--fresh`` forces a real compile); ``compile_cpu_s`` is the CPU time it took, this process
    and its ``ptxas`` child together (what a CI core pays, whatever else the machine is doing).
    ``failures`` is filled
    by :func:`kernels.audit.gates.check_gates`. ``index`` is the case's position in its source's
    ``compile_cases(arch)`` list (-1 for a source that produced no case).
    """

    kernel: str
    variant: str
    dtype: str
    shape: dict
    config: str
    arch: int
    gates: list[str]
    num_warps: int
    num_stages: int
    case_id: str = ""
    index: int = -1
    compiled: bool = False
    error: str | None = None
    target: str = ""
    compile_s: float = 0.0
    compile_cpu_s: float = 0.0
    registers: int | None = None
    agprs: int | None = None            # AMD: accumulation registers per lane (VGPRs are ``registers``)
    sgprs: int | None = None            # AMD: scalar registers per wave
    spilled_registers: int | None = None  # AMD: VGPRs spilled (.vgpr_spill_count), gated by no_spills
    sgpr_spills: int | None = None      # AMD: SGPRs spilled into VGPR lanes (v_writelane), reported
    stack_bytes: int | None = None
    local_bytes: int | None = None
    local_loads: int | None = None
    local_stores: int | None = None
    shared_bytes: int | None = None
    global_scratch_bytes: int | None = None
    tmem_columns: int = 0
    occupancy: dict | None = None
    opcodes: dict = field(default_factory=dict)
    ldg_bits: dict = field(default_factory=dict)
    stg_bits: dict = field(default_factory=dict)
    ldgsts_bits: dict = field(default_factory=dict)
    mma_versions: list[int] = field(default_factory=list)
    efficiency: dict | None = None
    failures: list[str] = field(default_factory=list)
    waived: dict = field(default_factory=dict)

    # Convenience views used by the gates and the table.
    def count(self, opcode: str) -> int:
        return int(self.opcodes.get(opcode, 0))

    @property
    def wide_loads(self) -> int:
        """128-bit global loads, direct (``LDG.128``) or through async copies (``LDGSTS.128``)."""
        return int(self.ldg_bits.get("128", 0)) + int(self.ldgsts_bits.get("128", 0))

    @property
    def narrow_loads(self) -> int:
        """Global loads narrower than 32 bits (16- and 8-bit ``LDG``/``LDGSTS``)."""
        return sum(int(d.get(w, 0)) for d in (self.ldg_bits, self.ldgsts_bits) for w in ("16", "8"))

    @property
    def wide_load_fraction(self) -> float:
        """Share of the global-load bits in the SASS (static: instruction count x width, over ``LDG``
        and ``LDGSTS``) moved by 128-bit instructions; 0.0 when there is no global load."""
        total = sum(int(w) * int(n) for d in (self.ldg_bits, self.ldgsts_bits) for w, n in d.items())
        return 128 * self.wide_loads / total if total else 0.0

    @property
    def tma(self) -> int:
        return sum(self.count(op) for op in ("UTMALDG", "UTMASTG", "UTMAPF", "UBLKCP"))

    @property
    def passed(self) -> bool:
        return self.compiled and not self.failures

    def to_dict(self) -> dict:
        """Every field; the AMD-only ones (``agprs``, ``sgprs``, ``spilled_registers``, ``sgpr_spills``)
        only when set, so an NVIDIA line's JSON is what it was before the AMD rows."""
        return {k: v for k, v in asdict(self).items() if not (k in _AMD_FIELDS and v is None)}

    def summary(self) -> dict:
        """The compact record a benchmark stores next to its timing (``extra_info["audit"]``)."""
        occ = self.occupancy or {}
        return {
            "case_id": self.case_id, "arch": self.arch, "target": self.target, "passed": self.passed,
            "failures": list(self.failures), "waived": dict(self.waived), "registers": self.registers,
            "spill_instructions": (self.local_loads or 0) + (self.local_stores or 0),
            "stack_bytes": self.stack_bytes, "shared_bytes": self.shared_bytes,
            "occupancy_warps_per_sm": occ.get("warps_per_sm"), "occupancy_limiter": occ.get("limiter"),
            "mma": {op: self.count(op) for op in MMA_OPCODES if self.count(op)},
            "ldgsts": self.count("LDGSTS"),
            "tma": self.tma, "ld128_fraction": round(self.wide_load_fraction, 3),
            "efficiency": self.efficiency,
        }

    @classmethod
    def from_dict(cls, data: dict) -> AuditLine:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


_AMD_FIELDS = ("agprs", "sgprs", "spilled_registers", "sgpr_spills")


def _check_case(case: CompileCase) -> list[str]:
    """Problems with the case itself (names that do not match the kernel's arguments)."""
    names = list(getattr(case.fn, "arg_names", []))
    problems = []
    missing = [n for n in names if n not in case.signature]
    extra = [n for n in case.signature if n not in names]
    if missing:
        problems.append(f"signature lacks arguments {missing}")
    if extra:
        problems.append(f"signature names unknown arguments {extra}")
    for name, ty in case.signature.items():
        if ty == "constexpr" and name not in case.constexprs:
            problems.append(f"constexpr {name} has no value in constexprs")
    bad_hints = [n for n in case.divisible_by_16 if n not in names or case.signature.get(n) == "constexpr"]
    if bad_hints:
        problems.append(f"divisible_by_16 names no runtime argument: {bad_hints}")
    return problems


_PTX_TARGET_RE = re.compile(r"^\s*\.target\s+(sm_\w+)", re.MULTILINE)


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its waited-for children (ptxas)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _error_text(exc: BaseException) -> str:
    """A one-line description of a compile failure: Triton's ``CompilationError`` carries the source
    excerpt in its message, so use its location and own message instead."""
    node = getattr(exc, "node", None)
    message = getattr(exc, "error_message", None)
    if message is None and exc.__cause__ is not None:
        message = f"{type(exc.__cause__).__name__}: {exc.__cause__}"
    if message is None:
        message = str(exc)
    where = f" at kernel line {node.lineno}" if getattr(node, "lineno", None) else ""
    text = " ".join(str(message).split())
    return f"{type(exc).__name__}{where}: {text[:400]}"


_DTYPE_ALIASES = {"float16": "fp16", "half": "fp16", "bfloat16": "bf16", "float32": "fp32", "float": "fp32"}


def canonical_dtype(dtype: object) -> str:
    """``fp16``/``bf16``/``fp32`` for any of ``"fp16"``, ``"float16"``, ``torch.float16``, ..."""
    name = str(dtype).replace("torch.", "")
    return _DTYPE_ALIASES.get(name, name)


def new_line(case: CompileCase, arch: int) -> AuditLine:
    """An empty (not yet compiled) line describing ``case`` on ``arch``."""
    return AuditLine(
        kernel=case.kernel, variant=case.variant, dtype=canonical_dtype(case.dtype), shape=dict(case.shape),
        config=case.config, arch=arch, gates=sorted(case.gates), num_warps=case.num_warps,
        num_stages=case.num_stages, case_id=case.case_id,
    )


def audit_case(case: CompileCase, arch: int) -> AuditLine:
    """Compile ``case`` for ``sm_<arch>`` and return its :class:`AuditLine`.

    A compile error does not raise: the line comes back with ``compiled=False`` and ``error`` set (the
    ``compiles`` gate then fails). Raises :class:`AuditEnvironmentError` if ``case.fn`` is an
    interpreter function and ``ValueError`` for an architecture the audit has no limits for.
    """
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.runtime.jit import JITFunction

    if arch not in LIMITS:
        raise ValueError(f"arch: expected one of {list(LIMITS)}, got {arch!r}")
    from triton.language import standard

    if not isinstance(standard.cdiv, JITFunction):
        raise AuditEnvironmentError(
            "triton.language was imported with TRITON_INTERPRET=1 in this process, so Triton's own library "
            "functions are interpreter functions and cannot be compiled. Run the audit as `python -m "
            "kernels.audit` (its workers start with TRITON_INTERPRET=0) or set TRITON_INTERPRET=0 before "
            "importing triton."
        )
    if not isinstance(case.fn, JITFunction):
        raise AuditEnvironmentError(
            f"{case.case_id}: {type(case.fn).__name__} is not a compilable JITFunction; the kernel module "
            "was imported with TRITON_INTERPRET=1. Run the audit as `python -m kernels.audit` (it compiles "
            "in processes with TRITON_INTERPRET=0) or import kernels with the interpreter off."
        )
    line = new_line(case, arch)
    problems = _check_case(case)
    if problems:
        line.error = "bad compile case: " + "; ".join(problems)
        return line

    names = list(case.fn.arg_names)
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in case.divisible_by_16}
    # AMD compile options a HIP config carries among its meta-parameters go to the compiler
    constexprs = {k: v for k, v in case.constexprs.items() if k not in HIP_OPTIONS}
    backend_options = {k: v for k, v in case.constexprs.items() if k in HIP_OPTIONS}
    src = ASTSource(fn=case.fn, signature=dict(case.signature), constexprs=constexprs, attrs=attrs)
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    try:
        compiled = triton.compile(
            src, target=GPUTarget(*LIMITS[arch].gpu_target),
            options={"num_warps": case.num_warps, "num_stages": case.num_stages, **backend_options},
        )
    except Exception as exc:  # any compiler failure is a finding, not a crash
        line.compile_s = time.perf_counter() - start
        line.compile_cpu_s = _cpu_seconds() - cpu_start
        line.error = _error_text(exc)
        return line
    line.compile_s = time.perf_counter() - start
    line.compile_cpu_s = _cpu_seconds() - cpu_start
    line.compiled = True
    if LIMITS[arch].backend == "hip":
        return _read_amdgcn(line, case, compiled, arch)
    target = _PTX_TARGET_RE.search(compiled.asm.get("ptx", ""))
    line.target = target.group(1) if target else arch_label(arch)
    line.shared_bytes = int(compiled.metadata.shared)
    line.global_scratch_bytes = int(getattr(compiled.metadata, "global_scratch_size", 0) or 0)
    line.tmem_columns = int(getattr(compiled.metadata, "tmem_size", 0) or 0)

    dump = dump_cubin(compiled.asm["cubin"])
    usage = parse_resource_usage(dump)
    name = compiled.metadata.name
    mine = [u for u in usage if u.function == name] or usage[:1]
    if not mine:
        line.compiled = False
        line.error = "cuobjdump printed no resource usage for the cubin"
        return line
    res = mine[0]
    sass = parse_sass(dump)
    line.registers = res.registers
    line.stack_bytes = res.stack_bytes
    line.local_bytes = res.local_bytes
    line.local_loads = sass.count("LDL")
    line.local_stores = sass.count("STL")
    line.shared_bytes += res.static_shared_bytes
    line.opcodes = sass.opcodes
    line.ldg_bits = sass.ldg_bits
    line.stg_bits = sass.stg_bits
    line.ldgsts_bits = sass.ldgsts_bits
    line.mma_versions = mma_versions(compiled.asm.get("ttgir", ""))
    # K iterations per output tile of a GEMM (a warp-specialized epilogue is spread over them)
    k, block_k = case.shape.get("k", case.shape.get("d_model")), case.constexprs.get("BLOCK_K")
    k_steps = -(-k // block_k) if isinstance(k, int) and isinstance(block_k, int) else None
    line.efficiency = efficiency(dump, kernel=case.kernel, variant=case.variant, dtype=line.dtype,
                                 constexprs=case.constexprs, num_warps=case.num_warps,
                                 ttgir=compiled.asm.get("ttgir", ""), k_steps=k_steps).to_dict()
    # every warp of the block: a warp-specialized kernel adds its partitions' warps to num_warps
    block_warps = int(getattr(compiled.metadata, "num_warps", case.num_warps) or case.num_warps)
    line.occupancy = occupancy(
        arch, registers=res.registers, num_warps=max(block_warps, case.num_warps),
        shared_bytes=line.shared_bytes, tmem_columns=line.tmem_columns,
    ).to_dict()
    return line


def _read_amdgcn(line: AuditLine, case: CompileCase, compiled: object, arch: int | str) -> AuditLine:
    """Fill ``line`` from an AMD compile's AMDGCN text (:mod:`kernels.audit.amdgcn`)."""
    from kernels.audit import amdgcn

    text = compiled.asm.get("amdgcn", "")
    line.target = str(arch)
    line.shared_bytes = int(compiled.metadata.shared)
    line.global_scratch_bytes = int(getattr(compiled.metadata, "global_scratch_size", 0) or 0)
    try:
        res = amdgcn.parse_resources(text)
    except ValueError as exc:
        line.compiled = False
        line.error = str(exc)
        return line
    instrs = amdgcn.parse_instructions(text)
    summary = amdgcn.summarize(instrs)
    line.registers, line.agprs, line.sgprs = res.vgprs, res.agprs, res.sgprs
    line.stack_bytes = res.scratch_bytes
    line.local_bytes = 0
    line.spilled_registers, line.sgpr_spills = res.vgpr_spills, res.sgpr_spills
    line.local_loads, line.local_stores = summary.count("LDL"), summary.count("STL")
    line.opcodes = summary.opcodes
    line.ldg_bits, line.stg_bits, line.ldgsts_bits = summary.ldg_bits, summary.stg_bits, summary.ldgsts_bits
    k, block_k = case.shape.get("k", case.shape.get("d_model")), case.constexprs.get("BLOCK_K")
    k_steps = -(-k // block_k) if isinstance(k, int) and isinstance(block_k, int) else None
    line.efficiency = efficiency(instrs, kernel=case.kernel, variant=case.variant, dtype=line.dtype,
                                 constexprs=case.constexprs, num_warps=case.num_warps,
                                 ttgir=compiled.asm.get("ttgir", ""), k_steps=k_steps).to_dict()
    line.occupancy = amd_occupancy(arch, compiler_waves_per_simd=res.waves_per_simd, num_warps=case.num_warps,
                                   shared_bytes=line.shared_bytes).to_dict()
    return line
