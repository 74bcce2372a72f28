"""kernels/_lib/device.py: the one copy of device limits the launchers and the audit read. Its figures
must agree with the hardware presets' (roofline/model/hardware.py), which carry the same datasheet numbers
for the roofline."""

from __future__ import annotations

import pytest
import torch

from kernels._lib import device
from roofline.model.hardware import PRESETS


@pytest.mark.parametrize("name", [n for n, spec in PRESETS.items() if spec.arch in device.LIMITS])
def test_shared_memory_limits_agree_with_the_hardware_presets(name):
    spec = PRESETS[name]
    limits = device.LIMITS[spec.arch]
    assert (limits.smem_per_sm, limits.smem_per_block) == (spec.smem_per_sm, spec.smem_per_block)


def test_default_sm_count_is_the_h100_sxm_a_launch_plans_for():
    assert device.DEFAULT_NUM_SMS == PRESETS["H100-SXM5"].sm_count


def test_off_gpu_devices_get_the_defaults():
    cpu = torch.device("cpu")
    assert device.num_sms(cpu) == device.DEFAULT_NUM_SMS
    assert device.arch(cpu) == 0 and device.arch(cpu, default=80) == 80


def test_unknown_architecture_gets_the_smallest_shared_memory():
    assert device.smem_per_block(80) == 163 * 1024 and device.smem_per_block(90) == 227 * 1024
    # an unknown capability is an NVIDIA part: the smallest NVIDIA figure (AMD's LDS is not in the running)
    assert device.smem_per_block(75) == min(lim.smem_per_block for lim in device.LIMITS.values()
                                            if lim.backend == "cuda")
    assert device.smem_per_block(75) == 99 * 1024  # sm_86/sm_89's 99 KiB


@pytest.mark.parametrize("arch", [a for a in device.ARCHS if device.arch_table.warp_specializes(a)])
def test_warp_specialization_needs_a_triton_its_configs_were_audited_with(arch):
    assert device.warp_specializes(arch, "3.9.0") and device.warp_specializes(arch, "3.10.1+git0abc")
    assert not device.warp_specializes(arch, "3.6.0") and not device.warp_specializes(arch, "3.8.0")
    assert not device.warp_specializes(90, "3.9.0") and not device.warp_specializes("gfx942", "3.9.0")


@pytest.mark.usefixtures("audited_triton")
def test_an_older_triton_on_sm100_launches_no_warp_specialized_tile(monkeypatch):
    """A B200 whose torch pins triton 3.6 (torch 2.11): the launchers plan the plain tiles, which that
    triton compiles, instead of the warp-specialized ones it fails on."""
    import triton

    from kernels.attention.configs import prefill_configs
    from kernels.attention.configs import prune_configs as attention_prune
    from kernels.qkv.configs import TMA_VARIANT, variant_configs
    from kernels.qkv.configs import prune_configs as qkv_prune

    def warp_specialized(configs):
        return [c for c in configs if c.kwargs.get("WARP_SPECIALIZE")]

    assert warp_specialized(qkv_prune(variant_configs(TMA_VARIANT), 4096, 2, 100))
    assert warp_specialized(attention_prune(prefill_configs(128, 100), 128, 2, 100, tma=True))
    monkeypatch.setattr(triton, "__version__", "3.6.0")
    assert not warp_specialized(qkv_prune(variant_configs(TMA_VARIANT), 4096, 2, 100))
    assert not warp_specialized(attention_prune(prefill_configs(128, 100), 128, 2, 100, tma=True))
