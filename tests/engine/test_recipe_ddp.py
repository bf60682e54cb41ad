"""The modern recipe under torchrun (2 gloo processes on CPU): Muon + AdamW as one optimizer
on DDP's all-reduced gradients; rank 0 writes the run, its checkpoint says 'modern'."""

from __future__ import annotations

import json

import pytest
from test_ddp import torchrun
from trainutil import TINY, write_dataset

from gpttui.paths import runs_dir
from gpttui.weights.checkpoint import checkpoint_recipe, load_checkpoint

pytestmark = pytest.mark.slow


def test_two_gloo_processes_train_the_modern_recipe(tmp_path):
    write_dataset()
    values = {**TINY, "data_source": "", "max_iters": 4, "lr_decay_iters": 4, "log_interval": 1,
              "recipe": "modern", "learning_rate": 0.01, "min_lr": 0.0, "grad_clip": 0.0}
    preset = tmp_path / "tiny.toml"
    preset.write_text("\n".join(f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}"
                                for k, v in values.items()) + "\n")
    r = torchrun(preset, "--name", "ddp-modern")
    assert r.returncode == 0, r.stderr[-3000:]
    events = [json.loads(line) for line in (runs_dir() / "ddp-modern" / "metrics.jsonl").read_text().splitlines()]
    steps = [e for e in events if e["type"] == "step"]
    assert [s["iter"] for s in steps] == [1, 2, 3, 4] and steps[-1]["loss"] < steps[0]["loss"]
    assert checkpoint_recipe(load_checkpoint(runs_dir() / "ddp-modern")) == "modern"
