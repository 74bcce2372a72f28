"""``python -m kernels.audit``: compile every shipped kernel config for each audited GPU architecture
(``--help`` lists them) and check the gates.

Exit status: 0 when every gate passes, 1 when a gate fails (or the audit cannot run), 2 for bad usage
(an unknown kernel or architecture: one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
import time

from kernels._lib.device import arch_label
from kernels.audit.compile import AuditEnvironmentError, AuditLine
from kernels.audit.occupancy import DEFAULT_ARCHS, LIMITS, SUPPORTED_ARCHS
from kernels.audit.report import default_json_path, format_table, summary, to_json, write_json
from kernels.audit.runner import default_jobs, run_audit, validate
from roofline.model.ops import KERNELS

PROG = "python -m kernels.audit"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints the usage too)
        self.exit(2, f"{PROG}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--kernel", nargs="+", action="extend", metavar="NAME",
                   help=f"kernels to audit (default: all of {', '.join(KERNELS)})")
    p.add_argument("--arch", nargs="+", action="extend", metavar="ARCH",
                   help="compute capabilities: " + ", ".join(f"{a} {LIMITS[a].name.partition(' ')[2]}"
                                                              for a in SUPPORTED_ARCHS)
                        + "; default all")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help=f"worker processes (default: the usable CPUs, here {default_jobs()})")
    p.add_argument("--json", default=None, metavar="PATH",
                   help="where to write the JSON (default results/audit/audit-<UTC timestamp>.json)")
    p.add_argument("--quiet", action="store_true", help="print only failures and the summary line")
    p.add_argument("--fresh", action="store_true",
                   help="recompile instead of using Triton's cache (true compile times)")
    p.add_argument("--cases", nargs="+", action="extend", default=[], metavar="MODULE:FUNCTION",
                   help="extra case sources, 'pkg.module:function' or 'file.py:function', each "
                        "function(arch) -> list[CompileCase]; with --cases and no --kernel only these run")
    return p


def _progress(done: int, total: int, line: AuditLine) -> None:
    if sys.stderr.isatty():
        where = f"{line.kernel}/{line.variant}/{line.dtype} {arch_label(line.arch)}"
        print(f"\r[{done}/{total}] {where}".ljust(70), end="", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        kernels, archs = validate(args.kernel, args.arch or DEFAULT_ARCHS)
        if args.jobs is not None and args.jobs < 1:
            raise ValueError(f"--jobs: expected a positive integer, got {args.jobs}")
    except ValueError as exc:
        parser.error(str(exc))
    if args.kernel is None and args.cases:
        kernels = []
    jobs = args.jobs or default_jobs()
    start = time.perf_counter()
    try:
        lines = run_audit(kernels, archs, jobs, extra=args.cases, fresh=args.fresh,
                          progress=None if args.quiet else _progress)
    except AuditEnvironmentError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - start
    if not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    data = to_json(lines, archs=archs, wall_s=round(wall, 2), jobs=jobs)
    path = write_json(data, args.json or default_json_path())
    if not args.quiet:
        print(format_table(lines))
        print()
    failed = [line for line in lines if not line.passed]
    for line in failed:
        for failure in line.failures:
            print(f"FAIL {line.case_id} {arch_label(line.arch)}: {failure}")
    s = summary(lines)
    print(f"audit: {s['lines']} case/arch lines, {s['passed']} passed, {s['failed']} failed; "
          f"{wall:.1f} s with {jobs} jobs; JSON: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
