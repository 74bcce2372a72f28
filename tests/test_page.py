"""roofline.report.page: the self-contained HTML report of one run or several (``python -m roofline report``).

Without a browser: what the page holds (every benchmark, the claims' verdicts as claims.md has them, the
step report, the compare table, history in time order), that it is one file with no network reference,
and bad input (exit 2 with one line; warnings where the page can still be made). In a real browser
(headless Chromium from Debian, tests/browser.py; skipped with the reason when there is none): no console
error, hovering a known point shows its kernel and fraction, toggling a kernel hides its points and rows,
the claims table matches claims.md, and a screenshot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from roofline.model.step import StepRequest
from roofline.report.claims import write_report
from roofline.report.cli import main
from roofline.report.page import build_page, load_runs, write_page
from roofline.report.page.build import fraction_text, markdown_html
from roofline.report.results import ResultsWarning, load_results
from tests.browser import Browser, find_chromium
from tests.data.synth import a100_run

DATA = Path(__file__).parent / "data"
CPU_QUICK = DATA / "cpu-quick"


def copy_run(dst: Path, *, timestamp: str | None = None, commit: str | None = None, slower: float = 1.0,
             sweep: str | None = None) -> Path:
    """A copy of the stored CPU run; ``slower`` scales every time (median, quantiles, rounds)."""
    shutil.copytree(CPU_QUICK, dst)
    doc = json.loads((dst / "benchmark.json").read_text())
    for b in doc["benchmarks"]:
        extra = b["extra_info"]
        for key in ("median_s", "p20_s", "p80_s"):
            extra[key] *= slower
        b["stats"]["median"] *= slower
        b["stats"]["data"] = [t * slower for t in b["stats"]["data"]]
    (dst / "benchmark.json").write_text(json.dumps(doc))
    prov = json.loads((dst / "provenance.json").read_text())
    if timestamp:
        prov["timestamp_utc"] = timestamp
    if commit:
        prov["git"]["commit"] = commit
    if sweep:
        prov["sweep"] = sweep
    (dst / "provenance.json").write_text(json.dumps(prov))
    return dst


class Tables(HTMLParser):
    """Every ``<tr>`` with its attributes and cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[dict, list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append((dict(attrs), []))
        elif tag in ("td", "th") and self.rows:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Tables:
    t = Tables()
    t.feed(html)
    return t


def claims_md_verdicts(path: Path) -> dict[str, tuple[str, str]]:
    """``{claim id: (model, measured)}`` from claims.md's summary table."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\| `([^`]+)` \| [^|]* \| ([^|]+) \| ([^|]+) \|", line)
        if m:
            out[m.group(1)] = (m.group(2).strip(), m.group(3).strip())
    return out


def page_data(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
                      .group(1))


@pytest.fixture(scope="module")
def cpu_page(tmp_path_factory):
    """The page of a copy of the stored CPU run, written as ``pytest --benchmark`` writes it, with the
    claims.md the same run gets."""
    run = copy_run(tmp_path_factory.mktemp("page") / "run")
    path = write_page(run)
    write_report(run)
    return run, path


# ------------------------------------------------------------------------------------------ the file

def test_the_page_is_one_file_with_no_network_reference(cpu_page):
    run, path = cpu_page
    assert path == run / "report.html"
    html = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "a network reference"
    assert "<link" not in html and "@import" not in html
    assert not re.search(r"url\((?!#)", html)  # only the page's own clip paths
    assert html.count("<script") == 2 and "<style>" in html
    assert path.stat().st_size < 500_000  # 67 KiB for this 30-benchmark run


def test_every_benchmark_is_a_point_with_its_own_numbers(cpu_page):
    run, path = cpu_page
    res = load_results(run)
    data = page_data(path.read_text())
    (panel,) = data["runs"]
    judged = res.judged
    by_name = {p["name"]: p for p in panel["points"]}
    assert set(by_name) == {r.name for r in res.records}
    for i, r in enumerate(res.records):
        p = by_name[r.name]
        assert p["x"] == pytest.approx(r.intensity) and p["y"] == pytest.approx(r.achieved_flops_per_s)
        assert p["fraction"] == pytest.approx(judged.points[i].fraction)
        tip = dict(p["tip"])
        assert tip["roof fraction"] == fraction_text(judged.points[i].fraction)
        assert tip["bound"].startswith(judged.points[i].bound)
        assert tip["ceiling"].startswith(judged.points[i].ceiling)
    (roof,) = panel["roofs"]  # a CPU run: its measured roof, no datasheet
    assert roof["kind"] == "measured" and roof["bandwidth"] == res.ceilings.measured.mem_bandwidth
    assert set(data["legend"]["kernels"]) == {r.kernel for r in res.records}


def test_claims_table_has_every_claim_of_claims_md_with_the_same_verdicts(cpu_page):
    run, path = cpu_page
    expected = claims_md_verdicts(run / "claims.md")
    rows = {a["data-claim"]: (cells[2], cells[3]) for a, cells in parse(path.read_text()).rows
            if "data-claim" in a}
    assert len(expected) >= 10 and rows == expected


def test_fraction_rows_and_provenance(cpu_page):
    run, path = cpu_page
    html = path.read_text()
    rows = [(a, cells) for a, cells in parse(html).rows if "data-name" in a]
    assert len(rows) == 30
    assert "1441c60acc" in html and "bfloat16" in html and "torch 2.13.0+cpu" in html
    assert "matmul bfloat16" in html and "416 GFLOP/s" in html  # the ceilings' probes


def test_names_that_look_like_markup_stay_text(tmp_path, browser_or_none):
    run = copy_run(tmp_path / "run")
    doc = json.loads((run / "benchmark.json").read_text())
    evil = 'test_gelu[</script><!--<b>"x"&amp;]'
    doc["benchmarks"][0]["name"] = evil
    (run / "benchmark.json").write_text(json.dumps(doc))
    html = write_page(run).read_text()
    assert evil not in html  # escaped everywhere: in the tables and in the script's data
    assert page_data(html)["runs"][0]["points"][0]["name"] == evil
    if browser_or_none is not None:
        browser_or_none.open(run / "report.html")
        assert browser_or_none.console() == []
        assert browser_or_none.run("return document.querySelectorAll('svg.roofline .pt').length") == 30
        names = browser_or_none.run("return Array.from(document.querySelectorAll("
                                    "'table.fractions tr[data-name]')).map(r => r.dataset.name)")
        assert evil in names


def test_markdown_tables_escape_and_keep_cells():
    out = markdown_html("# t\n\n| a | b |\n|---|---|\n| `x<y` | **1** \\| 2 |\n\n- one\n> note")
    assert "<h3>t</h3>" in out and "<code>x&lt;y</code>" in out and "<b>1</b> | 2" in out
    assert "<li>one</li>" in out and "<blockquote>note</blockquote>" in out


def test_step_report_shows_when_the_run_has_one(tmp_path):
    from tests.test_step import on_roof, synthetic_step_run

    run = synthetic_step_run(tmp_path, StepRequest(load_gpt2(), (1, 4), 64), on_roof)
    html = build_page(load_runs([run]))
    assert 'id="step-run0"' in html and "decode B=4" in html and "floor" in html


def load_gpt2():
    from roofline.model.transformer import PRESETS

    return PRESETS["gpt2-small"]


def test_speedup_figures_draw_every_point_with_its_value(tmp_path):
    from roofline.report.speedup import speedups

    run = a100_run(tmp_path / "a100")
    html = build_page(load_runs([run]))
    expected = speedups(load_results(run).records)
    assert len({s.provider for s in expected}) == 2  # torch (the baseline) and triton
    titles = re.findall(r"<figure class=\"speedup\">.*?</figure>", html, re.S)
    points = [t for fig in titles for t in re.findall(r"<title>([^<]+)</title>", fig)]
    assert sorted(points) == sorted(f"{s.provider}, {s.label}: {s.speedup:.2f}x" for s in expected)


# ------------------------------------------------------------------------------------------ several runs

def test_two_runs_of_one_device_get_a_compare_table(tmp_path, capsys):
    a = copy_run(tmp_path / "a")
    b = copy_run(tmp_path / "b", slower=1.5)
    out = tmp_path / "two.html"
    assert main(["report", str(a), str(b), "-o", str(out)]) == 0
    html = out.read_text()
    compare = [cells for attrs, cells in parse(html).rows if len(cells) == 6 and cells[0].startswith("test_")]
    assert len(compare) == 30 and {c[3] for c in compare} == {"slower"}
    assert all(float(c[1]) == pytest.approx(1.5) for c in compare)
    assert len(page_data(html)["runs"]) == 2


def test_runs_on_two_devices_each_against_its_own_roofs(tmp_path, capsys):
    a = copy_run(tmp_path / "cpu")
    b = a100_run(tmp_path / "a100")
    out = tmp_path / "two.html"
    assert main(["report", str(a), str(b), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: no compare table between run0 and run1" in err  # no benchmark in common
    assert "warning: runs of different sweeps" in err
    runs = page_data(out.read_text())["runs"]
    assert [r["roofs"][0]["name"] for r in runs] == [load_results(a).device, load_results(b).roof.name]
    assert {r["kind"] for r in runs[1]["roofs"]} == {"measured", "datasheet"}
    header = next(cells for attrs, cells in parse(out.read_text()).rows if "fraction of roof: run1" in cells)
    assert header[-2:] == ["fraction of roof: run0", "fraction of roof: run1"]


def history_runs(device: Path) -> list[Path]:
    """Three runs of one device, their directory names out of time order on purpose (the provenance's
    timestamp decides); the oldest is the fastest, each later one slower."""
    return [copy_run(device / "2026-11-23T00:00:00Z", timestamp="2026-11-24T00:00:00Z", commit="c" * 40,
                     slower=3),
            copy_run(device / "2026-11-21T00:00:00Z", timestamp="2026-11-22T00:00:00Z", commit="a" * 40),
            copy_run(device / "2026-11-22T00:00:00Z", timestamp="2026-11-23T00:00:00Z", commit="b" * 40,
                     slower=2)]


def seconds(text: str) -> float:
    value, unit = text.split()
    return float(value) * {"s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]


def check_history(html: str, n_runs: int = 3) -> None:
    section = html[html.index('<section id="history">'):]
    section = section[:section.index("</section>")]
    assert section.index("aaaaaaaaaa") < section.index("bbbbbbbbbb") < section.index("cccccccccc")
    rows = [(a, cells) for a, cells in parse(section).rows if a.get("class") == "hist"]
    assert {a["data-name"] for a, _ in rows} == {r.name for r in load_results(CPU_QUICK).records}
    for _, cells in rows:
        medians = [seconds(part.split(" / ")[0]) for part in cells[3].split(" → ")]
        assert len(medians) == n_runs and medians == sorted(medians)  # oldest (fastest) first
    for row in re.findall(r'<tr class="hist" .*?</tr>', section, re.S):
        assert row.count('class="hist-pt"') == 2 * n_runs  # one point per run in both sparklines


def test_history_over_a_device_directory_is_in_time_order_with_commits(tmp_path):
    device = tmp_path / "results" / "cpu-amd-epyc"
    history_runs(device)
    out = tmp_path / "h.html"
    assert main(["report", str(device), "-o", str(out)]) == 0
    html = out.read_text()
    check_history(html)
    assert len(page_data(html)["runs"]) == 1  # the newest run in detail
    assert "2026-11-24T00:00:00Z, commit cccccccccc" in page_data(html)["runs"][0]["label"]


def test_history_of_a_single_run_and_of_given_runs(tmp_path, capsys):
    device = tmp_path / "results" / "cpu-amd-epyc"
    runs = history_runs(device)
    page = write_page(runs[0])  # as pytest --benchmark writes it: the runs beside it make its history
    check_history(page.read_text())
    out = tmp_path / "h.html"
    assert main(["report", *map(str, runs), "--history", "-o", str(out)]) == 0
    check_history(out.read_text())
    assert len(page_data(out.read_text())["runs"]) == 3
    assert main(["report", *map(str, runs[:2]), "-o", str(out)]) == 0  # several runs: history only if asked
    assert 'id="history"' not in out.read_text()
    alone = copy_run(tmp_path / "alone" / "run")
    assert main(["report", str(alone), "--history", "-o", str(out)]) == 0
    assert "history: 1 run(s) found; it needs two or more" in capsys.readouterr().err


def test_runs_of_another_device_beside_are_not_its_history(tmp_path, capsys):
    run = copy_run(tmp_path / "run")
    a100_run(tmp_path / "a100")
    assert main(["report", str(run)]) == 0
    assert "1 run(s) beside it of another device left out (NVIDIA A100-SXM4-80GB)" in capsys.readouterr().err
    html = (run / "report.html").read_text()
    assert 'id="history"' not in html and "it needs two or more" not in html


def test_a_broken_run_beside_is_left_out_of_the_history_with_a_warning(tmp_path, capsys):
    device = tmp_path / "results" / "cpu-amd-epyc"
    runs = history_runs(device)
    (device / "2026-11-24T00:00:00Z").mkdir()
    (device / "2026-11-24T00:00:00Z" / "benchmark.json").write_text("{broken")
    assert main(["report", str(runs[0])]) == 0
    assert "history: " in capsys.readouterr().err
    assert "that run is left out" in (runs[0] / "report.html").read_text()
    check_history((runs[0] / "report.html").read_text())


# ------------------------------------------------------------------------------------------ bad input

def test_a_missing_run_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"python -m roofline report: error: {tmp_path / 'nope'}: no such run directory or file"]


def test_a_directory_that_is_no_run_is_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no benchmark.json in this directory" in capsys.readouterr().err


def test_an_unwritable_output_is_exit_2(tmp_path, capsys):
    run = copy_run(tmp_path / "run")
    assert main(["report", str(run), "-o", str(tmp_path / "no" / "dir" / "x.html")]) == 2
    assert "-o " in capsys.readouterr().err


def test_a_run_that_never_finished_is_read_from_its_parts_with_a_warning(tmp_path, capsys):
    run = copy_run(tmp_path / "run")
    doc = json.loads((run / "benchmark.json").read_text())
    (run / "benchmark.json").unlink()
    part = run / "parts" / "0"
    part.mkdir(parents=True)
    (part / "records.jsonl").write_text("".join(json.dumps(b) + "\n" for b in doc["benchmarks"][:12]))
    shutil.move(run / "ceilings.json", part / "ceilings.json")
    assert main(["report", str(run)]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "no benchmark.json (the run did not finish); 12 records" in err
    html = (run / "report.html").read_text()
    assert len(page_data(html)["runs"][0]["points"]) == 12
    assert "the run did not finish" in html  # the warning is on the page too


def test_a_run_without_a_roof_still_gets_its_page_with_a_warning(tmp_path, capsys):
    run = copy_run(tmp_path / "run")
    (run / "ceilings.json").unlink()  # and its records name no hardware preset
    assert main(["report", str(run)]) == 0
    assert "run0: no ceilings.json and no known hardware preset" in capsys.readouterr().err
    html = (run / "report.html").read_text()
    assert page_data(html)["runs"] == [] and "no roof" in html
    claims = [cells for attrs, cells in parse(html).rows if "data-claim" in attrs]
    assert claims and all(c[3] in ("inconclusive", "-") for c in claims)


def test_runs_of_different_sweeps_warn_and_still_make_the_page(tmp_path, capsys):
    a = copy_run(tmp_path / "a")
    b = copy_run(tmp_path / "b", sweep="full")
    doc = json.loads((b / "benchmark.json").read_text())
    doc["benchmarks"] = doc["benchmarks"][:5]
    (b / "benchmark.json").write_text(json.dumps(doc))
    assert main(["report", str(a), str(b), "-o", str(tmp_path / "x.html")]) == 0
    err = capsys.readouterr().err
    assert "runs of different sweeps (run0 quick, run1 full): 5 benchmarks in all of them" in err


# ------------------------------------------------------------------------------------------ in a browser

BROWSER, DRIVER, WHY_NOT = find_chromium()


@pytest.fixture(scope="module")
def browser(browser_or_none):
    if browser_or_none is None:
        pytest.skip(WHY_NOT)
    return browser_or_none


@pytest.fixture(scope="module")
def browser_or_none():
    """The browser where there is one, else None (a test that checks more in a browser when it can)."""
    if BROWSER is None:
        yield None
        return
    b = Browser(BROWSER, DRIVER)
    yield b
    b.close()


def visible(browser, css: str) -> int:
    """How many elements matching ``css`` are drawn (not display:none, with a box)."""
    return browser.run("return Array.from(document.querySelectorAll(arguments[0])).filter("
                       "e => getComputedStyle(e).display !== 'none' && e.getClientRects().length).length",
                       css)


def test_browser_no_console_error_and_hover_shows_the_point(browser, cpu_page):
    run, path = cpu_page
    browser.open(path)
    errors = [m for m in browser.console() if m["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    assert visible(browser, "svg.roofline .pt") == 30
    res = load_results(run)
    judged = res.judged
    i, record = next((i, r) for i, r in enumerate(res.records) if r.kernel == "gemv")
    assert browser.run("return document.getElementById('tip').hidden") is True
    browser.hover(browser.find(f'svg.roofline .pt[data-name="{record.name}"] .m'))
    text = browser.run("return document.getElementById('tip').hidden ? '' : "
                       "document.getElementById('tip').innerText")
    assert record.name in text and "gemv" in text
    assert f"roof fraction\t{fraction_text(judged.points[i].fraction)}" in text
    assert "median\t" in text and "p20-p80\t" in text and "ceiling\t" in text
    browser.hover(browser.find("h1"))
    assert browser.run("return document.getElementById('tip').hidden") is True


def test_browser_tap_pins_the_point(browser, cpu_page):
    run, path = cpu_page
    browser.open(path)
    name = load_results(run).records[-1].name
    browser.click(browser.find(f'svg.roofline .pt[data-name="{name}"] .m'))
    browser.hover(browser.find("h1"))  # the pointer leaves: a tapped point's numbers stay
    assert name in browser.run("return document.getElementById('tip').innerText")


def test_browser_toggling_a_kernel_hides_its_points_and_rows(browser, cpu_page):
    run, path = cpu_page
    browser.open(path)
    n_gelu = sum(r.kernel == "gelu" for r in load_results(run).records)
    assert n_gelu and visible(browser, 'svg .pt[data-kernel="gelu"]') == n_gelu
    box = browser.find('input[data-toggle-kernel="gelu"]')
    browser.click(box)
    assert visible(browser, 'svg .pt[data-kernel="gelu"]') == 0
    assert visible(browser, 'table.fractions tr[data-kernel="gelu"]') == 0
    assert visible(browser, "svg .pt") == 30 - n_gelu
    browser.click(box)
    assert visible(browser, 'svg .pt[data-kernel="gelu"]') == n_gelu
    browser.click(browser.find('input[data-toggle-provider="torch"]'))
    assert visible(browser, "svg .pt") == 0
    assert browser.console() == []


def test_browser_claims_table_matches_claims_md(browser, cpu_page, tmp_path):
    run, path = cpu_page
    browser.open(path)
    shown = browser.run("return Array.from(document.querySelectorAll('tr.claim')).map(r => "
                        "[r.dataset.claim, r.cells[2].innerText.trim(), r.cells[3].innerText.trim()])")
    assert {c: (m, s) for c, m, s in shown} == claims_md_verdicts(run / "claims.md")
    shot = Path(os.environ.get("RIDGEBENCH_REPORT_SCREENSHOT") or tmp_path / "report.png")
    browser.hover(browser.find('svg.roofline .pt[data-kernel="attention"] .m'))
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_browser_two_runs_side_by_side(browser, tmp_path):
    out = tmp_path / "two.html"
    assert main(["report", str(copy_run(tmp_path / "cpu")), str(a100_run(tmp_path / "a100")),
                 "-o", str(out)]) == 0
    browser.open(out)
    assert [m for m in browser.console() if m["level"] == "SEVERE"] == []
    assert visible(browser, 'svg[data-run="run0"] .pt') == 30
    assert visible(browser, 'svg[data-run="run1"] .pt') == len(load_results(tmp_path / "a100").records)
    assert visible(browser, 'svg[data-run="run1"] line.roof.datasheet') > 0
    browser.click(browser.find('input[data-toggle-hide-sheet]'))
    assert visible(browser, 'svg[data-run="run1"] line.roof.datasheet') == 0


def test_install_browser_script_gives_up_cleanly_without_apt(tmp_path):
    """Without chromium and without apt-get the install script says why and exits 0 (the browser tests
    then skip with their reason), or 1 when the browser is required."""
    import subprocess

    script = Path(__file__).resolve().parent.parent / "scripts" / "install-browser.sh"
    env = {"PATH": str(tmp_path)}  # nothing on it: no chromium, no chromedriver, no apt-get
    proc = subprocess.run(["/bin/bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "no apt-get" in proc.stderr and "browser tests will skip" in proc.stderr
    proc = subprocess.run(["/bin/bash", str(script)], env={**env, "RIDGEBENCH_BROWSER_REQUIRED": "1"},
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1


def test_browser_a_page_without_roofs_has_no_error(browser, tmp_path):
    run = copy_run(tmp_path / "run")
    (run / "ceilings.json").unlink()
    with pytest.warns(ResultsWarning, match="no ceilings.json and no known hardware preset"):
        page = write_page(run)
    browser.open(page)
    assert browser.console() == []
    assert "nothing to draw" in browser.run("return document.getElementById('panels').innerText")


def test_without_chromium_the_skip_reason_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("RIDGEBENCH_CHROMIUM", raising=False)
    monkeypatch.delenv("RIDGEBENCH_CHROMEDRIVER", raising=False)
    browser, driver, why = find_chromium()
    assert (browser, driver) == (None, None)
    assert "no chromium and chromedriver on PATH" in why and "scripts/install-browser.sh" in why
