"""Hardware presets, device-name lookup and measured specs (roofline/model/hardware.py)."""

from __future__ import annotations

import pytest

from roofline.model.hardware import (
    DTYPE_CLASSES,
    PRESETS,
    HardwareSpec,
    UnknownHardwareError,
    dtype_class,
    from_measured,
    get_preset,
    is_mig,
    lookup_device,
)

# bf16 ridge points as shared/REFERENCE.md rounds them: peak / bandwidth.
REFERENCE_RIDGE_BF16 = {
    "A100-SXM4-40GB": 201, "A100-PCIE-40GB": 201, "A100-SXM4-80GB": 153, "A100-PCIE-80GB": 161,
    "H100-SXM5": 295, "H100-PCIE": 378, "H200": 206, "V100-SXM2": 139,
    "A100-SEED-1.5TB": 208, "A100-SEED-2.0TB": 156,
}
# The Blackwell and Ada presets (issue 23): ridges from their datasheets' dense peaks (B200's ~281 is
# shared/REFERENCE.md's); their L2 may be None (spec pages disagree: the device reports it).
NEW_RIDGE_BF16 = {"B200": 281, "GB200": 312, "B300": 281, "RTX-PRO-6000-BLACKWELL": 281, "RTX-5090": 117,
                  "L40S": 419,
                  # AMD Instinct (issue 24): MI300X's ~247 is shared/REFERENCE.md's
                  "MI300X": 247, "MI325X": 218, "MI355X": 312, "MI250X": 117}


def test_every_preset_has_a_reference_ridge_and_the_required_fields():
    assert set(PRESETS) == set(REFERENCE_RIDGE_BF16) | set(NEW_RIDGE_BF16)
    for name, spec in PRESETS.items():
        assert spec.name == name
        assert round(spec.ridge("tensor16")) == {**REFERENCE_RIDGE_BF16, **NEW_RIDGE_BF16}[name], name
        for attr in ("l2_bytes", "sm_count", "smem_per_sm", "smem_per_block", "arch"):
            if attr == "l2_bytes" and name in NEW_RIDGE_BF16 and spec.l2_bytes is None:
                continue
            value = getattr(spec, attr)
            assert value is not None and (isinstance(value, str) or value > 0), (name, attr)
        assert spec.smem_per_block <= spec.smem_per_sm
        # Dense, not sparse: no preset claims more than GB200's 2500 dense TFLOP/s (H100 SXM: 989).
        assert spec.peak("tensor16") <= (2500e12 if name in NEW_RIDGE_BF16 else 989e12)
        # fp32 without tensor cores is far below the tensor-core peak (on the workstation/consumer parts
        # only below it: a GeForce runs fp32-accumulating MMAs at half rate); tf32 is half of fp16.
        consumer = spec.arch in (89, 120)
        assert spec.peak("fp32") < spec.peak("tensor16") / (1.5 if consumer else 5)
        if "tf32" in spec.peak_flops:
            assert spec.peak("tf32") == pytest.approx(spec.peak("tensor16") / 2, rel=0.02)  # L40S: 183 of 362


def test_ridge_is_peak_over_bandwidth_per_class():
    spec = PRESETS["H100-SXM5"]
    for cls in DTYPE_CLASSES:
        assert spec.ridge(cls) == spec.peak(cls) / spec.mem_bandwidth
    d = spec.to_dict()
    assert d["ridge_flop_per_byte"]["tensor16"] == pytest.approx(989e12 / 3350e9)
    assert d["l2_bytes"] == 50 * 1024 * 1024 and d["sm_count"] == 132


def test_seed_003_ridges_mix_binary_and_decimal_units():
    """Seed 003 (App. C.1) lists the A100 40GB at "1.6 TiB/s, 195 FLOPS/B" and the 80GB at "2.0 TiB/s,
    156". The datasheets say 1555 and 2039 GB/s (decimal), i.e. 1.41 and 1.85 TiB/s, and the ridges are
    312e12/1555e9 = 200.6 and 312e12/2039e9 = 153.0 FLOP/byte. The seed divided 312 by a rounded
    "1.6" and "2.0" as if they were TB/s."""
    assert PRESETS["A100-SXM4-40GB"].ridge() == pytest.approx(200.64, abs=0.01)
    assert PRESETS["A100-SXM4-80GB"].ridge() == pytest.approx(153.02, abs=0.01)
    assert PRESETS["A100-SXM4-40GB"].mem_bandwidth / 2**40 == pytest.approx(1.414, abs=0.001)
    assert PRESETS["A100-SXM4-80GB"].mem_bandwidth / 2**40 == pytest.approx(1.854, abs=0.001)


def test_seed_documents_rounded_a100():
    assert PRESETS["A100-SEED-1.5TB"].ridge() == 208.0
    assert PRESETS["A100-SEED-2.0TB"].ridge() == 156.0
    assert PRESETS["A100-SEED-1.5TB"].source == "seed"


def test_v100_has_no_tf32_and_says_what_it_has():
    with pytest.raises(KeyError, match="tf32.*it has: tensor16, fp32"):
        PRESETS["V100-SXM2"].peak("tf32")


@pytest.mark.parametrize("name", ["a100-sxm4-80gb", "  H100-SXM5 ", "h200"])
def test_get_preset_is_case_insensitive(name):
    assert get_preset(name).name.lower() == name.strip().lower()


def test_get_preset_unknown_lists_known():
    with pytest.raises(UnknownHardwareError, match="unknown hardware preset 'B100'.*A100-SXM4-40GB"):
        get_preset("B100")


@pytest.mark.parametrize(
    ("device_name", "preset"),
    [
        ("NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB"),
        ("NVIDIA A100-SXM4-40GB", "A100-SXM4-40GB"),
        ("NVIDIA A100-PCIE-40GB", "A100-PCIE-40GB"),
        ("NVIDIA A100 80GB PCIe", "A100-PCIE-80GB"),
        ("NVIDIA H100 80GB HBM3", "H100-SXM5"),
        ("NVIDIA H100 PCIe", "H100-PCIE"),
        ("NVIDIA H200", "H200"),
        ("Tesla V100-SXM2-16GB", "V100-SXM2"),
        ("Tesla V100-SXM2-32GB", "V100-SXM2"),
        ("NVIDIA B200", "B200"),
        ("NVIDIA GB200", "GB200"),
        ("NVIDIA B300 SXM6 AC", "B300"),
        ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "RTX-PRO-6000-BLACKWELL"),
        ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "RTX-PRO-6000-BLACKWELL"),
        ("NVIDIA GeForce RTX 5090", "RTX-5090"),
        ("NVIDIA L40S", "L40S"),
    ],
)
def test_lookup_device_names(device_name, preset):
    assert lookup_device(device_name).name == preset


@pytest.mark.parametrize(
    "device_name",
    [
        "NVIDIA H100",  # SXM (3.35 TB/s) or PCIe (2.0 TB/s)? ambiguous
        "NVIDIA A100",  # 40 or 80 GB, SXM or PCIe? ambiguous
        "NVIDIA H100 NVL",  # a different part (94 GB, 3.9 TB/s)
        "NVIDIA H200 NVL",
        "NVIDIA GH200 480GB",  # a superchip, not an H200
        "Tesla V100-PCIE-16GB",
        "NVIDIA A800-SXM4-80GB",
        "NVIDIA GeForce RTX 4090",
        "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition",  # 300 W: other clocks, other peaks
        "NVIDIA GeForce RTX 5090 D",  # the China variant
        "NVIDIA GeForce RTX 5090 Laptop GPU",
        "NVIDIA GB300",  # a different power and part than the HGX B300
        "NVIDIA L40",  # not the L40S
        "",
    ],
)
def test_lookup_device_never_guesses(device_name):
    with pytest.raises(UnknownHardwareError, match="does not guess"):
        lookup_device(device_name)


def test_from_measured_keeps_the_base_structure():
    base = PRESETS["A100-SXM4-80GB"]
    spec = from_measured("NVIDIA A100-SXM4-80GB", 1.8e12, {"tensor16": 280e12}, base=base, notes=("stream",))
    assert spec.source == "measured" and spec.sm_count == 108 and spec.l2_bytes == base.l2_bytes
    assert spec.ridge("tensor16") == pytest.approx(280e12 / 1.8e12)
    assert "tf32" not in spec.peak_flops  # measured ceilings replace, they do not merge
    cpu = from_measured("cpu", 50e9, {"fp32": 1e12})
    assert isinstance(cpu, HardwareSpec) and cpu.sm_count is None and cpu.ridge("fp32") == 20.0


@pytest.mark.parametrize(
    ("bandwidth", "peaks", "match"),
    [
        (1e12, {"fp64": 1e12}, "unknown dtype class 'fp64'"),
        (0.0, {"fp32": 1e12}, "must be positive"),
        (1e12, {"fp32": -1.0}, "must be positive"),
    ],
)
def test_from_measured_rejects_bad_ceilings(bandwidth, peaks, match):
    with pytest.raises(ValueError, match=match):
        from_measured("x", bandwidth, peaks)


@pytest.mark.parametrize(
    ("dtype", "matmul", "cls"),
    [("float16", True, "tensor16"), ("torch.bfloat16", True, "tensor16"), ("fp32", True, "tf32"),
     ("torch.bfloat16", False, "fp32"), ("float16", False, "fp32"), ("float32", False, "fp32")],
)
def test_dtype_class(dtype, matmul, cls):
    assert dtype_class(dtype, matmul=matmul) == cls


def test_dtype_class_rejects_float64():
    with pytest.raises(ValueError, match="dtype: unsupported"):
        dtype_class("float64", matmul=True)


@pytest.mark.parametrize("name", ["NVIDIA A100-SXM4-80GB MIG 1g.10gb", "NVIDIA H100 80GB HBM3 MIG 3g.40gb",
                                  "NVIDIA A100-PCIE-40GB MIG 7g.40gb"])
def test_a_mig_slice_matches_no_full_gpu_preset(name):
    assert is_mig(name)
    with pytest.raises(UnknownHardwareError, match="MIG slice"):
        lookup_device(name)


def test_h200_l2_is_what_the_device_reports():
    assert PRESETS["H200"].l2_bytes == 60 * 1024 * 1024
    assert not is_mig("NVIDIA H200") and lookup_device("NVIDIA H200").name == "H200"


@pytest.mark.parametrize("name", ["B200", "GB200", "B300", "RTX-PRO-6000-BLACKWELL", "RTX-5090", "L40S"])
def test_new_presets_name_their_datasheet_and_arch(name):
    """Each names the datasheet it came from; its shared memory is its architecture row's."""
    from roofline.model.arch import ARCHS

    spec = PRESETS[name]
    assert spec.source == "datasheet" and spec.notes[0].startswith("source: ") and len(spec.notes[0]) > 30
    row = ARCHS[spec.arch]
    assert (spec.smem_per_sm, spec.smem_per_block) == (row.smem_per_sm, row.smem_per_block)


def test_blackwell_arches_and_what_is_unverified():
    names = ("B200", "GB200", "B300", "RTX-5090", "L40S")
    assert [PRESETS[n].arch for n in names] == [100, 100, 103, 120, 89]
    assert PRESETS["RTX-5090"].smem_per_block == 99 * 1024  # sm_120: the consumer per-block limit
    assert any(n.startswith("unverified: fp16/bf16") for n in PRESETS["RTX-5090"].notes)
    assert not any(n.startswith("unverified") for n in PRESETS["L40S"].notes)
    assert PRESETS["B200"].ridge() == pytest.approx(281.25)


def test_a_measured_spec_keeps_the_datasheets_caches_but_not_its_unmeasured_peaks():
    """The suite measures bandwidth and the fp32/tf32/16-bit peaks only: a measured spec built on a
    datasheet keeps its caches and architecture, never its fp8/int8 peaks."""
    from roofline.model.hardware import PRESETS, from_measured

    base = PRESETS["H100-SXM5"]
    assert base.int8_peak_ops and base.fp8_peak_flops
    spec = from_measured("NVIDIA H100 80GB HBM3", 3e12, {"tensor16": 7e14, "fp32": 5e13}, base=base)
    assert spec.int8_peak_ops is None and spec.fp8_peak_flops is None
    assert spec.l2_bytes == base.l2_bytes and spec.arch == base.arch and spec.source == "measured"


def test_amd_instinct_presets():
    """Issue 24: MI300X, MI325X, MI355X, MI250X with their sources, the architecture's LDS, tf32 (xf32)
    only where the part has it, and the Infinity Cache a flush must cover."""
    from roofline.model.arch import ARCHS
    from roofline.model.hardware import MiB, get_preset, lookup_device

    mi300x, mi325x, mi355x, mi250x = (get_preset(n) for n in ("MI300X", "MI325X", "MI355X", "MI250X"))
    for spec in (mi300x, mi325x, mi355x, mi250x):
        assert spec.notes and spec.notes[0].startswith("source: AMD Instinct")
        assert spec.smem_per_sm == ARCHS[spec.arch].smem_per_sm and ARCHS[spec.arch].backend == "hip"
    assert mi300x.arch == mi325x.arch == "gfx942" and mi355x.arch == "gfx950" and mi250x.arch == "gfx90a"
    assert round(mi300x.ridge()) == 247 and mi300x.sm_count == 304 and mi355x.smem_per_sm == 160 * 1024
    assert mi325x.peak_flops == mi300x.peak_flops and mi325x.mem_bandwidth > mi300x.mem_bandwidth
    assert "tf32" in mi300x.peak_flops
    assert "tf32" not in mi355x.peak_flops and "tf32" not in mi250x.peak_flops
    assert mi300x.infinity_cache_bytes == 256 * MiB and mi250x.infinity_cache_bytes is None
    assert mi300x.to_dict()["infinity_cache_bytes"] == 256 * MiB
    assert lookup_device("AMD Instinct MI300X") is mi300x
    assert lookup_device("AMD Instinct MI300X VF") is mi300x
    assert lookup_device("AMD Instinct MI355X") is mi355x
    with pytest.raises(UnknownHardwareError):
        lookup_device("AMD Instinct MI300A")  # the APU: a different part, no guess


def test_claims_predict_on_mi300x(tmp_path, capsys):
    """``python -m roofline claims --predict MI300X``: the model verdicts on the MI300X preset."""
    from roofline.report.cli import main

    assert main(["claims", "--predict", "MI300X", "--out", str(tmp_path / "claims.md")]) == 0
    out = capsys.readouterr().out
    assert "model on MI300X" in out and "rule ridge x bytes/2 = 247" in out
    assert "MI300X" in (tmp_path / "claims.md").read_text()
