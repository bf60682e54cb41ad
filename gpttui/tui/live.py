"""LiveRun: what the UI knows about one run, folded from its events.

Fed by the in-process trainer (posted messages) or by following another process's
`metrics.jsonl`; the Training and run-detail screens render from it. Plain Python, no
textual, so it is tested and reused without a screen.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from gpttui import events as E

MAX_POINTS = 8192  # loss points kept for the chart; beyond this the older ones are thinned
STARTING = "(starting)"  # the run id before the trainer names the run (it prepares data first)
KEEP_RECENT = 1024  # the newest points always at full resolution (sparkline, recent chart)


@dataclass
class LiveRun:
    """Accumulated state of one run. Mutated on the UI thread only."""

    run_id: str
    state: str = E.PREPARING
    message: str = ""
    step: E.StepMetrics | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)  # (iter, train loss)
    evals: list[E.EvalResult] = field(default_factory=list)
    checkpoints: list[E.CheckpointSaved] = field(default_factory=list)
    log: deque[str] = field(default_factory=lambda: deque(maxlen=500))
    prepare: E.PrepareProgress | None = None
    finished: E.Finished | None = None
    failed: E.Failed | None = None
    events_seen: int = 0
    log_total: int = 0  # lines ever logged (the deque keeps the newest 500)
    pending: str = ""  # a control key's request the trainer has not answered yet ("pausing…")
    progress: E.Progress | None = None  # inside the step in progress (once a second)
    samples: list[E.Sample] = field(default_factory=list)
    warnings: list[E.RunWarning] = field(default_factory=list)
    state_since: float | None = None  # wall time the current state began (an eval's clock)
    tasks: list[E.TaskEval] = field(default_factory=list)  # HellaSwag at evaluations (fixed subset)
    forecast: E.Forecast | None = None  # the newest forecast of the final val loss (computed)
    resumed: bool = False  # resumed from a checkpoint (its CheckpointSaved events are not replayed)
    pauses: list[tuple[float, float | None]] = field(default_factory=list)  # (start, end) wall times, newest last

    def note(self, text: str) -> None:
        """Append a line to the run's log pane."""
        self.log.append(text)
        self.log_total += 1

    def new_log_lines(self, seen: int) -> list[str]:
        """Lines logged after the first `seen` ones (as many as are still kept)."""
        n = min(self.log_total - seen, len(self.log))
        return list(self.log)[len(self.log) - n:] if n > 0 else []

    def apply(self, ev: E.Event) -> None:
        """Fold one event into the state."""
        self.events_seen += 1
        if isinstance(ev, E.StepMetrics):
            self.step = ev
            if not self.losses or ev.iter > self.losses[-1][0]:
                self.losses.append((ev.iter, ev.loss))
                if len(self.losses) > MAX_POINTS:
                    self._thin()
            if self.state in (E.PREPARING, E.COMPILING) and not ev.compiling:
                self.state = E.TRAINING
        elif isinstance(ev, E.Progress):
            self.progress = ev
        elif isinstance(ev, E.Sample):
            self.samples.append(ev)
        elif isinstance(ev, E.Forecast):
            self.forecast = ev
        elif isinstance(ev, E.RunWarning):
            self.warnings.append(ev)
            self.note(f"WARN {ev.code}: {ev.text} → {ev.hint}")
        elif isinstance(ev, E.StatusChanged):
            if ev.state != self.state:
                self.state_since = ev.time
                self._note_pause(ev)
            self.state, self.message, self.pending = ev.state, ev.message, ""
            if ev.message:
                self.note(f"[{ev.state}] {ev.message}")
        elif isinstance(ev, E.EvalResult):
            self.evals.append(ev)
            self.note(f"eval @ {ev.iter}: train {ev.train_loss:.4f}  val {ev.val_loss:.4f}  best {ev.best_val_loss:.4f}")
        elif isinstance(ev, E.TaskEval):
            self.tasks.append(ev)
            self.note(f"{ev.task} @ {ev.iter}: acc_norm {ev.acc_norm:.4f} ± {ev.stderr:.4f} (n {ev.n:,})")
        elif isinstance(ev, E.CheckpointSaved):
            self.checkpoints.append(ev)
            self.note(f"checkpoint @ {ev.iter} ({ev.reason})")
        elif isinstance(ev, E.LogMessage):
            self.note(ev.text if ev.level == "info" else f"{ev.level}: {ev.text}")
        elif isinstance(ev, E.Finished):
            self.finished, self.state, self.pending = ev, ev.state, ""
            if ev.reason:
                self.message = ev.reason
            self.note(f"{ev.state} at iter {ev.iter}" + (f": {ev.reason}" if ev.reason else ""))
        elif isinstance(ev, E.Failed):
            self.failed, self.state, self.pending = ev, E.FAILED, ""
            self.message = f"{ev.reason} — {ev.hint}" if ev.hint else ev.reason
            self.note(f"failed: {self.message}")
        elif isinstance(ev, E.PrepareProgress):
            self.prepare = ev
            if ev.stage == "done":
                self.note(f"dataset ready: {ev.tokens:,} tokens")

    def _note_pause(self, ev: E.StatusChanged) -> None:
        """Keep the wall-clock spans the run was paused: the trainer's clocks (elapsed, ETA)
        stop while paused, so the screen's extrapolation between events must too."""
        if ev.state == E.PAUSED:
            self.pauses = [*self.pauses[-15:], (ev.time, None)]
        elif self.pauses and self.pauses[-1][1] is None:
            self.pauses[-1] = (self.pauses[-1][0], ev.time)

    def run_seconds(self, since: float, now: float) -> float:
        """Wall seconds from `since` to `now` the run was not paused (its clock ran)."""
        total = max(0.0, now - since)
        for start, end in self.pauses:
            a, b = max(start, since), min(now if end is None else end, now)
            total -= max(0.0, b - a)
        return max(0.0, total)

    def _thin(self) -> None:
        """Halve the resolution of all but the newest points: a 20-hour run logging every
        step keeps a few thousand points (a chart is ~100 columns wide), not millions, and
        each frame's series stays cheap to build."""
        old, new = self.losses[:-KEEP_RECENT], self.losses[-KEEP_RECENT:]
        self.losses = old[::2] + new

    @property
    def active(self) -> bool:
        return self.state in E.ACTIVE_STATES

    @property
    def best_val(self) -> float | None:
        return min((e.val_loss for e in self.evals), default=None)

    def recent_losses(self, n: int = 200) -> tuple[float, ...]:
        """The newest logged losses for a sparkline (this object keeps the history; step
        events carry none)."""
        return tuple(loss for _, loss in self.losses[-n:])

    @property
    def running(self) -> bool:
        """The clock runs (elapsed and ETA tick): not paused, not ended."""
        return self.state in (E.TRAINING, E.EVALUATING, E.SAVING, E.COMPILING, E.STOPPING)

    def position(self) -> tuple[int, int, int, int] | None:
        """(optimizer steps done, micro-steps of the next one done, micro-steps per step,
        tokens seen) from the newest StepMetrics or Progress event."""
        p, s = self.progress, self.step
        if p is not None and (s is None or p.iter >= s.iter):
            return p.iter, p.micro, p.accum, p.tokens_seen
        if s is not None:
            return s.iter, 0, 0, s.tokens_seen
        return None

    def eval_position(self) -> tuple[int, int] | None:
        """(batches done, batches in all) of the evaluation in progress, if one is."""
        p = self.progress
        if self.state != E.EVALUATING or p is None or not p.eval_total:
            return None
        if self.step is not None and p.iter < self.step.iter:
            return None  # an earlier evaluation's
        return p.eval_done, p.eval_total

    @property
    def max_iters(self) -> int | None:
        src = self.progress or self.step
        return src.max_iters if src is not None else None

    def _since(self, t: float, now: float) -> float:
        """Training seconds since the event at wall time `t`: none once the run ended,
        and never the time it spent paused (the trainer's own clocks stop then)."""
        if not (self.running or self.state == E.PAUSED):
            return 0.0
        return self.run_seconds(t, now)

    def elapsed_at(self, now: float) -> float | None:
        """Training time at wall time `now`: the newest event's, plus the time since while
        the run's clock runs (so it ticks every second between events)."""
        src = max((e for e in (self.step, self.progress) if e is not None), key=lambda e: e.time, default=None)
        if src is None:
            return None
        return src.elapsed_s + self._since(src.time, now)

    def eta_at(self, now: float) -> float | None:
        """The last measured ETA, counted down by the training time since it was measured."""
        s = self.step
        if s is None or s.eta_s is None:
            return None
        return max(0.0, s.eta_s - self._since(s.time, now))
