"""roofline.compare: the bootstrap interval, the verdicts and exit codes of ``python -m roofline compare`` on
a real CPU run (tests/data/cpu-quick) against itself, a copy with one benchmark slowed by 30%, corrupt
input and a run on another device."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from roofline.cli import main
from roofline.compare import (
    bootstrap_ratio,
    compare_runs,
    load_timings,
    parse_threshold,
    verdict,
)
from roofline.errors import UsageError

RUN = Path(__file__).parent / "data" / "cpu-quick"
SLOWED = "test_gemv[torch-decode.gpt2-small.mlp_up-B16-bfloat16]"


def copy_run(tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copytree(RUN, dst)
    return dst


def edit(run: Path, fn) -> None:
    path = run / "benchmark.json"
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def slow_down(doc: dict, name: str, factor: float) -> None:
    bench = next(b for b in doc["benchmarks"] if b["name"] == name)
    bench["stats"]["data"] = [t * factor for t in bench["stats"]["data"]]
    for key in ("median_s", "p20_s", "p80_s"):
        bench["extra_info"][key] *= factor
    bench["stats"]["median"] *= factor


def test_committed_run_has_per_round_times():
    timings = load_timings(RUN)
    assert len(timings) == 30
    assert all(len(t.rounds_s) >= 5 for t in timings.values())
    t = timings[SLOWED]
    assert np.median(t.rounds_s) == pytest.approx(t.median_s, rel=1e-9)


def test_bootstrap_is_deterministic_and_covers_the_true_ratio():
    rng = np.random.default_rng(1)
    a = rng.lognormal(0.0, 0.05, 60)
    b = 1.3 * rng.lognormal(0.0, 0.05, 60)
    first, second = bootstrap_ratio(a, b), bootstrap_ratio(a, b)
    assert first == second
    ratio, low, high = first
    assert ratio == pytest.approx(np.median(b) / np.median(a))
    assert low < ratio < high
    assert 1.2 < low and high < 1.4
    with pytest.raises(ValueError, match="at least 2 rounds"):
        bootstrap_ratio(a[:1], b)


@pytest.mark.parametrize("low, high, expected", [
    (1.06, 1.2, "slower"), (1.01, 1.2, "no significant change"), (0.8, 0.94, "faster"),
    (0.8, 0.96, "no significant change"), (None, None, "not judged")])
def test_verdict_needs_the_interval_beyond_the_threshold(low, high, expected):
    assert verdict(low, high, 0.05) == expected


@pytest.mark.parametrize("text, value", [("5%", 0.05), ("0.05", 0.05), ("12.5%", 0.125)])
def test_parse_threshold(text, value):
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["five", "0%", "-5%", "5", "nan"])
def test_parse_threshold_rejects(text):
    with pytest.raises(UsageError, match="--threshold"):
        parse_threshold(text)


def test_run_against_itself_is_no_significant_change(tmp_path, capsys):
    assert main(["compare", str(RUN), str(RUN), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "30 benchmarks in both runs: 30 no significant change" in out
    doc = json.loads((tmp_path / "compare.json").read_text())
    assert doc["mode"] == "time"
    assert all(r["low"] <= 1.0 <= r["high"] for r in doc["benchmarks"])
    assert (tmp_path / "compare.png").stat().st_size > 0


def test_one_benchmark_slowed_by_30_percent_exits_1_naming_it(tmp_path, capsys):
    b = copy_run(tmp_path, "b")
    edit(b, lambda doc: slow_down(doc, SLOWED, 1.3))
    assert main(["compare", str(RUN), str(b), "--threshold", "5%", "--no-figure"]) == 1
    out = capsys.readouterr().out
    assert f"SLOWER beyond 5.0%: {SLOWED}" in out
    doc = json.loads((b / "compare.json").read_text())
    rows = {r["name"]: r for r in doc["benchmarks"]}
    assert rows[SLOWED]["verdict"] == "slower"
    assert rows[SLOWED]["ratio"] == pytest.approx(1.3)
    assert rows[SLOWED]["low"] > 1.05
    assert sum(r["verdict"] == "slower" for r in rows.values()) == 1
    # The same change as the reference: B faster, exit 0. A 30% slowdown under a 50% threshold: exit 0.
    assert main(["compare", str(b), str(RUN), "--no-figure", "--out", str(tmp_path)]) == 0
    assert f"{SLOWED}" in capsys.readouterr().out
    faster = json.loads((tmp_path / "compare.json").read_text())
    assert {r["name"]: r["verdict"] for r in faster["benchmarks"]}[SLOWED] == "faster"
    assert main(["compare", str(RUN), str(b), "--threshold", "50%", "--no-figure"]) == 0


def test_without_per_round_times_it_says_so(tmp_path, capsys):
    b = copy_run(tmp_path, "b")
    edit(b, lambda doc: [bench["stats"].pop("data") for bench in doc["benchmarks"]])
    assert main(["compare", str(RUN), str(b), "--no-figure"]) == 0
    out = capsys.readouterr().out
    assert "30 not judged" in out and "lacks per-round times" in out


def test_different_devices_compare_roof_fractions(tmp_path, capsys):
    b = copy_run(tmp_path, "b")

    def other_device(doc):
        # A device with half the roofs: every benchmark twice as slow is the same roof fraction; the
        # slowed one is 30% further from its roof.
        for bench in doc["benchmarks"]:
            bench["extra_info"]["device"] = "cpu: another machine"
            bench["extra_info"]["attainable_s"] *= 2
            slow_down(doc, bench["name"], 2.0)
        slow_down(doc, SLOWED, 1.3)

    edit(b, other_device)
    mode, rows = compare_runs(load_timings(RUN), load_timings(b), 0.05)
    assert mode == "roof fraction"
    by = {r.name: r for r in rows}
    assert by[SLOWED].verdict == "slower" and by[SLOWED].ratio == pytest.approx(1.3)
    assert all(r.verdict == "no significant change" for r in rows if r.name != SLOWED)
    assert main(["compare", str(RUN), str(b), "--no-figure"]) == 1
    assert "different devices: roof fraction" in capsys.readouterr().out


@pytest.mark.parametrize("corrupt", [
    lambda p: p.write_text("{not json"),
    lambda p: p.write_text(json.dumps({"benchmarks": [{"name": "x", "extra_info": {}}]})),
    lambda p: p.write_text(json.dumps({"no": "benchmarks"})),
])
def test_corrupt_input_is_one_line_and_exit_2(tmp_path, capsys, corrupt):
    b = copy_run(tmp_path, "b")
    corrupt(b / "benchmark.json")
    assert main(["compare", str(RUN), str(b)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m roofline compare: error:") and "\n" not in err


def test_bad_per_round_data_and_missing_run_exit_2(tmp_path, capsys):
    b = copy_run(tmp_path, "b")
    edit(b, lambda doc: doc["benchmarks"][0]["stats"].update(data=[1.0, "slow"]))
    assert main(["compare", str(RUN), str(b)]) == 2
    assert "per-round times" in capsys.readouterr().err
    assert main(["compare", str(RUN), str(tmp_path / "nowhere")]) == 2
    assert main(["compare", str(RUN), str(RUN), "--threshold", "x"]) == 2


def test_duplicate_benchmark_name_exits_2(tmp_path, capsys):
    b = copy_run(tmp_path, "b")
    edit(b, lambda doc: doc["benchmarks"].append(doc["benchmarks"][0]))
    assert main(["compare", str(RUN), str(b)]) == 2
    assert "appears twice" in capsys.readouterr().err


def test_no_common_benchmark_exits_2(tmp_path, capsys):
    b = copy_run(tmp_path, "b")
    edit(b, lambda doc: [bench.update(name=bench["name"] + "-renamed") for bench in doc["benchmarks"]])
    assert main(["compare", str(RUN), str(b)]) == 2
    assert "no benchmark in common" in capsys.readouterr().err
