"""roofline.report.compare: the bootstrap interval, the verdicts and exit codes of ``python -m roofline
compare`` on
a real CPU run (tests/data/cpu-quick) against itself, a copy with one benchmark slowed by 30%, corrupt
input and a run on another device."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from roofline.errors import UsageError
from roofline.report.cli import main
from roofline.report.compare import (
    MIN_ROUNDS,
    Timings,
    bootstrap_ratio,
    compare_runs,
    judge,
    load_timings,
    parse_threshold,
    verdict,
)

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


# ------------------------------------------------------------------------------------------------
# What compare cannot tell: too few rounds, run-to-run noise, a noisy machine, vanished benchmarks
# ------------------------------------------------------------------------------------------------

def _timings(name: str, rounds: np.ndarray) -> Timings:
    return Timings(name, "cpu: X", tuple(float(v) for v in rounds), float(np.median(rounds)), None)


def false_slower_rate(rounds: int, sigma: float, pairs: int = 400, seed: int = 0) -> float:
    """How often one benchmark is called slower over ``pairs`` seeded pairs of runs drawn from one
    lognormal distribution (``sigma``: the per-round noise)."""
    rng = np.random.default_rng(seed)
    slower = 0
    for _ in range(pairs):
        a = {"x": _timings("x", rng.lognormal(0.0, sigma, rounds))}
        b = {"x": _timings("x", rng.lognormal(0.0, sigma, rounds))}
        slower += judge(a, b, 0.05).rows[0].verdict == "slower"
    return slower / pairs


@pytest.mark.parametrize("rounds", [MIN_ROUNDS, 8, 20, 50])
@pytest.mark.parametrize("sigma", [0.1, 0.2])
def test_false_slower_rate_is_at_most_5_percent_at_every_rounds_count_judged(rounds, sigma):
    assert false_slower_rate(rounds, sigma) <= 0.05


@pytest.mark.parametrize("rounds", [2, 3, MIN_ROUNDS - 1])
def test_fewer_rounds_than_the_minimum_are_too_few_not_judged(rounds, tmp_path, capsys):
    # what 2 rounds gave before: 7-10% false "slower" over 400 same-distribution pairs
    rng = np.random.default_rng(3)
    a = {"x": _timings("x", rng.lognormal(0.0, 0.2, rounds))}
    b = {"x": _timings("x", 3.0 * rng.lognormal(0.0, 0.2, rounds))}  # even 3x slower: too few to say
    assert judge(a, b).rows[0].verdict == "too few rounds"
    b_run = copy_run(tmp_path, "b")
    edit(b_run, lambda doc: [bench["stats"].update(data=bench["stats"]["data"][:rounds])
                             for bench in doc["benchmarks"]])
    assert main(["compare", str(RUN), str(b_run), "--no-figure"]) == 0
    out = capsys.readouterr().out
    assert "30 too few rounds" in out and f"fewer than {MIN_ROUNDS} per-round times" in out


def test_run_to_run_scatter_widens_the_threshold_and_keeps_false_slowers_under_5_percent():
    """Runs whose benchmarks each move by a random factor (sd 30% in log) between runs, on top of 5%
    per-round noise: the within-run intervals alone call many slower; the scatter across benchmarks
    widens the threshold."""
    rng = np.random.default_rng(7)
    slower = within_only = total = 0
    for _ in range(34):  # 34 pairs of 12-benchmark runs: 408 benchmark pairs
        a, b = {}, {}
        for i in range(12):
            fa, fb = rng.lognormal(0.0, 0.3, 2)
            a[f"b{i}"] = _timings(f"b{i}", fa * rng.lognormal(0.0, 0.05, 10))
            b[f"b{i}"] = _timings(f"b{i}", fb * rng.lognormal(0.0, 0.05, 10))
        report = judge(a, b, 0.05)
        assert report.spread is not None and report.threshold > 0.05
        slower += sum(r.verdict == "slower" for r in report.rows)
        within_only += sum(verdict(r.low, r.high, 0.05) == "slower" for r in report.rows)
        total += len(report.rows)
    assert slower / total <= 0.05 and within_only / total > 0.2


def test_a_real_slowdown_among_quiet_benchmarks_is_still_caught():
    report = judge(load_timings(RUN), load_timings(RUN), 0.05)
    assert report.spread == 0.0 and report.threshold == 0.05  # a run against itself: no scatter


def test_vanished_benchmarks_fail_unless_allowed_and_new_ones_are_listed(tmp_path, capsys):
    b = copy_run(tmp_path, "b")
    gone = "test_gemv[torch-decode.gpt2-small.mlp_up-B4-bfloat16]"

    def swap(doc):
        doc["benchmarks"] = [x for x in doc["benchmarks"] if x["name"] != gone]
        new = json.loads(json.dumps(doc["benchmarks"][0]))
        new["name"] = new["fullname"] = "test_new[torch-x]"
        doc["benchmarks"].append(new)

    edit(b, swap)
    assert main(["compare", str(RUN), str(b), "--no-figure"]) == 1
    out = capsys.readouterr().out
    assert f"only in A (1; gone from B: failed or skipped there?): {gone}" in out
    assert "only in B (1, new): test_new[torch-x]" in out
    doc = json.loads((b / "compare.json").read_text())
    assert doc["only_in_a"] == [gone] and doc["only_in_b"] == ["test_new[torch-x]"]
    assert doc["exit_status"] == 1
    assert main(["compare", str(RUN), str(b), "--no-figure", "--allow-missing"]) == 0
    assert main(["compare", str(b), str(RUN), "--no-figure", "--out", str(tmp_path)]) == 1  # test_new gone


def test_a_killed_run_is_compared_from_its_records(tmp_path, capsys):
    b = copy_run(tmp_path, "b")
    doc = json.loads((b / "benchmark.json").read_text())
    (b / "benchmark.json").unlink()
    part = b / "parts" / "gw0"
    part.mkdir(parents=True)
    lines = [json.dumps(bench) for bench in doc["benchmarks"][:20]]
    (part / "records.jsonl").write_text("\n".join(lines) + "\n{\"cut short")  # killed mid-write
    shutil.move(b / "ceilings.json", part / "ceilings.json")
    assert main(["compare", str(RUN), str(b), "--no-figure", "--allow-missing"]) == 0
    captured = capsys.readouterr()
    assert "20 benchmarks in both runs: 20 no significant change" in captured.out
    assert "only in A (10;" in captured.out and "not a complete record" in captured.err


def _ceilings(run: Path, fn) -> None:
    path = run / "ceilings.json"
    doc = json.loads(path.read_text())
    fn(doc["measured"])
    path.write_text(json.dumps(doc))


def test_a_noisy_machine_warns_and_softens_the_exit_unless_strict(tmp_path, capsys):
    b = copy_run(tmp_path, "b")
    edit(b, lambda doc: slow_down(doc, SLOWED, 1.3))
    bw = {"best": 2.8e10, "median": 2.7e10}  # a spread recorded, and a loaded machine
    _ceilings(b, lambda m: m.update(ceilings={"memory": bw}, load={"before": {
        "loadavg": [3.2, 2.0, 1.0], "own_threads": 1, "usable_cores": 2, "device_kind": "cpu"}}))
    assert main(["compare", str(RUN), str(b), "--no-figure"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: run B's ceilings are suspect: loaded machine before the sweep" in out
    assert "the machine was too noisy to tell" in out and f"SLOWER beyond 5.0%: {SLOWED}" in out
    assert main(["compare", str(RUN), str(b), "--no-figure", "--strict"]) == 1
    capsys.readouterr()
    c = copy_run(tmp_path, "c")  # quiet, but its bandwidth ceiling 40% below A's
    edit(c, lambda doc: slow_down(doc, SLOWED, 1.3))
    _ceilings(c, lambda m: m.update(mem_bandwidth=m["mem_bandwidth"] * 0.6))
    assert main(["compare", str(RUN), str(c), "--no-figure"]) == 0
    out = capsys.readouterr().out
    assert "memory ceiling: 2.823e+10 B/s in A vs 1.694e+10 in B (1.67x apart" in out
    doc = json.loads((c / "compare.json").read_text())
    assert doc["exit_status"] == 0 and len(doc["machine_warnings"]) == 1
