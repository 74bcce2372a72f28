"""roofline.report.plot: log-log axes, roofs and ridges at the right values, every benchmark drawn with its
predicted position beside it, above-roof points flagged, labels that do not overlap, files written."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text

from roofline.model.hardware import PRESETS, HardwareSpec, from_measured
from roofline.model.sweeps import sweep_points
from roofline.report.cli import main
from roofline.report.plot import draw, measured_points, plot_predicted, plot_results, roofline_chart
from roofline.report.results import attainable_flops_per_s, load_results
from tests.data.synth import A100, MEASURED_A100, a100_run, benchmark, roofline_time, write_run

DATA = Path(__file__).parent / "data"


def _by_gid(ax, prefix: str) -> dict:
    return {a.get_gid(): a for a in ax.get_children() if (a.get_gid() or "").startswith(prefix)}


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


@pytest.fixture(scope="module")
def measured():
    """A figure of the synthetic A100 run's fp16 benchmarks under measured, datasheet and seed roofs."""
    res = load_results(a100_run(Path(pytest.importorskip("tempfile").mkdtemp()) / "run"))
    roof = res.roof
    records = [r for r in res.records if r.dtype == "float16"]
    roofs = [(roof, "measured"), (A100, "datasheet"), (PRESETS["A100-SEED-1.5TB"], "seed"),
             (PRESETS["A100-SEED-2.0TB"], "seed")]
    fig = draw(roofline_chart(measured_points(records, roof), roofs, dtype="float16", title="t"))
    fig.canvas.draw()
    yield fig, fig.axes[0], records, roof
    plt.close(fig)


def test_axes_are_log_log_with_units(measured):
    _, ax, _, _ = measured
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "FLOP/byte" in ax.get_xlabel() and "FLOP/s" in ax.get_ylabel()


def test_roofs_and_ridges_sit_at_the_spec_values(measured):
    _, ax, _, roof = measured
    lines = _by_gid(ax, "roof:")
    mem = lines[f"roof:memory:measured:{roof.name}"]
    (x0, x1), (y0, y1) = mem.get_xdata(), mem.get_ydata()
    assert y0 / x0 == pytest.approx(roof.mem_bandwidth) and y1 / x1 == pytest.approx(roof.mem_bandwidth)
    datasheet_mem = lines["roof:memory:datasheet:A100-SXM4-80GB"]
    assert datasheet_mem.get_linestyle() == "--" and mem.get_linestyle() == "-"
    for cls in ("tensor16", "fp32"):
        line = lines[f"roof:{cls}:measured:{roof.name}"]
        assert set(line.get_ydata()) == {roof.peak_flops[cls]}
        assert line.get_xdata()[0] == pytest.approx(roof.ridge(cls))
        assert set(lines[f"roof:{cls}:datasheet:A100-SXM4-80GB"].get_ydata()) == {A100.peak_flops[cls]}
    ridges = {gid: a.get_xdata()[0] for gid, a in _by_gid(ax, "ridge:").items()}
    assert ridges["ridge:tensor16:datasheet:A100-SXM4-80GB"] == pytest.approx(312e12 / 2039e9)
    assert ridges["ridge:tensor16:seed:A100-SEED-1.5TB"] == pytest.approx(208)
    assert ridges["ridge:tensor16:seed:A100-SEED-2.0TB"] == pytest.approx(156)
    texts = " ".join(_texts(ax))
    for label in ("208 FLOP/B", "156 FLOP/B", "312 TFLOP/s", "2.04 TB/s", "19.5 TFLOP/s"):
        assert label in texts, label


def test_every_benchmark_has_a_measured_and_a_distinct_predicted_point(measured):
    _, ax, records, roof = measured
    points = _by_gid(ax, "measured:")
    predicted = _by_gid(ax, "predicted:")
    assert len(points) == len(records) == len(predicted)
    for r in records:
        m, p = points[f"measured:{r.name}"], predicted[f"predicted:{r.name}"]
        assert m.get_xdata()[0] == pytest.approx(r.intensity)
        assert m.get_ydata()[0] == pytest.approx(r.achieved_flops_per_s)
        assert p.get_ydata()[0] == pytest.approx(attainable_flops_per_s(roof, r.dtype_class, r.intensity))
        assert p.get_markerfacecolor() == "white" and m.get_markerfacecolor() != "white"
        assert p.get_ydata()[0] > m.get_ydata()[0]  # synthetic points run at 70% of the roof
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("predicted" in t for t in legend)
    assert {r.kernel for r in records} <= set(legend)  # one entry per op in the run


def test_sweeps_are_trajectories_annotated_at_their_ends(measured):
    _, ax, records, _ = measured
    lines = _by_gid(ax, "sweep:")
    gemv = lines["sweep:gemv:triton:gemv-batch"]
    assert len(gemv.get_xdata()) == 6 and list(gemv.get_xdata()) == sorted(gemv.get_xdata())
    texts = _texts(ax)
    assert "gemv-batch: batch=1" in texts and "batch=1k" in texts


def test_labels_do_not_overlap(measured):
    fig, ax, _, _ = measured
    renderer = fig.canvas.get_renderer()
    texts = [t for t in ax.texts if t.get_text()]
    boxes = [Text.get_window_extent(t, renderer) for t in texts]  # the text itself, not its leader line
    assert len(boxes) >= 15
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    area = ax.get_window_extent(renderer)
    assert all(area.x0 <= b.x0 and b.x1 <= area.x1 and area.y0 <= b.y0 and b.y1 <= area.y1 for b in boxes)
    for t in texts:  # no leader line runs through another label
        if t.arrow_patch is None:
            continue
        path = t.arrow_patch.get_path().transformed(t.arrow_patch.get_transform())
        (x0, y0), (x1, y1) = path.vertices[0], path.vertices[-1]
        for s in (0.2, 0.4, 0.6, 0.8):
            px, py = x0 + s * (x1 - x0), y0 + s * (y1 - y0)
            hits = [b for u, b in zip(texts, boxes, strict=True) if u is not t and b.contains(px, py)]
            assert not hits, t.get_text()
    assert not fig.dropped_labels


def test_a_point_above_its_roof_is_flagged(tmp_path):
    roof = from_measured("x", MEASURED_A100["mem_bandwidth"], MEASURED_A100["peak_flops"])
    shape = {"rows": 4096, "cols": 4096}
    ok = benchmark("softmax", shape, "float16", roofline_time("softmax", shape, "float16", roof, 0.5))
    fast = benchmark("softmax", {"rows": 64, "cols": 4096}, "float16",
                     roofline_time("softmax", {"rows": 64, "cols": 4096}, "float16", roof, 3.0))
    write_run(tmp_path, [ok, fast], measured=MEASURED_A100)
    res = load_results(tmp_path)
    fig = draw(roofline_chart(measured_points(res.records, res.roof), [(res.roof, "measured")],
                              dtype="float16", title="t"))
    flagged = _by_gid(fig.axes[0], "above-roof:")
    assert list(flagged) == [f"above-roof:{fast['name']}"]
    assert any("ABOVE ROOF x3.00 (memory ceiling suspect)" in t for t in _texts(fig.axes[0]))
    plt.close(fig)


def test_plot_results_writes_png_and_svg_per_device_and_dtype(tmp_path):
    run = a100_run(tmp_path / "run")
    paths = plot_results(run)
    names = sorted(p.name for p in paths if not p.name.startswith("speedup-"))
    assert names == sorted(f"{kind}-nvidia-a100-sxm4-80gb-{dt}.{ext}"
                           for kind in ("roofline", "roof-fraction")
                           for dt in ("float16", "float32") for ext in ("png", "svg"))
    res = load_results(run)
    pairs = {(r.kernel, r.dtype) for r in res.records if r.provider == "triton"} & {
        (r.kernel, r.dtype) for r in res.records if r.provider == "torch"}  # triton vs torch at a point
    assert pairs and sorted(p.name for p in paths if p.name.startswith("speedup-")) == sorted(
        f"speedup-{k}-nvidia-a100-sxm4-80gb-{dt}.{ext}" for k, dt in pairs for ext in ("png", "svg"))
    for p in paths:
        assert p.parent == run and p.stat().st_size > 10_000
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in paths[1].read_text()[:500]


def test_fraction_chart_bars_are_achieved_over_attainable(tmp_path):
    from roofline.report.plot import fraction_chart

    res = load_results(a100_run(tmp_path / "run", efficiency=0.4))
    pts = measured_points(res.records, res.roof)
    fig = draw(fraction_chart(pts, title="t"))
    bars = _by_gid(fig.axes[0], "fraction:")
    assert len(bars) == len(res.records)
    assert all(b.get_width() == pytest.approx(0.4) for b in bars.values())
    plt.close(fig)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])  # the sweep's dtype with and without native bf16
def test_cpu_roof_without_datasheet(tmp_path, dtype):
    from roofline.report.plot import run_charts

    cpu = {"mem_bandwidth": 2e10, "peak_flops": {"fp32": 2e11, "tensor16": 1e11}, "method": "synthetic"}
    spec = HardwareSpec("cpu", cpu["peak_flops"], cpu["mem_bandwidth"])
    shapes = [{"batch": b, "n": 768, "k": 768, "bias": False} for b in (1, 4, 16)]
    rows = [benchmark("gemv", s, dtype, roofline_time("gemv", s, dtype, spec, 0.5), device="cpu",
                      device_kind="cpu", hardware="cpu") for s in shapes]
    write_run(tmp_path, rows, measured=cpu, datasheet=None, device="cpu")
    paths = plot_results(tmp_path, tmp_path / "out")
    assert {p.parent for p in paths} == {tmp_path / "out"} and len(paths) == 4
    assert {p.name for p in paths} >= {f"roofline-cpu-{dtype}.png", f"roof-fraction-cpu-{dtype}.png"}
    chart = run_charts(load_results(tmp_path))[0]
    (roof,) = chart.roofs
    # a float32 figure asks for tf32 and fp32; a CPU has no tf32 peak, so only fp32 is drawn
    assert list(roof.ceilings) == (["tensor16", "fp32"] if dtype == "bfloat16" else ["fp32"])
    assert all(p.roof_fraction == pytest.approx(0.5) and not p.above_roof for p in chart.points)


def test_predicted_a100_picture_of_the_default_sweep(tmp_path):
    paths = plot_predicted("A100-SXM4-80GB", tmp_path)
    assert [p.suffix for p in paths] == [".png", ".svg"]
    svg = paths[1].read_text()
    assert "PREDICTED" in svg and "208 FLOP/B" in svg and "156 FLOP/B" in svg


def test_predicted_points_lie_on_the_roof():
    from roofline.report.plot import predicted_points

    spec = PRESETS["H100-SXM5"]
    pts = sweep_points("quick", "cuda")
    drawn = predicted_points(pts, spec)
    fig = draw(roofline_chart(drawn, [(spec, "datasheet")], dtype="bfloat16", title="PREDICTED"))
    predicted = _by_gid(fig.axes[0], "predicted:")
    measured = _by_gid(fig.axes[0], "measured:")
    assert not measured and len(predicted) == len(pts) == len(drawn)
    for p in drawn:
        assert p.predicted_y == pytest.approx(min(spec.peak(p.dtype_class), p.intensity * spec.mem_bandwidth))
    plt.close(fig)


def test_cli(tmp_path, capsys):
    assert main(["plot", "--predict", "H100-SXM5", "--sweep", "smoke", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "predicted-roofline-h100-sxm5-float16.png").is_file()
    capsys.readouterr()
    assert main(["plot"]) == 2
    assert "exactly one" in capsys.readouterr().err
    assert main(["plot", "--predict", "B100"]) == 2
    assert "unknown hardware preset" in capsys.readouterr().err
    assert main(["plot", "--predict", "B200", "--sweep", "smoke", "--out", str(tmp_path)]) == 0  # issue 23
    assert (tmp_path / "predicted-roofline-b200-float16.png").is_file()
    assert main(["plot", "--predict", "H100-SXM5", "--sweep", "huge", "--out", str(tmp_path)]) == 2
    seed = tmp_path / "seed"
    assert main(["plot", "--predict", "A100-SEED-1.5TB", "--sweep", "smoke", "--out", str(seed)]) == 0
    assert "208 seed FLOP/B" in (seed / "predicted-roofline-a100-seed-1.5tb-float16.svg").read_text()


def test_real_cpu_run_every_benchmark_appears(tmp_path):
    import shutil

    run = tmp_path / "cpu-quick"
    shutil.copytree(DATA / "cpu-quick", run)
    res = load_results(run)
    roof = res.roof
    assert res.device_kind == "cpu" and roof.source == "measured" and res.ceilings.datasheet is None
    fig = draw(roofline_chart(measured_points(res.records, roof), [(roof, "measured")], dtype="bfloat16",
                              title="t"))
    ax = fig.axes[0]
    assert {g.split(":", 1)[1] for g in _by_gid(ax, "measured:")} == {r.name for r in res.records}
    assert len(_by_gid(ax, "predicted:")) == len(res.records)
    roofs = {f"roof:{c}:measured:{roof.name}" for c in ("memory", "tensor16", "fp32")}
    assert set(_by_gid(ax, "roof:")) == roofs
    plt.close(fig)
    paths = plot_results(run)
    assert sorted(p.name for p in paths) == sorted(f"{k}-cpu-amd-epyc-bfloat16.{e}" for k in
                                                   ("roofline", "roof-fraction") for e in ("png", "svg"))
    assert "judged against the CPU's measured roof" in paths[1].read_text()


def test_every_group_of_a_run_is_drawn_where_the_judgement_placed_its_own_records(tmp_path):
    """A run of two dtypes is charted per (device, dtype): each group's points carry their own records'
    placements (roof fraction, class, prediction, error bar), not the first group's by position."""
    from roofline.report.plot import run_charts

    res = load_results(a100_run(tmp_path / "run", efficiency=0.4))
    run = res.judged
    index = {r.name: i for i, r in enumerate(res.records)}
    charts = run_charts(res)
    fractions = [c for c in charts if c.name.startswith("roof-fraction-")]
    assert [c.name for c in fractions] == ["roof-fraction-nvidia-a100-sxm4-80gb-float16",
                                           "roof-fraction-nvidia-a100-sxm4-80gb-float32"]
    drawn = [p for c in charts if c.name.startswith("roofline-") for p in c.points]
    assert sorted(p.name for p in drawn) == sorted(index)
    for p in drawn:
        i = index[p.name]
        where, record = run.placements[i], res.records[i]
        assert p.roof_fraction == pytest.approx(run.points[i].fraction) == pytest.approx(0.4)
        assert (p.dtype_class, p.predicted_x, p.roof_y) == (
            where.roof.dtype_class, where.predicted_intensity, where.roof.attainable_flops_per_s)
        assert p.band == pytest.approx(record.flops_per_s_band)
        assert p.intensity == pytest.approx(record.intensity)
        assert p.y == pytest.approx(record.achieved_flops_per_s)
    for chart in fractions:
        assert chart.points and all(p.y is not None for p in chart.points)
        dtype = chart.name.rsplit("-", 1)[1]
        assert {res.records[index[p.name]].dtype for p in chart.points} == {dtype}
