"""The static compile audit: GPU readiness without a GPU.

Every op's ``compile_cases(arch)`` (``kernels/<op>/cases.py``) lists the configs it ships; the audit
compiles each one ahead of time for every audited architecture of the table in :mod:`roofline.model.arch`
(A100 sm_80, H100 sm_90, B200 sm_100, RTX PRO 6000 / RTX 50 sm_120; AMD MI300X gfx942 and MI355X gfx950 by
name) on this CPU-only machine, reads the cubin with the ``cuobjdump`` that ships in the triton wheel (the
AMDGCN text on AMD: :mod:`kernels.audit.amdgcn`), and reports registers, spills and local
memory, shared memory, theoretical occupancy, tensor-core / async-copy / TMA instructions and global
load-store widths, then checks the gates in :mod:`kernels.audit.gates`. It predicts readiness; it
measures no speed.

Command line: ``python -m kernels.audit [--kernel NAME ...] [--arch 80 90] [--jobs N] [--json PATH]
[--quiet] [--fresh] [--cases MODULE:FUNCTION ...]``.

API (importing this package imports no kernel module):

- :func:`run_audit` ``(kernels=None, archs=SUPPORTED_ARCHS, jobs=None) -> list[AuditLine]``: compile in worker
  processes with the interpreter off and check the gates;
- :func:`audit_case` ``(case, arch) -> AuditLine``: one case in this process (needs
  ``TRITON_INTERPRET=0`` when the kernel module was imported);
- :func:`check_gates` ``(line, case=None) -> list[str]``: the failed gates of one line;
- :func:`lookup` ``(kernel, variant, dtype, config, arch) -> dict | None``: for the benchmark, the
  compact audit record (:meth:`AuditLine.summary`) of the config that ran, from the newest
  ``results/audit/audit-*.json``; :func:`find_line`, :func:`load_lines` and :func:`latest_json` are the
  pieces underneath;
- :func:`occupancy` and :data:`LIMITS`: the audited rows of the architecture table
(:mod:`roofline.model.arch`,
  re-exported by :mod:`kernels._lib.device`, with their sources).
"""

from kernels.audit.compile import AuditEnvironmentError, AuditLine, audit_case
from kernels.audit.gates import ALL_GATES, check_gates, exceptions, required_gates
from kernels.audit.occupancy import LIMITS, SUPPORTED_ARCHS, ArchLimits, Occupancy, occupancy
from kernels.audit.report import find_line, format_table, latest_json, load_lines, lookup
from kernels.audit.runner import run_audit

__all__ = [
    "ALL_GATES", "LIMITS", "SUPPORTED_ARCHS", "ArchLimits", "AuditEnvironmentError", "AuditLine", "Occupancy",
    "audit_case", "check_gates", "exceptions", "find_line", "format_table", "latest_json", "load_lines",
    "lookup", "occupancy", "required_gates", "run_audit",
]
