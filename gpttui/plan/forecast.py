"""Where a run will end: its final val loss at max_iters, forecast from the evals so far.

The model (measured in bench/forecast.py, see bench/RESULTS.md) is

    L(t) = E + B · S(t)^-β + K · m(t)

- S(t): the learning-rate area, Σ of the schedule's lr / peak lr over the steps done — the
  "distance" the optimizer has travelled, so a step at a tenth of the lr counts a tenth;
- m(t): the lr at step t as a fraction of the peak; K · m is the loss the lr's own noise
  keeps above the curve, which the schedule's decay takes away (the drop at the end of a
  warmup-stable-decay run, the slow bend of a cosine one).

Both S and m follow from the run's schedule (nanoGPT's cosine for recipe "gpt2",
warmup-stable-decay for "modern"), so the fit extrapolates to max_iters through the decay
still to come. While the lr has not moved yet (a WSD run before its warmdown) K cannot be
told from E: the decay to come is then given the prior K = K_PRIOR × (the fitted loss where
the lr starts to fall), with the prior's spread carried into the band. (The drop as a
fraction of the loss varied 0.026-0.041 over the calibration runs; as a multiple of the
loss still above E, B · S^-β, it varied 1.2-3.9: E is the least certain of the fit's numbers.) Where the lr has moved, K
is fitted (K ≥ 0; a fit that wants K < 0 falls back to K = 0). E ≥ 0 and B ≥ 0. For each β
on a grid, (E, B[, K]) is a linear least-squares problem; the band is a residual bootstrap
(refits on the fitted curve plus resampled residuals) combined with one eval's own noise,
as the half-width of a BAND_LEVEL interval. Evals before warmup's end are not fitted.

Pure Python + numpy (no torch, no scipy; ~50 ms a forecast): computed by the trainer at
each eval (RunMonitor → a Forecast event, status.json), read back by Runs, compare and
`gpttui runs`, so no screen computes it on the UI thread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_EVALS = 6  # evals (after warmup) before a forecast is made
BETAS = np.concatenate([np.linspace(0.05, 1.0, 39), np.linspace(1.05, 2.5, 15)])
BOOT = 160  # bootstrap refits
BAND_LEVEL = 0.90  # the band holds the final loss this often if the model is right
# K / (the fitted loss where the lr starts to fall) for a curve whose evals have not
# identified K yet: the median of bench/forecast.py's whole-run fits (2026-12-02, seeds 0-3,
# 8 runs per recipe, tiny CPU shapes): WSD's linear decay to 0 over the last 20 % takes
# 2.6-6.5 % (median 4.0 %) off the loss; the cosine's K (0.1-3.6 %) is fitted from its own
# curve once the lr has moved (after ~35 % of the run). Chosen on seeds 0-1 (median 3.1 %),
# the form held on seeds 2-3 it had not seen: 1.71 % median error at 50 % (bench/RESULTS.md).
K_PRIORS = {"modern": 0.040, "gpt2": 0.017}
K_PRIOR = K_PRIORS["modern"]
K_PRIOR_SPREAD = 0.5  # that prior's spread: σ of its log (the 2.6-6.5 % measured: σ 0.3)
K_FREE_RANGE = 0.15  # the lr must have moved this much (fraction of peak) over the evals to fit K
_Z = 1.6449  # two-sided 90 %


@dataclass(frozen=True)
class Schedule:
    """The lr schedule of a run, from its config (`Schedule.of(cfg)`)."""

    recipe: str
    max_iters: int
    decay_lr: bool = True
    warmup_iters: int = 0
    lr_decay_iters: int = 0
    learning_rate: float = 1.0
    min_lr: float = 0.0
    warmdown_frac: float = 0.0

    @classmethod
    def of(cls, cfg: Any) -> Schedule:
        get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
        return cls(recipe=str(get("recipe", "gpt2")), max_iters=int(get("max_iters", 0)),
                   decay_lr=bool(get("decay_lr", True)), warmup_iters=int(get("warmup_iters", 0)),
                   lr_decay_iters=int(get("lr_decay_iters", get("max_iters", 0))),
                   learning_rate=float(get("learning_rate", 1.0)), min_lr=float(get("min_lr", 0.0)),
                   warmdown_frac=float(get("warmdown_frac", 0.0)))

    def mult(self, it: int) -> float:
        """lr at step `it` / peak lr (train/setup.get_lr and model/recipes.lr_multiplier)."""
        if not self.decay_lr:
            return 1.0
        if it < self.warmup_iters:
            return (it + 1) / (self.warmup_iters + 1)
        floor = self.min_lr / self.learning_rate if self.learning_rate > 0 else 0.0
        if self.recipe == "modern":
            start = self.max_iters * (1.0 - self.warmdown_frac)
            if it < start or self.warmdown_frac <= 0:
                return 1.0
            frac = min(1.0, (it - start) / max(1.0, self.max_iters - start))
            return 1.0 - frac * (1.0 - floor)
        if it > self.lr_decay_iters:
            return floor
        span = max(1, self.lr_decay_iters - self.warmup_iters)
        return floor + 0.5 * (1.0 + math.cos(math.pi * (it - self.warmup_iters) / span)) * (1.0 - floor)

    def mults(self, n: int) -> np.ndarray:
        """mult(i) for steps 0..n-1, vectorised (a 600,000-step schedule in milliseconds)."""
        it = np.arange(max(n, 0), dtype=float)
        if not self.decay_lr:
            return np.ones_like(it)
        floor = self.min_lr / self.learning_rate if self.learning_rate > 0 else 0.0
        if self.recipe == "modern":
            start = self.max_iters * (1.0 - self.warmdown_frac)
            frac = np.clip((it - start) / max(1.0, self.max_iters - start), 0.0, 1.0)
            out = 1.0 - frac * (1.0 - floor) if self.warmdown_frac > 0 else np.ones_like(it)
            out = np.where(it < start, 1.0, out)
        else:
            span = max(1, self.lr_decay_iters - self.warmup_iters)
            cos = floor + 0.5 * (1.0 + np.cos(np.pi * (it - self.warmup_iters) / span)) * (1.0 - floor)
            out = np.where(it > self.lr_decay_iters, floor, cos)
        return np.where(it < self.warmup_iters, (it + 1) / (self.warmup_iters + 1), out)

    def curve(self, upto: int) -> tuple[np.ndarray, np.ndarray]:
        """(S, m) after each of steps 0..upto: S[i] = lr area of steps 0..i-1, m[i] = the lr of
        the last step done (mult(i-1); m[0] = mult(0))."""
        m = self.mults(upto)
        s = np.concatenate([[0.0], np.cumsum(m)])
        return s, np.concatenate([[m[0] if len(m) else 1.0], m])


@dataclass(frozen=True)
class Forecast:
    loss: float  # forecast val loss at `at_iter`
    band: float  # half-width of the BAND_LEVEL interval
    at_iter: int  # max_iters
    n_evals: int  # evals the fit used
    from_iter: int  # the last of them

    def text(self) -> str:
        return f"forecast {self.loss:.3f} ± {self.band:.3f} at iter {self.at_iter:,} (from {self.n_evals} evals)"

    def short(self) -> str:
        return f"{self.loss:.3f}±{self.band:.2f}"

    def to_json(self) -> dict[str, Any]:
        return {"loss": self.loss, "band": self.band, "at_iter": self.at_iter, "n_evals": self.n_evals,
                "from_iter": self.from_iter}


def _fit_points(evals: Sequence[tuple[int, float]], sched: Schedule) -> tuple[np.ndarray, np.ndarray] | None:
    """(iters, losses) the fit uses: finite evals after warmup (the first steps are not a power law)."""
    first = max(sched.warmup_iters, 1)
    pts = sorted((int(i), float(v)) for i, v in evals if i >= first and math.isfinite(v))
    if len(pts) < MIN_EVALS:
        return None
    it = np.array([p[0] for p in pts])
    return it, np.array([p[1] for p in pts])


class _Model:
    """The fit for one run: features at the eval iters and at max_iters, and for each β the
    least-squares solve (pseudo-inverse), so many curves (a bootstrap) fit at once."""

    def __init__(self, it: np.ndarray, sched: Schedule):
        s, m = sched.curve(max(sched.max_iters, int(it.max())))
        self.m_ev = m[it]
        self.m_end = float(m[sched.max_iters])
        pow_ev = s[it][None, :] ** -BETAS[:, None]  # [β, n]
        self.pow_end = s[sched.max_iters] ** -BETAS
        # where the lr next starts to fall (a WSD run's warmdown): the prior's reference point
        last = int(it[-1])
        falls = np.nonzero(m[last:] < m[last] - 1e-9)[0]
        self.ref = min(last + (int(falls[0]) if len(falls) else 0), sched.max_iters)
        self.pow_ref = s[self.ref] ** -BETAS
        # K is identified when the lr has moved over the fitted evals (cosine, or a WSD decay)
        self.k_free = float(self.m_ev.max() - self.m_ev.min()) > K_FREE_RANGE
        ones = np.ones_like(pow_ev)
        self.X2 = np.stack([ones, pow_ev], axis=-1)  # [β, n, 2]: E, B
        self.X3 = np.stack([ones, pow_ev, np.broadcast_to(self.m_ev, pow_ev.shape)], axis=-1)  # E, B, K
        self.pinv2, self.pinv3 = np.linalg.pinv(self.X2), np.linalg.pinv(self.X3)
        self.n_params = 3 if self.k_free else 2

    @staticmethod
    def _solve(X: np.ndarray, pinv: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        coef = np.einsum("bpn,cn->cbp", pinv, y)  # [c, β, p]
        fitted = np.einsum("bnp,cbp->cbn", X, coef)
        return coef, fitted, ((fitted - y[:, None, :]) ** 2).sum(-1)

    def fit(self, y: np.ndarray, k_prior: np.ndarray | float = K_PRIOR) -> tuple[np.ndarray, np.ndarray]:
        """Curves y[c, n] → (forecast at max_iters [c], fitted curve [c, n]) at the best β.

        With the lr moving over the evals, K is fitted (E, B, K ≥ 0; else K = 0).
        Before that, the decay still to come takes k_prior of the fitted loss where the lr
        starts to fall, times the lr's drop: K = k_prior · (E + B · S^-β) there."""
        y = np.atleast_2d(y)
        rows = np.arange(len(y))
        c2, f2, sse2 = self._solve(self.X2, self.pinv2, y)
        sse2 = np.where((c2[..., 1] >= 0) & (c2[..., 0] >= 0), sse2, np.inf)
        b2 = np.argmin(np.where(np.isfinite(sse2).any(1, keepdims=True), sse2, 0.0), axis=1)
        c, curve = c2[rows, b2], f2[rows, b2]
        loss = c[:, 0] + c[:, 1] * self.pow_end[b2]
        if not self.k_free:
            k = np.asarray(k_prior) * (c[:, 0] + np.maximum(c[:, 1], 0.0) * self.pow_ref[b2])
            return loss - k * (float(self.m_ev[-1]) - self.m_end), curve
        c3, f3, sse3 = self._solve(self.X3, self.pinv3, y)
        sse3 = np.where((c3[..., 0] >= 0) & (c3[..., 1] >= 0) & (c3[..., 2] >= 0), sse3, np.inf)
        b3 = np.argmin(sse3, axis=1)
        use3 = sse3[rows, b3] < sse2[rows, b2]
        k3 = c3[rows, b3]
        loss3 = k3[:, 0] + k3[:, 1] * self.pow_end[b3] + k3[:, 2] * self.m_end
        return np.where(use3, loss3, loss), np.where(use3[:, None], f3[rows, b3], curve)


def forecast(evals: Sequence[tuple[int, float]], sched: Schedule, seed: int = 0,
             k_prior: float | None = None) -> Forecast | None:
    """The final val loss at sched.max_iters from (iter, val loss) evals, or None before
    MIN_EVALS evals past warmup (or with a schedule that has no length). `k_prior`: the
    decay's prior (default: K_PRIORS of the recipe; bench/forecast.py calibrates it leaving
    the run out)."""
    if k_prior is None:
        k_prior = K_PRIORS.get(sched.recipe, K_PRIOR)
    if sched.max_iters <= 0:
        return None
    pts = _fit_points(evals, sched)
    if pts is None:
        return None
    it, y = pts
    it = np.minimum(it, sched.max_iters)
    model = _Model(it, sched)
    loss_a, curve_a = model.fit(y, k_prior)
    loss, curve = float(loss_a[0]), curve_a[0]
    resid = y - curve
    dof = max(1, len(y) - model.n_params - 1)
    sigma = float(math.sqrt((resid ** 2).sum() / dof))
    rng = np.random.default_rng(seed)
    ystar = curve + rng.choice(resid, size=(BOOT, len(y)), replace=True) * math.sqrt(len(y) / dof)
    priors = k_prior * np.exp(K_PRIOR_SPREAD * rng.standard_normal(BOOT))  # lognormal
    boots, _ = model.fit(ystar, priors)
    lo, hi = np.quantile(boots, [(1 - BAND_LEVEL) / 2, (1 + BAND_LEVEL) / 2])
    half = max(abs(hi - loss), abs(loss - lo))
    band = float(math.sqrt(half ** 2 + (_Z * sigma) ** 2))
    if not (math.isfinite(loss) and math.isfinite(band)):
        return None
    return Forecast(loss=loss, band=band, at_iter=sched.max_iters, n_evals=len(y), from_iter=int(it[-1]))


def describe(fc: Forecast | None, n_evals: int) -> str:
    """One line: the forecast, or why there is none (`n_evals`: evals past warmup so far)."""
    return fc.text() if fc is not None else f"forecast: not enough evals yet ({n_evals} of {MIN_EVALS})"


def decay_ratio(evals: Sequence[tuple[int, float]], sched: Schedule) -> float | None:
    """K / (the fitted loss where the lr starts to fall), fitted on a whole run's curve (its
    decay included): what K_PRIOR stands for, measured (bench/forecast.py). None when the fit
    has no K (the lr never moved, or the curve wants K < 0)."""
    pts = _fit_points(evals, sched)
    if pts is None:
        return None
    it, y = pts
    mults = sched.mults(sched.max_iters)
    falls = np.nonzero((np.arange(len(mults)) >= sched.warmup_iters) & (mults < 1.0 - 1e-9))[0]
    if not len(falls):
        return None
    model = _Model(it, sched)
    if not model.k_free:
        return None
    c3, _, sse3 = model._solve(model.X3, model.pinv3, y[None, :])
    sse3 = np.where((c3[..., 0] >= 0) & (c3[..., 1] > 0) & (c3[..., 2] >= 0), sse3, np.inf)[0]
    if not np.isfinite(sse3).any():
        return None
    b = int(np.argmin(sse3))
    e, bb, k = c3[0, b]
    s, _ = sched.curve(sched.max_iters)
    ref = int(falls[0])
    return float(k / (e + bb * s[ref] ** -BETAS[b] + k * sched.mult(ref - 1)))
