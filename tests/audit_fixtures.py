"""Test-only kernels for the audit: one deliberately bad case per gate, and good controls.

``compile_cases(arch)`` is a case source for ``python -m kernels.audit --cases
tests/audit_fixtures.py:compile_cases``; tests/test_audit_gates.py checks that each bad case fails
exactly its gate and the controls pass. Each case's ``variant`` names what it demonstrates.
"""

from __future__ import annotations

import triton
import triton.language as tl

from kernels._lib.aot import CompileCase
from kernels._lib.launch import config_id


@triton.jit
def _copy_kernel(y_ptr, x_ptr, n, BLOCK: tl.constexpr):
    # Elementwise y = 2x: 128-bit loads when x, y and n are hinted 16-aligned.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2, mask=mask)


@triton.jit
def _spill_kernel(y_ptr, x_ptr, n, BLOCK: tl.constexpr):
    # Every thread holds BLOCK / 32 fp32 values live across a reduction: far past 255 registers.
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    y = x * tl.sum(x * x, axis=0) + tl.max(x, axis=0)
    tl.store(y_ptr + offs, y, mask=mask)


@triton.jit
def _matmul_kernel(c_ptr, a_ptr, b_ptr, M, N, K, stride_am, stride_bk, stride_cm,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                   USE_DOT: tl.constexpr):
    # C = A @ B with row-major A [M, K], B [K, N]; USE_DOT=False multiplies with broadcasts and sums
    # (CUDA-core FMAs, no tensor cores).
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        a = tl.load(a_ptr + rm[:, None] * stride_am + (k + rk)[None, :])
        b = tl.load(b_ptr + (k + rk)[:, None] * stride_bk + rn[None, :])
        if USE_DOT:
            acc += tl.dot(a, b)
        else:
            acc += tl.sum(a[:, :, None].to(tl.float32) * b[None, :, :].to(tl.float32), axis=1)
    tl.store(c_ptr + rm[:, None] * stride_cm + rn[None, :], acc.to(c_ptr.dtype.element_ty))


def _copy_case(variant: str, hinted: bool, gates: frozenset[str]) -> CompileCase:
    return CompileCase(
        kernel="fixture", variant=variant, fn=_copy_kernel,
        signature={"y_ptr": "*fp16", "x_ptr": "*fp16", "n": "i32", "BLOCK": "constexpr"},
        constexprs={"BLOCK": 1024},
        divisible_by_16=("y_ptr", "x_ptr", "n") if hinted else (),
        num_warps=4, num_stages=1, dtype="fp16", shape={"n": 4096 if hinted else 4095},
        config=config_id({"BLOCK": 1024}, 4, 1), gates=gates,
    )


def _matmul_case(variant: str, *, block: tuple[int, int, int], use_dot: bool, num_warps: int,
                 num_stages: int, gates: frozenset[str]) -> CompileCase:
    bm, bn, bk = block
    meta = {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}
    return CompileCase(
        kernel="fixture", variant=variant, fn=_matmul_kernel,
        signature={"c_ptr": "*fp16", "a_ptr": "*fp16", "b_ptr": "*fp16", "M": "i32", "N": "i32", "K": "i32",
                   "stride_am": "i32", "stride_bk": "i32", "stride_cm": "i32", "BLOCK_M": "constexpr",
                   "BLOCK_N": "constexpr", "BLOCK_K": "constexpr", "USE_DOT": "constexpr"},
        constexprs={**meta, "USE_DOT": use_dot},
        divisible_by_16=("c_ptr", "a_ptr", "b_ptr", "M", "N", "K", "stride_am", "stride_bk", "stride_cm"),
        num_warps=num_warps, num_stages=num_stages, dtype="fp16", shape={"m": 1024, "n": 1024, "k": 1024},
        config=config_id(meta, num_warps, num_stages), gates=gates,
    )


def compile_cases(arch: int) -> list[CompileCase]:
    """Good controls first, then one bad case per gate (the variant names the gate it must fail)."""
    vec = frozenset({"vec128_loads"})
    tc = frozenset({"tensor_cores"})
    return [
        _copy_case("good_copy", hinted=True, gates=vec),
        _matmul_case("good_dot", block=(128, 64, 32), use_dot=True, num_warps=4, num_stages=3, gates=tc),
        # no_spills: 8192 fp32 values over one warp = 256 per thread live across a reduction.
        CompileCase(
            kernel="fixture", variant="bad_no_spills", fn=_spill_kernel,
            signature={"y_ptr": "*fp32", "x_ptr": "*fp32", "n": "i32", "BLOCK": "constexpr"},
            constexprs={"BLOCK": 8192}, divisible_by_16=("y_ptr", "x_ptr", "n"), num_warps=1,
            num_stages=1, dtype="fp32", shape={"n": 8192}, config=config_id({"BLOCK": 8192}, 1, 1),
        ),
        # shared_memory: 8 pipeline stages of 128x64 + 64x128 fp16 tiles = 256 KiB per block.
        _matmul_case("bad_shared_memory", block=(128, 128, 64), use_dot=True, num_warps=4, num_stages=8,
                     gates=frozenset()),
        # tensor_cores: a GEMM gated on tensor cores that multiplies without tl.dot.
        _matmul_case("bad_tensor_cores", block=(16, 16, 16), use_dot=False, num_warps=4, num_stages=1,
                     gates=tc),
        # wgmma (sm_90): a 16-row tile is too small for a warpgroup MMA; Triton emits HMMA.
        _matmul_case("bad_wgmma", block=(16, 64, 32), use_dot=True, num_warps=4, num_stages=2, gates=tc),
        # vec128_loads: fp16 copy without the alignment hints an aligned launch would have.
        _copy_case("bad_vec128_loads", hinted=False, gates=vec),
        # compiles: tl.dot needs K >= 16; an 8-wide K tile is rejected by the compiler.
        _matmul_case("bad_compiles", block=(16, 16, 8), use_dot=True, num_warps=4, num_stages=1,
                     gates=frozenset()),
    ]


def good_cases(arch: int) -> list[CompileCase]:
    """Just the aligned copy: a cheap source for tests of the audit's API."""
    return [_copy_case("good_copy", hinted=True, gates=frozenset({"vec128_loads"}))]


def no_cases(arch: int) -> list[CompileCase]:
    """A source that lists nothing: the audit must report it, not skip it."""
    return []


def amd_cases(arch: str) -> list[CompileCase]:
    """The AMD gates on gfx942/gfx950 (tests/test_audit_amdgcn.py): good controls, then one bad case per
    gate that reads the AMDGCN: spills, the occupancy floor, 128-bit loads."""
    from dataclasses import replace

    # 8 fp16 per lane: a 2048-element block over 4 waves of 64 (1024 gives 64-bit loads there)
    copy = replace(_copy_case("good_copy", hinted=True, gates=frozenset({"vec128_loads"})),
                   constexprs={"BLOCK": 2048}, config=config_id({"BLOCK": 2048}, 4, 1))
    spill = _matmul_case("bad_no_spills", block=(128, 128, 64), use_dot=True, num_warps=4, num_stages=2,
                         gates=frozenset({"tensor_cores"}))
    return [
        copy,
        _matmul_case("good_dot", block=(128, 64, 32), use_dot=True, num_warps=4, num_stages=3,
                     gates=frozenset({"tensor_cores"})),
        # no_spills: the 128x128 tile held to 128 VGPRs (waves_per_eu=4)
        replace(spill, constexprs={**spill.constexprs, "waves_per_eu": 4},
                config=spill.config.replace("num_warps", "waves_per_eu=4,num_warps")),
        # occupancy: 3 stages of 128x64 + 64x128 fp16 tiles: 64 KiB of LDS on gfx942 (its whole LDS),
        # ~100 KiB on gfx950 (direct-to-LDS buffers): one workgroup of 4 waves per CU, 1 wave per SIMD
        _matmul_case("bad_occupancy", block=(128, 128, 64), use_dot=True, num_warps=4, num_stages=3,
                     gates=frozenset({"tensor_cores"})),
        replace(copy, variant="bad_vec128_loads", divisible_by_16=(), shape={"n": 4095}),
    ]
