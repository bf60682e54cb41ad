"""A `--set` on resume takes effect in the optimizer (issue #20): the restored optimizer state
brought back the saved learning rates, betas and weight decay while config, events and W&B
said the new ones. Both recipes, a real tiny run stopped and resumed."""

from __future__ import annotations

import pytest
from trainutil import one_thread, tiny_cfg, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui import events as E
from gpttui.runs import store as runs
from gpttui.train import launch
from gpttui.train.setup import get_lr
from gpttui.train.trainer import Trainer
from gpttui.weights.checkpoint import load_checkpoint


@pytest.fixture(autouse=True)
def dataset(one_thread):  # noqa: F811 - the imported fixture, requested by name
    return write_dataset()


def _first_half(cfg, name):
    run = runs.create_run(cfg, "tiny", name=name)
    tr = Trainer(cfg, run, [])
    tr.add_listener(lambda ev: tr.stop() if isinstance(ev, E.StepMetrics) and ev.iter == 2 else None)
    assert tr.run().iter == 2
    return run


def _groups(run):
    return load_checkpoint(run.checkpoint_path)["optimizer"]["param_groups"]


def test_gpt2_resume_overrides_reach_the_optimizer():
    cfg = tiny_cfg(max_iters=4, lr_decay_iters=4, eval_interval=100, weight_decay=0.1, beta2=0.99)
    run = _first_half(cfg, "g")
    assert {g["betas"][1] for g in _groups(run)} == {0.99}
    over = ["beta1=0.8", "beta2=0.9", "weight_decay=0.05", "learning_rate=1e-3", "min_lr=1e-4"]
    tr = launch.resume("g", overrides=over)
    res = tr.run()
    assert res.state == E.FINISHED and res.iter == 4
    groups = _groups(run)
    assert {tuple(g["betas"]) for g in groups} == {(0.8, 0.9)}
    assert sorted(g["weight_decay"] for g in groups) == [0.0, 0.05]  # decayed and not-decayed groups
    new = tr.cfg
    assert new.learning_rate == 1e-3 and new.beta2 == 0.9
    scheduled = [get_lr(new, it) for it in range(5)]  # the schedule of the new keys
    assert all(min(abs(g["lr"] - lr) for lr in scheduled) < 1e-12 for g in groups)


def test_modern_resume_overrides_reach_every_group():
    cfg = tiny_cfg(recipe="modern", max_iters=4, lr_decay_iters=4, eval_interval=100)
    run = _first_half(cfg, "m")
    before = {g["kind"]: g for g in _groups(run)}
    assert before["muon"]["base_lr"] == cfg.muon_lr
    over = ["muon_lr=0.01", "embed_lr=0.05", "learning_rate=2e-3", "muon_momentum=0.9", "beta1=0.85",
            "muon_weight_decay=0.02"]
    assert launch.resume("m", overrides=over).run().state == E.FINISHED
    groups = _groups(run)
    muon = next(g for g in groups if g["kind"] == "muon")
    adamw = [g for g in groups if g["kind"] == "adamw"]
    assert muon["base_lr"] == 0.01 and muon["momentum"] == 0.9 and muon["weight_decay"] == 0.02
    assert sorted(g["base_lr"] for g in adamw) == [2e-3, 0.05]
    assert all(g["betas"][0] == 0.85 for g in adamw)
    assert muon["lr"] <= 0.01  # base_lr x the schedule's multiplier
