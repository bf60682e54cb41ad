"""Tokens and time to a val loss, from a run's events (what the compare screen shows)."""

from __future__ import annotations

from gpttui import events as E
from gpttui.runs import compare


def run(vals: list[tuple[int, float]], tokens_per_iter: int = 100, s_per_iter: float = 2.0) -> list[E.Event]:
    out: list[E.Event] = []
    for it, v in vals:
        if it:
            out.append(E.StepMetrics("r", iter=it, max_iters=99, loss=v, lr=1e-3, grad_norm=None, step_time_s=s_per_iter,
                                     tokens_per_s=1.0, tokens_seen=it * tokens_per_iter, elapsed_s=it * s_per_iter,
                                     eta_s=None, mfu=None, peak_tflops=None, peak_basis=""))
        out.append(E.EvalResult("r", iter=it, train_loss=v, val_loss=v, best_val_loss=v, tokens_seen=it * tokens_per_iter))
    return out


def test_tokens_and_time_to_the_best_loss_both_reached():
    slow = run([(0, 10.0), (10, 6.0), (20, 5.0), (30, 4.5)])
    fast = run([(0, 10.0), (10, 5.0), (20, 4.0)], s_per_iter=3.0)
    target = compare.common_target(slow, fast)
    assert target == 4.5
    a, b = compare.reached(slow, target), compare.reached(fast, target)
    assert (a.iter, a.tokens, a.elapsed_s) == (30, 3000, 60.0)
    assert (b.iter, b.tokens, b.elapsed_s) == (20, 2000, 60.0)
    assert compare.reached(slow, 3.0) is None
    assert compare.common_target(slow, []) is None


def test_ending_is_measured_for_a_finished_run_else_the_newest_forecast():
    evs = run([(0, 10.0), (10, 6.0), (20, 5.0)])
    assert compare.ending(evs) is None  # neither finished nor forecast
    fc = [E.Forecast("r", iter=10, loss=4.6, band=0.2, at_iter=40, n_evals=6),
          E.Forecast("r", iter=20, loss=4.5, band=0.1, at_iter=40, n_evals=7)]
    e = compare.ending(evs + fc)
    assert (e.loss, e.band, e.at_iter, e.measured) == (4.5, 0.1, 40, False)
    assert e.text() == "4.500 ± 0.100 forecast"
    done = evs + fc + [E.Finished("r", state=E.FINISHED, iter=20, best_val_loss=5.0, tokens_seen=2000, elapsed_s=40.0)]
    e = compare.ending(done)
    assert (e.loss, e.measured, e.text()) == (5.0, True, "5.0000 measured")
    stopped = evs + fc + [E.Finished("r", state=E.STOPPED, iter=20, best_val_loss=5.0, tokens_seen=2000, elapsed_s=40.0)]
    assert compare.ending(stopped).band == 0.1  # stopped early: its forecast still stands
