"""Config has one builder (`build`), `replace` checks only what changed, and every
ConfigError about a key carries it in `.key` (the editor finds the field by it)."""

from __future__ import annotations

import pytest

from gpttui import config as C
from gpttui.errors import ConfigError

BASE = dict(max_iters=100, warmup_iters=10, lr_decay_iters=100)


@pytest.mark.parametrize("values, overrides, key", [
    ({"n_layr": 2}, (), "n_layr"),                      # unknown key
    ({"n_layer": "12"}, (), "n_layer"),                  # wrong type
    ({"dtype": "fp16"}, (), "dtype"),                    # not one of the choices
    ({"batch_size": "big"}, (), "batch_size"),           # a str in an int|'auto' field
    ({"n_embd": 100, "n_head": 12}, (), "n_embd"),       # cross-field rule
    ({"dropout": 1.0}, (), "dropout"),
    ({"recipe": "modern", "bias": True}, (), "bias"),    # the modern recipe's rules
    ({"dataset": "../x"}, (), "dataset"),
    ({}, ("max_iters=ten",), "max_iters"),              # --set text of the wrong type
    ({}, ("lr=1e-3",), "lr"),
    ({"init_from": "/no/such/weights"}, (), "init_from"),  # pretrained weights not found
])
def test_config_errors_carry_the_key_at_fault(values, overrides, key):
    with pytest.raises(ConfigError) as e:
        C.build({**BASE, **values}, list(overrides))
    assert e.value.key == key, str(e.value)


def test_an_error_of_no_one_key_has_none():
    with pytest.raises(ConfigError) as e:
        C.parse_override("batch_size")
    assert e.value.key is None


def test_from_dict_is_gone_build_is_the_one_builder():
    assert not hasattr(C, "from_dict")
    cfg = C.build({**BASE, "n_layer": 3})
    assert C.build(C.to_dict(cfg), source="run x config.toml", pretrained=False) == cfg


def test_replace_checks_only_the_changed_keys(monkeypatch):
    cfg = C.build(BASE)
    seen: list[str] = []
    real = C.coerce
    monkeypatch.setattr(C, "coerce", lambda key, value, source="config": seen.append(key) or real(key, value, source))
    assert cfg.replace(n_layer=2, learning_rate=1).learning_rate == 1.0
    assert sorted(seen) == ["learning_rate", "n_layer"]
    with pytest.raises(ConfigError) as e:
        cfg.replace(dropout=2.0)
    assert e.value.key == "dropout"
    with pytest.raises(ConfigError) as e:
        cfg.replace(n_layer="2")
    assert e.value.key == "n_layer"


def test_replace_with_init_from_naming_weights_brings_their_shape():
    cfg = C.build({**BASE, "n_layer": 2, "n_head": 2, "n_embd": 32})
    gpt2 = cfg.replace(init_from="gpt2")  # nanoGPT's table: no weights needed for the shape
    assert (gpt2.n_layer, gpt2.n_head, gpt2.n_embd, gpt2.vocab_size, gpt2.bias) == (12, 12, 768, 50257, True)
    assert gpt2 == C.build({**BASE, "n_layer": 2, "n_head": 2, "n_embd": 32, "init_from": "gpt2"})
    assert cfg.replace(max_iters=200).n_layer == 2  # no init_from change: the shape stays


@pytest.mark.parametrize("key, raw, value", [
    ("n_layer", "12", 12), ("max_iters", "1e4", 10000), ("learning_rate", "3e-4", 3e-4),
    ("bias", "on", True), ("compile", "auto", "auto"), ("batch_size", " 8 ", 8),
])
def test_parse_value_reads_typed_text(key, raw, value):
    got = C.parse_value(key, raw)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("key, raw, words", [
    ("n_layer", "x", "'n_layer' must be a whole number, got 'x' — e.g. 12"),
    ("learning_rate", "fast", "'learning_rate' must be a number, got 'fast' — e.g. 0.0006"),
    ("bias", "maybe", "'bias' must be true or false, got 'maybe' — e.g. false"),
    ("dtype", "fp16", "'dtype' = 'fp16' is not allowed"),
])
def test_parse_value_speaks_a_fields_language(key, raw, words):
    """The editor's words: no `--set`, no source prefix, the hint a value to type."""
    with pytest.raises(ConfigError) as e:
        C.parse_value(key, raw)
    assert e.value.key == key
    assert str(e.value).startswith(words) and "--set" not in str(e.value), str(e.value)


def test_set_keeps_its_cli_words():
    with pytest.raises(ConfigError) as e:
        C.parse_override("n_layer=x")
    assert str(e.value) == "--set: 'n_layer' must be int, got 'x' — e.g. --set n_layer=12"


def test_an_unknown_gpu_in_the_config_is_the_gpu_keys_fault():
    from gpttui.plan.target import resolve_target

    with pytest.raises(ConfigError) as e:
        resolve_target(C.build({**BASE, "gpu": "RTX 9999"}), None)
    assert e.value.key == "gpu"
    with pytest.raises(ConfigError) as e:
        resolve_target(C.build(BASE), None, gpu_arg="RTX 9999")
    assert e.value.key is None  # a command-line flag, not a key


def test_float16_on_a_cpu_is_the_dtype_keys_fault():
    pytest.importorskip("torch")
    from gpttui.train.setup import resolve_env

    with pytest.raises(ConfigError) as e:
        resolve_env(C.build({**BASE, "device": "cpu", "dtype": "float16"}))
    assert e.value.key == "dtype"
