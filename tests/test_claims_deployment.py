"""The deployment claims (roofline/report/claims/deployment.py): the decode crossover per weight width, and
seed
004's capacity arithmetic for the 52B model, recomputed."""

from __future__ import annotations

import pytest

from roofline.model.hardware import PRESETS as HW
from roofline.model.hardware import HardwareSpec
from roofline.report.claims import BY_ID, evaluate
from roofline.report.claims.deployment import (
    capacity_four_model,
    capacity_table,
    capacity_three_model,
    ridge_per_width_model,
)

CLAIM_IDS = ("decode-crossover-per-weight-width", "seed004-52b-three-40gb-gpus", "seed004-52b-four-40gb-gpus")


@pytest.mark.parametrize("preset", ["A100-SXM4-80GB", "A100-SEED-1.5TB", "H100-SXM5", "H200"])
def test_deployment_claims_on_gpu_presets(preset):
    rows = {r.claim.id: r.model.status for r in evaluate(hardware=HW[preset],
                                                         claims=tuple(BY_ID[i] for i in CLAIM_IDS))}
    assert rows == dict(zip(CLAIM_IDS, ("supported", "supported", "refuted"), strict=True))


def test_per_width_numbers_on_a100_and_h100():
    """A100: weight-only int8 halves the bf16 GEMV crossover (162 -> 81), W8A8 int8 keeps it on the int8
    tensor cores, fp8 has none (bf16 math: it behaves as weight-only). H100: fp8 runs on the fp8 peak."""
    a100 = ridge_per_width_model(HW["A100-SXM4-80GB"], "bfloat16").numbers
    assert a100["bfloat16"]["gemv"] == 162 and a100["int8 weight-only"]["gemv"] == 81
    assert a100["W8A8 int8"]["math"] == "int8" and a100["W8A8 int8"]["gemv"] == 162
    assert a100["W8A8 fp8"]["math"] == "tensor16" and a100["W8A8 fp8"]["gemv"] == pytest.approx(81, abs=3)
    assert a100["int4 weight-only (g128)"]["bytes_per_weight"] == 0.5 + 2 / 128
    assert a100["bfloat16"]["rule"] == pytest.approx(312e12 / 2039e9)
    h100 = ridge_per_width_model(HW["H100-SXM5"], "bfloat16").numbers
    assert h100["W8A8 fp8"]["math"] == "fp8" and h100["W8A8 fp8"]["rule"] == pytest.approx(
        1979e12 / 3350e9 * (1 + 4 / (4096 * 11008)) / 2)
    # the whole Llama-2-7B decode step follows the GEMV: half the crossover with int8 weights
    assert a100["int8 weight-only"]["llama2_7b_decode"] / a100["bfloat16"]["llama2_7b_decode"] == \
        pytest.approx(0.5, abs=0.025)


def test_seed_004_capacity_figures():
    three = capacity_three_model(HW["A100-SXM4-80GB"], "bfloat16")
    n = three.numbers
    assert n["weights_bytes"] == 104_152_956_928 and n["gpus_needed"] == 3
    assert n["kv_bytes_per_token"] == 2_097_152
    assert n["tokens_three_gpus"] == pytest.approx((120e9 - 104_152_956_928) / 2_097_152)
    assert round(n["tokens_three_gpus"]) == 7_556 and round(n["tokens_three_gpus_rounded_16gb"]) == 7_629
    assert any("do not split over 3 GPUs" in line for line in three.details)
    four = capacity_four_model(HW["A100-SXM4-80GB"], "bfloat16")
    assert round(four.numbers["tokens_four_gpus"]) == 26_630 and four.numbers["seed_own"] == 28_000
    assert four.numbers["tokens_four_gpus_tp"] == 26_110
    assert "16% more than the seed's ~23,000" in four.summary


def test_capacity_table_covers_the_presets_with_memory():
    lines = capacity_table()
    named = {line.split(" ")[0] for line in lines}
    assert {s.name for s in HW.values() if s.memory_bytes} <= named
    h200 = next(line for line in lines if line.startswith("H200 "))
    assert "1: 17,051" in h200  # 141 GB holds the 52B weights on one GPU
    a80 = next(line for line in lines if line.startswith("A100-SXM4-80GB"))
    assert "1: does not fit" in a80 and "2: 26,111" in a80
    assert lines[-1].startswith("no memory capacity in ridgebench for: ") and "V100-SXM2" in lines[-1]


def test_a_spec_without_the_roof_cannot_judge():
    cpu = HardwareSpec("cpu", {"fp32": 1e12}, 100e9, source="measured")
    row = evaluate(hardware=cpu, dtype="float32", claims=(BY_ID[CLAIM_IDS[0]],))[0]
    assert row.model.status == "inconclusive" and "no 'tf32' peak" in row.model.summary
