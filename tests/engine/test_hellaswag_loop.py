"""HellaSwag in the training loop: a fixed, seeded subset at evaluations, in the events, the
metrics file, status.json and the run's listing; missing data is one warning, never a failure."""

from __future__ import annotations

import pytest

from gpttui import events as E
from gpttui import presets
from gpttui.evals import inloop
from gpttui.runs import store as runs
from gpttui.train.trainer import Trainer
from tests.engine import evalutil
from tests.engine.trainutil import tiny_cfg, train_closing_trackers, write_dataset


def _train(**kw):
    write_dataset()
    cfg = tiny_cfg(max_iters=4, lr_decay_iters=4, eval_interval=2, block_size=32, **kw)
    run = runs.create_run(cfg, "tiny")
    got: list[E.Event] = []
    res = Trainer(cfg, run, [got.append]).run()
    assert isinstance(res, E.Finished) and res.state == E.FINISHED
    return run, got


def test_every_evaluation_scores_the_same_fixed_subset_and_the_run_keeps_it(monkeypatch):
    evalutil.install(n=40)
    picked = []
    real = inloop.subset_indices
    monkeypatch.setattr(inloop, "subset_indices", lambda n, total: picked.append(real(n, total)) or picked[-1])
    run, got = _train(hellaswag_every=1, hellaswag_examples=9)
    tasks = [e for e in got if isinstance(e, E.TaskEval)]
    assert [t.iter for t in tasks] == [e.iter for e in got if isinstance(e, E.EvalResult)] == [0, 2, 4]
    assert all(t.n == 9 and t.task == "hellaswag" and 0 <= t.acc_norm <= 1 for t in tasks)
    assert tasks[-1].stderr == pytest.approx((tasks[-1].acc_norm * (1 - tasks[-1].acc_norm) / 9) ** 0.5)
    assert len(picked) == 1 and len(picked[0]) == 9  # chosen once, scored at every eval
    assert [e for e in run.events() if isinstance(e, E.TaskEval)] == tasks  # metrics.jsonl round trip
    st = run.status()
    assert st["hellaswag_acc_norm"] == tasks[-1].acc_norm and st["hellaswag_n"] == 9 and st["hellaswag_iter"] == 4
    s = run.summary()
    assert (s.hellaswag, s.hellaswag_n) == (tasks[-1].acc_norm, 9)


def test_every_kth_evaluation_and_off():
    evalutil.install(n=20)
    _, got = _train(hellaswag_every=2, hellaswag_examples=4)
    assert [e.iter for e in got if isinstance(e, E.TaskEval)] == [0, 4]
    _, got = _train(hellaswag_every=0)
    assert not [e for e in got if isinstance(e, E.TaskEval)]


def test_missing_data_is_one_warning_and_the_run_goes_on():
    run, got = _train(hellaswag_every=1)
    warn = [e.text for e in got if isinstance(e, E.LogMessage) and e.level == "warning"]
    assert len(warn) == 1 and "HellaSwag skipped" in warn[0] and "gpttui eval --download" in warn[0]
    assert not [e for e in got if isinstance(e, E.TaskEval)] and run.summary().hellaswag is None


def test_the_subset_is_seeded_nested_and_in_file_order():
    a, b = inloop.subset_indices(10, 10042), inloop.subset_indices(50, 10042)
    assert a == sorted(a) and set(a) <= set(b) and a == inloop.subset_indices(10, 10042)


def test_auto_size_is_a_tenth_of_an_evaluations_flops():
    demo, big = presets.get("demo").config(), presets.get("gpt2-124m").config()
    assert inloop.auto_examples(demo) == 11 and inloop.auto_examples(big) == 1805
    # twice the evaluation: twice the subset (up to rounding), never more than the split
    assert abs(inloop.auto_examples(demo.replace(eval_iters=16)) - 22) <= 1
    assert inloop.auto_examples(big.replace(eval_iters=10**6)) == 10042


def test_tensorboard_gets_the_hellaswag_figures():
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


    evalutil.install(n=12)
    write_dataset()
    cfg = tiny_cfg(max_iters=4, lr_decay_iters=4, eval_interval=2, block_size=32, hellaswag_every=1,
                   hellaswag_examples=5, tensorboard_log=True)
    run, got = train_closing_trackers(cfg)
    acc = EventAccumulator(str(run.path / "tensorboard"))
    acc.Reload()
    tasks = [e for e in got if isinstance(e, E.TaskEval)]
    scalars = acc.Scalars("eval/hellaswag_acc_norm")
    assert [(s.step, s.value) for s in scalars] == [(t.iter, pytest.approx(t.acc_norm)) for t in tasks]
