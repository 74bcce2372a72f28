"""Hugging Face ``config.json`` read offline (roofline/model/hf_config.py): the five families of issue 27 from
files in tests/data/hf (the real field names of each family's published config), every field accounted
for, known parameter counts reproduced."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from roofline.errors import UsageError
from roofline.model import accounting
from roofline.model.hf_config import from_hf_dict, read_hf_config
from roofline.model.transformer import PRESETS
from roofline.report.cli import main

DATA = Path(__file__).resolve().parent / "data" / "hf"


def load(name: str):
    return read_hf_config(DATA / f"{name}.json")


def same_model(a, b) -> bool:
    return replace(a, name="x", source="") == replace(b, name="x", source="")


@pytest.mark.parametrize("file, preset", [("llama2-7b", "llama2-7b"), ("falcon-40b", "falcon-40b"),
                                          ("gpt2", "gpt2-small")])
def test_configs_reproduce_the_presets(file, preset):
    r = load(file)
    assert same_model(r.config, PRESETS[preset]), (r.config, PRESETS[preset])
    assert r.unknown == ()
    # the Falcon-40B file predates max_position_embeddings: FalconConfig's default, said so
    assert r.approximations == (() if file != "falcon-40b" else
                                ("no max_position_embeddings: 2048 (FalconConfig's default)",))


@pytest.mark.parametrize("file, params", [
    ("llama2-7b", 6_738_415_616),  # Llama-2-7B
    ("mistral-7b", 7_241_732_096),  # Mistral-7B-v0.1
    ("falcon-7b", 6_921_720_704),  # multi-query, one LayerNorm per parallel block
    ("falcon-40b", 41_303_293_952),
    ("gpt2", 124_439_808),
    ("pythia-70m", 70_426_624),  # GPT-NeoX: untied, parallel residual with two LayerNorms
])
def test_parameter_counts(file, params):
    assert accounting.param_counts(load(file).config).total == params


def test_gqa_families():
    mistral, qwen = load("mistral-7b"), load("qwen2-0.5b")
    assert (mistral.config.n_heads, mistral.config.n_kv_heads, mistral.config.d_ff) == (32, 8, 14336)
    assert mistral.config.name == "mistral-7b" and not mistral.config.tied_embeddings
    assert any("sliding_window 4096" in a for a in mistral.approximations)
    assert (qwen.config.n_heads, qwen.config.n_kv_heads, qwen.config.tied_embeddings) == (14, 2, True)
    # Qwen2-0.5B has 494,032,768 parameters; its Q/K/V biases are named, not silently dropped
    bias = 24 * (896 + 2 * 128)
    assert accounting.param_counts(qwen.config).total + bias == 494_032_768
    assert any(f"{bias:,} parameters" in a for a in qwen.approximations)
    assert not any("sliding_window" in a for a in qwen.approximations)  # use_sliding_window: false


def test_falcon_layouts():
    f7, f40 = load("falcon-7b").config, load("falcon-40b").config
    assert (f7.n_kv_heads, f7.norms_per_block, f7.parallel_block) == (1, 1, True)  # multi_query
    assert (f40.n_kv_heads, f40.norms_per_block) == (8, 2)  # new_decoder_architecture
    old = json.loads((DATA / "falcon-7b.json").read_text())
    serial = from_hf_dict({**old, "parallel_attn": False, "multi_query": False}).config
    assert (serial.n_kv_heads, serial.norms_per_block, serial.parallel_block) == (71, 2, False)


def test_every_field_is_accounted_for():
    for path in sorted(DATA.glob("*.json")):
        data = json.loads(path.read_text())
        r = read_hf_config(path)
        assert set(r.used) | set(r.ignored) | set(r.unknown) == set(data), path.name
        assert not (set(r.used) & set(r.ignored)) and r.unknown == (), path.name


def test_unknown_fields_are_named():
    data = {**json.loads((DATA / "llama2-7b.json").read_text()), "num_experts": 8, "my_field": 1}
    r = from_hf_dict(data)
    assert r.unknown == ("my_field", "num_experts")
    assert "unknown config.json field(s) not used: my_field, num_experts" in r.warnings()[0]


@pytest.mark.parametrize("change, match", [
    ({"model_type": "t5"}, "model_type 't5' is not a family"),
    ({"hidden_size": None}, "missing hidden_size"),
    ({"num_hidden_layers": "32"}, "num_hidden_layers must be a positive integer"),
    ({"head_dim": 64}, "head_dim 64 != hidden_size / num_attention_heads"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
    ({"tie_word_embeddings": "no"}, "tie_word_embeddings must be true or false"),
    ({"num_key_value_heads": 5}, r"n_kv_heads \(5\) must divide n_heads \(32\)"),
])
def test_bad_configs_are_named(change, match):
    data = {**json.loads((DATA / "llama2-7b.json").read_text()), **change}
    with pytest.raises(UsageError, match=match):
        from_hf_dict(data)


def test_model_cli_reads_a_hf_config(capsys, tmp_path):
    cfg = tmp_path / "Qwen2-0.5B" / "config.json"
    cfg.parent.mkdir()
    cfg.write_text((DATA / "qwen2-0.5b.json").read_text())
    rc = main(["model", str(cfg), "--seq", "128", "--json"])
    out, err = capsys.readouterr()
    r = json.loads(out)
    assert rc == 0 and r["model"]["name"] == "Qwen2-0.5B" and r["model"]["n_kv_heads"] == 2
    assert err.startswith("python -m roofline model: warning: Qwen2-0.5B: Qwen2's biases on Q, K and V")
    rc = main(["model", str(DATA / "gpt2.json"), "--seq", "64", "--set", "n_layer=2"])
    _, err = capsys.readouterr()
    assert rc == 2 and "unknown keys ['n_layer']" in err  # --set takes ridgebench's field names
    rc = main(["model", str(DATA / "gpt2.json"), "--seq", "64", "--set", "n_layers=2", "--json"])
    assert rc == 0 and json.loads(capsys.readouterr()[0])["params_total"] < 124_439_808
