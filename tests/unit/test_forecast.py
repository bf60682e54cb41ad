"""The final-loss forecast on synthetic curves with a known end: both schedules, the decay
still to come, the band, and too few evals."""

from __future__ import annotations

import numpy as np
import pytest

from gpttui.plan import forecast as F

COSINE = F.Schedule(recipe="gpt2", max_iters=2000, warmup_iters=40, lr_decay_iters=2000, learning_rate=3e-3,
                    min_lr=3e-4)
WSD = F.Schedule(recipe="modern", max_iters=2000, warmup_iters=20, learning_rate=8e-3, min_lr=0.0,
                 warmdown_frac=0.2)


def truth(sched: F.Schedule, e=2.0, b=3.0, beta=0.4, k=None):
    """L(t) = E + B·S^-β + K·m on the schedule's own S and m (K: the model's prior for WSD)."""
    s, m = sched.curve(sched.max_iters)
    if k is None:  # the loss the decay removes: K_PRIOR of the loss at the decay's start,
        start = int(sched.max_iters * (1 - sched.warmdown_frac))  # K = r·(E + B·S^-β + K·1)
        k = F.K_PRIOR * (e + b * s[start] ** -beta) / (1 - F.K_PRIOR)
    return lambda i: e + b * max(s[i], 1e-9) ** -beta + k * m[i]


def evals(f, upto: int, every: int = 50, noise: float = 0.0, seed: int = 0) -> list[tuple[int, float]]:
    rng = np.random.default_rng(seed)
    return [(i, f(i) + noise * rng.standard_normal()) for i in range(0, upto + 1, every)]


@pytest.mark.parametrize("sched", [COSINE, WSD], ids=["cosine", "wsd"])
def test_a_clean_curve_is_forecast_to_its_known_end_through_the_decay(sched):
    f = truth(sched, k=0.3 if sched is COSINE else None)
    fc = F.forecast(evals(f, sched.max_iters // 2), sched)
    end = f(sched.max_iters)
    assert fc is not None and fc.at_iter == 2000 and fc.n_evals == 20
    assert fc.loss == pytest.approx(end, abs=0.004)
    assert abs(fc.loss - end) <= fc.band


def test_ignoring_the_decay_misses_the_drop_it_brings():
    """The WSD run's last 20 % (lr → 0) take K off the loss: a power law in steps alone
    (the schedule read as constant lr) forecasts the end too high by about that much."""
    f = truth(WSD)
    pts = evals(f, 1000)
    end = f(WSD.max_iters)
    right = F.forecast(pts, WSD)
    flat = F.forecast(pts, F.Schedule(recipe="modern", max_iters=2000, decay_lr=False))
    assert right.loss == pytest.approx(end, abs=0.004)
    assert flat.loss - end > 0.03 and flat.loss - flat.band > end  # the decay's drop, missed


def test_the_cosine_decay_is_fitted_not_assumed():
    """Over the first half of a cosine run the lr has fallen to ~55 %: K is measured from the
    curve. Two curves that differ only in K get forecasts that differ by K × (m_half - m_end)."""
    lo, hi = truth(COSINE, k=0.1), truth(COSINE, k=0.6)
    a = F.forecast(evals(lo, 1000), COSINE)
    b = F.forecast(evals(hi, 1000), COSINE)
    assert a.loss == pytest.approx(lo(2000), abs=0.004) and b.loss == pytest.approx(hi(2000), abs=0.004)


def test_the_band_grows_with_noise_and_shrinks_with_evals():
    f = truth(COSINE, k=0.3)
    quiet = F.forecast(evals(f, 1000, noise=0.002), COSINE)
    noisy = F.forecast(evals(f, 1000, noise=0.02), COSINE)
    assert noisy.band > 3 * quiet.band
    early = F.forecast(evals(f, 600, noise=0.01), COSINE)
    late = F.forecast(evals(f, 1400, noise=0.01), COSINE)
    assert late.band < early.band


def test_the_band_holds_the_end_most_of_the_time():
    f = truth(COSINE, k=0.3)
    end = f(2000)
    hits = 0
    for seed in range(30):
        fc = F.forecast(evals(f, 1000, noise=0.01, seed=seed), COSINE, seed=seed)
        hits += abs(fc.loss - end) <= fc.band
    assert hits >= 24  # a 90 % band: at least 80 % of the draws


def test_too_few_evals_give_no_forecast_and_say_so():
    f = truth(COSINE)
    pts = evals(f, 250)  # 0..250 every 50: 5 past warmup
    assert F.forecast(pts, COSINE) is None
    assert F.describe(None, 5) == "forecast: not enough evals yet (5 of 6)"
    assert F.forecast(evals(f, 300), COSINE) is not None
    assert F.forecast([(i, float("nan")) for i in range(100, 1000, 100)], COSINE) is None
    assert F.forecast(evals(f, 1000), F.Schedule(recipe="gpt2", max_iters=0)) is None


def test_text_says_forecast_band_budget_and_evals():
    fc = F.Forecast(loss=3.4123, band=0.0456, at_iter=20000, n_evals=12, from_iter=9000)
    assert fc.text() == "forecast 3.412 ± 0.046 at iter 20,000 (from 12 evals)"


def test_schedule_of_a_config_or_a_dict():
    from gpttui import config as C

    cfg = C.TrainConfig(recipe="modern", max_iters=500, warmup_iters=10, warmdown_frac=0.3, min_lr=0.0)
    assert F.Schedule.of(cfg) == F.Schedule.of({k: getattr(cfg, k) for k in
                                                ("recipe", "max_iters", "decay_lr", "warmup_iters", "lr_decay_iters",
                                                 "learning_rate", "min_lr", "warmdown_frac")})
    assert F.Schedule.of(cfg).mult(300) == 1.0 and F.Schedule.of(cfg).mult(499) < 0.01
