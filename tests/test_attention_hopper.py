"""Issue 15's attention changes under the Triton interpreter: the softmax scale folded into the exp2
FMA (raw scores in the unmasked loops, a negative scale negating q, a zero scale never meeting -inf)
and the sm_90-only configs, each run against the float64 reference."""

from __future__ import annotations

import pytest
import torch

import kernels.attention as A
from tests.test_attention import EXACT, check, make_inputs


@pytest.fixture(autouse=True)
def nan_outputs(monkeypatch):
    def alloc(shape, dtype, device):
        return torch.full(shape, float("nan"), dtype=dtype, device=device)

    monkeypatch.setattr(A, "_alloc", alloc)


@pytest.mark.parametrize("variant", ["prefill", "splitkv"])
@pytest.mark.parametrize("scale", [-4.0, 0.0, 1e-3, 2.5])
def test_scale_sign_and_zero(variant, scale):
    # q_len 70 with a 100-token cache: unmasked tiles, diagonal tiles and (prefill) several q blocks;
    # a zero scale is uniform attention over the visible keys, a negative one favours dissimilar keys
    # (at -4, scaling the raw row max without negating q would overflow exp2)
    q_len = 70 if variant == "prefill" else 9
    q, k, v, lens = make_inputs(2, 4, 2, q_len, 64, [100, 3])
    check(q, k, v, lens, EXACT, scale=scale, variant=variant)


def test_scale_fold_fp16():
    q, k, v, lens = make_inputs(1, 2, 1, 80, 128, [150], dtype=torch.float16)
    check(q, k, v, lens, A.TOLERANCES[torch.float16], scale=-0.09, variant="prefill")
