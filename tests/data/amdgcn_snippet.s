; Cut from the AMDGCN Triton 3.9 returned for a gfx942 compile of ridgebench's prefill kernel: the
; compiler's own line formats, the body cut to a prologue, one loop and an epilogue, a few instructions
; and the resource figures changed so every field the audit reads is non-zero and distinct.
; tests/test_audit_amdgcn.py reads it.
	.amdgcn_target "amdgpu9.42-amd-amdhsa-unknown-gfx942"
	.amdhsa_code_object_version 5
	.text
	.globl	_attn_prefill_kernel            ; -- Begin function _attn_prefill_kernel
	.p2align	8
	.type	_attn_prefill_kernel,@function
_attn_prefill_kernel:                   ; @_attn_prefill_kernel
.Lfunc_begin0:
	.cfi_sections .debug_frame
	.cfi_startproc
; %bb.58:
	s_load_dwordx2 s[2:3], s[0:1], 0x0
	v_writelane_b32 v165, s2, 0
	global_load_dwordx4 v[6:9], v[4:5], off
	buffer_load_dwordx4 v[10:13], v1, s[4:7], 0 offen
	global_load_ushort v14, v[2:3], off
	s_branch .LBB0_0
.LBB0_0:
	scratch_store_dword off, v20, s33 offset:4
	s_cbranch_execz .LBB0_2
.LBB0_1:                                ; =>This Inner Loop Header: Depth=1
	global_load_dwordx4 v[2:5], v[2:3], off
	buffer_load_dwordx4 v[30:33], v1, s[4:7], 0 offen
	global_load_lds_dwordx4 v[40:41], off
	ds_write2st64_b64 v16, v[6:7], v[2:3] offset1:16
	s_waitcnt vmcnt(0)
	s_barrier
	ds_read_b128 v[50:53], v17
	v_mfma_f32_32x32x8_f16 v[16:31], v[54:55], v[124:125], 0
	v_mfma_f32_32x32x8_f16 v[32:47], v[62:63], v[124:125], 0
	v_mfma_f32_32x32x8_f16 v[16:31], v[56:57], v[122:123], v[16:31]
	s_add_i32 s8, s8, 64
	s_cmp_lt_i32 s8, s9
	s_cbranch_scc1 .LBB0_1
.LBB0_2:
	scratch_load_dword v20, off, s33 offset:4
	s_nop 0
	global_store_dwordx2 v[8:9], v[0:1], off
	global_store_dwordx2 v[8:9], v[0:1], off offset:16
	s_endpgm
.Lfunc_end0:
	v_mfma_f32_32x32x8_f16 v[16:31], v[54:55], v[124:125], 0
	.set .L_attn_prefill_kernel.has_indirect_call, 0
	.section	.AMDGPU.csdata,"",@progbits
; Kernel info:
; codeLenInByte = 22328
; TotalNumSgprs: 106
; NumVgprs: 166
; NumAgprs: 12
; TotalNumVgprs: 180
; ScratchSize: 8
; MemoryBound: 0
; LDSByteSize: 0 bytes/workgroup (compile time only)
; NumVGPRsForWavesPerEU: 180
; AccumOffset: 168
; Occupancy: 2
; WaveLimiterHint : 1
    .name:           _attn_prefill_kernel
    .private_segment_fixed_size: 8
    .sgpr_count:     106
    .sgpr_spill_count: 7
    .vgpr_count:     180
    .vgpr_spill_count: 1
    .wavefront_size: 64
