"""RunMonitor's rules on numbers: early stop on a plateau, overfitting, loss spikes,
throughput drops, VRAM creep and a filling disk."""

from __future__ import annotations

import random

from gpttui import config as C
from gpttui import events as E
from gpttui.train.monitor import RunMonitor


def _mon(free=lambda path: 10**12, **cfg):
    got: list[E.Event] = []
    m = RunMonitor(C.TrainConfig(**cfg) if cfg else C.TrainConfig(), "r", got.append, free=free)
    return m, got


def _step(i, loss=3.0, tps=1000.0, **kw):
    base = dict(iter=i, max_iters=1000, loss=loss, lr=1e-3, grad_norm=None, step_time_s=0.1, tokens_per_s=tps,
                tokens_seen=i, elapsed_s=i, eta_s=None, mfu=None, peak_tflops=None, peak_basis="")
    base.update(kw)
    return E.StepMetrics("r", **base)


def _eval(i, val, train=None):
    return E.EvalResult("r", iter=i, train_loss=val - 0.01 if train is None else train, val_loss=val,
                        best_val_loss=val, tokens_seen=i)


def test_early_stop_after_patience_evaluations_without_improvement():
    m, got = _mon(early_stop_patience=2, early_stop_min_delta=0.01)
    assert m.on_eval(_eval(0, 5.0)) == ""
    assert m.on_eval(_eval(100, 4.0)) == ""
    assert m.on_eval(_eval(200, 3.995)) == ""  # less than min_delta: one bad evaluation
    reason = m.on_eval(_eval(300, 3.999))
    assert reason.startswith("early stop") and "best 4.0000 at iter 100" in reason and "by 0.01" in reason


def test_early_stop_off_by_default_and_improvement_resets_the_count():
    m, _ = _mon()
    assert all(m.on_eval(_eval(i, 4.0)) == "" for i in range(0, 2000, 100))  # patience 0: never
    m, _ = _mon(early_stop_patience=2)
    for i, v in enumerate((5.0, 4.9, 4.95, 4.8, 4.85)):
        assert m.on_eval(_eval(i, v)) == ""


def test_overfitting_warns_once_when_the_gap_widens_three_evaluations_in_a_row():
    m, got = _mon(dropout=0.0)
    for i, (train, val) in enumerate([(4.0, 4.02), (3.5, 3.55), (3.2, 3.3), (3.0, 3.15), (2.9, 3.2), (2.8, 3.25)]):
        m.on_eval(_eval(100 * i, val, train))
    warns = [e for e in got if isinstance(e, E.RunWarning)]
    assert [w.code for w in warns] == ["overfit"]
    assert "0.020 → 0.150" in warns[0].text and "dropout (now 0)" in warns[0].hint and warns[0].iter == 300


def test_a_loss_far_outside_the_recent_spread_is_a_spike_but_noise_is_not():
    m, got = _mon()
    rnd = random.Random(0)
    for i in range(60):
        m.on_step(_step(i, 3.0 + rnd.uniform(-0.05, 0.05)))
    assert not got
    m.on_step(_step(60, 4.5))
    m.on_step(_step(61, 4.6))  # within the cooldown: not warned again
    assert [w.code for w in got] == ["spike"] and "4.500 at iter 60" in got[0].text


def test_throughput_drop_of_30_percent_sustained_warns_once_until_it_recovers():
    m, got = _mon()
    for i in range(20):
        m.on_step(_step(i, tps=1000.0))
    m.on_step(_step(20, tps=600.0))
    m.on_step(_step(21, tps=600.0))
    assert not got  # two slow windows: could be one eval or a checkpoint
    m.on_step(_step(22, tps=600.0))
    m.on_step(_step(23, tps=600.0))
    assert [w.code for w in got] == ["throughput"] and "40 % below" in got[0].text
    m.on_step(_step(24, tps=990.0))
    for i in range(25, 28):
        m.on_step(_step(i, tps=500.0))
    assert [w.code for w in got] == ["throughput", "throughput"]
    m2, got2 = _mon()
    for i in range(30):
        m2.on_step(_step(i, tps=1000.0 * (0.8 if i % 2 else 1.0)))  # jitter only
    assert not got2


def test_vram_creeping_up_warns_and_a_flat_one_does_not():
    gib = 2**30
    m, got = _mon()
    for i in range(40):
        m.on_step(_step(i, vram_reserved=4 * gib, vram_total=12 * gib))
    assert not got
    for i in range(40, 60):
        m.on_step(_step(i, vram_reserved=int(4 * gib + (i - 40) * 0.05 * gib), vram_total=12 * gib))
    # warned at +10 % (and 256 MiB), again only after a further 10 %
    assert [w.code for w in got] == ["vram", "vram"] and "from 4.00 to 4.45 GiB of 12.0 GiB" in got[0].text
    assert "to 4.90 GiB" in got[1].text


def test_cpu_steps_warn_about_nothing_memory_related():
    m, got = _mon()
    for i in range(50):
        m.on_step(_step(i, ram_used=2**30, ram_total=16 * 2**30))
    assert not got


def test_disk_below_two_checkpoints_warns(tmp_path):
    ck = tmp_path / "ckpt.pt"
    ck.write_bytes(b"x" * 1000)
    m, got = _mon(free=lambda path: 1500)
    m.on_checkpoint(str(ck), 100)
    assert [w.code for w in got] == ["disk"] and got[0].iter == 100
    m, got = _mon(free=lambda path: 2500)
    m.on_checkpoint(str(ck), 100)
    assert not got


def test_a_resumed_run_counts_patience_against_its_best_so_far():
    got: list[E.Event] = []
    m = RunMonitor(C.TrainConfig(early_stop_patience=1), "r", got.append, best_val=3.0, best_iter=500)
    reason = m.on_eval(_eval(600, 3.2))
    assert reason.startswith("early stop") and "best 3.0000 at iter 500" in reason


_SCHED = dict(max_iters=1000, lr_decay_iters=1000, warmup_iters=10, learning_rate=1e-3, min_lr=1e-4)


def _curve(i):
    """A val curve on the schedule above (cosine, 1,000 steps): 3 + 4·S^-0.5 + 0.2·m."""
    from gpttui.plan.forecast import Schedule

    s, m = Schedule.of(C.TrainConfig(**_SCHED)).curve(1000)
    return 3.0 + 4.0 * max(s[i], 1.0) ** -0.5 + 0.2 * m[i]


def test_a_forecast_event_once_enough_evals_past_warmup():
    from gpttui.plan.forecast import MIN_EVALS

    m, got = _mon(**_SCHED)
    for k, i in enumerate(range(0, 500, 50)):
        m.on_eval(_eval(i, _curve(i)))
        fcs = [e for e in got if isinstance(e, E.Forecast)]
        assert len(fcs) == max(0, k + 1 - MIN_EVALS)  # the eval at iter 0 is before warmup's end
    last = fcs[-1]
    assert last.iter == 450 and last.at_iter == 1000 and last.n_evals == 9 and last.band > 0
    assert 2.5 < last.loss < _curve(450)


def test_forecast_early_stop_against_a_reference_it_cannot_beat():
    from gpttui.train.monitor import FORECAST_STOP_EVALS

    m, got = _mon(**_SCHED, early_stop_min_delta=0.01)
    m.reference = ("ref-run", 2.0)  # this curve ends well above 2.0
    reasons = [m.on_eval(_eval(i, _curve(i))) for i in range(0, 1000, 50)]
    first = next(k for k, r in enumerate(reasons) if r)
    fc = [e for e in got if isinstance(e, E.Forecast)][-1]
    assert first == FORECAST_STOP_EVALS  # evals 50..400 past warmup: stops at the first chance
    assert reasons[first].startswith("early stop: forecast ") and "cannot beat run ref-run's best val 2.0000" \
        in reasons[first] and "by 0.01" in reasons[first]
    assert fc.loss - fc.band > 2.0 - 0.01


def test_no_forecast_early_stop_for_a_run_that_beats_the_reference():
    m, _ = _mon(**_SCHED, early_stop_min_delta=0.01)
    rnd = random.Random(1)
    end = _curve(1000)
    m.reference = ("ref-run", end + 0.02)  # the run ends 0.02 below it: noisy evals must not stop it
    assert all(m.on_eval(_eval(i, _curve(i) + 0.01 * rnd.gauss(0, 1))) == "" for i in range(0, 1000, 50))
    m, _ = _mon(**_SCHED)  # no reference: never
    assert all(m.on_eval(_eval(i, _curve(i))) == "" for i in range(0, 1000, 50))


def test_resumed_evals_carry_into_the_forecast():
    m, got = _mon(**_SCHED)
    m.evals = [(i, _curve(i)) for i in range(50, 400, 50)]
    m.on_eval(_eval(400, _curve(400)))
    assert [e.n_evals for e in got if isinstance(e, E.Forecast)] == [8]


def test_the_reference_run_is_checked(tmp_path):
    import pytest

    from gpttui.errors import RunError
    from gpttui.runs.store import create_run
    from gpttui.train.monitor import resolve_reference

    cfg = C.TrainConfig(early_stop_reference="nope")
    with pytest.raises(RunError, match="early_stop_reference: no run 'nope'"):
        resolve_reference(cfg, "mine")
    ref = create_run(C.TrainConfig(), "demo", name="ref")
    with pytest.raises(RunError, match="has no evaluation yet"):
        resolve_reference(C.TrainConfig(early_stop_reference=ref.id), "mine")
    with pytest.raises(RunError, match="is this run"):
        resolve_reference(C.TrainConfig(early_stop_reference=ref.id), ref.id)
    ref.write_status(state=E.FINISHED, best_val_loss=3.25, val_loss=3.3)
    assert resolve_reference(C.TrainConfig(early_stop_reference=ref.id), "mine") == (ref.id, 3.25)
    assert resolve_reference(C.TrainConfig(), "mine") is None
