"""The listener that writes a training run's events into its folder: metrics.jsonl lines
(compact step records, `gpttui.runs.records`) and a current status.json (`Run.write_status`).
The Trainer attaches one as its first listener whenever it trains into a run."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections import deque
from typing import Any

from gpttui import events as E
from gpttui.faults import is_user_os_error, os_error
from gpttui.runs.records import StepEncoder
from gpttui.runs.records import dumps as _dumps
from gpttui.runs.store import Run, host

_STATUS_MIN_INTERVAL_S = 2.0  # status.json rewrites from step metrics at most this often


class MetricsWriter:
    """Listener that appends every event to metrics.jsonl and keeps status.json current.

    Lines are flushed (not fsynced) as written so a follower sees them at once; status.json
    is rewritten atomically on every state change and at most every 2 s from step metrics,
    which keeps its cost far below a training step."""

    def __init__(self, run: Run, clock: Any = time.monotonic):
        self.run = run
        self._clock = clock
        self._file = open(run.metrics_path, "a", encoding="utf-8")  # noqa: SIM115 - closed on end events
        self._steps = StepEncoder()
        self._end_torn_line()
        self._last_status = float("-inf")
        self._pending: dict[str, Any] = {}
        self._recent_tps: deque[float] = deque(maxlen=50)  # status tokens_per_s: their median

    def __call__(self, ev: E.Event) -> None:
        if isinstance(ev, E.Progress):  # transient (once a second): the next StepMetrics supersedes it
            return
        if self._file.closed:
            self._file = open(self.run.metrics_path, "a", encoding="utf-8")  # noqa: SIM115
            self._steps = StepEncoder()
            self._end_torn_line()
        d = ev.to_json()
        try:
            self._file.write(_dumps(self._steps.encode(d) if isinstance(ev, E.StepMetrics) else d) + "\n")
            self._file.flush()
        except OSError as e:  # disk full: reported (once, by the trainer); the next event retries
            with contextlib.suppress(OSError):
                self._file.close()
            if is_user_os_error(e):
                raise os_error(e, f"run {self.run.id} metrics.jsonl (training goes on)", self.run.metrics_path) from None
            raise
        self._update_status(ev)
        if isinstance(ev, (E.Finished, E.Failed)):
            self.close()

    def _end_torn_line(self) -> None:
        """A line torn by a kill must not swallow this writer's first (full) record."""
        try:
            with open(self.run.metrics_path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
        except OSError:  # empty or new file
            return
        if torn:
            self._file.write("\n")
            self._file.flush()

    def _update_status(self, ev: E.Event) -> None:
        fields: dict[str, Any] = {}
        force = True
        if isinstance(ev, E.StatusChanged):
            fields = {"state": ev.state, "message": ev.message}
        elif isinstance(ev, E.StepMetrics):
            if not ev.compiling and ev.tokens_per_s > 0:
                self._recent_tps.append(ev.tokens_per_s)
            tps = statistics.median(self._recent_tps) if self._recent_tps else ev.tokens_per_s
            fields = {"iter": ev.iter, "max_iters": ev.max_iters, "tokens_seen": ev.tokens_seen,
                      "tokens_per_s": tps, "mfu": ev.mfu, "loss": ev.loss,
                      "elapsed_s": ev.elapsed_s, "eta_s": ev.eta_s}
            force = False
        elif isinstance(ev, E.EvalResult):
            fields = {"iter": ev.iter, "best_val_loss": ev.best_val_loss, "val_loss": ev.val_loss,
                      "tokens_seen": ev.tokens_seen}
        elif isinstance(ev, E.TaskEval):
            fields = {f"{ev.task}_{k}": getattr(ev, k) for k in ("acc_norm", "stderr", "n", "iter")}
        elif isinstance(ev, E.Forecast):
            fields = {"forecast": ev.loss, "forecast_band": ev.band, "forecast_iter": ev.iter,
                      "forecast_evals": ev.n_evals}
        elif isinstance(ev, E.CheckpointSaved):
            fields = {"checkpoint_iter": ev.iter}
        elif isinstance(ev, E.Finished):
            fields = {"state": ev.state, "iter": ev.iter, "best_val_loss": ev.best_val_loss,
                      "tokens_seen": ev.tokens_seen, "elapsed_s": ev.elapsed_s, "eta_s": None,
                      "stop_reason": ev.reason}
        elif isinstance(ev, E.Failed):
            fields = {"state": E.FAILED, "reason": ev.reason, "hint": ev.hint, "eta_s": None}
            if ev.iter > 0:  # where it stopped, also when it failed before its first log (a nan at once)
                fields["iter"] = ev.iter
        else:
            return
        self._pending.update(fields)
        now = self._clock()
        if force or now - self._last_status >= _STATUS_MIN_INTERVAL_S:
            self.run.write_status(pid=os.getpid(), host=host(), **self._pending)
            self._pending = {}
            self._last_status = now

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
