"""The audit's efficiency column (issue 15): the steady-state loop finder on small synthetic SASS whose
answer is known, the per-kernel streaming rules, and the column on the compiled fixtures."""

from __future__ import annotations

import pytest

from kernels.audit.efficiency import (
    Efficiency,
    efficiency,
    find_loops,
    parse_instructions,
    partition_regions,
    partition_warps,
    steady_state_loop,
    stream_per_iteration,
    ws_partitions,
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


# ---------------------------------------------------------------------------------------------------
# Every MMA class (issue 23): tcgen05 (UTCHMMA), branches on uniform predicates, spin loops, and the
# three kernel shapes: plain, persistent, warp-specialized.
# ---------------------------------------------------------------------------------------------------

GEMM = {"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64}  # 48 KiB of fp16 operand tiles per K step


def test_a_uniform_predicate_branch_closes_a_loop_and_utchmma_counts():
    # sm_100's K loop: TMA loads, a tcgen05 MMA, a barrier wait; closed by "BRA.U UP0, <target>"
    text = sass("MOV R1, RZ", "UTMALDG.2D [UR8], [UR4]", "SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR6], R3",
                "UTCHMMA gdesc[UR12], gdesc[UR14], tmem[UR30], tmem[UR10], idesc[UR11], UPT",
                "UTCBAR [UR29], URZ", "UIADD3 UR5, UPT, UPT, UR5, 0x1, URZ", f"BRA.U UP0, {at(1)}",
                "NOP", "USETMAXREG.TRY_ALLOC.CTAPOOL UP0, 0x100", f"BRA.U !UP0, {at(7)}", "EXIT")
    instrs = parse_instructions(text)
    assert instrs[6].target == 0x10 and instrs[9].target == 0x70
    loops = find_loops(text)
    assert [(lp.start, lp.end, lp.mma, lp.loads, lp.spin) for lp in loops] == [
        (0x10, 0x60, 1, 1, False), (0x70, 0x90, 0, 0, True)]
    eff = efficiency(text, kernel="qkv", variant="tma", dtype="fp16", constexprs=GEMM, num_warps=4)
    assert (eff.start, eff.instructions, eff.mma) == (0x10, 6, 1)
    assert eff.per_unit == pytest.approx(6 * 4 / 48)


def test_a_spin_loop_is_never_the_steady_state():
    # a loop that neither multiplies nor loads (a softmax row loop) beats a barrier spin of 2 instructions
    text = sass("FMUL R0, R0, R1", "MUFU.EX2 R0, R0", "FADD R2, R2, R0", f"@P0 BRA {at(0)}",
                "SYNCS.PHASECHK.TRANS64.TRYWAIT P1, [UR6], R3", f"@!P1 BRA {at(4)}", "EXIT")
    loop = steady_state_loop(find_loops(text))
    assert (loop.start, loop.instructions, loop.spin) == (0, 4, False)


def test_persistent_loop_picks_the_k_loop_inside_the_tile_loop():
    # for tile in range(pid, tiles, NUM_SMS): (for k: load, load, MMA); epilogue; next tile
    text = sass("S2R R0, SR_CTAID.X", "MOV R4, RZ",
                "UTMALDG.2D [UR8], [UR4]", "UTMALDG.2D [UR16], [UR4]",
                "HGMMA.64x256x16.F32 R24, gdesc[UR8], R24",
                "IADD3 R4, R4, 0x1, RZ", f"@P0 BRA {at(2)}",
                "F2FP.F16.F32.PACK_AB R6, R25, R24", "STS.128 [R1], R4", "UTMASTG.2D [UR4], [UR20]",
                "IADD3 R0, R0, 0x84, RZ", f"@P1 BRA {at(1)}", "EXIT")
    loops = find_loops(text)
    assert {(lp.start, lp.end) for lp in loops} == {(0x20, 0x60), (0x10, 0xb0)}
    eff = efficiency(text, kernel="qkv", variant="tma", dtype="fp16", constexprs=GEMM, num_warps=8)
    assert (eff.scope, eff.start, eff.end) == ("loop", 0x20, 0x60)
    assert (eff.instructions, eff.mma, eff.loads) == (5, 1, 2)
    assert eff.per_unit == pytest.approx(5 * 8 / 48) and not eff.partitions


# A warp-specialized persistent GEMM as Triton 3.9 lays it out for sm_100: the default partition (4
# warps: the epilogue, one loop per tile) up to EXIT; the worker dispatch (a barrier wait loop, then BRX
# through a jump table); partition 0 (1 warp: the MMA loop), an idle region (the padding warp), partition
# 1 (2 warps: the TMA load loop); each region branches back to the dispatch; out-of-line retry blocks last.
WS_TTGIR = """
module attributes {"ttg.num-warps" = 4 : i32, ttg.target = "cuda:100"} {
      ttg.warp_specialize(%a, %b) attributes {requestedRegisters = array<i32: 24, 24>}
      partition0(%arg0: !ttg.memdesc<3x1xi64, #shared1, #smem, mutable> loc("acc")) num_warps(1) {
      partition1(%arg0: !ttg.memdesc<3x1xi64, #shared1, #smem, mutable> loc("acc")) num_warps(2) {
"""
WS_SASS = sass(
    # default partition: set-up loop (3), epilogue tile loop (rows 4-9), EXIT at row 10
    "S2R R0, SR_TID.X", "SYNCS.EXCH.64 URZ, [UR4], UR6", "IADD3 R1, R1, 0x1, RZ", f"@P0 BRA {at(1)}",
    "SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR6], R3", "LDTM.x64 R8, tmem[UR4]",
    "F2FP.F16.F32.PACK_AB R6, R9, R8",
    "STS.128 [R1], R4", "UTMASTG.2D [UR4], [UR20]", f"@P1 BRA {at(4)}", "EXIT",
    # dispatch (rows 11-14)
    "NOP", "BAR.SYNC.DEFER_BLOCKING 0x1", f"@P0 BRA {at(11)}", "BRX R2 -0xf0",
    # partition 0 (rows 15-21): MMA loop rows 16-19
    "USETMAXREG.DEALLOC.CTAPOOL 0x18",
    "SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR6], R3",
    "UTCHMMA gdesc[UR12], gdesc[UR14], tmem[UR30], tmem[UR10], idesc[UR11], UPT",
    "UTCBAR [UR29], URZ", f"BRA.U UP0, {at(16)}", "NOP", f"BRA {at(11)}",
    # idle region (rows 22-24)
    "USETMAXREG.DEALLOC.CTAPOOL 0x18", "BAR.SYNC.DEFER_BLOCKING 0x1", f"BRA {at(11)}",
    # partition 1 (rows 25-31): load loop rows 26-29
    "USETMAXREG.DEALLOC.CTAPOOL 0x18",
    "SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR6], R3", "UTMALDG.2D [UR8], [UR4]", "UTMALDG.2D [UR16], [UR4]",
    f"BRA.U UP0, {at(26)}", "NOP", f"BRA {at(11)}",
    # out-of-line retry block and the trap
    "SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR6], R3", f"@!P0 BRA {at(32)}", f"BRA {at(26)}", f"BRA {at(35)}",
)


def test_partition_warps_from_the_ttgir():
    assert partition_warps(WS_TTGIR) == (1, 2)
    assert partition_warps("module { tt.func @k() { tt.return } }") == ()


def test_partition_regions_split_at_the_branches_back_to_the_dispatch():
    regions = partition_regions(parse_instructions(WS_SASS))
    assert [(r.index, r.start, r.end) for r in regions] == [
        (-1, 0x0, 0xa0), (0, at_int(15), at_int(21)), (1, at_int(22), at_int(24)),
        (2, at_int(25), at_int(31))]
    assert partition_regions(parse_instructions(TWO_LOOPS)) is None  # no dispatch: a plain kernel


def at_int(i: int) -> int:
    return 16 * i


def test_warp_specialized_loop_metric_weights_each_partition_by_its_warps():
    eff = efficiency(WS_SASS, kernel="qkv", variant="tma", dtype="fp16", constexprs=GEMM, num_warps=4,
                     ttgir=WS_TTGIR, k_steps=64)
    parts = [(p["index"], p["warps"], p["instructions"], p["mma"], p["loads"], p["per_tile"])
             for p in eff.partitions]
    # default: the epilogue loop (6 instructions, per tile: spread over 64 K steps), not the set-up loop;
    # partition 0 the MMA loop (4), partition 1 the load loop (4); the idle region has no loop
    assert parts == [(-1, 4, 6, 0, 0, True), (0, 1, 4, 1, 0, False), (1, 2, 4, 0, 2, False)]
    assert eff.scope == "partitions" and (eff.instructions, eff.mma, eff.loads) == (14, 1, 2)
    assert eff.per_unit == pytest.approx((6 * 4 / 64 + 4 * 1 + 4 * 2) / 48)
    assert eff.cell() == f"ws:4x6i+1x4i+2x4i 1mma {eff.per_unit:.3f}/KiB"
    d = eff.to_dict()
    assert len(d["partitions"]) == 3 and Efficiency(**{**d, "partitions": tuple(d["partitions"])}) == eff
    # attention's partitions all loop per K/V tile: nothing is spread
    att = efficiency(WS_SASS, kernel="attention", variant="prefill", dtype="fp16",
                     constexprs={"BLOCK_N": 128, "HEAD_DIM": 128}, num_warps=4, ttgir=WS_TTGIR, k_steps=64)
    assert att.per_unit == pytest.approx((6 * 4 + 4 * 1 + 4 * 2) / 64)
    # an epilogue that loads (a bias, the KV cache's lengths: LDG) still runs once per tile; a loop that
    # streams operands into shared memory (LDGSTS) does not
    for load, per_tile in (("LDG.E R2, desc[UR4][R2.64]", True),
                           ("LDGSTS.E.128 [R1], desc[UR4][R2.64]", False)):
        loading = WS_SASS.replace("STS.128 [R1], R4", load)
        eff = efficiency(loading, kernel="qkv", variant="tma", dtype="fp16", constexprs=GEMM, num_warps=4,
                         ttgir=WS_TTGIR, k_steps=64)
        assert (eff.partitions[0]["loads"], eff.partitions[0]["per_tile"]) == (1, per_tile)
        assert eff.per_unit == pytest.approx((6 * 4 / (64 if per_tile else 1) + 4 * 1 + 4 * 2) / 48)
    # without the TTGIR's partitions the same SASS is costed as one plain loop
    plain = efficiency(WS_SASS, kernel="qkv", variant="tma", dtype="fp16", constexprs=GEMM, num_warps=4)
    assert plain.scope == "loop" and not plain.partitions and "partitions" not in plain.to_dict()


# Attention with two warp-specialized KV sweeps (the unmasked one, then the masked one), as Triton 3.9
# lays out tutorial 06 for sm_100: each sweep is its own ttg.warp_specialize with three worker
# partitions (0: 4 warps, 88 registers, the correction; 1: 1 warp, the MMAs; 2: 2 warps, the TMA loads).
# In the SASS several partitions share one span between branches back to the dispatch; each starts by
# setting its registers (USETMAXREG.DEALLOC), in an order that is not the TTGIR's.
_WS_SWEEP_TTGIR = """
    {name}:3 = ttg.warp_specialize(%x, %y) attributes {{requestedRegisters = array<i32: 88, 24, 24>}}
    default {{
    partition0(%arg0: !ttg.memdesc<1x1xi64, #shared1, #smem, mutable> loc("acc")) num_warps(4) {{
      %t = ttng.tmem_load %acc
    partition1(%arg0: !ttg.memdesc<1x1xi64, #shared1, #smem, mutable> loc("acc")) num_warps(1) {{
      ttng.tc_gen5_mma %q, %k, %qk
    partition2(%arg0: !ttg.memdesc<1x1xi64, #shared1, #smem, mutable> loc("acc")) num_warps(2) {{
      ttng.async_tma_copy_global_to_local %desc_k[%o, %c0] %k"""
WS2_TTGIR = "".join(_WS_SWEEP_TTGIR.format(name=name) for name in ("%a", "%b")) + "\n"
WS2_SASS = sass(
    # default partition (rows 0-6): its softmax loop rows 1-4, EXIT at row 6
    "S2R R0, SR_TID.X", "MUFU.EX2 R9, R9", "FMUL R9, R9, R3", "FADD R1, R1, R9", f"@P0 BRA {at(1)}",
    "NOP", "EXIT",
    # dispatch (rows 7-9)
    "BAR.SYNC.DEFER_BLOCKING 0x1", f"@P0 BRA {at(7)}", "BRX R2 -0xa0",
    # first sweep: load (rows 10-13, loop 11-12), correction (rows 14-18, loop 15-17), MMA (rows 19-22,
    # loop 20-21), then back to the dispatch (row 23)
    "USETMAXREG.DEALLOC.CTAPOOL 0x18", "UTMALDG.2D [UR8], [UR4]", f"@P0 BRA {at(11)}", "NOP",
    "USETMAXREG.DEALLOC.CTAPOOL 0x58", "LDTM.x64 R8, tmem[UR4]", "FMUL R8, R8, R3", f"@P0 BRA {at(15)}",
    "NOP",
    "USETMAXREG.DEALLOC.CTAPOOL 0x18",
    "UTCHMMA gdesc[UR12], gdesc[UR14], tmem[UR30], tmem[UR10], idesc[UR11], UPT",
    f"@P0 BRA {at(20)}", "NOP", f"BRA {at(7)}",
    # second (masked) sweep: longer loops (rows 24-34)
    "USETMAXREG.DEALLOC.CTAPOOL 0x18", "UTMALDG.2D [UR8], [UR4]", "ISETP.GE.AND P1, PT, R5, R6, PT",
    f"@P0 BRA {at(25)}",
    "USETMAXREG.DEALLOC.CTAPOOL 0x58", "LDTM.x64 R8, tmem[UR4]", "FSEL R9, R9, -INF, P1", "FMUL R8, R8, R3",
    f"@P0 BRA {at(29)}", "NOP", f"BRA {at(7)}",
)


def test_ws_partitions_read_every_warp_specialize_op_with_roles_and_registers():
    ops = ws_partitions(WS2_TTGIR)
    assert [[(p.index, p.warps, p.registers, p.role) for p in op] for op in ops] == [
        [(0, 4, 88, "other"), (1, 1, 24, "mma"), (2, 2, 24, "load")]] * 2
    assert ws_partitions(WS_TTGIR)[0][0].role == "other"  # no body in that excerpt
    assert ws_partitions("module { tt.func @k() { tt.return } }") == []


def test_two_warp_specialized_sweeps_match_partitions_by_role_and_keep_the_cheaper_copy():
    eff = efficiency(WS2_SASS, kernel="attention", variant="prefill", dtype="fp16",
                     constexprs={"BLOCK_N": 128, "HEAD_DIM": 128}, num_warps=4, ttgir=WS2_TTGIR)
    parts = [(p["index"], p["warps"], p["instructions"], p["mma"], p["loads"]) for p in eff.partitions]
    # default 4 x 4; correction (88 registers) 4 x 3 from the first sweep, not the masked 4-instruction
    # copy; MMA 1 x 2; load 2 x 2 (the masked sweep's 3-instruction load loop is the dearer copy)
    assert parts == [(-1, 4, 4, 0, 0), (0, 4, 3, 0, 0), (1, 1, 2, 1, 0), (2, 2, 2, 0, 1)]
    assert eff.per_unit == pytest.approx((4 * 4 + 4 * 3 + 1 * 2 + 2 * 2) / 64)
    assert eff.cell() == f"ws:4x4i+4x3i+1x2i+2x2i 1mma {eff.per_unit:.3f}/KiB"



# The same two sweeps with the default partition's loops as ridgebench's prefill has them on sm_100 (its
# diagonal sweep can run more than one tile, so the default region holds two softmax loops; tutorial 06's
# runs exactly one and has none): a tensor-memory allocation retry (rows 1-5, no barrier), the unmasked
# softmax loop (rows 6-10) and the masked one (rows 11-17), both waiting on and signalling the workers'
# barriers (SYNCS); EXIT at row 19. Then the dispatch (rows 20-22) and WS2_SASS's worker regions.
def ws2_diag_sass() -> str:
    d = 13  # rows added before the dispatch, against WS2_SASS
    return sass(
        "S2R R0, SR_TID.X",
        "UMOV UR4, 0x10", "NANOSLEEP 0x64", "UTCATOMSWS.FIND_AND_SET.ALIGN UP1, UR4, UR4", "MOV R0, UR4",
        f"BRA.U !UP1, {at(1)}",
        "SYNCS.PHASECHK.TRANS64.TRYWAIT P1, [UR6], R3", "MUFU.EX2 R9, R9", "FMUL R9, R9, R3",
        "SYNCS.ARRIVE.TRANS64.A1T0 RZ, [UR7], RZ", f"@P0 BRA {at(6)}",
        "SYNCS.PHASECHK.TRANS64.TRYWAIT P1, [UR6], R3", "ISETP.GE.AND P2, PT, R5, R6, PT",
        "FSEL R9, R9, -INF, P2", "MUFU.EX2 R9, R9", "FMUL R9, R9, R3",
        "SYNCS.ARRIVE.TRANS64.A1T0 RZ, [UR7], RZ",
        f"@P0 BRA {at(11)}", "NOP", "EXIT",
        # dispatch (rows 20-22), then the workers exactly as in WS2_SASS, d rows later
        "BAR.SYNC.DEFER_BLOCKING 0x1", f"@P0 BRA {at(7 + d)}", "BRX R2 -0xa0",
        "USETMAXREG.DEALLOC.CTAPOOL 0x18", "UTMALDG.2D [UR8], [UR4]", f"@P0 BRA {at(11 + d)}", "NOP",
        "USETMAXREG.DEALLOC.CTAPOOL 0x58", "LDTM.x64 R8, tmem[UR4]", "FMUL R8, R8, R3",
        f"@P0 BRA {at(15 + d)}",
        "NOP",
        "USETMAXREG.DEALLOC.CTAPOOL 0x18",
        "UTCHMMA gdesc[UR12], gdesc[UR14], tmem[UR30], tmem[UR10], idesc[UR11], UPT",
        f"@P0 BRA {at(20 + d)}", "NOP", f"BRA {at(7 + d)}",
        "USETMAXREG.DEALLOC.CTAPOOL 0x18", "UTMALDG.2D [UR8], [UR4]", "ISETP.GE.AND P1, PT, R5, R6, PT",
        f"@P0 BRA {at(25 + d)}",
        "USETMAXREG.DEALLOC.CTAPOOL 0x58", "LDTM.x64 R8, tmem[UR4]", "FSEL R9, R9, -INF, P1",
        "FMUL R8, R8, R3", f"@P0 BRA {at(29 + d)}", "NOP", f"BRA {at(7 + d)}",
    )


def test_two_sweeps_keep_the_default_partitions_unmasked_copy_not_its_largest_loop():
    text = ws2_diag_sass()
    loops = find_loops(text)
    assert [(lp.start, lp.instructions, lp.syncs) for lp in loops[:3]] == [
        (at_int(1), 5, 0), (at_int(6), 5, 2), (at_int(11), 7, 2)]
    eff = efficiency(text, kernel="attention", variant="prefill", dtype="fp16",
                     constexprs={"BLOCK_N": 128, "HEAD_DIM": 128}, num_warps=4, ttgir=WS2_TTGIR)
    parts = [(p["index"], p["warps"], p["start"], p["instructions"]) for p in eff.partitions]
    # default: the unmasked softmax loop (5 instructions at row 6), neither the masked copy (7, the
    # largest loop: the rule for a single sweep) nor the allocation retry (5 instructions, no barrier);
    # the workers as in WS2_SASS
    assert parts[0] == (-1, 4, at_int(6), 5)
    assert [p[::3] for p in parts[1:]] == [(0, 3), (1, 2), (2, 2)]
    assert eff.per_unit == pytest.approx((4 * 5 + 4 * 3 + 1 * 2 + 2 * 2) / 64)
    # a single sweep keeps the old rule: the largest loop of a default partition that only computes
    single = efficiency(text, kernel="attention", variant="prefill", dtype="fp16",
                        constexprs={"BLOCK_N": 128, "HEAD_DIM": 128}, num_warps=4,
                        ttgir=WS2_TTGIR[:WS2_TTGIR.index("%b:3")])
    assert single.partitions[0]["instructions"] == 7
