"""The forecast's torch-free schedule is the trainer's: nanoGPT's cosine (train/setup.get_lr)
and the modern warmup-stable-decay (model/recipes.lr_multiplier), step for step."""

from __future__ import annotations

import pytest

from gpttui import config as C
from gpttui.model.recipes import lr_multiplier
from gpttui.plan.forecast import Schedule
from gpttui.train.setup import get_lr


@pytest.mark.parametrize("values", [
    dict(recipe="gpt2", max_iters=300, warmup_iters=20, lr_decay_iters=250, learning_rate=3e-3, min_lr=3e-4),
    dict(recipe="gpt2", max_iters=300, decay_lr=False),
    dict(recipe="modern", max_iters=300, warmup_iters=10, warmdown_frac=0.3, learning_rate=8e-3, min_lr=0.0),
    dict(recipe="modern", max_iters=300, warmup_iters=0, warmdown_frac=0.0, learning_rate=8e-3, min_lr=1e-3),
])
def test_the_forecast_schedule_is_the_trainers(values):
    cfg = C.TrainConfig(**values)
    sched = Schedule.of(cfg)
    want = [(get_lr(cfg, i) / cfg.learning_rate) if cfg.recipe == "gpt2" else lr_multiplier(cfg, i) for i in range(320)]
    assert sched.mults(320).tolist() == pytest.approx(want, abs=1e-12)
    assert [sched.mult(i) for i in range(320)] == pytest.approx(want, abs=1e-12)
