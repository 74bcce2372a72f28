"""The architecture table (roofline/model/arch.py, issue 23): one copy of every architecture fact.

Its rows carry what the audit, the occupancy, the config pruning and the presets branch on; a scan of
the source fails when an arch-specific literal (an MMA opcode name, a shared-memory size, a compute
capability compared in a branch or passed as an argument) appears anywhere else. Docstrings and
comments may name them (they explain); code may not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from kernels._lib import device
from roofline.model import arch
from roofline.model.arch import ARCHS, MMA_GATES, MMA_OPCODES, ArchSpec, arch_label, get_arch
from roofline.model.hardware import PRESETS

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "roofline" / "model" / "arch.py"
SCANNED = ("kernels", "roofline", "bench")

_OPCODE_RE = re.compile(r"\b(?:%s|UTC[A-Z]*MMA|H[A-Z]*MMA)\b" % "|".join(MMA_OPCODES))
# 64 KiB (gfx942's LDS) is also 2**16, too common a number to flag (a 65,536-token vocabulary)
_SMEM_SIZES = {v for s in ARCHS.values() for v in (s.smem_per_sm, s.smem_per_block)} - {64 * 1024}
_CAPABILITIES = {a for a in ARCHS if isinstance(a, int)}
_LOOKUPS = {"smem_per_block", "get_arch", "has_tma", "mma_reads_smem", "warp_specializes", "arch"}
_TABLES = {"ARCHS", "LIMITS", "DEVICE_LIMITS"}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _mentions_arch(node: ast.AST) -> bool:
    text = ast.unparse(node).lower()
    return "arch" in text or "capability" in text


def _int_constants(node: ast.AST) -> list[int]:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [v for elt in node.elts for v in _int_constants(elt)]
    return []


def arch_literals(source: str) -> list[str]:
    """Every arch-specific literal in ``source`` outside docstrings, as ``"line N: what"``."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        # a sentence (a waiver's reason, an error message) explains; an opcode as data is one token
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                and len(node.value.split()) < 5):
            for m in _OPCODE_RE.finditer(node.value):
                found.append(f"line {line}: opcode name {m.group(0)!r} in a string")
        if isinstance(node, ast.Constant) and node.value in _SMEM_SIZES and not isinstance(node.value, bool):
            found.append(f"line {line}: shared-memory size {node.value}")
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)
                and all(isinstance(x, ast.Constant) and isinstance(x.value, int)
                        for x in (node.left, node.right))
                and node.left.value * node.right.value in _SMEM_SIZES):
            found.append(f"line {line}: shared-memory size {ast.unparse(node)}")
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_mentions_arch(s) for s in sides):
                caps = [v for s in sides for v in _int_constants(s) if v in _CAPABILITIES or v >= 50]
                if caps:
                    found.append(f"line {line}: capability {caps} compared in {ast.unparse(node)!r}")
        # a fact looked up by a literal capability (a preset naming its arch is data, not a lookup)
        if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] in _LOOKUPS:
            args = [*node.args, *(k.value for k in node.keywords)]
            caps = [v for a in args for v in _int_constants(a) if v in _CAPABILITIES]
            if caps:
                found.append(f"line {line}: capability {caps} passed to {ast.unparse(node.func)}")
        if isinstance(node, ast.Subscript) and ast.unparse(node.value).split(".")[-1] in _TABLES:
            caps = [v for v in _int_constants(node.slice) if v in _CAPABILITIES]
            if caps:
                found.append(f"line {line}: capability {caps} looked up in {ast.unparse(node)}")
        if isinstance(node, ast.Dict):
            keys = [v for k in node.keys if k is not None for v in _int_constants(k)]
            if len(keys) >= 2 and len(keys) == len(node.keys) and set(keys) <= _CAPABILITIES:
                found.append(f"line {line}: a dict keyed by capabilities {keys}")
    return found


def _sources() -> list[Path]:
    return sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py") if p != TABLE)


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_arch_literal_outside_the_table(path):
    found = arch_literals(path.read_text())
    assert not found, (f"{path.relative_to(ROOT)}: architecture facts belong in roofline/model/arch.py: "
                       f"{found}")


@pytest.mark.parametrize("snippet, what", [
    ("if arch >= 90:\n    pass", "capability [90] compared"),
    ("ok = arch not in (80, 90)", "capability [80, 90] compared"),
    ("limit = device.smem_per_block(80)", "capability [80] passed"),
    ("n = LIMITS[90].smem_per_sm", "capability [90] looked up"),
    ("a = device.arch(dev, default=80)", "capability [80] passed"),
    ("BUDGET = {80: 96, 90: 128}", "dict keyed by capabilities"),
    ("LIMIT = 163 * 1024", "shared-memory size 163 * 1024"),
    ("LIMIT = 232448", "shared-memory size 232448"),
    ("n = line.count('HGMMA')", "opcode name 'HGMMA'"),
    ("ops = ('UTCHMMA', 'UTCQMMA')", "opcode name 'UTCHMMA'"),
])
def test_the_scan_finds_each_kind_of_literal(snippet, what):
    assert any(what in f for f in arch_literals(snippet)), arch_literals(snippet)


def test_the_scan_ignores_docstrings_comments_and_unrelated_numbers():
    src = '"""Uses HMMA on sm_80 (163 KiB per block)."""\n# HGMMA on sm_90\nx = 1024 * 4\nblock_m = 128\n' \
          'if n >= 90:\n    pass\n'
    assert arch_literals(src) == []


def test_rows_are_consistent():
    for key, spec in ARCHS.items():
        assert spec.arch == key and spec.name.startswith(arch_label(key))
        assert spec.max_threads_per_sm == spec.max_warps_per_sm * spec.warp_size
        assert 0 < spec.smem_per_block <= spec.smem_per_sm
        assert spec.smem_per_block == spec.smem_per_sm - spec.smem_reserved_per_block
        assert spec.mma_opcodes and set(spec.mma_opcodes) <= set(MMA_OPCODES)
        assert (spec.tmem_columns > 0) == (spec.mma_class == "tcgen05")
        if spec.backend == "hip":  # AMD: MFMA from registers, its own gate, an occupancy floor
            assert spec.mma_gate == "mfma" and not spec.mma_reads_smem and spec.min_waves_per_simd == 2
            assert isinstance(key, str) and spec.warp_size == 64 and spec.smem_reserved_per_block == 0
            continue
        # a class gate exactly where the widest MMA is not mma.sync, and only then operands from smem
        assert (spec.mma_gate is None) == (spec.mma_class == "mma.sync") == (not spec.mma_reads_smem)
        assert isinstance(key, int) and spec.min_waves_per_simd == 0
    assert set(MMA_GATES) == {s.mma_gate for s in ARCHS.values() if s.mma_gate}


def test_blackwell_rows():
    b200, rtx = ARCHS[100], ARCHS[120]
    assert b200.mma_class == "tcgen05" and "UTCHMMA" in b200.mma_opcodes and b200.tma
    assert (b200.smem_per_sm, b200.smem_per_block, b200.max_warps_per_sm) == (228 * 1024, 227 * 1024, 64)
    assert rtx.mma_class == "mma.sync" and rtx.mma_opcodes == ("HMMA",) and rtx.mma_gate is None
    assert (rtx.smem_per_sm, rtx.smem_per_block, rtx.max_warps_per_sm, rtx.max_blocks_per_sm) == (
        100 * 1024, 99 * 1024, 48, 24)
    assert b200.gpu_target == ("cuda", 100, 32)


def test_an_amd_row_fits_the_record():
    """Issue 24's rows need no new field: a string key, the hip backend, 64-wide wavefronts, LDS."""
    mi300 = ArchSpec(arch="gfx942", name="gfx942 (MI300X)", backend="hip", warp_size=64,
                     smem_per_sm=64 * 1024, smem_per_block=64 * 1024, smem_reserved_per_block=0,
                     mma_class="mfma", mma_opcodes=("v_mfma",), max_warps_per_sm=32,
                     max_threads_per_sm=2048)
    assert mi300.gpu_target == ("hip", "gfx942", 64)
    assert mi300.limits_dict()["warp_size"] == 64


def test_lookup_and_helpers():
    assert get_arch("sm_100") is get_arch(100) is get_arch("100") is ARCHS[100]
    with pytest.raises(ValueError, match="unknown architecture 75"):
        get_arch(75)
    assert arch.has_tma(90) and arch.has_tma(100) and not arch.has_tma(80) and not arch.has_tma(0)
    assert arch.mma_reads_smem(100) and not arch.mma_reads_smem(120)
    assert arch.smem_per_block(120) == 99 * 1024 and arch.smem_per_block(0) == arch.SMALLEST_SMEM_PER_BLOCK
    assert device.LIMITS is ARCHS and device.smem_per_block is arch.smem_per_block
    assert MMA_OPCODES[-1] == "HMMA" and MMA_OPCODES.index("UTCHMMA") < MMA_OPCODES.index("HGMMA")


def test_presets_name_an_arch_whose_limits_they_carry():
    for name, spec in PRESETS.items():
        if spec.arch in ARCHS and spec.source != "measured":
            row = ARCHS[spec.arch]
            assert (spec.smem_per_sm, spec.smem_per_block) == (row.smem_per_sm, row.smem_per_block), name


# ---------------------------------------------------------------------------------------------------
# The launchers' pruning reads the rows: per architecture, not per literal
# ---------------------------------------------------------------------------------------------------

def test_fit_stages_lowers_stages_until_the_estimate_fits():
    import triton

    from kernels._lib.launch import fit_stages

    cfg = triton.Config({"BLOCK": 64}, num_warps=4, num_stages=4)
    per_stage = {"bytes": 30_000}

    def smem(c):
        return c.num_stages * per_stage["bytes"]

    assert fit_stages(cfg, smem, 200_000) is cfg  # fits as shipped: the same object
    fitted = fit_stages(cfg, smem, 99 * 1024)
    assert fitted.num_stages == 3 and fitted.kwargs == cfg.kwargs and fitted.num_warps == 4
    assert fit_stages(cfg, smem, 50_000) is None  # not even 2 stages


def test_attention_pruning_follows_the_mma_class():
    from kernels.attention.configs import PREFILL_CONFIGS, SM90_CONFIGS, prune_configs

    for bd in (64, 128):
        wide = SM90_CONFIGS[bd][0]
        assert wide in prune_configs(PREFILL_CONFIGS[bd], bd, 2, 90)
        assert wide in prune_configs(PREFILL_CONFIGS[bd], bd, 2, 100)  # tcgen05 reads smem too
        assert wide not in prune_configs(PREFILL_CONFIGS[bd], bd, 2, 120)  # mma.sync, 99 KiB
        assert wide not in prune_configs(PREFILL_CONFIGS[bd], bd, 2, 80)
    # sm_120's 99 KiB per block: every survivor's estimate fits it
    from kernels.attention.configs import smem_estimate

    for bd, configs in PREFILL_CONFIGS.items():
        kept = prune_configs(configs, bd, 2, 120)
        assert kept and (len(kept) == 1 or all(smem_estimate(c, bd, 2) <= 99 * 1024 for c in kept)), bd


def test_qkv_pruning_on_a_99_kib_arch_lowers_stages():
    from kernels.qkv.configs import CONFIGS, prune_configs, select_variant, smem_bytes

    for cc in (80, 90, 100):  # the shipped list, as before, wherever it was compiled to fit
        assert prune_configs(CONFIGS, 4096, 2, cc) == prune_configs(CONFIGS, 4096, 2)
    kept = prune_configs(CONFIGS, 32, 4, 120)  # fp32 decode: nothing fits 99 KiB at 4 stages
    assert kept and all(smem_bytes(c, 4) <= 99 * 1024 and c.num_stages < 4 for c in kept)
    assert all(smem_bytes(c, 2) <= 99 * 1024 for c in prune_configs(CONFIGS, 4096, 2, 120))
    assert [select_variant(4096, a, True) for a in (0, 80, 90, 100, 120)] == [
        "fused", "fused", "tma", "tma", "tma"]


def test_gemv_tiled_stages_per_arch():
    from kernels.gemv.configs import TILED_CONFIGS, fit_tiled_stages, plan, tiled_smem_bytes

    big = TILED_CONFIGS[2]  # 64x128x64, 4 stages: 96 KiB in fp16, 192 KiB in fp32
    for cc in (0, 80, 90, 100):
        assert fit_tiled_stages(big, 4, cc) is big  # as shipped (and audited) there
    fp32 = fit_tiled_stages(big, 4, 120)
    assert fp32.num_stages == 2 and tiled_smem_bytes(fp32, 4) <= 99 * 1024
    assert fit_tiled_stages(big, 2, 120) is big
    cfg, _, _ = plan("tiled", 64, 4096, 4096, 4, 132, None, False, 120)
    assert tiled_smem_bytes(cfg, 4) <= 99 * 1024
    assert plan("tiled", 64, 4096, 4096, 4, 132, None, False, 80)[0] is big
