"""The pilot: its plan (candidates, schedules, halving) and a real tiny pilot end to end."""

from __future__ import annotations

import pytest
import tomli_w

from gpttui import config as C
from gpttui import presets
from gpttui.errors import ConfigError
from gpttui.model.recipes import lr_multiplier
from gpttui.runs.store import get_run, list_runs
from gpttui.train import pilotplan as P
from gpttui.train.pilot import Pilot, prepare
from gpttui.train.setup import get_lr
from tests.engine.trainutil import TINY, one_thread, write_dataset  # noqa: F401


def test_default_candidates_both_recipes_and_lrs_scaled_together():
    name, values, cands = prepare("demo")
    assert [c.label for c in cands] == ["gpt2", "gpt2 lr x0.5", "gpt2 lr x2", "modern", "modern lr x0.5", "modern lr x2"]
    by = {c.label: c.values for c in cands}
    assert by["gpt2 lr x2"] == {"learning_rate": 6e-3, "min_lr": 6e-4}
    modern = by["modern"]
    assert modern["recipe"] == "modern" and modern["muon_lr"] == 0.03  # demo-modern's keys, not generic
    m2 = by["modern lr x2"]
    assert (m2["muon_lr"], m2["learning_rate"], m2["embed_lr"]) == (0.06, 0.016, 0.6)
    # the preset's comments: a recipe key is the recipe's, only an lr says x2 (beta1 said "peak lrs x2")
    c2 = next(c for c in cands if c.label == "modern lr x2")
    assert "x2" not in c2.note_of("beta1") and "recipe" in c2.note_of("beta1")
    assert c2.note_of("muon_lr").endswith(", x2")
    for c in cands:
        P.config_for(values, c, name)  # every candidate builds


def test_other_recipe_without_sibling_uses_generic_keys():
    cfg = C.build({**TINY}, source="t")
    switch, where = P.other_recipe("tinyp", cfg, None)
    assert switch["recipe"] == "modern" and "generic" in where
    back, _ = P.other_recipe("x", C.build({**TINY, **switch}, source="t"), None)
    assert back["recipe"] == "gpt2"


def test_try_validated_one_line():
    _, values, _ = prepare("demo")
    with pytest.raises(ConfigError, match="unknown key 'nope'"):
        P.parse_tries("demo", values, ["nope=1,2"])
    with pytest.raises(ConfigError, match="learning_rate"):
        P.parse_tries("demo", values, ["learning_rate=fast"])
    with pytest.raises(ConfigError, match="n_embd"):
        P.parse_tries("demo", values, ["n_embd=66"])  # not divisible by n_head
    cands = P.parse_tries("demo", values, ["batch_size=4,8,16"])  # 8 is the preset's: skipped
    assert [c.label for c in cands] == ["preset", "batch_size=4", "batch_size=16"]


def test_halving_rungs():
    assert P.rung_sizes(6) == [6, 3, 2]
    assert P.rung_sizes(4) == [4, 2]
    assert P.rung_sizes(2) == [2]
    assert P.rank({"a": 3.0, "b": None, "c": 2.5, "d": float("nan")})[:2] == ["c", "a"]


@pytest.mark.parametrize("recipe", ["gpt2", "modern"])
def test_trial_schedule_ends_with_its_own_decay(recipe):
    _, values, cands = prepare("demo")
    cand = next(c for c in cands if c.label == recipe)
    cfg = P.config_for(values, cand, "demo")
    short = cfg.replace(**P.trial_schedule(cfg, 37))
    assert short.max_iters == 37 and 1 <= short.warmup_iters <= 4
    if recipe == "gpt2":
        assert get_lr(short, 37) == pytest.approx(short.min_lr)
        assert get_lr(short, 20) > 2 * short.min_lr
    else:
        assert lr_multiplier(short, 37) == pytest.approx(short.min_lr / short.learning_rate)
        assert lr_multiplier(short, 20) == 1.0


def test_iters_follow_measured_speed():
    fast, slow = P.Batching(8, 1, 2000.0, None, None), P.Batching(8, 1, 1000.0, None, None)
    assert (P.iters_for(10.0, fast, 128), P.iters_for(10.0, slow, 128)) == (19, 9)  # 10 s x tok/s / 1,024


def test_real_tiny_pilot(tmp_path, one_thread):  # noqa: F811
    write_dataset()
    path = tmp_path / "tinyp.toml"
    path.write_text(tomli_w.dumps({**TINY, "max_iters": 100, "lr_decay_iters": 100, "warmup_iters": 10}))
    name, values, cands = prepare(str(path), ["learning_rate=1e-3,1e-2", "recipe=modern"])
    assert len(cands) == 4
    seen = []
    st = Pilot(name, values, cands, budget_s=75, on_update=lambda s: seen.append(s.phase)).run()
    assert st.done and st.rung_sizes == [4, 2]
    rung1 = [t for t in st.trials if t.rung == 1]
    rung2 = [t for t in st.trials if t.rung == 2]
    assert len(rung1) == 4 and len(rung2) == 2
    assert all(t.state == "finished" and t.val_loss is not None for t in st.trials)
    best2 = sorted(rung1, key=lambda t: t.val_loss)[:2]
    assert {t.label for t in rung2} == {t.label for t in best2}  # the better half went on
    assert rung2[0].iters_planned > rung1[0].iters_planned or len(rung1) > len(rung2)
    assert any(p.startswith("calibrating") for p in seen) and any(p.startswith("rung 2/2") for p in seen)
    assert st.elapsed_s < 2.5 * st.budget_s  # (loaded CI; the 6-minute demo's figure is in the note)
    # every trial: a run, marked as a pilot trial, same seed, fixed eval batches
    runs = {r.id: r for r in list_runs()}
    for t in st.trials:
        assert t.label in runs[t.run_id].pilot and runs[t.run_id].preset_label.endswith("(pilot trial)")
        cfg = get_run(t.run_id).config()
        assert cfg.eval_fixed and cfg.seed == 1337 and cfg.max_iters == t.iters_planned
    # the recommendation: a user preset that builds, its values commented
    assert st.winner == min(rung2, key=lambda t: t.val_loss).label
    text = (tmp_path / "x").parent.joinpath(st.preset_path).read_text()
    assert text.startswith("# tinyp-pilot: written by `gpttui pilot tinyp`")
    assert "# pilot: fastest of" in text
    cfg = presets.get("tinyp-pilot").config()
    win = st.candidate(st.winner).values
    assert all(getattr(cfg, k) == v for k, v in win.items())
    assert cfg.max_iters == 100  # the full run's length, not a trial's


class ClockPilot(Pilot):
    """The real planner on a fake clock: calibration is given, a trial 'takes' `cost` x its
    planned seconds (set-up 2 s + steps + evals) and scores by a fixed table."""

    def __init__(self, *a, cost=1.0, **kw):
        super().__init__(*a, **kw)
        self.now, self.cost = 0.0, cost

    def _elapsed(self):
        return self.now

    def _ensure_data(self):
        pass

    def calibrate(self):
        for i, c in enumerate(self.state.candidates):
            self.state.batching[c.label] = P.Batching(8, 1, 1000.0 * (1 + i % 2), None, None, "given")
        self.now += 20.0

    def run_trial(self, t):
        b = self.state.batching[t.label]
        steps_s = t.iters_planned * 8 * 128 / b.tokens_per_s
        evals_s = 4 * t.eval_iters * 8 * 128 / b.tokens_per_s / 3
        self.now += self.cost * (2.0 + steps_s + evals_s)
        t.state, t.iter = "finished", t.iters_planned
        t.val_loss = 5.0 - 0.1 * _index_of(self.state, t.label) - 0.01 * t.rung
        self._overhead[self._shape_key(t.label)] = 2.0

    def recommend(self, label):
        self.state.winner = label


def _index_of(st, label):
    return [c.label for c in st.candidates].index(label)


def test_halving_plan_fits_the_budget():
    name, values, cands = prepare("demo")
    p = ClockPilot(name, values, cands, budget_s=360)
    st = p.run()
    assert [len([t for t in st.trials if t.rung == r]) for r in (1, 2, 3)] == [6, 3, 2]
    assert p.now <= 1.1 * 360 and not p.out_of_time
    assert st.winner == "modern lr x2"  # the lowest loss in the table above
    r1 = {t.label: t for t in st.trials if t.rung == 1}
    assert abs(r1["modern"].iters_planned - 2 * r1["gpt2"].iters_planned) <= 1  # twice the tokens/s: twice the steps
    assert len({t.eval_iters * 8 for t in r1.values()}) == 1  # the same validation sequences for all


def test_slow_trials_end_the_pilot_inside_the_budget():
    name, values, cands = prepare("demo")
    p = ClockPilot(name, values, cands, budget_s=360, cost=3.0)  # everything takes 3x the plan
    st = p.run()
    # a rung is only planned when its trials fit with MIN_TRIAL_ITERS steps each, a trial only
    # started when its planned end is inside budget + 10 %: the overrun is bounded by one
    # trial's misprediction, never by the rungs still planned
    assert p.now < 1.1 * 360 + 3 * 20
    assert st.winner is not None and any("no time" in line for line in st.log)
    assert len([t for t in st.trials if t.rung == 1]) == 6


@pytest.mark.parametrize("argv, says", [
    (["pilot", "demo", "--try", "nope=1"], "unknown key 'nope'"),
    (["pilot", "demo", "--try", "n_embd=66"], "n_embd"),
    (["pilot", "demo", "--minutes", "0"], "--minutes 0: out of range"),
    (["pilot", "demo", "--set", "lr=x"], "did you mean 'learning_rate'"),
    (["pilot", "nosuch"], "no preset named 'nosuch'"),
])
def test_cli_bad_input_is_one_line(capsys, argv, says):
    from gpttui.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


def test_set_changes_every_candidate():
    _, values, cands = prepare("demo", overrides=["dataset=other-ds", "eval_iters=3"])
    for c in cands:
        cfg = P.config_for(values, c, "demo")
        assert cfg.dataset == "other-ds" and cfg.eval_iters == 3


class SlowTrainer:
    """A trial that would run forever: it ends only when stopped (then 'stopped')."""

    def __init__(self):
        self.stopped = False
        self.result = None

    def start(self):
        pass

    def stop(self):
        self.stopped = True

    def join(self, timeout):
        if self.stopped:
            from gpttui import events as E

            self.result = E.Finished("r", state=E.STOPPED, iter=7, best_val_loss=None, tokens_seen=0,
                                     elapsed_s=1.0)
        return self.stopped


def test_a_trial_slower_than_measured_is_stopped_at_the_budgets_end():
    """A machine that slows mid-trial (another job starts) must not carry the pilot past
    budget + 10 %: the trial is stopped there and the pilot ends with what finished."""
    name, values, cands = prepare("demo")
    p = Pilot(name, values, cands, budget_s=100)
    clock = iter([50.0, 90.0, 109.0, 111.0] + [200.0] * 10)
    p._elapsed = lambda: next(clock)
    trainer = SlowTrainer()
    res = p._drive(trainer, "modern")
    assert trainer.stopped and p.out_of_time and res.state == "stopped"
    assert any("modern: stopped at the budget's end" in line for line in p.state.log)


def test_the_table_says_what_its_memory_figure_is():
    from gpttui.train.pilot import PilotState
    from gpttui.train.pilotreport import table_note, table_rows

    _, _, cands = prepare("demo")
    st = PilotState("demo", "p", 60, cands[:1])
    st.batching[cands[0].label] = P.Batching(8, 1, 799.0, 2**30, None)
    assert table_rows(st)[0][2] == "799"  # not "799.0" beside "1.3k"
    st.rung_sizes = [6, 3]
    from gpttui.train.pilotreport import table_columns

    assert table_columns(st)[-2:] == ["rung 1: 6 trials, val", "rung 2: 3 trials, val"]  # was "rung 1 val (6)"
    assert "resident memory" in table_note(st) and "upper bound" in table_note(st)
    st.peak_is_vram = True
    assert "CUDA max allocated in that trial" in table_note(st)
