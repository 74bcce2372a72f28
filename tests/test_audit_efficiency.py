"""The audit's efficiency column (issue 15): the steady-state loop finder on small synthetic SASS whose
answer is known, the per-kernel streaming rules, and the column on the compiled fixtures."""

from __future__ import annotations

import pytest

from kernels.audit.efficiency import (
    Efficiency,
    efficiency,
    find_loops,
    parse_instructions,
    steady_state_loop,
    stream_per_iteration,
)


def sass(*rows: str) -> str:
    """cuobjdump-style SASS, one instruction per row at addresses 0x00, 0x10, ... with the encoding line
    cuobjdump prints under each instruction (which must not count)."""
    out = ["\tcode for sm_90a", "\t\tFunction : k"]
    for i, row in enumerate(rows):
        out.append(f"        /*{16 * i:04x}*/                   {row} ;   /* 0x000000000000794d */")
        out.append("                                                  /* 0x000fc00000000000 */")
    return "\n".join(out)


def at(i: int) -> str:
    return f"0x{16 * i:x}"


# Two KV loops like the prefill kernel's: the unmasked loop (rows 2-7) and the masked copy (rows 9-16,
# same MMA and loads plus masking), then EXIT and the trap branch to itself.
TWO_LOOPS = sass(
    "S2R R0, SR_TID.X", "MOV R1, RZ",
    "LDGSTS.E.BYPASS.128 [R2], desc[UR4][R4.64]", "HGMMA.64x64x16.F32 R8, gdesc[UR8], RZ",
    "FMUL R9, R9, R3", "MUFU.EX2 R9, R9", "IADD3 R5, R5, 0x40, RZ", f"@!P0 BRA {at(2)}",
    "MOV R1, RZ",
    "LDGSTS.E.BYPASS.128 [R2], desc[UR4][R4.64]", "HGMMA.64x64x16.F32 R8, gdesc[UR8], RZ",
    "ISETP.GE.AND P1, PT, R5, R6, PT", "FSEL R9, R9, -INF, P1", "FMUL R9, R9, R3", "MUFU.EX2 R9, R9",
    "IADD3 R5, R5, 0x40, RZ", f"@!P0 BRA {at(9)}",
    "STG.E.128 desc[UR4][R6.64], R8", "EXIT", f"BRA {at(19)}",
)


def test_parse_skips_encoding_lines_and_reads_branch_targets():
    instrs = parse_instructions(TWO_LOOPS)
    assert len(instrs) == 20
    assert instrs[7].opcode == "BRA" and instrs[7].predicated and instrs[7].target == 0x20
    assert instrs[19].target == instrs[19].address and not instrs[19].predicated


def test_two_loops_pick_the_unmasked_one_and_ignore_the_trap():
    loops = find_loops(TWO_LOOPS)
    assert [(lp.start, lp.end, lp.instructions, lp.mma, lp.loads) for lp in loops] == [
        (0x20, 0x70, 6, 1, 1), (0x90, 0x100, 8, 1, 1)]
    assert steady_state_loop(loops) == loops[0]


def test_masked_loop_first_still_picks_the_cheaper_one():
    # same two loops in the other order: the choice is by content, not position
    text = sass("MOV R1, RZ", "LDG.E.128 R4, desc[UR4][R2.64]", "HMMA.16816.F32 R8, R4, R6, R8",
                "FSEL R9, R9, -INF, P1", "FSEL R10, R10, -INF, P1", f"@P0 BRA {at(1)}",
                "LDG.E.128 R4, desc[UR4][R2.64]", "HMMA.16816.F32 R8, R4, R6, R8", f"@P0 BRA {at(6)}", "EXIT")
    loop = steady_state_loop(find_loops(text))
    assert (loop.start, loop.instructions) == (0x60, 3)


def test_barrier_retry_out_of_line_is_neither_the_loop_nor_an_outer_loop():
    # main loop rows 1-6 waits on a barrier; the retry block at the end (rows 9-11) spins on itself
    # and branches back into the main loop, which makes an outer "loop" [row 4, row 11]
    text = sass(
        "MOV R1, RZ",
        "UTMALDG.2D [UR8], [UR4]", "SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR6], R3", f"@!P0 BRA {at(9)}",
        "HGMMA.64x128x16.F32 R8, gdesc[UR8], R8", "IADD3 R5, R5, 0x1, RZ", f"@P1 BRA {at(1)}",
        "EXIT", f"BRA {at(8)}",
        "SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR6], R3", f"@!P0 BRA {at(9)}", f"BRA {at(4)}",
    )
    loops = find_loops(text)
    assert {(lp.start, lp.end) for lp in loops} == {(0x10, 0x60), (0x90, 0xa0), (0x40, 0xb0)}
    loop = steady_state_loop(loops)
    assert (loop.start, loop.end, loop.mma, loop.loads) == (0x10, 0x60, 1, 1)


def test_unrolled_loop_beats_its_remainder():
    text = sass("LDG.E R2, desc[UR4][R8.64]", "LDG.E R3, desc[UR4][R8.64+0x400]",
                "LDG.E R4, desc[UR4][R8.64+0x800]", "LDG.E R5, desc[UR4][R8.64+0xc00]", "FADD R0, R2, R3",
                f"@P0 BRA {at(0)}", "LDG.E R2, desc[UR4][R8.64]", "FADD R0, R0, R2", f"@P1 BRA {at(6)}",
                "EXIT")
    loop = steady_state_loop(find_loops(text))
    assert (loop.start, loop.loads, loop.instructions) == (0, 4, 6)


def test_nested_loops_pick_the_inner_one():
    text = sass("MOV R0, RZ", "LDG.E R2, desc[UR4][R8.64]", "FADD R0, R0, R2", f"@P0 BRA {at(1)}",
                "STG.E desc[UR4][R6.64], R0", f"@P1 BRA {at(0)}", "EXIT")
    loop = steady_state_loop(find_loops(text))
    assert (loop.start, loop.end) == (0x10, 0x30)


def test_forward_branches_make_no_loop_and_the_body_is_costed():
    text = sass("LDG.E.128 R4, desc[UR4][R2.64]", f"@P0 BRA {at(3)}", "FMUL R4, R4, 2", "STG.E.128 "
                "desc[UR4][R6.64], R4", "EXIT", f"BRA {at(5)}")
    assert find_loops(text) == []
    eff = efficiency(text, kernel="gelu", variant="elementwise", dtype="fp16",
                     constexprs={"BLOCK_M": 1, "BLOCK_N": 1024}, num_warps=4)
    assert (eff.scope, eff.instructions, eff.loads, eff.unit) == ("body", 6, 1, "elem")
    assert eff.per_unit == pytest.approx(6 * 4 / 1024)
    assert eff.cell().startswith("body:6i")


def test_per_kib_counts_warp_instructions_over_kv_bytes():
    eff = efficiency(TWO_LOOPS, kernel="attention", variant="prefill", dtype="fp16",
                     constexprs={"BLOCK_M": 128, "BLOCK_N": 64, "HEAD_DIM": 128}, num_warps=8)
    # one 64-key tile of K and V at Dh 128, fp16 = 32 KiB; 6 instructions x 8 warps
    assert (eff.scope, eff.instructions, eff.mma, eff.stream, eff.unit) == ("loop", 6, 1, 32.0, "KiB")
    assert eff.per_unit == pytest.approx(6 * 8 / 32)
    assert Efficiency(**eff.to_dict()) == eff
    assert eff.cell() == "6i 1mma 1.5/KiB"


@pytest.mark.parametrize("kernel, variant, dtype, meta, looped, expected", [
    ("attention", "prefill", "bf16", {"BLOCK_N": 128, "HEAD_DIM": 64}, True, (32.0, "KiB")),
    ("attention", "splitkv", "fp16", {"BLOCK_N": 64, "HEAD_DIM": 96}, True, (24.0, "KiB")),
    ("attention", "splitkv-combine", "fp16", {"SPLIT_TILE": 8, "HEAD_DIM": 128}, True, (1024.0, "elem")),
    ("qkv", "fused", "fp16", {"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64}, True, (48.0, "KiB")),
    ("qkv", "fused", "fp32", {"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 128}, True, (40.0, "KiB")),
    ("gemv", "splitk", "fp16", {"BLOCK_B": 4, "BLOCK_N": 16, "BLOCK_K": 128}, True, (5.0, "KiB")),
    ("gemv", "splitk", "fp16", {"BLOCK_N": 256}, True, (1024.0, "elem")),
    ("softmax", "online", "fp16", {"BLOCK_N": 4096}, True, (4096.0, "elem")),
    ("softmax", "single", "fp16", {"BLOCK_N": 128, "ROWS": 16}, False, (2048.0, "elem")),
    ("gelu", "elementwise", "fp32", {"BLOCK_M": 4, "BLOCK_N": 1024}, False, (4096.0, "elem")),
    ("unknown", "x", "fp16", {"N": 3}, True, None),
])
def test_stream_rules(kernel, variant, dtype, meta, looped, expected):
    assert stream_per_iteration(kernel, variant, dtype, meta, looped) == expected
