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
