"""Each audit gate can fail: deliberately bad kernels (tests/audit_fixtures.py) compiled for sm_80 and
sm_90 in a subprocess with the interpreter off; plus the parsers, the occupancy math, the exception
mechanism, the lookup API and the command line's usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernels.audit import (
    LIMITS,
    AuditEnvironmentError,
    AuditLine,
    audit_case,
    check_gates,
    find_line,
    latest_json,
    lookup,
    run_audit,
)
from kernels.audit.__main__ import main
from kernels.audit.gates import config_matches
from kernels.audit.occupancy import occupancy
from kernels.audit.report import format_table, load_lines
from kernels.audit.sass import access_width, mma_versions, parse_resource_usage, parse_sass

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = "tests/audit_fixtures.py:compile_cases"


def audit_env(interpret: str = "0") -> dict[str, str]:
    return {**os.environ, "TRITON_INTERPRET": interpret}


@pytest.fixture(scope="module")
def fixture_audit(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("audit") / "fixtures.json"
    # TRITON_INTERPRET=1 on purpose: the audit's workers must force the interpreter off themselves.
    proc = subprocess.run(
        [sys.executable, "-m", "kernels.audit", "--cases", FIXTURES, "--json", str(out), "--quiet",
         "--arch", *map(str, ARCHS)],
        cwd=ROOT, env=audit_env("1"), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 1, f"bad fixtures must fail the audit (exit 1):\n{proc.stdout}\n{proc.stderr}"
    data = json.loads(out.read_text())
    data["stdout"] = proc.stdout
    return data


def _line(data: dict, variant: str, arch: int) -> AuditLine:
    found = [AuditLine.from_dict(d) for d in data["lines"] if d["variant"] == variant and d["arch"] == arch]
    assert len(found) == 1, f"expected one line for {variant} sm_{arch}, got {len(found)}"
    return found[0]


def _failed_gates(line: AuditLine) -> set[str]:
    return {f.split(":", 1)[0] for f in line.failures}


# Every audited architecture: each MMA class (mma.sync on sm_80/sm_120, wgmma on sm_90, tcgen05 on sm_100).
ARCHS = (80, 90, 100, 120)


def _each(gates: set[str]) -> dict[int, set[str]]:
    return {arch: set(gates) for arch in ARCHS}


# variant -> {arch: gates that must fail (exactly)}
EXPECTED = {
    "good_copy": _each(set()),
    "good_dot": _each(set()),
    "bad_no_spills": _each({"no_spills"}),
    "bad_shared_memory": _each({"shared_memory"}),
    "bad_tensor_cores": {80: {"tensor_cores"}, 90: {"tensor_cores", "wgmma"},
                         100: {"tensor_cores", "tcgen05"}, 120: {"tensor_cores"}},
    # a 16-row tile: mma.sync, which passes where mma.sync is the architecture's class
    "bad_wgmma": {80: set(), 90: {"wgmma"}, 100: {"tcgen05"}, 120: set()},
    "bad_vec128_loads": _each({"vec128_loads"}),
    "bad_compiles": _each({"compiles"}),
}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("variant", list(EXPECTED))
def test_fixture_fails_exactly_its_gate(fixture_audit, variant, arch):
    line = _line(fixture_audit, variant, arch)
    assert _failed_gates(line) == EXPECTED[variant][arch], line.failures
    # The JSON's failures are what check_gates computes from the same evidence.
    assert [f.split(":", 1)[0] for f in check_gates(line)] == [f.split(":", 1)[0] for f in line.failures]


def test_fixture_evidence(fixture_audit):
    """The numbers behind each verdict, not just the verdict."""
    d = fixture_audit
    dot80, dot90 = _line(d, "good_dot", 80), _line(d, "good_dot", 90)
    assert dot80.count("HMMA") > 0 and dot80.count("HGMMA") == 0 and dot80.mma_versions == [2]
    assert dot90.count("HGMMA") > 0 and dot90.mma_versions == [3] and dot90.target == "sm_90a"
    assert dot80.target == "sm_80" and dot80.count("LDGSTS") > 0  # cp.async pipeline on sm_80
    dot100, dot120 = _line(d, "good_dot", 100), _line(d, "good_dot", 120)
    assert dot100.count("UTCHMMA") > 0 and dot100.count("HMMA") == 0 and dot100.target == "sm_100a"
    assert dot100.tmem_columns > 0 and "tensor_memory" in dot100.occupancy["blocks_by"]
    assert dot120.count("HMMA") > 0 and dot120.count("UTCHMMA") == 0 and dot120.tmem_columns == 0
    for arch in ARCHS:
        good, bad = _line(d, "good_copy", arch), _line(d, "bad_vec128_loads", arch)
        assert good.ldg_bits["128"] == 1 and good.stg_bits["128"] == 1 and good.wide_load_fraction == 1.0
        assert bad.ldg_bits["128"] == 0 and bad.ldg_bits["16"] > 0 and bad.wide_load_fraction == 0.0
        spill = _line(d, "bad_no_spills", arch)
        assert spill.local_stores > 0 and spill.local_loads > 0 and spill.stack_bytes > 0
        smem = _line(d, "bad_shared_memory", arch)
        assert smem.shared_bytes > LIMITS[arch].smem_per_block and smem.occupancy["blocks_per_sm"] == 0
        assert "K >= 16" in _line(d, "bad_compiles", arch).error
        assert _line(d, "good_copy", arch).occupancy["warps_per_sm"] == LIMITS[arch].max_warps_per_sm
    assert _line(d, "good_copy", 120).occupancy["warps_per_sm"] == 48  # sm_120: 1536 threads per SM
    for arch in (90, 100):  # tensor cores, but not the warpgroup / tensor-memory kind
        assert _line(d, "bad_wgmma", arch).count("HMMA") > 0


def test_fixture_json_and_table(fixture_audit):
    d = fixture_audit
    import triton

    assert d["triton_version"] == triton.__version__
    assert [t["arch"] for t in d["targets"]] == list(ARCHS)
    assert d["summary"]["lines"] == len(ARCHS) * len(EXPECTED) == len(d["lines"])
    assert d["summary"]["failed"] == sum(bool(g) for v in EXPECTED.values() for g in v.values())
    assert "FAIL fixture/bad_no_spills" in d["stdout"] and "good_copy" not in d["stdout"]
    table = format_table([AuditLine.from_dict(x) for x in d["lines"]])
    assert len(table.splitlines()) == 2 + len(d["lines"]) + 5  # header, rule, rows, blank + 4 legend lines


def test_exceptions_waive_only_what_they_name(fixture_audit):
    line = _line(fixture_audit, "bad_wgmma", 90)
    reason = "16-row decode tile: too small for a warpgroup MMA"
    assert check_gates(line, waivers={("fixture", "bad_wgmma", "wgmma", 90, "BLOCK_M=16"): reason}) == []
    assert line.waived == {"wgmma": reason}
    assert check_gates(line, waivers={("fixture", "*", "wgmma", 90, "BLOCK_M<64"): reason}) == []
    # Wrong arch, wrong condition, wrong gate: still fails.
    for key in [("fixture", "bad_wgmma", "wgmma", 80, "*"),
                ("fixture", "bad_wgmma", "wgmma", 90, "BLOCK_M<16"),
                ("fixture", "bad_wgmma", "tensor_cores", 90, "*")]:
        assert check_gates(line, waivers={key: reason}), key
    # sm_100's class gate is tcgen05: a wgmma waiver does not cover it, a tcgen05 one does.
    line100 = _line(fixture_audit, "bad_wgmma", 100)
    assert check_gates(line100, waivers={("fixture", "*", "wgmma", 100, "*"): reason})
    assert check_gates(line100, waivers={("fixture", "*", "tcgen05", 100, "BLOCK_M<64"): reason}) == []
    # `compiles` cannot be waived.
    broken = _line(fixture_audit, "bad_compiles", 80)
    assert check_gates(broken, waivers={("fixture", "*", "compiles", 80, "*"): reason})


def test_find_line_and_lookup(fixture_audit, tmp_path):
    path = tmp_path / "audit-20260101T000000Z.json"
    path.write_text(json.dumps(fixture_audit))
    lines = load_lines(path)
    cfg = "BLOCK_K=32,BLOCK_M=128,BLOCK_N=64,num_warps=4,num_stages=3"
    hit = find_line(lines, "fixture", "good_dot", "torch.float16", cfg, arch=90)
    assert hit is not None and hit.arch == 90 and hit.count("HGMMA") > 0
    assert find_line(lines, "fixture", "good_dot", "fp16", cfg, arch=86) is None
    assert find_line(lines, "fixture", "good_dot", "bf16", cfg) is None
    assert latest_json(tmp_path) == path and latest_json(tmp_path / "none") is None
    rec = lookup("fixture", "good_dot", "torch.float16", cfg, 80, path=path)
    assert rec["passed"] and rec["mma"]["HMMA"] > 0 and "HGMMA" not in rec["mma"]
    assert rec["audit_json"] == str(path)
    assert rec["spill_instructions"] == 0 and rec["target"] == "sm_80"
    spill = lookup("fixture", "bad_no_spills", "fp32", "BLOCK=8192,num_warps=1,num_stages=1", 90, path=path)
    assert not spill["passed"] and spill["spill_instructions"] > 0 and spill["failures"]
    assert lookup("fixture", "good_dot", "fp16", cfg, 80, path=tmp_path / "missing.json") is None



def test_audit_case_refuses_interpreted_functions():
    # The test session imports kernels with TRITON_INTERPRET=1 (tests/conftest.py).
    import tests.audit_fixtures as fx

    with pytest.raises(AuditEnvironmentError, match="TRITON_INTERPRET=1"):
        audit_case(fx.compile_cases(80)[0], 80)


def test_run_audit_from_an_interpreted_process():
    """The API works from this (interpreter-on) process, and a broken case source is an error line."""
    fx = "tests/audit_fixtures.py"
    lines = run_audit(archs=[80], jobs=1, extra=[f"{fx}:good_cases", f"{fx}:no_cases", f"{fx}:missing"])
    got = [(line.variant, line.compiled) for line in lines]
    assert got == [("good_copy", True), ("-", False), ("-", False)]
    assert lines[0].passed and lines[0].ldg_bits["128"] == 1
    assert "returned no case" in lines[1].error and lines[1].failures
    assert "has no function 'missing'" in lines[2].error and lines[2].failures
    with pytest.raises(ValueError, match="unknown kernel"):
        run_audit(kernels=["matmul"], archs=[80])
    with pytest.raises(ValueError, match="unknown architecture"):
        run_audit(kernels=["gelu"], archs=[86])


# ------------------------------------------------------------------------------------------------
# Parsers on captured cuobjdump text
# ------------------------------------------------------------------------------------------------

CAPTURED = """
Resource usage:
 Common:
  GLOBAL:0
 Function _softmax_kernel:
  REG:40 STACK:16 SHARED:0 LOCAL:8 CONSTANT[0]:400 TEXTURE:0 SURFACE:0 SAMPLER:0

\tcode for sm_80
\t\tFunction : _softmax_kernel
        /*0000*/                   IMAD.MOV.U32 R1, RZ, RZ, c[0x0][0x28] ;   /* 0x00000a00ff017624 */
        /*00e0*/              @!P0 LDG.E.128 R8, desc[UR4][R2.64] ;          /* 0x0000000402088981 */
        /*00f0*/                   LDG.E.U16 R9, desc[UR4][R2.64] ;
        /*0100*/                   LDG.E.64.CONSTANT R10, desc[UR4][R2.64] ;
        /*0110*/                   LDG.E R11, desc[UR4][R2.64] ;
        /*0120*/                   LDGSTS.E.BYPASS.LTC128B.128 [R3], desc[UR4][R4.64] ;
        /*0130*/              @P1  LDGSTS.E.LTC128B [R3], desc[UR4][R4.64] ;
        /*0140*/                   HMMA.16816.F32 R12, R4, R8, R12 ;
        /*0150*/                   HGMMA.64x64x16.F32 gdesc[UR4], RZ, !UPT ;
        /*0160*/                   STL.64 [R1], R2 ;
        /*0170*/                   LDL R2, [R1] ;
        /*0180*/                   STG.E.U8 desc[UR4][R2.64], R5 ;
        /*0190*/                   UTMALDG.2D [UR8], [UR4] ;
        /*01a0*/                   BRA 0x1a0;
"""


def test_parse_resource_usage():
    (res,) = parse_resource_usage(CAPTURED)
    assert (res.function, res.registers, res.stack_bytes, res.local_bytes) == ("_softmax_kernel", 40, 16, 8)


def test_parse_sass_counts_and_widths():
    s = parse_sass(CAPTURED)
    assert s.instructions == 14
    assert s.ldg_bits == {"128": 1, "64": 1, "32": 1, "16": 1, "8": 0}
    assert s.ldgsts_bits == {"128": 1, "64": 0, "32": 1, "16": 0, "8": 0}  # LTC128B is not a width
    assert s.stg_bits == {"128": 0, "64": 0, "32": 0, "16": 0, "8": 1}
    assert (s.count("HMMA"), s.count("HGMMA"), s.count("STL"), s.count("LDL"), s.tma) == (1, 1, 1, 1, 1)
    assert s.count("BRA") == 0  # not an audited opcode


@pytest.mark.parametrize("opcode, bits", [
    ("LDG.E.128", 128), ("LDG.E.128.CONSTANT", 128), ("LDG.E.EL.64", 64), ("LDG.E", 32),
    ("LDG.E.U16", 16), ("LDG.E.S8", 8), ("STG.E.U16", 16), ("LDGSTS.E.BYPASS.LTC128B.128", 128),
    ("LDGSTS.E.LTC128B", 32),
])
def test_access_width(opcode, bits):
    assert access_width(opcode) == bits


def test_mma_versions():
    ttgir = '#mma = #ttg.nvidia_mma<{versionMajor = 3, versionMinor = 0, warpsPerCTA = [4, 1]}>\n' \
            '#mma1 = #ttg.nvidia_mma<{versionMajor = 2, versionMinor = 0}>'
    assert mma_versions(ttgir) == [2, 3] and mma_versions("") == []


def test_wide_load_fraction():
    line = AuditLine("k", "v", "fp16", {}, "c", 80, ["vec128_loads"], 4, 1, compiled=True,
                     ldg_bits={"128": 3, "64": 0, "32": 0, "16": 8, "8": 0},
                     ldgsts_bits={"128": 1, "64": 0, "32": 0, "16": 0, "8": 0},
                     registers=32, stack_bytes=0, local_bytes=0, local_loads=0, local_stores=0,
                     shared_bytes=0)
    assert line.wide_load_fraction == pytest.approx(512 / (512 + 128))  # 80%: passes the 75% bar
    assert check_gates(line) == []
    line.ldg_bits["16"] = 32  # the 16-bit stream now moves as many bits as the 128-bit one
    assert [f.split(":")[0] for f in check_gates(line)] == ["vec128_loads"]


@pytest.mark.parametrize("config, condition, expected", [
    ("BLOCK_M=16,BLOCK_N=64,num_warps=4", "BLOCK_M<64", True),
    ("BLOCK_M=64,BLOCK_N=64,num_warps=4", "BLOCK_M<64", False),
    ("BLOCK_M=16,BLOCK_N=64,num_warps=4", "BLOCK_M=16", True),
    ("BLOCK_M=16,BLOCK_N=64,num_warps=4", "BLOCK_MM=16", False),
    ("anything", "*", True),
])
def test_config_matches(config, condition, expected):
    assert config_matches(config, condition) is expected


def test_config_matches_rejects_bad_condition():
    with pytest.raises(ValueError, match="condition"):
        config_matches("BLOCK_M=16", "BLOCK_M>16")


# ------------------------------------------------------------------------------------------------
# Occupancy against hand-computed values (cudaOccMaxActiveBlocksPerMultiprocessor's rules)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch, regs, warps, smem, blocks, limiter", [
    (80, 32, 4, 0, 16, "registers+warps"),      # 1024 regs/warp: 16 warps per sub-partition = 64
    (80, 255, 4, 0, 2, "registers"),            # 8160 -> 8192 regs/warp: 2 per sub-partition
    (80, 128, 8, 0, 2, "registers"),            # 4096 regs/warp: 16 warps = 2 blocks of 8
    (80, 40, 4, 0, 12, "registers"),            # 1280 regs/warp: 12 per sub-partition = 48 warps
    (80, 16, 1, 0, 32, "blocks"),               # 32 one-warp blocks: the block-slot limit
    (80, 32, 4, 100 * 1024, 1, "shared_memory"),   # 103424 B with the 1 KB reservation: 1 per 164 KB
    (90, 32, 4, 100 * 1024, 2, "shared_memory"),   # 2 per 228 KB
    (80, 32, 4, 40 * 1024 - 1024, 4, "shared_memory"),  # exactly 40 KB with the reservation: 4 fit
    (90, 96, 4, 37888, 5, "registers"),         # 3072 regs/warp: 5 per sub-partition -> 20 warps
    (80, 32, 4, 163 * 1024 + 1, 0, "shared_memory"),  # over the per-block maximum: cannot launch
    (80, 32, 33, 0, 0, "warps"),                # 1056 threads > 1024 per block
])
def test_occupancy_known_values(arch, regs, warps, smem, blocks, limiter):
    occ = occupancy(arch, registers=regs, num_warps=warps, shared_bytes=smem)
    assert (occ.blocks_per_sm, occ.limiter) == (blocks, limiter)
    assert occ.warps_per_sm == blocks * warps and occ.fraction == blocks * warps / 64


def test_occupancy_bad_input():
    with pytest.raises(ValueError, match="arch"):
        occupancy(75, registers=32, num_warps=4, shared_bytes=0)
    with pytest.raises(ValueError, match="num_warps"):
        occupancy(80, registers=32, num_warps=0, shared_bytes=0)


def test_limits_match_documented_per_block_maxima():
    assert LIMITS[80].smem_per_block == 166912 and LIMITS[90].smem_per_block == 232448
    assert LIMITS[80].smem_per_sm == 167936 and LIMITS[90].smem_per_sm == 233472


# ------------------------------------------------------------------------------------------------
# Command line: bad input is one line on stderr and exit 2
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, needle", [
    (["--kernel", "matmul"], "unknown kernel 'matmul'"),
    (["--arch", "75"], "unknown architecture '75'"),
    (["--arch", "hopper"], "unknown architecture 'hopper'"),
    (["--jobs", "0"], "--jobs"),
    (["--bogus"], "unrecognized arguments"),
])
def test_cli_usage_errors(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err


def test_cli_usage_error_in_a_real_process():
    proc = subprocess.run([sys.executable, "-m", "kernels.audit", "--kernel", "softmax", "nope"], cwd=ROOT,
                          env=audit_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m kernels.audit: error: unknown kernel 'nope'"), proc.stderr


@pytest.mark.parametrize("arch", [80, 90])
def test_efficiency_column_on_compiled_fixtures(fixture_audit, arch):
    """The GEMM fixture's steady-state loop is its K loop (tensor-core instructions inside, per KiB of
    the x and W tiles); the loopless copy is costed over its body, per element."""
    dot = _line(fixture_audit, "good_dot", arch).efficiency
    assert dot["scope"] == "loop" and dot["mma"] > 0 and dot["loads"] > 0 and dot["unit"] == "KiB"
    assert dot["stream"] == (128 * 32 + 32 * 64) * 2 / 1024
    assert dot["per_unit"] == pytest.approx(dot["instructions"] * 4 / dot["stream"])
    copy = _line(fixture_audit, "good_copy", arch).efficiency
    assert copy["scope"] == "body" and copy["unit"] == "elem" and copy["stream"] == 1024
    lines = [_line(fixture_audit, v, arch) for v in ("good_dot", "good_copy")]
    header, _, dot_row, copy_row = format_table(lines).splitlines()[:4]
    at = header.index(" loop ") + 1
    assert dot_row[at:].startswith(f"{dot['instructions']}i {dot['mma']}mma ")
    assert copy_row[at:].startswith(f"body:{copy['instructions']}i ")


def test_vec128_gate_accepts_a_tma_stream():
    """A stream copied by TMA (UTMALDG) has no per-thread load width; a scalar side load beside it
    (a cache length) must not fail the gate, while the same line without TMA does."""
    line = AuditLine(kernel="k", variant="v", dtype="fp16", shape={}, config="c", arch=90,
                     gates=["vec128_loads"], num_warps=8, num_stages=3, compiled=True, registers=100,
                     stack_bytes=0, local_bytes=0, local_loads=0, local_stores=0, shared_bytes=1024,
                     opcodes={"UTMALDG": 6, "LDG": 1}, ldg_bits={"32": 1})
    assert check_gates(line) == []
    line.opcodes = {"LDG": 1}
    line.failures = []
    assert [f.split(":", 1)[0] for f in check_gates(line)] == ["vec128_loads"]
