"""Checkpoints: round trip, weights_only loading, prefix stripping, RNG, nanoGPT files,
corrupt files, and atomic saves under SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gpttui.errors import RunError
from gpttui.model.gpt import GPT, GPTConfig
from gpttui.weights import checkpoint as ck

ARGS = dict(block_size=16, vocab_size=101, n_layer=2, n_head=2, n_embd=32, dropout=0.0, bias=False)
ROOT = Path(__file__).resolve().parents[2]


def trained() -> tuple[GPT, torch.optim.Optimizer]:
    torch.manual_seed(0)
    m = GPT(GPTConfig(**ARGS))
    opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    for _ in range(2):
        x = torch.randint(0, 101, (2, 16))
        _, loss = m(x, x)
        loss.backward()
        opt.step()
        opt.zero_grad()
    return m, opt


def build(m, opt, **over):
    kw = dict(scaler=None, model_args=ARGS, iter_num=2, best_val_loss=4.5,
              config_dict={"n_layer": 2, "batch_size": "auto", "compile": False},
              sampler_state={"seed": np.int64(5), "key": np.arange(4, dtype=np.uint32), "pos": (1, 2)},
              tokens_seen=64, elapsed_s=1.5)
    kw.update(over)
    return ck.build_checkpoint(m, opt, **kw)


def test_round_trip_model_and_optimizer(tmp_path):
    m, opt = trained()
    path = ck.save_checkpoint(tmp_path / "ckpt.pt", build(m, opt))
    torch.load(path, weights_only=True)  # loads without trusting pickled code
    c = ck.load_checkpoint(path)
    assert c["format"] == ck.FORMAT and c["iter_num"] == 2 and c["tokens_seen"] == 64
    for key in ("model", "optimizer", "model_args", "best_val_loss", "config", "scaler", "rng", "sampler", "elapsed_s"):
        assert key in c
    assert c["sampler"]["key"].tolist() == [0, 1, 2, 3]  # NumPy arrays come back as tensors
    assert c["sampler"]["seed"] == 5 and c["sampler"]["pos"] == (1, 2)
    m2 = GPT(GPTConfig(**c["model_args"]))
    m2.load_state_dict(c["model"])
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    opt2 = m2.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    opt2.load_state_dict(c["optimizer"])
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for i, st in s1["state"].items():
        for name, v in st.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(s2["state"][i][name])), (i, name)


def test_scaler_state_is_kept(tmp_path):
    m, opt = trained()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    c = ck.load_checkpoint(ck.save_checkpoint(tmp_path / "c.pt", build(m, opt, scaler=scaler)))
    assert c["scaler"]["scale"] == 1024.0
    disabled = torch.amp.GradScaler("cpu", enabled=False)
    assert build(m, opt, scaler=disabled)["scaler"] is None


def test_wrapper_prefixes_never_saved_and_stripped_on_load(tmp_path):
    m, opt = trained()
    compiled = torch.compile(m)  # wrapping only; nothing is compiled until called
    assert any(k.startswith("_orig_mod.") for k in compiled.state_dict())

    class FakeDDP(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

    for wrapped in (compiled, FakeDDP(compiled)):
        assert set(ck.model_state(wrapped)) == set(m.state_dict())
    prefixed = {"_orig_mod." + k: v for k, v in m.state_dict().items()}
    torch.save({"model": prefixed, "model_args": ARGS}, tmp_path / "p.pt")
    assert set(ck.load_checkpoint(tmp_path / "p.pt")["model"]) == set(m.state_dict())
    assert ck.strip_prefixes({"module._orig_mod.a": 1, "b": 2}) == {"a": 1, "b": 2}


def test_rng_capture_and_restore(tmp_path):
    rng = ck.capture_rng()
    draw = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    state = ck.load_checkpoint(ck.save_checkpoint(tmp_path / "r.pt", {"model": {}, "rng": rng}))
    ck.restore_rng(state)
    again = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    assert draw[:3] == again[:3] and torch.equal(draw[3], again[3])


def nanogpt_ckpt(m: GPT, opt, **args_over) -> dict:
    """A dict shaped like nanoGPT train.py's checkpoint, from a compiled model."""
    model_args = {k: ARGS[k] for k in ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size", "dropout")}
    model_args.update(args_over)
    return {
        "model": {"_orig_mod." + k: v for k, v in m.state_dict().items()},
        "optimizer": opt.state_dict(),
        "model_args": model_args,
        "iter_num": 5000,
        "best_val_loss": torch.tensor(1.4697),
        "config": {"out_dir": "out-shakespeare-char", "eval_interval": 250, "dataset": "shakespeare_char",
                   "gradient_accumulation_steps": 1, "batch_size": 64, "n_head": 2, "compile": True,
                   "device": "cuda", "dtype": "bfloat16", "init_from": "scratch", "wandb_log": False},
    }


def test_load_nanogpt_checkpoint(tmp_path):
    m, opt = trained()
    torch.save(nanogpt_ckpt(m, opt), tmp_path / "ckpt.pt")
    model, c = ck.load_model(tmp_path, "cpu")  # a folder holding ckpt.pt works too
    assert c["iter_num"] == 5000 and not model.training
    x = torch.randint(0, 101, (1, 16))
    m.eval()
    assert torch.equal(model(x)[0], m(x)[0])


def test_load_old_nanogpt_checkpoint_missing_args(tmp_path):
    """Older nanoGPT: model_args without bias/dropout, and the causal-mask buffer saved."""
    m, opt = trained()
    c = nanogpt_ckpt(m, opt)
    del c["model_args"]["bias"], c["model_args"]["dropout"], c["model_args"]["n_head"]
    c["model"]["_orig_mod.transformer.h.0.attn.bias"] = torch.ones(1, 1, 16, 16).tril()
    torch.save(c, tmp_path / "old.pt")
    model, _ = ck.load_model(tmp_path / "old.pt")
    assert model.config.bias is False and model.config.n_head == 2  # from the weights / config
    x = torch.randint(0, 101, (1, 8))
    m.eval()
    assert torch.allclose(model(x)[0], m(x)[0])


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "pickle", "not_ckpt", "missing"])
def test_damaged_files_raise_one_line_run_error(tmp_path, damage):
    m, opt = trained()
    path = ck.save_checkpoint(tmp_path / "ckpt.pt", build(m, opt))
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "pickle":
        torch.save({"model": {}, "x": Path("/")}, path)  # an arbitrary class: refused
    elif damage == "not_ckpt":
        torch.save([1, 2, 3], path)
    else:
        path.unlink()
    with pytest.raises(RunError) as err:
        ck.load_model(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_load_model_rejects_foreign_weights(tmp_path):
    torch.save({"model": {"encoder.weight": torch.zeros(3, 3), "transformer.wte.weight": torch.zeros(10, 24)}}, tmp_path / "x.pt")
    with pytest.raises(RunError, match="do not fit"):
        ck.load_model(tmp_path / "x.pt")


SAVER = textwrap.dedent("""
    import sys, torch
    from gpttui.weights.checkpoint import save_checkpoint, load_checkpoint
    path = sys.argv[1]
    i = 0
    try:
        i = load_checkpoint(path)["iter_num"] + 1
    except Exception:
        pass
    print("ready", flush=True)
    while True:
        # 4 MB of data whose every value names the iteration: a torn file cannot pass
        save_checkpoint(path, {"model": {"w": torch.full((1_000_000,), float(i))}, "iter_num": i})
        print(i, flush=True)
        i += 1
""")


def test_sigkill_during_saves_leaves_a_loadable_checkpoint(tmp_path):
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    path = tmp_path / "run" / "ckpt.pt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    rnd = random.Random(0)
    last = -1
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout.readline().strip() == "ready"
        proc.stdout.readline()  # at least one save finished in this process
        time.sleep(rnd.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        c = ck.load_checkpoint(path)
        assert c["iter_num"] > last
        assert bool((c["model"]["w"] == float(c["iter_num"])).all())
        last = c["iter_num"]
    ck.save_checkpoint(path, {"model": {}, "iter_num": last + 1})  # cleans what kills left
    assert ck.stale_temporaries(path) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pt"]
