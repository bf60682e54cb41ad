"""Hugging Face interop both ways, with transformers as a test-only dependency: a tiny random
GPT-2 saved by transformers is loaded and fine-tuned by gpttui; a gpttui run is exported and
loaded by transformers with the same logits. Plus init_from's named models, errors, export
refusals and nanoGPT's fine-tuning configs."""

from __future__ import annotations

import json

import pytest
import torch
from trainutil import TINY, one_thread, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui import config as C
from gpttui.cli.main import main
from gpttui.errors import ConfigError, RunError
from gpttui.model.gpt import GPT, GPTConfig
from gpttui.runs import store as runs
from gpttui.train import launch
from gpttui.train.trainer import Trainer
from gpttui.weights.checkpoint import load_checkpoint
from gpttui.weights.pretrained import load_weights

transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")


@pytest.fixture(autouse=True)
def dataset(one_thread):  # noqa: F811 - the imported fixture, requested by name
    return write_dataset()


def save_tiny_hf(folder, *, n_embd=32, n_positions=64, activation="gelu", seed=0):
    """A random 2-layer GPT-2 written by transformers itself (safetensors + config.json)."""
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=n_embd, n_positions=n_positions,
                                  vocab_size=50257, activation_function=activation)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    model.save_pretrained(folder)
    return model


def _tiny_values(**changes):
    v = {k: val for k, val in TINY.items() if k not in ("n_layer", "n_head", "n_embd")}
    return {**v, **changes}


def test_a_transformers_gpt2_loads_with_equal_logits_and_fine_tunes(tmp_path):
    hf_model = save_tiny_hf(tmp_path / "hf")
    cfg = C.build(_tiny_values(init_from=str(tmp_path / "hf"), n_embd=384), source="test")
    # the weights decide the shape (nanoGPT's rule); block_size 16 < 64 crops the positions
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab_size, cfg.bias, cfg.block_size) == (2, 2, 32, 50257, True, 16)
    model = GPT(GPTConfig.from_train_config(cfg))
    logs: list[str] = []
    load_weights(model, cfg, logs.append)
    assert "shape from the weights" in logs[0] and "positions cropped from 64" in logs[0]
    x = torch.randint(0, 50257, (2, 16), generator=torch.Generator().manual_seed(1))
    model.chunked_loss = False  # the plain path returns every position's logits
    with torch.no_grad():
        ours, _ = model.eval()(x, x)
        theirs = hf_model(x).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)

    run = runs.create_run(cfg, "ft")
    got = []
    res = Trainer(cfg, run, [got.append]).run()
    assert res.kind == "finished", res
    assert any("init_from" in getattr(e, "text", "") for e in got)
    trained = load_checkpoint(run.checkpoint_path)["model"]
    assert not torch.equal(trained["transformer.h.0.attn.c_attn.weight"], model.transformer.h[0].attn.c_attn.weight)
    assert run.config().n_embd == 32  # the run's config.toml holds the real shape (resume builds it)
    import shutil

    shutil.rmtree(tmp_path / "hf")  # resuming with --set needs the checkpoint, not the source any more
    assert launch.resume(run, overrides=["max_iters=10"]).cfg.n_embd == 32


def test_a_gpttui_run_exports_and_transformers_gives_the_same_logits(tmp_path, capsys):
    cfg = C.build(_tiny_values(n_layer=2, n_head=2, n_embd=32, bias=False), source="test")
    assert cfg.vocab_size == 50304
    run = runs.create_run(cfg, "tiny")
    assert Trainer(cfg, run).run().kind == "finished"
    out = tmp_path / "export"
    assert main(["export", run.id, str(out), "--format", "hf"]) == 0
    assert "padding rows of the embedding dropped" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["vocab_size"] == 50257

    from gpttui.weights.checkpoint import load_model

    ours, _ = load_model(run.checkpoint_path)
    theirs = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    ids = torch.randint(0, 50257, (2, 16), generator=torch.Generator().manual_seed(2))
    ids[0, -1], ids[1, -1] = 50256, 0  # the ends of GPT-2's vocabulary
    ours.chunked_loss = False  # the plain path returns every position's logits
    with torch.no_grad():
        a, _ = ours(ids, ids)
        b = theirs(ids).logits
    torch.testing.assert_close(a[..., :50257], b, rtol=1e-5, atol=1e-5)

    tok = transformers.GPT2Tokenizer.from_pretrained(out)
    from gpttui.tokenizer import get_encoding

    text = "def main():\n    return 'héllo' <|endoftext|>"
    assert tok(text)["input_ids"] == get_encoding().encode(text, allowed_special="all")


def test_named_gpt2_is_found_in_the_hf_cache_and_checked_tensor_by_tensor(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # never the user's own cache
    cfg = C.build(_tiny_values(init_from="gpt2"), source="test")  # shape from nanoGPT's table
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.bias) == (12, 12, 768, 16, True)
    with pytest.raises(ConfigError, match="not found in the Hugging Face cache.*never downloads") as e:
        load_weights(None, cfg, print)
    assert "download gpt2" in str(e.value) and "\n" not in str(e.value)

    snap = tmp_path / "hf-home" / "hub" / "models--gpt2" / "snapshots" / "abc123"
    save_tiny_hf(snap)  # a cache entry whose weights are not GPT-2 124M's shape
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("abc123")
    small = cfg.replace(n_layer=2, n_head=2, n_embd=384, block_size=16)
    with pytest.raises(RunError, match="n_embd 32 in the weights vs 384 in the run's config"):
        load_weights(GPT(GPTConfig.from_train_config(small)), small, print)


def test_init_from_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no such file or folder"):
        C.build({"init_from": str(tmp_path / "nope")})
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ConfigError, match="neither a Hugging Face GPT-2 folder nor a ckpt.pt"):
        C.build({"init_from": str(tmp_path / "x.txt")})
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ConfigError, match="is not GPT-2"):
        C.build({"init_from": str(tmp_path / "bad")})


def test_a_nanogpt_checkpoint_fine_tunes_and_keeps_its_shape(tmp_path):
    cfg = C.build(_tiny_values(n_layer=2, n_head=2, n_embd=32), source="test")
    first = runs.create_run(cfg, "tiny")
    assert Trainer(cfg, first).run().kind == "finished"
    ft = C.build(_tiny_values(init_from=str(first.checkpoint_path), n_embd=64, max_iters=2,
                              warmup_iters=0, lr_decay_iters=2), source="test")
    assert (ft.n_embd, ft.vocab_size, ft.bias) == (32, 50304, False)
    run = runs.create_run(ft, "ft")
    assert Trainer(ft, run).run().kind == "finished"


def test_export_refuses_other_formats_and_modern_recipes(tmp_path, capsys):
    cfg = C.build(_tiny_values(n_layer=1, n_head=2, n_embd=32, max_iters=1, warmup_iters=0, lr_decay_iters=1), source="test")
    run = runs.create_run(cfg, "tiny")
    assert Trainer(cfg, run).run().kind == "finished"
    assert main(["export", run.id, str(tmp_path / "o"), "--format", "gguf"]) == 2
    assert "export format 'gguf' is not supported" in capsys.readouterr().err
    ck = torch.load(run.checkpoint_path, weights_only=True)
    ck["recipe"] = ck["model_args"]["recipe"] = ck["config"]["recipe"] = "modern"  # as a modern run records it
    torch.save(ck, tmp_path / "modern.pt")
    assert main(["export", str(tmp_path / "modern.pt"), str(tmp_path / "o")]) == 2
    assert "trained with the 'modern' recipe, not nanoGPT's GPT-2" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_export_on_a_full_disk_is_one_line_and_never_overwrites_silently(tmp_path, capsys, monkeypatch):
    """Before: a traceback ending in safetensors' "No space left on device"; an existing
    model.safetensors was overwritten without a word."""
    import errno

    import safetensors.torch

    cfg = C.build(_tiny_values(n_layer=1, n_head=2, n_embd=32, max_iters=1, warmup_iters=0, lr_decay_iters=1), source="test")
    run = runs.create_run(cfg, "tiny")
    assert Trainer(cfg, run).run().kind == "finished"
    out = tmp_path / "o"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"the user's earlier model")
    assert main(["export", run.id, str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds model.safetensors" in err and "--force" in err
    assert (out / "model.safetensors").read_bytes() == b"the user's earlier model"

    real = safetensors.torch.save_file

    def full(tensors, filename, metadata=None):  # writes part of the file, then the disk is full
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    assert main(["export", run.id, str(out), "--force"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("gpttui: error: cannot write the exported model: the disk is full")
    assert (out / "model.safetensors").read_bytes() == b"the user's earlier model"  # nothing lost
    assert [p.name for p in out.iterdir()] == ["model.safetensors"]  # no temporary left
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    assert main(["export", run.id, str(out), "--force"]) == 0
    assert (out / "model.safetensors").read_bytes() != b"the user's earlier model"


NANOGPT_CONFIGS = {  # nanoGPT's config/eval_gpt2*.py, as they are
    "eval_gpt2.py": "# evaluate the base gpt2\n# n_layer=12, n_head=12, n_embd=768\n# 124M parameters\n"
                    "batch_size = 8\neval_iters = 500 # use more iterations to get good estimate\n"
                    "eval_only = True\nwandb_log = False\ninit_from = 'gpt2'\n",
    "eval_gpt2_xl.py": "# evaluate the base gpt2\n# n_layer=48, n_head=25, n_embd=1600\n# 1558M parameters\n"
                       "batch_size = 8\neval_iters = 500 # use more iterations to get good estimate\n"
                       "eval_only = True\nwandb_log = False\ninit_from = 'gpt2-xl'\n",
}


@pytest.mark.parametrize("name,shape", [("eval_gpt2.py", (12, 12, 768)), ("eval_gpt2_xl.py", (48, 25, 1600))])
def test_nanogpt_eval_configs_load_with_the_pretrained_shape(tmp_path, name, shape):
    from gpttui import presets

    path = tmp_path / name
    path.write_text(NANOGPT_CONFIGS[name])
    cfg = presets.get(str(path)).config([])
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab_size, cfg.bias) == (*shape, 50257, True)


FINETUNE_SHAKESPEARE = """import time

out_dir = 'out-shakespeare'
eval_interval = 5
eval_iters = 40
wandb_log = False # feel free to turn on
wandb_project = 'shakespeare'
wandb_run_name = 'ft-1700000000.0'

dataset = 'shakespeare'
init_from = 'gpt2-xl' # this is the largest GPT-2 model

# only save checkpoints if the validation loss improves
always_save_checkpoint = False

# the number of examples per iter:
# 1 batch_size * 32 grad_accum * 1024 tokens = 32,768 tokens/iter
# shakespeare has 301,966 tokens, so 1 epoch ~= 9.2 iters
batch_size = 1
gradient_accumulation_steps = 32
max_iters = 20

# finetune at constant LR
learning_rate = 3e-5
decay_lr = False
"""


def test_nanogpt_finetune_shakespeare_loads_as_gpt2_xl(tmp_path):
    """nanoGPT's config/finetune_shakespeare.py (its `'ft-' + str(time.time())` run name written
    as a literal here: expressions are config.py's business): constant lr, no warmup check."""
    from gpttui import presets
    from gpttui.plan.estimate import count_params

    path = tmp_path / "finetune_shakespeare.py"
    path.write_text(FINETUNE_SHAKESPEARE)
    cfg = presets.get(str(path)).config([])
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.decay_lr) == (48, 25, 1600, 1024, False)
    assert 1.55e9 < count_params(cfg).total < 1.56e9  # GPT-2 XL's 1558M


def test_init_from_gpt2_not_cached_fails_first_and_creates_nothing(tmp_path, monkeypatch, capsys):
    """An empty Hugging Face cache: one line saying how to fetch GPT-2, before any dataset is
    prepared or run folder made (it used to leave a failed run behind)."""
    from gpttui.paths import datasets_dir, runs_dir

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    preset = tmp_path / "ft.toml"
    preset.write_text('init_from = "gpt2"\ndataset = "never-made"\ndata_source = "builtin:pystdlib"\n'
                      "max_iters = 2\nwarmup_iters = 0\nlr_decay_iters = 2\ndevice = \"cpu\"\ncompile = false\n")
    rc = main(["--run", str(preset), "--plain"])
    err = capsys.readouterr().err
    assert rc != 0 and "not found in the Hugging Face cache" in err and "download gpt2" in err
    assert "Traceback" not in err
    assert not runs_dir().exists() or not any(runs_dir().iterdir())
    assert not (datasets_dir() / "never-made").exists()
    cfg = C.build(_tiny_values(init_from="gpt2"), source="test")
    with pytest.raises(ConfigError, match="not found in the Hugging Face cache"):
        runs.create_run(cfg, "ft")  # the one place every front end goes through
    assert not any(runs_dir().iterdir()) if runs_dir().exists() else True
