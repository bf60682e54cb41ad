"""Watching a run for what the user should act on: a plateau (early stop), overfitting, a
loss spike, a throughput drop, VRAM creeping up, a disk about to fill.

Fed by the loop with the events it emits (StepMetrics at each log, EvalResult at each eval,
the path of each checkpoint); it emits `RunWarning`s through the trainer (headless prints a
WARN line, the TUI shows a banner, metrics.jsonl keeps them) and returns the reason to stop
when the val loss has plateaued. Pure Python, no torch: every rule is tested on numbers.
"""

from __future__ import annotations

import os
import shutil
import statistics
from collections import deque
from collections.abc import Callable
from typing import Any

from gpttui import events as E
from gpttui import fmt
from gpttui.plan import forecast as F

SPIKE_WINDOW = 50  # recent logged losses a spike is judged against
SPIKE_MIN_POINTS = 20
SPIKE_K = 8.0  # robust standard deviations (1.4826 x MAD) above the median
SPIKE_MIN_NATS = 0.1  # and at least this far above it (a smooth curve has a tiny MAD)
SPIKE_COOLDOWN = 50  # logs before another spike warning
TPS_MIN_WINDOWS = 10
TPS_DROP = 0.30  # warn at 30 % below the run's median ...
TPS_SUSTAIN = 3  # ... for this many log windows in a row
TPS_REARM = 0.15  # warn again once it has come back within 15 %
VRAM_BASE_WINDOWS = 10  # logs the baseline is taken over (after compiling)
VRAM_GROWTH = 0.10  # warn at 10 % above the baseline ...
VRAM_MIN_BYTES = 256 * 2**20  # ... and at least 256 MiB
OVERFIT_EVALS = 3  # gap widening at each of this many evaluations in a row
OVERFIT_MIN_GAP = 0.05  # nats of val - train before it is called overfitting
FORECAST_STOP_EVALS = F.MIN_EVALS + 2  # evals in the forecast before it may stop a run


def disk_free(path: str) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


class RunMonitor:
    """One run's checks. `emit` sends an event (the trainer's); `free` measures free disk."""

    def __init__(self, cfg: Any, run_id: str, emit: Callable[[E.Event], None],
                 free: Callable[[str], int | None] = disk_free, best_val: float = float("inf"),
                 best_iter: int = 0, evals: list[tuple[int, float]] | None = None,
                 reference: tuple[str, float] | None = None) -> None:
        """`evals`: a resumed run's (iter, val loss) so far (its forecast goes on from them);
        `reference`: (run id, its best val loss) for early_stop_reference."""
        self.cfg, self.run_id, self.emit, self.free = cfg, run_id, emit, free
        self.best = best_val  # best val loss, by at least early_stop_min_delta (a resumed run's so far)
        self.best_iter = best_iter
        self.bad_evals = 0
        self._losses: deque[float] = deque(maxlen=SPIKE_WINDOW)
        self._spike_wait = 0
        self._tps: list[float] = []
        self._slow = 0
        self._tps_warned = False
        self._vram_base: list[int] = []
        self._vram_warned_at = 0
        self._gaps: list[float] = []
        self._overfit_warned = False
        self.warnings: list[E.RunWarning] = []
        self.evals: list[tuple[int, float]] = list(evals or [])
        self.schedule = F.Schedule.of(cfg)
        self.forecast: F.Forecast | None = None
        self.reference = reference

    def _warn(self, code: str, iter_num: int, text: str, hint: str) -> None:
        w = E.RunWarning(self.run_id, code=code, text=text, hint=hint, iter=iter_num)
        self.warnings.append(w)
        self.emit(w)

    # -- steps -----------------------------------------------------------------------------
    def on_step(self, ev: E.StepMetrics) -> None:
        if ev.compiling:
            return
        self._spike(ev)
        self._throughput(ev)
        self._vram(ev)

    def _spike(self, ev: E.StepMetrics) -> None:
        window = list(self._losses)
        self._losses.append(ev.loss)
        self._spike_wait = max(0, self._spike_wait - 1)
        if len(window) < SPIKE_MIN_POINTS or self._spike_wait:
            return
        med = statistics.median(window)
        spread = 1.4826 * statistics.median(abs(v - med) for v in window)
        if ev.loss > med + max(SPIKE_K * spread, SPIKE_MIN_NATS):
            self._spike_wait = SPIKE_COOLDOWN
            self._warn("spike", ev.iter, f"loss spiked to {ev.loss:.3f} at iter {ev.iter:,} (recent median "
                       f"{med:.3f} ± {spread:.3f})",
                       f"if it does not come back down, lower learning_rate (now {self.cfg.learning_rate:g}) "
                       "or set grad_clip = 1.0 and resume from the last checkpoint")

    def _throughput(self, ev: E.StepMetrics) -> None:
        tps = ev.tokens_per_s
        if tps <= 0:
            return
        med = statistics.median(self._tps) if len(self._tps) >= TPS_MIN_WINDOWS else None
        self._tps.append(tps)
        if med is None:
            return
        if tps < (1 - TPS_DROP) * med:
            self._slow += 1
            if self._slow >= TPS_SUSTAIN and not self._tps_warned:
                self._tps_warned = True
                self._warn("throughput", ev.iter, f"throughput fell to {fmt.si(tps, whole_below_k=True)} tok/s, {100 * (1 - tps / med):.0f} % "
                           f"below this run's median {fmt.si(med, whole_below_k=True)} tok/s",
                           "another process on the GPU or CPU, or thermal throttling: check nvidia-smi "
                           "(clocks, temperature, processes) and top")
        else:
            self._slow = 0
            if tps >= (1 - TPS_REARM) * med:
                self._tps_warned = False

    def _vram(self, ev: E.StepMetrics) -> None:
        used = ev.vram_reserved if ev.vram_reserved is not None else ev.vram_used
        if used is None:
            return
        if len(self._vram_base) < VRAM_BASE_WINDOWS:
            self._vram_base.append(used)
            return
        base = min(self._vram_base)
        floor = max(base * (1 + VRAM_GROWTH), base + VRAM_MIN_BYTES, self._vram_warned_at * (1 + VRAM_GROWTH))
        if used > floor:
            self._vram_warned_at = used
            total = f" of {ev.vram_total / 2**30:.1f} GiB" if ev.vram_total else ""
            self._warn("vram", ev.iter, f"GPU memory crept up from {base / 2**30:.2f} to {used / 2**30:.2f} GiB{total} "
                       f"since the start", "tensors kept across steps or allocator fragmentation: if it nears the "
                       "card's memory the run fails out of memory; set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "
                       "and resume, or lower batch_size")

    # -- evaluations ---------------------------------------------------------------------------
    def on_eval(self, ev: E.EvalResult) -> str:
        """Check overfitting, forecast the final loss; returns the reason to stop early ('' to go on)."""
        self._overfit(ev)
        self._forecast(ev)
        return self._plateau(ev) or self._beaten()

    def _plateau(self, ev: E.EvalResult) -> str:
        delta = float(getattr(self.cfg, "early_stop_min_delta", 0.0))
        if ev.val_loss < self.best - delta or self.best == float("inf"):
            self.best, self.best_iter, self.bad_evals = ev.val_loss, ev.iter, 0
            return ""
        self.bad_evals += 1
        patience = int(getattr(self.cfg, "early_stop_patience", 0))
        if patience and self.bad_evals >= patience:
            by = f" by {delta:g}" if delta else ""
            return (f"early stop: val loss has not improved{by} for {self.bad_evals} evaluations "
                    f"(best {self.best:.4f} at iter {self.best_iter:,}, now {ev.val_loss:.4f})")
        return ""

    def _forecast(self, ev: E.EvalResult) -> None:
        """The final val loss forecast from the evals so far (an event once it can be made)."""
        self.evals = [e for e in self.evals if e[0] < ev.iter] + [(ev.iter, ev.val_loss)]
        self.forecast = F.forecast(self.evals, self.schedule)
        fc = self.forecast
        if fc is not None:
            self.emit(E.Forecast(self.run_id, iter=ev.iter, loss=fc.loss, band=fc.band, at_iter=fc.at_iter,
                                 n_evals=fc.n_evals))

    def _beaten(self) -> str:
        """early_stop_reference: stop once even the band's low end cannot beat the
        reference's best val loss by early_stop_min_delta."""
        fc, ref = self.forecast, self.reference
        if fc is None or ref is None or fc.n_evals < FORECAST_STOP_EVALS:
            return ""
        rid, ref_loss = ref
        delta = float(getattr(self.cfg, "early_stop_min_delta", 0.0))
        if fc.loss - fc.band > ref_loss - delta:
            by = f" by {delta:g}" if delta else ""
            return (f"early stop: forecast {fc.loss:.3f} ± {fc.band:.3f} at iter {fc.at_iter:,} ({fc.n_evals} evals) "
                    f"cannot beat run {rid}'s best val {ref_loss:.4f}{by}")
        return ""

    def _overfit(self, ev: E.EvalResult) -> None:
        gap = ev.val_loss - ev.train_loss
        self._gaps.append(gap)
        g = self._gaps[-(OVERFIT_EVALS + 1):]
        widening = len(g) == OVERFIT_EVALS + 1 and all(b > a for a, b in zip(g, g[1:], strict=False))
        if widening and gap > OVERFIT_MIN_GAP and not self._overfit_warned:
            self._overfit_warned = True
            best = f"; val loss was best at iter {self.best_iter:,} ({self.best:.4f})" if self.best < float("inf") else ""
            self._warn("overfit", ev.iter, f"overfitting: val − train gap widened {g[0]:.3f} → {gap:.3f} over "
                       f"{OVERFIT_EVALS} evaluations", f"raise dropout (now {self.cfg.dropout:g}) to 0.1–0.2 or "
                       f"train on more data{best}")
        elif not widening:
            self._overfit_warned = False

    # -- checkpoints ---------------------------------------------------------------------------
    def on_checkpoint(self, path: str, iter_num: int) -> None:
        """Warn when the disk cannot take two more checkpoints of this size."""
        try:
            size = os.path.getsize(path)
        except OSError:
            return
        free = self.free(os.path.dirname(path) or ".")
        if free is not None and free < 2 * size:
            self._warn("disk", iter_num, f"only {free / 2**30:.1f} GiB free on the run's disk; a checkpoint is "
                       f"{size / 2**30:.1f} GiB", "free space (delete old runs: Runs screen, d) before the next "
                       "checkpoint, which may otherwise fail")


def resolve_reference(cfg: Any, run_id: str) -> tuple[str, float] | None:
    """early_stop_reference as (run id, its best val loss); None when off. A RunError with
    what to do when the run is unknown, is this run, or has no evaluation."""
    ref = str(getattr(cfg, "early_stop_reference", "") or "").strip()
    if not ref:
        return None
    from gpttui.errors import RunError
    from gpttui.runs.store import get_run

    try:
        summary = get_run(ref).summary()
    except RunError as e:
        raise RunError(f"early_stop_reference: {e.args[0]}", e.hint) from None
    if summary.id == run_id:
        raise RunError(f"early_stop_reference = {ref!r} is this run", "name another, finished run (`gpttui runs`)")
    if summary.best_val_loss is None:
        raise RunError(f"early_stop_reference: run {summary.id} has no evaluation yet",
                       "pick a run that has evaluated (`gpttui runs` shows best val)")
    return summary.id, summary.best_val_loss


def past_evals(run: Any, upto: int) -> list[tuple[int, float]]:
    """A resumed run's (iter, val loss) evals up to its checkpoint, for the forecast."""
    try:
        events = run.events()
    except (OSError, ValueError):
        return []
    return [(e.iter, e.val_loss) for e in events if isinstance(e, E.EvalResult) and e.iter <= upto]
