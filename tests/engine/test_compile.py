"""The real torch.compile path (not the fallback): a compiled run trains and checkpoints.

Found on the first GPU run: `compiled or raw` called bool() on the OptimizedModule, which
raises "GPT does not support len()". The CPU inductor backend compiles the same graph, so
the path is exercised here with a 1-layer model.
"""

from __future__ import annotations

import pytest
import torch
from trainutil import tiny_cfg, write_dataset

from gpttui import events as E
from gpttui.runs import store as runs
from gpttui.train.trainer import Trainer
from gpttui.weights.checkpoint import load_checkpoint


@pytest.mark.slow
def test_compiled_run_trains_and_saves_clean_keys():
    write_dataset()
    cfg = tiny_cfg(compile=True, n_layer=1, max_iters=3, lr_decay_iters=3, warmup_iters=1, eval_interval=3)
    run = runs.create_run(cfg, "tiny")
    seen: list[E.Event] = []
    result = Trainer(cfg, run, [seen.append]).run()
    assert result.kind == "finished", result
    logs = [e.text for e in seen if isinstance(e, E.LogMessage)]
    assert any("compiled in" in t for t in logs), logs  # compiled for real, no eager fallback
    assert not any("torch.compile failed" in t for t in logs), logs
    assert any(isinstance(e, E.StatusChanged) and e.state == E.COMPILING for e in seen)
    ckpt = load_checkpoint(run.path / "ckpt.pt")
    assert ckpt["iter_num"] == 3
    assert not any(k.startswith("_orig_mod.") for k in ckpt["model"])
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
