"""Comparing runs by what they reached: the tokens and training time each run needed to
reach a validation loss (by default the best loss both runs reached).

Pure functions on a run's events (no torch, no textual): the compare screen and anything
else that compares runs call the same code. The time is the training wall time of the last
step logged at or before the evaluation (pauses excluded), so it is measured, never derived.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpttui import events as E


@dataclass(frozen=True)
class Reached:
    """Where a run's val loss first fell to `target` or below."""

    target: float
    iter: int
    tokens: int
    elapsed_s: float | None  # None when no step before that eval was logged


def best_val(events: Sequence[E.Event]) -> float | None:
    return min((e.val_loss for e in events if isinstance(e, E.EvalResult)), default=None)


def common_target(*runs: Sequence[E.Event]) -> float | None:
    """The best val loss every run reached: the highest of their best losses."""
    bests = [best_val(ev) for ev in runs]
    return None if any(b is None for b in bests) else max(bests)  # type: ignore[type-var]


def reached(events: Sequence[E.Event], target: float) -> Reached | None:
    """The first evaluation at or below `target` (None if the run never got there)."""
    elapsed: dict[int, float] = {0: 0.0}
    for e in events:
        if isinstance(e, E.StepMetrics):
            elapsed[e.iter] = e.elapsed_s
    for e in events:
        if isinstance(e, E.EvalResult) and e.val_loss <= target:
            before = [it for it in elapsed if it <= e.iter]
            return Reached(target, e.iter, e.tokens_seen, elapsed[max(before)] if before else None)
    return None


@dataclass(frozen=True)
class Ending:
    """Where a run ends: measured (it finished: its last eval) or forecast (its newest
    Forecast event, computed from its evals, with a ± band)."""

    loss: float
    band: float | None  # None when measured
    at_iter: int
    n_evals: int = 0

    @property
    def measured(self) -> bool:
        return self.band is None

    def text(self) -> str:
        if self.band is None:
            return f"{self.loss:.4f} measured"
        return f"{self.loss:.3f} ± {self.band:.3f} forecast"


def ending(events: Sequence[E.Event]) -> Ending | None:
    """The run's final val loss if it finished, else its newest forecast (None: neither)."""
    fin = next((e for e in reversed(events) if isinstance(e, E.Finished)), None)
    if fin is not None and fin.state == E.FINISHED:
        last = next((e for e in reversed(events) if isinstance(e, E.EvalResult)), None)
        if last is not None:
            return Ending(last.val_loss, None, last.iter)
    fc = next((e for e in reversed(events) if isinstance(e, E.Forecast)), None)
    return None if fc is None else Ending(fc.loss, fc.band, fc.at_iter, fc.n_evals)
