"""Presets: every built-in validates, user presets shadow built-ins, save round trip."""

from __future__ import annotations

import re

import pytest

from gpttui import presets as P
from gpttui.errors import ConfigError
from gpttui.paths import user_presets_dir

BUILTIN = ["demo", "gpt2-124m", "seed-000", "seed-002-main", "seed-002-small",
           "seed-003-train1", "seed-003-train2"]


def test_builtins_present_and_valid():
    found = P.discover()
    for name in BUILTIN:
        assert name in found
        preset = P.get(name)
        assert preset.source == "built-in"
        assert preset.description, name
        preset.config()  # validates


@pytest.mark.parametrize("name, shape", [
    ("seed-000", (12, 6, 384, 16, 1024, 32, 20_000)),
    ("seed-002-main", (12, 8, 512, 16, 1024, 32, 6_000)),
    ("seed-002-small", (6, 6, 384, 16, 1024, 32, 8_000)),
    ("seed-003-train1", (12, 12, 768, 8, 1024, 64, 20_000)),
    ("seed-003-train2", (6, 6, 384, 16, 1024, 32, 20_000)),
    ("gpt2-124m", (12, 12, 768, 12, 1024, 40, 600_000)),
])
def test_seed_shapes(name, shape):
    c = P.get(name).config()
    assert (c.n_layer, c.n_head, c.n_embd, c.batch_size, c.block_size,
            c.gradient_accumulation_steps, c.max_iters) == shape


def test_seed_002_main_values():
    c = P.get("seed-002-main").config()
    assert (c.learning_rate, c.min_lr, c.warmup_iters, c.beta2, c.weight_decay, c.bias, c.compile) == \
        (5e-4, 5e-5, 500, 0.99, 0.1, False, True)
    assert c.gpu == "RTX 4070" and c.data_source.endswith("000_00000.parquet")


def test_gpt2_124m_tokens_per_iter():
    c = P.get("gpt2-124m").config()
    assert c.n_gpus == 8 and c.tokens_per_iter == 491_520


def test_user_preset_shadows_builtin():
    folder = user_presets_dir()
    folder.mkdir(parents=True)
    (folder / "seed-000.toml").write_text(
        'description = "mine"\nn_layer = 2\nmax_iters = 10\nwarmup_iters = 1\nlr_decay_iters = 10\n')
    (folder / "extra.toml").write_text('description = "only mine"\n'
                                        'max_iters = 10\nwarmup_iters = 1\nlr_decay_iters = 10\n')
    p = P.get("seed-000")
    assert (p.source, p.description, p.config().n_layer) == ("user", "mine", 2)
    listed = {x.name: x.source for x in P.list_presets()}
    assert listed["seed-000"] == "user" and listed["extra"] == "user" and listed["demo"] == "built-in"


def test_save_user_preset_round_trip():
    cfg = P.get("seed-002-small").config(["batch_size=auto", "learning_rate=1e-3", "description=tuned"])
    path = P.save_user_preset("tuned", cfg)
    assert path.parent == user_presets_dir()
    back = P.get("tuned")
    assert back.source == "user" and back.config() == cfg


def test_save_user_preset_rejects_bad_name():
    cfg = P.get("demo").config()
    with pytest.raises(Exception, match="invalid preset name"):
        P.save_user_preset("../evil", cfg)


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="did you mean 'seed-000'"):
        P.get("seed-00")


def test_preset_by_path(tmp_path):
    path = tmp_path / "train_x.py"
    path.write_text("n_layer = 2\nmax_iters = 10\nwarmup_iters = 1\nlr_decay_iters = 10\n")
    p = P.get(str(path))
    assert p.source == "file" and p.config().n_layer == 2
    with pytest.raises(ConfigError, match="no such preset file"):
        P.get(str(tmp_path / "missing.toml"))


DURATION = re.compile(r"\b(\d+(\.\d+)?\s*(s|sec|seconds?|min|minutes?|h|hours?|days?)|[Mm]inutes?|[Hh]ours?)\b")  # 6H: heads


@pytest.mark.parametrize("preset", [p for p in P.list_presets() if isinstance(p, P.Preset)], ids=lambda p: p.name)
def test_descriptions_state_no_time_and_their_figures_match_the_config(preset):
    """Home shows each preset's time from the estimate; a time written into a description
    ("CPU, under 3 minutes") disagreed with it. Figures a description does give (parameters,
    tokens) must be the config's own."""
    from gpttui.plan.estimate import count_params

    desc = preset.description
    assert not DURATION.search(desc), f"{preset.name}: a time in the description: {desc!r}"
    cfg = preset.config()
    for m in re.finditer(r"\((\d+(?:\.\d+)?) M\)", desc):  # "(40.56 M)": parameters, nanoGPT's count
        assert f"{count_params(cfg).nanogpt / 1e6:.{len(m.group(1).partition('.')[2])}f}" == m.group(1), desc
    for m in re.finditer(r"(\d+(?:\.\d+)?) B (?:FineWeb )?tokens", desc):
        assert f"{cfg.total_tokens / 1e9:.{len(m.group(1).partition('.')[2])}f}" == m.group(1), desc


def test_a_folder_named_like_a_preset_is_flagged_never_a_crash(capsys):
    """Before: `gpttui presets` exited 1 with IsADirectoryError; Home's list was empty."""
    from gpttui.cli.main import main

    folder = user_presets_dir() / "x.toml"
    folder.mkdir(parents=True)
    listed = {p.name: p for p in P.list_presets()}
    assert isinstance(listed["x"], P.BrokenPreset) and "is a folder" in listed["x"].error
    assert "demo" in listed and isinstance(listed["demo"], P.Preset)  # the others still load
    with pytest.raises(ConfigError, match="is a folder, not a preset file"):
        P.get("x")
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "is a folder" in out
    assert main(["--estimate", "x"]) == 2
    assert "is a folder, not a preset file" in capsys.readouterr().err


def test_a_small_preset_inheriting_gradient_accumulation_is_warned():
    """#22: a preset sized by hand that leaves out gradient_accumulation_steps runs nanoGPT's
    40 micro-batches per iteration (10,240 tokens here, not 256): the estimate says so."""
    from gpttui import config as C
    from gpttui.presets import inherited_batching_warning

    values = {"n_layer": 2, "n_head": 2, "n_embd": 64, "batch_size": 4, "block_size": 64,
              "max_iters": 50, "warmup_iters": 5, "lr_decay_iters": 50}
    cfg = C.build(values)
    w = inherited_batching_warning(set(values), cfg, time_s=100.0)
    assert w is not None and "40 micro-batches (10,240 tokens), ~2 s each" in w
    assert "gradient_accumulation_steps = 1" in w
    assert inherited_batching_warning(set(values) | {"gradient_accumulation_steps"}, cfg) is None
    assert inherited_batching_warning(set(), C.build({})) is None  # nanoGPT's own GPT-2 setup
