"""The AMD half of the static audit (issue 24), without compiling: the AMDGCN reader on a stored snippet
(tests/data/amdgcn_snippet.s), the AMD occupancy, the gates that read them (no_spills on VGPR spills and
scratch, the MFMA class, the occupancy floor and its waivers), and the table's AMD rows. The compiled
audit over every case on gfx942 and gfx950 runs in tests/test_audit.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernels._lib.device import ARCHS, arch_label, get_arch, is_hip
from kernels.audit import amdgcn
from kernels.audit.compile import AuditLine
from kernels.audit.efficiency import efficiency, find_loops
from kernels.audit.gates import applicable_gates, check_gates, gate_failure
from kernels.audit.occupancy import DEFAULT_ARCHS, SUPPORTED_ARCHS, amd_occupancy
from kernels.audit.runner import validate

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = (Path(__file__).parent / "data" / "amdgcn_snippet.s").read_text()


def test_resources_from_the_snippet():
    res = amdgcn.parse_resources(SNIPPET)
    assert (res.vgprs, res.agprs, res.sgprs) == (166, 12, 106)
    assert (res.scratch_bytes, res.waves_per_simd) == (8, 2)
    assert (res.vgpr_spills, res.sgpr_spills) == (1, 7)


def test_a_missing_resource_line_is_named():
    with pytest.raises(ValueError, match="Occupancy"):
        amdgcn.parse_resources(SNIPPET.replace("; Occupancy: 2", ""))


def test_instructions_map_onto_the_audit_vocabulary():
    instrs = amdgcn.parse_instructions(SNIPPET)
    ops = [i.opcode for i in instrs]
    # the body only: from the kernel's label to s_endpgm (the MFMA after .Lfunc_end0 is not counted)
    assert ops[0] == "s_load_dwordx2" and ops[-1] == "s_endpgm"
    s = amdgcn.summarize(instrs)
    assert s.count("MFMA") == 3
    assert s.ldg_bits == {"128": 4, "64": 0, "32": 0, "16": 1, "8": 0}  # dwordx4 (global, buffer), ushort
    assert s.ldgsts_bits["128"] == 1  # global_load_lds_dwordx4: direct to LDS
    assert s.stg_bits["64"] == 2
    assert (s.count("LDL"), s.count("STL")) == (1, 1)  # scratch_load / scratch_store
    assert s.count("BAR") == 1
    assert [i.opcode for i in instrs if i.opcode in ("LDS", "STS")] == ["STS", "LDS"]  # ds_write, ds_read


def test_the_backward_branch_is_the_loop():
    instrs = amdgcn.parse_instructions(SNIPPET)
    loops = find_loops(instrs)
    assert len(loops) == 1
    loop = loops[0]
    assert loop.mma == 3 and loop.instructions == 13  # .LBB0_1 through s_cbranch_scc1 .LBB0_1
    conditional = [i for i in instrs if i.base == "BRA" and i.predicated]
    after_loop = instrs.index(next(i for i in instrs if i.opcode == "LDL"))
    # s_cbranch_execz forward to .LBB0_2, s_cbranch_scc1 back to .LBB0_1
    assert [i.target for i in conditional] == [after_loop, loop.start]
    eff = efficiency(instrs, kernel="attention", variant="prefill", dtype="fp16",
                     constexprs={"BLOCK_M": 64, "BLOCK_N": 64, "HEAD_DIM": 128}, num_warps=4)
    # 13 instructions x 4 waves per 32 KiB of K and V (2 x 64 keys x 128 x 2 B)
    assert eff.scope == "loop" and eff.mma == 3 and eff.per_unit == pytest.approx(13 * 4 / 32)


@pytest.mark.parametrize("waves, lds, blocks, per_simd", [
    (2, 16384, 2, 2),    # registers allow 2 waves per SIMD: 2 workgroups of 4 waves per CU
    (8, 36864, 1, 1),    # 36 KiB of LDS per workgroup: one fits in gfx942's 64 KiB
    (8, 0, 8, 8),
    (1, 70000, 0, 0),    # more LDS than a workgroup may have: does not launch
])
def test_amd_occupancy_gfx942(waves, lds, blocks, per_simd):
    occ = amd_occupancy("gfx942", compiler_waves_per_simd=waves, num_warps=4, shared_bytes=lds)
    assert occ.blocks_per_sm == blocks and occ.waves_per_simd == per_simd


def test_gfx950_has_more_lds():
    occ = amd_occupancy("gfx950", compiler_waves_per_simd=8, num_warps=4, shared_bytes=36864)
    assert occ.blocks_per_sm == 4 and occ.waves_per_simd == 4


def test_amd_occupancy_refuses_bad_input():
    with pytest.raises(ValueError, match="arch"):
        amd_occupancy(90, compiler_waves_per_simd=2, num_warps=4, shared_bytes=0)
    with pytest.raises(ValueError, match="num_warps"):
        amd_occupancy("gfx942", compiler_waves_per_simd=2, num_warps=0, shared_bytes=0)


def _line(arch="gfx942", **kw) -> AuditLine:
    base = dict(kernel="attention", variant="prefill", dtype="fp16", shape={}, arch=arch,
                config="BLOCK_M=64,BLOCK_N=64,waves_per_eu=2,num_warps=4,num_stages=1",
                gates=["tensor_cores"],
                num_warps=4, num_stages=1, compiled=True, registers=200, stack_bytes=0, local_bytes=0,
                local_loads=0, local_stores=0, spilled_registers=0, sgpr_spills=3, shared_bytes=16384,
                opcodes={"MFMA": 8}, occupancy={"waves_per_simd": 2, "limiter": "registers",
                                                "blocks_by": {"registers": 2}})
    base.update(kw)
    return AuditLine(**base)


def test_amd_gates_pass_a_clean_line_and_name_mfma_and_occupancy():
    line = _line()
    assert applicable_gates(line) == ["compiles", "no_spills", "shared_memory", "tensor_cores", "mfma",
                                      "occupancy"]
    assert check_gates(line, waivers={}) == []  # SGPR spills into VGPR lanes are reported, not gated


def test_amd_gates_catch_spills_scratch_missing_mfma_and_low_occupancy():
    assert "spilled registers=24" in gate_failure("no_spills", _line(spilled_registers=24))
    assert "stack bytes=96" in gate_failure("no_spills", _line(stack_bytes=96))
    assert "MFMA" in gate_failure("mfma", _line(opcodes={}))
    assert "LDS" in gate_failure("shared_memory", _line(shared_bytes=65537)).replace("per-block", "LDS")
    why = gate_failure("occupancy", _line(occupancy={"waves_per_simd": 1, "limiter": "shared_memory",
                                                     "blocks_by": {}}))
    assert why.startswith("1 resident waves per SIMD < floor 2 on gfx942")


def test_an_occupancy_waiver_needs_its_condition():
    low = {"waves_per_simd": 1, "limiter": "shared_memory", "blocks_by": {}}
    waivers = {("attention", "prefill", "occupancy", "gfx942", "dtype=fp32"): "fp32: the reason"}
    fp16 = _line(occupancy=low)
    assert check_gates(fp16, waivers=waivers) and not fp16.waived
    fp32 = _line(occupancy=low, dtype="fp32")
    assert check_gates(fp32, waivers=waivers) == [] and fp32.waived == {"occupancy": "fp32: the reason"}


def test_nvidia_lines_carry_no_occupancy_gate():
    line = _line(arch=90, occupancy={"warps_per_sm": 8})
    assert "occupancy" not in applicable_gates(line) and "mfma" not in applicable_gates(line)


def test_the_table_rows_and_the_default_audit():
    assert get_arch("gfx942") is ARCHS["gfx942"] and get_arch("GFX950").smem_per_block == 160 * 1024
    assert ARCHS["gfx942"].smem_per_block == 64 * 1024 and ARCHS["gfx942"].warp_size == 64
    assert ARCHS["gfx942"].gpu_target == ("hip", "gfx942", 64)
    assert is_hip("gfx950") and not is_hip(90) and not is_hip(0)
    assert arch_label(90) == "sm_90" and arch_label("gfx942") == "gfx942"
    assert {"gfx942", "gfx950"} <= set(SUPPORTED_ARCHS)
    assert not {"gfx942", "gfx950"} & set(DEFAULT_ARCHS) and 80 in DEFAULT_ARCHS


def test_validate_mixes_int_and_string_archs():
    _, archs = validate(["softmax"], ["gfx950", "90", "sm_80", "gfx942", 90])
    assert archs == ["gfx950", 90, 80, "gfx942"]
    with pytest.raises(ValueError, match="gfx90a"):
        validate(["softmax"], ["gfx90a"])


@pytest.fixture(scope="module")
def amd_fixture_audit(tmp_path_factory) -> dict:
    """The AMD gate fixtures (tests/audit_fixtures.py:amd_cases) compiled for gfx942 and gfx950."""
    out = tmp_path_factory.mktemp("audit") / "amd.json"
    proc = subprocess.run(
        [sys.executable, "-m", "kernels.audit", "--cases", "tests/audit_fixtures.py:amd_cases", "--json",
         str(out), "--quiet", "--arch", "gfx942", "gfx950"],
        cwd=ROOT, env={**os.environ, "TRITON_INTERPRET": "0"}, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 1, f"bad fixtures must fail the audit (exit 1):\n{proc.stdout}\n{proc.stderr}"
    return {(d["variant"], d["arch"]): AuditLine.from_dict(d) for d in json.loads(out.read_text())["lines"]}


@pytest.mark.parametrize("arch", ["gfx942", "gfx950"])
@pytest.mark.parametrize("variant, failed", [
    ("good_copy", set()), ("good_dot", set()), ("bad_no_spills", {"no_spills"}),
    ("bad_occupancy", {"occupancy"}), ("bad_vec128_loads", {"vec128_loads"}),
])
def test_amd_fixture_fails_exactly_its_gate(amd_fixture_audit, variant, arch, failed):
    line = amd_fixture_audit[(variant, arch)]
    assert {f.split(":", 1)[0] for f in line.failures} == failed, line.failures


def test_amd_fixture_evidence(amd_fixture_audit):
    for arch in ("gfx942", "gfx950"):
        dot = amd_fixture_audit[("good_dot", arch)]
        assert dot.target == arch and dot.count("MFMA") > 0 and dot.occupancy["waves_per_simd"] >= 2
        spill = amd_fixture_audit[("bad_no_spills", arch)]  # waves_per_eu=4: 128 VGPRs for a 128x128 tile
        assert spill.registers <= 128 and spill.spilled_registers > 0 and spill.stack_bytes > 0
        assert spill.local_stores > 0 and spill.local_loads > 0  # scratch_store / scratch_load
        assert amd_fixture_audit[("good_copy", arch)].ldg_bits["128"] == 1
        assert amd_fixture_audit[("bad_occupancy", arch)].occupancy["blocks_per_sm"] == 1


def test_nvidia_json_has_no_amd_fields():
    """An NVIDIA line's JSON is what it was before the AMD rows: the AMD-only fields appear only when set."""
    from kernels.audit.occupancy import occupancy

    nvidia = AuditLine(kernel="k", variant="v", dtype="fp16", shape={}, config="c", arch=90, gates=[],
                       num_warps=4, num_stages=1)
    nvidia.occupancy = occupancy(90, registers=128, num_warps=4, shared_bytes=0).to_dict()
    d = nvidia.to_dict()
    assert not {"agprs", "sgprs", "spilled_registers", "sgpr_spills"} & set(d)
    assert "waves_per_simd" not in d["occupancy"]
    amd = _line()
    assert amd.to_dict()["sgpr_spills"] == 3 and AuditLine.from_dict(amd.to_dict()) == amd
    assert AuditLine.from_dict(d) == nvidia
