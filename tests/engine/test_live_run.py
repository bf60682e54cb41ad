"""A real CPU run's live signals: micro-step Progress, eval samples, early stop on a plateau
(checkpoint first, the reason in the Finished event, status.json and `gpttui runs`)."""

from __future__ import annotations

import argparse

import pytest
from trainutil import one_thread, tiny_cfg, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui import events as E
from gpttui.cli.headless import cmd_runs
from gpttui.cli.printers import event_line
from gpttui.runs import store as runs
from gpttui.train.trainer import Trainer
from gpttui.weights.checkpoint import load_checkpoint


@pytest.fixture(autouse=True)
def dataset(one_thread):  # noqa: F811
    return write_dataset()


def _train(cfg):
    run = runs.create_run(cfg, "tiny")
    got: list[E.Event] = []
    res = Trainer(cfg, run, [got.append]).run()
    return run, res, got


def test_early_stop_checkpoints_and_says_why_everywhere(capsys):
    # min_delta 50 nats: no evaluation can count as improving, so patience 2 stops at the
    # second evaluation after the first (iters 0, 4, 8)
    cfg = tiny_cfg(max_iters=40, lr_decay_iters=40, eval_interval=4, early_stop_patience=2,
                   early_stop_min_delta=50.0, sample_tokens=8)
    run, res, got = _train(cfg)
    assert isinstance(res, E.Finished) and res.state == E.STOPPED and res.iter == 8
    assert res.reason.startswith("early stop: val loss has not improved by 50 for 2 evaluations")
    assert load_checkpoint(run.checkpoint_path)["iter_num"] == 8
    st = run.status()
    assert st["state"] == E.STOPPED and st["stop_reason"] == res.reason
    assert run.summary().stop_reason == res.reason and run.summary().resumable
    assert res.reason in event_line(res)
    cmd_runs(argparse.Namespace(json=False))
    out = capsys.readouterr().out
    assert f"{run.id}" in out and "stopped (early stop)" in out and res.reason in out


def test_forecast_early_stop_against_a_reference_run(capsys):
    """A reference no run of this size can beat (best val 0.5): the run stops at the first
    eval the forecast may stop it, checkpoints, and says why (event, status, `gpttui runs`)."""
    from gpttui.train.monitor import FORECAST_STOP_EVALS

    ref = runs.create_run(tiny_cfg(), "tiny", name="ref")
    ref.write_status(state=E.FINISHED, best_val_loss=0.5, val_loss=0.5)
    cfg = tiny_cfg(max_iters=60, lr_decay_iters=60, warmup_iters=0, eval_interval=2, eval_iters=2,
                   early_stop_reference=ref.id, early_stop_min_delta=0.01, sample_tokens=0)
    run, res, got = _train(cfg)
    fcs = [e for e in got if isinstance(e, E.Forecast)]
    stop_iter = 2 * FORECAST_STOP_EVALS  # evals at 2, 4, ... (the one at iter 0 is not fitted)
    assert isinstance(res, E.Finished) and res.state == E.STOPPED and res.iter == stop_iter
    assert res.reason.startswith("early stop: forecast ") and f"cannot beat run {ref.id}'s best val 0.5000 by 0.01" in res.reason
    assert fcs[-1].iter == stop_iter and fcs[-1].at_iter == 60 and fcs[-1].n_evals == FORECAST_STOP_EVALS
    assert load_checkpoint(run.checkpoint_path)["iter_num"] == stop_iter
    st = run.status()
    assert st["stop_reason"] == res.reason and st["forecast"] == fcs[-1].loss and st["forecast_band"] == fcs[-1].band
    assert [e.to_json() for e in run.events() if isinstance(e, E.Forecast)] == [f.to_json() for f in fcs]
    assert event_line(fcs[-1]).startswith(f"forecast at iter {stop_iter}: final val ")
    cmd_runs(argparse.Namespace(json=False))
    out = capsys.readouterr().out
    assert "forecast" in out and f"{fcs[-1].loss:.3f}±{fcs[-1].band:.3f}" in out


def test_an_unknown_reference_run_fails_with_one_line():
    res = _train(tiny_cfg(max_iters=4, early_stop_reference="no-such-run"))[1]
    assert isinstance(res, E.Failed) and res.reason == "early_stop_reference: no run 'no-such-run'"


def test_samples_at_each_eval_are_seeded_reproducible_and_kept_in_the_run():
    cfg = tiny_cfg(max_iters=8, sample_tokens=6, sample_prompt="def ")
    run, res, got = _train(cfg)
    samples = [e for e in got if isinstance(e, E.Sample)]
    assert [s.iter for s in samples] == [0, 4, 8] and all(s.prompt == "def " for s in samples)
    evals = {e.iter: e.val_loss for e in got if isinstance(e, E.EvalResult)}
    assert all(s.val_loss == evals[s.iter] for s in samples)
    assert [e.to_json() for e in run.events() if isinstance(e, E.Sample)] == [s.to_json() for s in samples]
    run2, _, got2 = _train(cfg)  # same seed, own generator: the same text at the same iterations
    assert [s.text for s in got2 if isinstance(s, E.Sample)] == [s.text for s in samples]


def test_sample_tokens_zero_turns_samples_off():
    _, _, got = _train(tiny_cfg(max_iters=4, sample_tokens=0))
    assert not [e for e in got if isinstance(e, E.Sample)]


def test_progress_inside_long_steps_counts_micro_steps_and_tokens(monkeypatch):
    import gpttui.train.loop as L

    ticks = iter(range(0, 10**6, 2))  # a fake monotonic clock: 2 s pass at every read
    monkeypatch.setattr(L.time, "monotonic", lambda: float(next(ticks)))
    cfg = tiny_cfg(max_iters=3, gradient_accumulation_steps=4, eval_interval=100)
    _, _, got = _train(cfg)
    prog = [e for e in got if isinstance(e, E.Progress) and not e.eval_total]  # (evals: the next test)
    tpi = 2 * 16 * 4
    assert [(p.iter, p.micro) for p in prog[:5]] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0)]
    assert all(p.accum == 4 and p.max_iters == 3 and p.tokens_seen == p.iter * tpi + p.micro * tpi // 4 for p in prog)


def test_progress_inside_a_long_evaluation_counts_its_batches(monkeypatch):
    import gpttui.train.loop as L

    ticks = iter(range(0, 10**6, 2))  # as above: every batch of the eval is a second later
    monkeypatch.setattr(L.time, "monotonic", lambda: float(next(ticks)))
    cfg = tiny_cfg(max_iters=2, eval_interval=100, eval_iters=3, sample_tokens=0)
    _, _, got = _train(cfg)
    evals = [(e.iter, e.eval_done, e.eval_total) for e in got if isinstance(e, E.Progress) and e.eval_total]
    # the starting eval at iteration 0 and the final one at 2: train then val batches, 6 in all
    assert [d for it, d, _ in evals if it == 0] == [0, 1, 2, 3, 4, 5]
    assert [d for it, d, _ in evals if it == 2] == [0, 1, 2, 3, 4, 5]
    assert {t for _, _, t in evals} == {6}
    i_eval = next(i for i, e in enumerate(got) if isinstance(e, E.Progress) and e.eval_total)
    before = [e for e in got[:i_eval] if isinstance(e, E.StatusChanged)]
    assert before and before[-1].state == E.EVALUATING  # shown while the screen says evaluating
