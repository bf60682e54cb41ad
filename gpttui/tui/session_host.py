"""The app's one in-process training session: start, resume, pause, stop, and the
trainer's events folded into `app.live` (a mixin of GptTuiApp, which owns the state).

The trainer's listener only queues the frozen events in the app's inbox; `drain_events`
folds them into `self.live` at the redraw rate (at once for state changes) and marks the
Training screen dirty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work

from gpttui import events as E
from gpttui.config import TrainConfig
from gpttui.errors import GpttuiError
from gpttui.tui.live import STARTING, LiveRun
from gpttui.tui.messages import InboxReady, Notice, SessionFailed
from gpttui.tui.services import TrainSession

if TYPE_CHECKING:
    from gpttui.tui.app import GptTuiApp

    _Base = GptTuiApp
else:
    _Base = object


class SessionHost(_Base):
    """start_training / resume_run / toggle_pause / stop_session and the event drain."""

    def session_active(self) -> bool:
        return self.session is not None and self.live is not None and (
            self.live.active or self.session.is_alive())

    def start_training(self, cfg: TrainConfig, preset: str, leave: Any = None) -> None:
        """Start `cfg` in this process and show the training screen. `leave`: the screen
        that started it (the editor), taken off the stack so that Esc from Training goes
        back to Home, not to a form whose keys differ (a typed `u` landed in a field)."""
        if self._refuse_second():
            return
        if leave is not None and self.screen is leave:
            self.pop_screen()
        self.drain_events()  # a previous run's last events belong to its LiveRun
        self.live = LiveRun(run_id=STARTING)
        self.session = self.services.new_session(cfg, preset, self._listener)
        self._begin()

    def resume_run(self, run_id: str) -> None:
        """Resume a stopped/interrupted run in this process."""
        if self._refuse_second():
            return
        self.drain_events()
        self.live = LiveRun(run_id=run_id, resumed=True)
        self.session = self.services.resume_session(run_id, self._listener)
        self._begin()

    def _refuse_second(self) -> bool:
        if self.session_active():
            self.notify("A run is already training here; stop it first (x on its screen).", severity="warning")
            self.open_training()
            return True
        return False

    def _begin(self) -> None:
        self.training_screen = None
        self.open_training()
        self._start_session(self.session)

    @work(thread=True, group="session-start", exit_on_error=False)
    def _start_session(self, session: TrainSession) -> None:
        """Data preparation, run creation and torch import happen here, not on the loop.
        An unusable data dir, or a disk that refuses a write, is the one line the CLI gives."""
        from gpttui.faults import check_data_dir, is_user_os_error, os_error

        try:
            check_data_dir(write=True)
            session.start()
        except GpttuiError as e:
            self.post_message(SessionFailed(str(e)))
        except Exception as e:
            if isinstance(e, OSError) and is_user_os_error(e):
                self.post_message(SessionFailed(str(os_error(e, "the run's files"))))
                return
            # a bug: the screen must not hang in 'preparing'; the
            self.post_message(SessionFailed(f"{type(e).__name__}: {e}", quiet=True))
            raise  # failed-worker handler says so, with the traceback in its log

    def _listener(self, event: E.Event) -> None:
        """Trainer thread → UI: queue only; never block, never raise into the trainer.
        Once the app has stopped (quit to background, lost terminal) nothing drains the
        inbox, so nothing is queued: a run of days would otherwise fill memory."""
        if not self.is_running:
            return
        try:
            if self.inbox.put(event):
                self.post_message(InboxReady())
        except Exception:  # the app has gone (terminal lost): training carries on
            pass

    def on_inbox_ready(self, _msg: InboxReady) -> None:
        self.drain_events()

    def drain_events(self) -> None:
        """Fold the queued events into `self.live` and tell the training screen."""
        events = self.inbox.take()
        live = self.live
        if not events or live is None:
            return
        urgent = False
        for ev in events:
            if not isinstance(ev, E.PrepareProgress) and live.run_id != ev.run_id:
                live.run_id = ev.run_id
            live.apply(ev)
            urgent = urgent or not isinstance(ev, (E.StepMetrics, E.PrepareProgress, E.Progress))
            if isinstance(ev, (E.Finished, E.Failed)):
                self.notify(f"Run {live.run_id}: {live.state}" + (f" — {live.message}" if isinstance(ev, E.Failed) else ""),
                            severity="error" if isinstance(ev, E.Failed) else "information")
        if self.training_screen is not None and self.training_screen.is_attached:
            self.training_screen.mark_dirty(urgent)  # drawn at the screen's next tick, or now if urgent

    def on_session_failed(self, msg: SessionFailed) -> None:
        if self.live is not None:
            self.live.apply(E.Failed(self.live.run_id, reason=msg.text))
            if self.training_screen is not None and self.training_screen.is_attached:
                self.training_screen.mark_dirty(True)
        if not msg.quiet:
            self.notify(msg.text, severity="error", timeout=10)

    def on_notice(self, msg: Notice) -> None:
        self.notify(msg.text, severity=msg.severity)  # type: ignore[arg-type]

    def toggle_pause(self) -> None:
        if self.session is None or self.live is None:
            return
        if self.live.state == E.PAUSED:
            self.session.resume()
            self._pending("resuming…")
        else:
            self.session.pause()
            self._pending("pausing at the end of this step…")

    def stop_session(self) -> None:
        if self.session is not None:
            self.session.stop()
            self._pending("stopping: checkpoint first…")
            self.notify("Stopping: a checkpoint is saved first.")

    def _pending(self, text: str) -> None:
        """Show a control request at once; the trainer's next status event replaces it
        (a step can take seconds on a big model, the key must be answered now)."""
        if self.live is not None and self.live.active:
            self.live.pending = text
            if self.training_screen is not None and self.training_screen.is_attached:
                self.training_screen.mark_dirty(True)
