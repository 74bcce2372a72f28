"""``python -m roofline hardware`` and ``python -m roofline model``: output and every error path."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from roofline.model import accounting, latency
from roofline.model.hardware import PRESETS as HW
from roofline.model.transformer import PRESETS
from roofline.report.cli import main

ROOT = Path(__file__).resolve().parents[1]

REQUIRED_KEYS = {
    "params_total", "params_non_embedding", "weight_bytes", "forward_flops", "forward_flops_breakdown",
    "decode_flops_per_token", "kv_cache_bytes_per_token", "kv_cache_bytes", "prefill_seconds_lower_bound",
    "decode_step_seconds_lower_bound", "decode_compute_bound_batch",
}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# ------------------------------------------------------------------------------------------------
# hardware


def test_hardware_table_lists_every_preset(capsys):
    rc, out, err = run_cli(capsys, "hardware")
    assert rc == 0 and err == ""
    for name in HW:
        assert name in out
    assert "201" in out and "ridge bf16" in out  # the A100 40GB ridge


def test_hardware_json(capsys):
    rc, out, _ = run_cli(capsys, "hardware", "--json")
    data = json.loads(out)
    assert rc == 0 and set(data) == set(HW)
    h100 = data["H100-SXM5"]
    assert h100["peak_flops"]["tensor16"] == 989e12 and h100["mem_bandwidth"] == 3350e9
    assert h100["ridge_flop_per_byte"]["tensor16"] == pytest.approx(295.2, abs=0.1)
    assert h100["link_bandwidth"] == 450e9 and data["H100-PCIE"]["link_bandwidth"] is None
    rc, out, _ = run_cli(capsys, "hardware", "v100-sxm2", "--json")
    assert list(json.loads(out)) == ["V100-SXM2"]


# ------------------------------------------------------------------------------------------------
# model


def test_model_json_has_the_documented_keys_and_agrees_with_the_library(capsys):
    rc, out, err = run_cli(capsys, "model", "gpt2-xl-swiglu", "--seq", "1024", "--batch", "2", "--json")
    assert rc == 0 and err == ""
    r = json.loads(out)
    assert REQUIRED_KEYS <= set(r)
    cfg, a100 = PRESETS["gpt2-xl-swiglu"], HW["A100-SXM4-80GB"]
    assert r["params_total"] == 2_127_057_600
    assert r["forward_flops"] == 2 * 4_513_336_524_800
    assert r["forward_flops_breakdown"]["components"]["attn_scores"] == 2 * 48 * 3_355_443_200
    assert r["forward_flops_causal"] == accounting.forward_flops_causal(cfg, 2, 1024).total
    assert r["decode_flops_per_token"] == accounting.decode_flops_per_token(cfg, 1024)
    assert r["kv_cache_bytes"] == 2 * 1024 * r["kv_cache_bytes_per_token"] == 2 * 1024 * 2 * 48 * 1600 * 2
    assert r["weight_bytes"] == 2 * 2_127_057_600  # bfloat16 by default
    assert r["prefill_seconds_lower_bound"] == latency.prefill_seconds_lower_bound(cfg, 2, 1024, a100, "bf16")
    assert r["decode_step_seconds_lower_bound"] == latency.decode_step_seconds_lower_bound(cfg, 2, 1024, a100,
                                                                                       "bf16")
    assert r["decode_compute_bound_batch"] == latency.decode_compute_bound_batch(cfg, a100, "bf16", 1024)
    assert r["predicted"] is True and r["decode_step"]["predicted"] is True
    assert r["inputs"]["hardware"] == "A100-SXM4-80GB" and "fma" in r["conventions"]


def test_model_table_labels_predictions(capsys):
    rc, out, _ = run_cli(capsys, "model", "llama2-70b", "--hardware", "NVIDIA H100 80GB HBM3", "--tp", "8",
                         "--seq", "512", "--dtype", "fp16")
    assert rc == 0
    assert "68,976,648,192" in out
    assert "PREDICTED lower bounds on H100-SXM5" in out and "over 8 GPUs" in out
    assert "not measurements" in out


def test_model_from_json_file_and_overrides(capsys, tmp_path):
    path = tmp_path / "l7.json"
    path.write_text(json.dumps(PRESETS["llama2-7b"].to_dict()))
    _, from_file, _ = run_cli(capsys, "model", str(path), "--seq", "64", "--json")
    _, from_preset, _ = run_cli(capsys, "model", "llama2-7b", "--seq", "64", "--json")
    assert json.loads(from_file) == json.loads(from_preset)
    rc, out, _ = run_cli(capsys, "model", "llama2-7b", "--seq", "64", "--json", "--set", "n_kv_heads=8",
                         "--set", "name=llama2-7b-gqa")
    r = json.loads(out)
    assert rc == 0 and r["model"]["name"] == "llama2-7b-gqa"
    assert r["kv_cache_bytes_per_token"] == json.loads(from_preset)["kv_cache_bytes_per_token"] // 4


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


TINY = {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_ff": 128, "vocab_size": 100, "context_length": 32}


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["model", "gpt5"], "unknown model preset 'gpt5'"),
        (["model", "@heads"], r"n_heads \(7\) must divide d_model \(64\)"),
        (["model", "gpt2-small", "--set", "n_heads=7"], r"n_heads \(7\) must divide d_model \(768\)"),
        (["model", "gpt2-small", "--set", "n_kv_heads=5"], r"n_kv_heads \(5\) must divide n_heads \(12\)"),
        (["model", "@kvheads"], r"n_kv_heads \(3\) must divide n_heads \(4\)"),
        (["model", "@negative"], "d_model must be a positive integer, got -64"),
        (["model", "gpt2-small", "--batch", "-1"], "--batch: expected an integer >= 1, got -1"),
        (["model", "gpt2-small", "--seq=-5"], "--seq: expected an integer >= 1, got -5"),
        (["model", "gpt2-small", "--seq", "0"], "--seq: expected an integer >= 1"),
        (["model", "gpt2-small", "--batch", "two"], "--batch: expected an integer, got 'two'"),
        (["model", "gpt2-small", "--tp", "0"], "--tp: expected an integer >= 1"),
        (["model", "gpt2-small", "--tp", "5"], r"tp: must divide n_heads \(12\)"),
        (["model", "gpt2-small", "--tp", "2", "--hardware", "H100-PCIE"], "no interconnect bandwidth"),
        (["model", "gpt2-small", "--tp", "2", "--link-bandwidth", "-3"], "--link-bandwidth: expected GB/s"),
        (["model", "gpt2-small", "--dtype", "int4"], "--dtype: dtype: unsupported 'int4'"),
        (["model", "gpt2-small", "--dtype", "float64"], "--dtype: dtype: unsupported"),
        (["model", "gpt2-small", "--hardware", "B100"], "unknown hardware 'B100'"),
        (["model", "gpt2-small", "--set", "n_heads"], "--set: expected KEY=VALUE"),
        (["model", "gpt2-small", "--set", "heads=4"], r"unknown keys \['heads'\]"),
        (["model", "@syntax"], "cannot read JSON"),
        (["model", "@array"], "expected a JSON object"),
        (["model", "@missing"], "model config: .*missing"),
        (["model", "/nonexistent/model.json"], "cannot read JSON"),
        (["hardware", "B100"], "unknown hardware preset 'B100'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, match):
    files = {
        "@heads": json.dumps({**TINY, "n_heads": 7}),
        "@kvheads": json.dumps({**TINY, "n_kv_heads": 3}),
        "@negative": json.dumps({**TINY, "d_model": -64}),
        "@syntax": '{"n_layers": 2,',
        "@array": "[2, 64]",
        "@missing": json.dumps({"n_layers": 2}),
    }
    argv = [_write(tmp_path, a[1:] + ".json", files[a]) if a in files else a for a in argv]
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"python -m roofline {argv[0]}: error: ")
    assert re.search(match, lines[0]), lines[0]


def test_python_dash_m_from_the_checkout():
    """The command a user types, in a fresh interpreter from the repository root."""
    ok = subprocess.run([sys.executable, "-m", "roofline", "model", "gpt2-small", "--seq", "1024", "--json"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["params_total"] == 124_439_808
    bad = subprocess.run([sys.executable, "-m", "roofline", "model", "gpt2-small", "--batch", "-3"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    expected = "python -m roofline model: error: --batch: expected an integer >= 1, got -3"
    assert bad.stderr.strip().splitlines() == [expected]
