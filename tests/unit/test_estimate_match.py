"""The estimate's measured-run match (issue #20): a past run counts as "measured" for a
config only when every key that changes step time or memory is equal; every TrainConfig key
is classified, so a new one cannot be left out silently."""

from __future__ import annotations

import pytest

from gpttui import presets
from gpttui.config import TrainConfig
from gpttui.plan import report
from gpttui.plan.target import SPEED_KEYS, SPEED_NEUTRAL
from gpttui.runs import store as runs

GPU = "NVIDIA GeForce RTX 4070"


def test_every_config_key_is_classified_once():
    fields = set(TrainConfig.__dataclass_fields__)
    speed, neutral = set(SPEED_KEYS), set(SPEED_NEUTRAL)
    assert len(speed) == len(SPEED_KEYS) and len(neutral) == len(SPEED_NEUTRAL)
    assert not speed & neutral, speed & neutral
    assert fields - speed - neutral == set(), "classify the new key(s) in gpttui/plan/target.py"
    assert (speed | neutral) - fields == set(), "a classified key is not a TrainConfig field"


def test_the_loss_path_and_recipe_are_speed_keys():
    assert {"recipe", "chunked_loss", "logit_softcap", "dropout", "dtype", "compile"} <= set(SPEED_KEYS)


def _past_run(cfg, name):
    run = runs.create_run(cfg, "seed-000", name=name)
    run.write_status(state="finished", device=GPU, device_type="cuda", world_size=1,
                     tokens_per_s=77_000.0, iter=10, tokens_seen=10)


@pytest.mark.parametrize(("mine", "past"), [
    ({}, {"recipe": "modern"}), ({}, {"chunked_loss": False}), ({"recipe": "modern"}, {"logit_softcap": 15.0}),
    ({}, {"dropout": 0.1}), ({}, {"gradient_accumulation_steps": 8})])
def test_a_run_differing_in_a_speed_key_is_not_measured_for_this_one(mine, past):
    cfg = presets.get("seed-000").config().replace(**mine)
    _past_run(cfg.replace(**past), "other")
    est, _ = report.build_estimate(cfg, "RTX 4070")
    assert "measured" not in est.tokens_per_s.basis and est.tokens_per_s.value != 77_000.0


def test_a_run_differing_only_in_neutral_keys_is_measured():
    cfg = presets.get("seed-000").config()
    _past_run(cfg.replace(learning_rate=1e-3, seed=7, eval_interval=50, max_iters=12_345), "same")
    est, _ = report.build_estimate(cfg, "RTX 4070")
    assert est.tokens_per_s.value == 77_000.0 and "measured in run" in est.tokens_per_s.basis
