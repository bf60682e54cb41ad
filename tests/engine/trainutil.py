"""Helpers for the engine tests: a tiny learnable dataset and a tiny CPU config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gpttui import config as C
from gpttui.paths import datasets_dir

TINY = dict(
    dataset="tiny", data_source="builtin:pystdlib", n_layer=2, n_head=2, n_embd=32, block_size=16,
    batch_size=2, gradient_accumulation_steps=2, learning_rate=3e-3, max_iters=8, warmup_iters=2,
    lr_decay_iters=8, min_lr=3e-4, eval_interval=4, eval_iters=1, log_interval=1, device="cpu",
    compile=False, dtype="float32", checkpoint_interval_s=0.0,
    hellaswag_every=0,  # the in-loop HellaSwag has its own tests (test_hellaswag_loop.py)
)


def tiny_cfg(**changes) -> C.TrainConfig:
    return C.build({**TINY, **changes}, source="test")


def write_dataset(name: str = "tiny", train_tokens: int = 20_000, val_tokens: int = 2_000, seed: int = 0) -> Path:
    """A dataset of a noisy deterministic token chain over 50 ids: easy to learn, so the loss
    falls far below ln(50304) = 10.8 within a few dozen steps."""
    rng = np.random.default_rng(seed)

    def chain(n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.uint16)
        t = 0
        for i in range(n):
            t = (t * 7 + 3) % 50 if rng.random() > 0.1 else int(rng.integers(50))
            out[i] = t + 100
        return out

    folder = datasets_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    chain(train_tokens).tofile(folder / "train.bin")
    chain(val_tokens).tofile(folder / "val.bin")
    meta = {"format_version": 1, "tokenizer": "gpt2", "vocab_size": 50257, "dtype": "uint16",
            "splits": {"train": {"tokens": train_tokens, "documents": 1}, "val": {"tokens": val_tokens, "documents": 1}}}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture
def one_thread():
    """One torch thread: on a shared, oversubscribed CPU two OpenMP threads spin-wait on each
    other and run slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_closing_trackers(cfg: C.TrainConfig):
    """Train `cfg` to its end as run "tiny", then close its tracker children (their files are
    whole afterwards): (run, events)."""
    from gpttui import events as E
    from gpttui.runs import store as runs
    from gpttui.train.trackers import listener as trackers
    from gpttui.train.trainer import Trainer

    run = runs.create_run(cfg, "tiny")
    got: list[E.Event] = []
    tr = Trainer(cfg, run, [got.append])
    assert tr.run().kind == "finished"
    for fn in tr._listeners:
        if isinstance(fn, trackers.TrackerListener):
            fn.close()
            assert not fn.reader.is_alive() and fn.proc.poll() is not None
    return run, got
