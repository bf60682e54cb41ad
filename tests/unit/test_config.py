"""TrainConfig: validation messages, nanoGPT config import, --set overrides."""

from __future__ import annotations

import pytest

from gpttui import config as C
from gpttui.errors import ConfigError

BASE = dict(max_iters=100, warmup_iters=10, lr_decay_iters=100)


def err(values=None, overrides=()) -> str:
    with pytest.raises(ConfigError) as e:
        C.build({**BASE, **(values or {})}, list(overrides))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("values, parts", [
    ({"learning_rate": 0.0}, ["'learning_rate' = 0.0", "must be > 0"]),
    ({"learning_rate": -1e-3}, ["'learning_rate'", "must be > 0"]),
    ({"dropout": 1.0}, ["'dropout' = 1.0", "[0, 1)"]),
    ({"dropout": -0.1}, ["'dropout'", "[0, 1)"]),
    ({"warmup_iters": 200}, ["'warmup_iters' = 200", "more than max_iters = 100"]),
    ({"n_embd": 100, "n_head": 12}, ["'n_embd' = 100", "not divisible by n_head = 12", "e.g. 96"]),
    ({"min_lr": 1e-3, "learning_rate": 6e-4}, ["'min_lr'", "above learning_rate"]),
    ({"device": "gpu"}, ["'device' = 'gpu'", "cuda:N"]),
    ({"device": "cuda:x"}, ["'device'"]),
    ({"dtype": "fp16"}, ["'dtype' = 'fp16' is not allowed", "'bfloat16'"]),
    ({"batch_size": "big"}, ["'batch_size' = 'big' is not allowed", "'auto'"]),
    ({"batch_size": 0}, ["'batch_size' = 0", "at least 1"]),
    ({"n_layer": "12"}, ["'n_layer' must be int", "got str '12'"]),
    ({"bias": 1}, ["'bias' must be bool", "got int 1"]),
    ({"learning_rate": True}, ["'learning_rate' must be float", "got bool"]),
    ({"vocab_size": 1000}, ["'vocab_size'", "50,257"]),
    ({"beta2": 1.0}, ["'beta2'", "[0, 1)"]),
    ({"dataset": "../x"}, ["'dataset'", "not a valid dataset name"]),
])
def test_validation_messages(values, parts):
    msg = err(values)
    for part in parts:
        assert part in msg, (part, msg)


@pytest.mark.parametrize("key, suggestion", [
    ("lr", "learning_rate"), ("learning_rat", "learning_rate"), ("n_layers", "n_layer"),
    ("grad_accum", "gradient_accumulation_steps"), ("warmup", "warmup_iters"), ("n_heads", "n_head"),
])
def test_unknown_key_suggests(key, suggestion):
    msg = err({key: 1})
    assert f"unknown key '{key}'" in msg and f"did you mean '{suggestion}'" in msg


def test_unknown_key_without_close_match():
    assert "every key" in err({"zzzqqq": 1})


def test_valid_config_and_derived_figures():
    cfg = C.build({**BASE, "batch_size": 16, "block_size": 1024, "gradient_accumulation_steps": 32})
    assert cfg.tokens_per_iter == 16 * 1024 * 32
    assert cfg.total_tokens == 16 * 1024 * 32 * 100
    assert C.build({**BASE, "batch_size": "auto"}).tokens_per_iter is None


def test_int_for_float_and_float_for_int():
    cfg = C.build({**BASE, "learning_rate": 1, "max_iters": 1e3})
    assert cfg.learning_rate == 1.0 and isinstance(cfg.learning_rate, float)
    assert cfg.max_iters == 1000 and isinstance(cfg.max_iters, int)


@pytest.mark.parametrize("text, key, value", [
    ("batch_size=8", "batch_size", 8),
    ("batch_size=auto", "batch_size", "auto"),
    ("learning_rate=3e-4", "learning_rate", 3e-4),
    ("max_iters=20_000", "max_iters", 20000),
    ("max_iters=1e4", "max_iters", 10000),
    ("bias=true", "bias", True),
    ("compile=off", "compile", False),
    ("compile=auto", "compile", "auto"),
    ("dataset = fineweb-000 ", "dataset", "fineweb-000"),
])
def test_parse_override_types(text, key, value):
    k, v = C.parse_override(text)
    assert (k, v) == (key, value) and type(v) is type(value)


@pytest.mark.parametrize("text, part", [
    ("batch_size", "expected key=value"),
    ("learning_rate=fast", "'learning_rate' must be a number"),
    ("bias=maybe", "'bias' must be bool"),
    ("max_iters=ten", "'max_iters'"),
    ("lr=1e-3", "did you mean 'learning_rate'"),
])
def test_parse_override_errors(text, part):
    with pytest.raises(ConfigError) as e:
        C.parse_override(text)
    assert part in str(e.value)


def test_overrides_apply_after_preset_and_validate_together():
    cfg = C.build({**BASE, "learning_rate": 1e-3}, ["learning_rate=2e-3", "max_iters=50", "lr_decay_iters=50"])
    assert (cfg.learning_rate, cfg.max_iters) == (2e-3, 50)
    msg = err({}, ["max_iters=5"])  # warmup 10 > 5 only after the override
    assert "--set max_iters=5 is shorter than the preset's warmup_iters = 10" in msg  # (#22)
    assert "add --set warmup_iters=0" in msg


NANOGPT_CONFIG = '''\
# train a miniature character-level shakespeare model
# good for debugging and playing on macbooks and such
import time

out_dir = 'out-shakespeare-char'
eval_interval = 250 # keep frequent because we'll overfit
eval_iters = 200
log_interval = 10 # don't print too too often

# we expect to overfit on this small dataset, so only save when val improves
always_save_checkpoint = False

wandb_log = False # override via command line if you like
wandb_project = 'shakespeare-char'
wandb_run_name = 'mini-gpt'

dataset = 'shakespeare_char'
gradient_accumulation_steps = 1
batch_size = 64
block_size = 256 # context of up to 256 previous characters

# baby GPT model :)
n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.2

learning_rate = 1e-3 # with baby networks can afford to go a bit higher
max_iters = 5000
lr_decay_iters = 5000 # make equal to max_iters usually
min_lr = 1e-4 # learning_rate / 10 usually
beta2 = 0.99 # make a bit bigger because number of tokens per iter is small

warmup_iters = 100 # not super necessary potentially

# on macbook also add
# device = 'cpu'  # run on cpu only
# compile = False # do not torch compile the model
'''


def test_nanogpt_config_import(tmp_path):
    path = tmp_path / "train_shakespeare_char.py"
    path.write_text(NANOGPT_CONFIG)
    values = C.load_file(path)
    assert "time" not in values and values["out_dir"] == "out-shakespeare-char"
    cfg = C.build(values)
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size) == (6, 6, 384, 256)
    assert (cfg.batch_size, cfg.dropout, cfg.beta2, cfg.always_save_checkpoint) == (64, 0.2, 0.99, False)
    assert cfg.dataset == "shakespeare_char" and cfg.tokens_per_iter == 64 * 256


# The lines of nanoGPT's own config files that need more than literals (config/train_gpt2.py,
# config/finetune_shakespeare.py), with the lines around them.
TRAIN_GPT2 = """\
wandb_log = True
wandb_project = 'owt'
wandb_run_name='gpt2-124M'

# these make the total batch size be ~0.5M
# 12 batch size * 1024 block size * 5 gradaccum * 8 GPUs = 491,520
batch_size = 12
block_size = 1024
gradient_accumulation_steps = 5 * 8

# this makes total number of tokens be 300B
max_iters = 600000
lr_decay_iters = 600000
weight_decay = 1e-1
"""
FINETUNE = """\
import time

out_dir = 'out-shakespeare'
eval_interval = 5
eval_iters = 40
wandb_log = False # feel free to turn on
wandb_project = 'shakespeare'
wandb_run_name = 'ft-' + str(time.time())

dataset = 'shakespeare'
always_save_checkpoint = False
batch_size = 1
gradient_accumulation_steps = 32
max_iters = 20
learning_rate = 3e-5
decay_lr = False
"""


def test_nanogpt_train_gpt2_multiplies(tmp_path):
    path = tmp_path / "train_gpt2.py"
    path.write_text(TRAIN_GPT2)
    values = C.load_file(path)
    assert values["gradient_accumulation_steps"] == 40 and values["weight_decay"] == 0.1
    cfg = C.build({k: v for k, v in values.items() if k != "wandb_log"})
    assert cfg.tokens_per_iter == 12 * 1024 * 40


def test_nanogpt_finetune_skips_the_call_with_a_warning_naming_the_key(tmp_path, capsys):
    path = tmp_path / "finetune_shakespeare.py"
    path.write_text(FINETUNE)
    ran = tmp_path / "ran"
    warned: list[str] = []
    values = C.read_nanogpt_py(path, warn=warned.append)
    assert "wandb_run_name" not in values and values["wandb_project"] == "shakespeare"
    assert values["gradient_accumulation_steps"] == 32 and values["learning_rate"] == 3e-5
    assert len(warned) == 1 and "'wandb_run_name' skipped" in warned[0] and f"{path}:8" in warned[0]
    assert "calls str()" in warned[0] and "\n" not in warned[0]
    C.load_file(path)  # default sink: one stderr line
    assert capsys.readouterr().err.count("gpttui: warning:") == 1
    assert not ran.exists()


@pytest.mark.parametrize("line, value", [
    ("batch_size = 4 * 16", 64),
    ("batch_size = -(-7 // 2)", 4),
    ("min_lr = learning_rate / 10", 6e-5),
    ("out_dir = 'out-' + dataset + '-' + str(3)", None),  # a call: skipped
    ("out_dir = 'out-' + dataset", "out-owt"),
    ("betas = (0.9, 0.95)", (0.9, 0.95)),
    ("max_iters = 2 ** 10", 1024),
    ("max_iters = 10 ** 100000", None),  # too large: skipped, not computed
    ("out_dir = 'x' * 10 ** 8", None),
    ("max_iters += 5", 105),
    ("batch_size = os.environ['B']", None),
    ("batch_size = unknown_name * 2", None),
    ("if True:\n    batch_size = 3", None),
    ("import os; os.system('touch RAN')", None),
])
def test_nanogpt_constant_expressions(tmp_path, monkeypatch, line, value):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "train_x.py"
    path.write_text("learning_rate = 6e-4\ndataset = 'owt'\nmax_iters = 100\n" + line + "\n")
    warned: list[str] = []
    values = C.read_nanogpt_py(path, warn=warned.append)
    key = line.split("=")[0].split("+")[0].split()[-1] if "=" in line and not line.startswith(("if", "import")) else None
    if value is None:
        assert key not in values or key == "max_iters" and values[key] == 100
        assert warned and all("\n" not in w and "never executed" in w for w in warned)
        if key and not line.startswith("import"):
            assert f"'{key}' skipped" in warned[0]
    else:
        assert values[key] == pytest.approx(value) if isinstance(value, float) else values[key] == value
        assert not warned
    assert not (tmp_path / "RAN").exists()


def test_nanogpt_syntax_error_is_one_line_with_lineno(tmp_path):
    path = tmp_path / "train_bad.py"
    path.write_text("# header\nn_layer = 2\nbatch_size = (\n")
    with pytest.raises(ConfigError) as e:
        C.load_file(path)
    assert "not valid Python" in str(e.value) and "\n" not in str(e.value) and f"{path}:3" in str(e.value)


def test_toml_tables_flatten_and_bad_toml(tmp_path):
    good = tmp_path / "p.toml"
    good.write_text('[model]\nn_layer = 3\n[schedule]\nmax_iters = 10\nwarmup_iters = 1\nlr_decay_iters = 10\n')
    assert C.build(C.load_file(good)).n_layer == 3
    bad = tmp_path / "bad.toml"
    bad.write_text("n_layer = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        C.load_file(bad)


def test_to_toml_round_trip(tmp_path):
    cfg = C.build({**BASE, "n_layer": 3, "batch_size": "auto", "bias": True, "description": "x"})
    path = tmp_path / "r.toml"
    path.write_text(C.to_toml(cfg))
    assert C.build(C.load_file(path)) == cfg


def test_replace_revalidates():
    cfg = C.build(BASE)
    assert cfg.replace(n_layer=2).n_layer == 2
    with pytest.raises(ConfigError, match="dropout"):
        cfg.replace(dropout=2.0)


def test_short_max_iters_names_the_inherited_warmup_and_the_exact_fix(tmp_path):
    """#22: nanoGPT's configs keep train.py's warmup_iters = 2000; `--set max_iters=2` says
    so and gives the --set that works."""
    import pytest

    from gpttui import config as C
    from gpttui.errors import ConfigError

    cfg_file = tmp_path / "train_tiny.py"
    cfg_file.write_text("n_layer = 2\nn_head = 2\nn_embd = 64\nbatch_size = 2\nblock_size = 32\n")
    values = C.load_file(cfg_file)
    with pytest.raises(ConfigError) as e:
        C.build(values, ["max_iters=40"])
    msg = f"{e.value} {e.value.hint}"
    assert "warmup_iters, nanoGPT's default the preset keeps, = 2000" in msg
    assert "--set warmup_iters=2" in msg
    cfg = C.build(values, ["max_iters=40", "warmup_iters=2"])  # the fix works as printed
    assert cfg.max_iters == 40 and cfg.warmup_iters == 2
    assert C.origin("warmup_iters", set(values)) == "nanoGPT's default"
    assert C.origin("device", set(values)) == "gpttui's default"
    assert values["dataset"] == C.NANOGPT_DATASET  # a .py config without one: nanoGPT's train.py default
    assert C.origin("n_layer", set(values)) == "preset"


def test_a_nanogpt_py_config_without_a_dataset_inherits_nanogpts_not_the_preset(tmp_path):
    """#22's walk: the editor said a nanoGPT .py config's `dataset` was "set by the preset"
    though the file has none (nanoGPT's train.py default, openwebtext, filled it)."""
    from gpttui import config as C
    from gpttui import presets

    bare = tmp_path / "train_bare.py"
    bare.write_text("n_layer = 2\nbatch_size = 2\n")
    p = presets.get(str(bare))
    assert p.config().dataset == C.NANOGPT_DATASET
    assert "dataset" not in p.keys and "n_layer" in p.keys
    assert C.origin("dataset", p.keys, p.config().dataset) == "nanoGPT's default"
    named = tmp_path / "train_named.py"
    named.write_text("dataset = 'openwebtext'\nn_layer = 2\n")  # set by the file itself
    assert C.origin("dataset", presets.get(str(named)).keys, C.NANOGPT_DATASET) == "preset"
    toml = tmp_path / "bare.toml"
    toml.write_text("n_layer = 2\n")  # a TOML preset without one: gpttui's own default
    tp = presets.get(str(toml))
    assert C.origin("dataset", tp.keys, tp.config().dataset) == "gpttui's default"
