"""The gpttui Textual app: screens, the one in-process training session, quit handling.

`make_app(services)` builds the app (tests pass fake services); `run_app(args)` is the CLI
entry. Training runs in the trainer's own thread; its listener only queues the frozen
events in an inbox, which the app drains into `self.live` at its redraw rate (at once for
state changes); the training screen redraws from `self.live`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from typing import Any

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.events import Resize
from textual.screen import Screen
from textual.worker import Worker

from gpttui import events as E
from gpttui.config import TrainConfig
from gpttui.errors import GpttuiError
from gpttui.plan.target import peak_key
from gpttui.tui import failures
from gpttui.tui.live import LiveRun
from gpttui.tui.messages import EventInbox, InboxReady, Notice, SessionFailed
from gpttui.tui.peaks import PeakCache
from gpttui.tui.quitting import ask_quit, hand_off
from gpttui.tui.screens.dialogs import TooSmallNote
from gpttui.tui.services import Services, TrainSession

MIN_SIZE = (80, 24)


class GptTuiApp(App):
    """Keyboard-driven front end for presets, training, sampling and runs."""

    CSS_PATH = "app.tcss"
    TITLE = "gpttui"
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "request_quit", "Quit"),
        Binding("ctrl+q", "request_quit", "Quit", show=False, priority=True),
    ]

    DRAIN_S = 0.5  # how often routine events (steps, data progress) reach the screen

    def __init__(self, services: Services | None = None) -> None:
        super().__init__()
        self.services = services or Services()
        self.device: Any = None
        self._device_lock = threading.Lock()
        self._device_done = False
        self.session: TrainSession | None = None
        self.live: LiveRun | None = None
        self.training_screen: Screen | None = None
        self.exit_choice: str | None = None  # "stop" | "background" when quitting mid-run
        self.peaks = PeakCache(self.services.measure_peak)
        self.inbox = EventInbox()
        self.bell_on_warning = False  # b on the Training screen: ring the terminal bell at a warning

    # -- start-up --------------------------------------------------------------------------
    def get_driver_class(self) -> Any:
        """Textual's driver, or on Linux/macOS one that survives losing the terminal."""
        cls = super().get_driver_class()
        if sys.platform != "win32":
            from textual.drivers.linux_driver import LinuxDriver

            if cls is LinuxDriver:
                from gpttui.tui.terminal import SafeLinuxDriver

                return SafeLinuxDriver
        return cls

    def on_mount(self) -> None:
        from gpttui.tui.screens.home import HomeScreen

        self.push_screen(HomeScreen())
        self.set_interval(self.DRAIN_S, self.drain_events)
        self._warm_up()
        self.call_after_refresh(self._check_size)

    @work(thread=True, group="warm-up", exit_on_error=False)
    def _warm_up(self) -> None:
        """Device detection (NVML) and the chart library, off the event loop."""
        self.get_device()
        import plotext  # noqa: F401  (0.3 s import, done here rather than on first chart)

    def get_device(self) -> Any:
        """The detected device, detected once; call from worker threads."""
        with self._device_lock:
            if not self._device_done:
                try:
                    self.device = self.services.detect_device()
                finally:
                    self._device_done = True
            return self.device

    def estimate(self, cfg: TrainConfig, measure: bool = False, runs: list[Any] | None = None) -> Any:
        """`cfg`'s estimate on this machine; worker threads only. With `measure`, first
        measure the matmul peak it needs if unknown (CPU etc.: torch import + seconds, once).
        `runs`: the listed runs, when the caller has them (for measured throughput)."""
        device = self.get_device()
        target = peak_key(cfg, device)
        if measure and target is not None:
            self.peaks.measure(target)
        return self.services.estimate(cfg, device, self.peaks, runs)

    # -- terminal size ---------------------------------------------------------------------
    def on_resize(self, event: Resize) -> None:
        self._check_size(event.size)

    def _check_size(self, size: Any = None) -> None:
        """Cover the current screen with a notice while the terminal is below MIN_SIZE; a
        dialog or Help opened meanwhile (q, ?) shows above it rather than under it."""
        from textual.screen import ModalScreen

        stack = self.screen_stack
        target = next((s for s in reversed(stack) if not isinstance(s, ModalScreen)), self.screen)
        TooSmallNote.cover(target, stack, tuple(size or self.size), MIN_SIZE)

    def push_screen(self, screen: Any, *args: Any, **kwargs: Any) -> Any:
        """Push, then re-check the size so the too-small notice covers the new screen."""
        result = super().push_screen(screen, *args, **kwargs)
        self.call_after_refresh(self._check_size)
        return result

    def pop_screen(self) -> Any:
        result = super().pop_screen()
        self.call_after_refresh(self._check_size)
        return result

    # -- navigation ------------------------------------------------------------------------
    def open_editor(self, preset: str, cfg: TrainConfig, new: bool = False, user: bool = False,
                    own: frozenset[str] | None = None) -> None:
        """`own`: the keys the preset sets (the editor marks the others inherited)."""
        from gpttui.tui.screens.editor import EditorScreen

        self.push_screen(EditorScreen(preset, cfg, new=new, user=user, own=own))

    def open_training(self) -> None:
        if self.live is None:
            self.notify("No run is training in this window. Runs (u) shows runs of other processes.")
            return
        if self.training_screen is None or self.screen is not self.training_screen:
            from gpttui.tui.screens.training import TrainingScreen

            self.training_screen = TrainingScreen()
            self.push_screen(self.training_screen)

    def open_pilot(self, preset: str | None = None, values: dict[str, Any] | None = None) -> None:
        """The Pilot screen for `preset` (the editor passes its unsaved values); from the
        palette: the preset selected on Home, or the one in the editor."""
        from gpttui.tui.screens.pilot import PilotScreen

        if preset is None:
            preset, values = getattr(self.screen, "pilot_target", lambda: (None, None))()
        if preset is None:
            self.notify("Select a preset on Home (or open one in the editor) first", severity="warning")
            return
        self.push_screen(PilotScreen(preset, values))

    def open_runs(self) -> None:
        from gpttui.tui.screens.runs import RunsScreen

        self.push_screen(RunsScreen())

    def open_datasets(self) -> None:
        from gpttui.tui.screens.datasets import DatasetsScreen

        self.push_screen(DatasetsScreen())

    def open_run(self, run_id: str) -> None:
        from gpttui.tui.screens.runs import open_run_view

        open_run_view(self, run_id)

    def open_sampling(self, run_id: str | None) -> None:
        from gpttui.tui.screens.sampling import SamplingScreen

        self.push_screen(SamplingScreen(run_id))

    def action_help(self) -> None:
        from gpttui.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            if not self.is_screen_installed("help"):  # composed once: later presses only show it
                self.install_screen(HelpScreen(), "help")
            self.push_screen("help")

    # -- the training session --------------------------------------------------------------
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
        self.live = LiveRun(run_id="(starting)")
        self.session = self.services.new_session(cfg, preset, self._listener)
        self._begin()

    def resume_run(self, run_id: str) -> None:
        """Resume a stopped/interrupted run in this process."""
        if self._refuse_second():
            return
        self.drain_events()
        self.live = LiveRun(run_id=run_id)
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

    @on(Worker.StateChanged)
    def _worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one handler of failed workers, the app's and (forwarded) the screens'."""
        if failures.failed(event):
            failures.report(self, event.worker)

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

    # -- quitting --------------------------------------------------------------------------
    def action_request_quit(self) -> None:
        ask_quit(self)

    def action_help_quit(self) -> None:
        """ctrl+c (outside a text field, where it copies): the quit path, as q is."""
        self.action_request_quit()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's (less its "Quit": gpttui's asks while a run trains), what this screen's
        keys do by name, then gpttui's screens and run controls (a title once)."""
        from gpttui.tui.screens.help import screen_commands

        shown: set[str] = set()
        for command in (*super().get_system_commands(screen), *screen_commands(screen), *self._commands()):
            if command.title not in shown and command.title != "Quit":
                shown.add(command.title)
                yield command

    def _commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Home", "Presets and recent runs", self._go_home)
        yield SystemCommand("Runs", "Every run: open, compare, resume, delete", self.open_runs)
        yield SystemCommand("Compare runs", "on Runs: mark with Space, then c", self._runs_for("compare"))
        yield SystemCommand("Resume a run", "on Runs: pick a stopped run, then r", self._runs_for("resume"))
        yield SystemCommand("Datasets", "Prepared datasets: prepare a new one, delete", self.open_datasets)
        yield SystemCommand("Training", "The run training in this window", self.open_training)
        yield SystemCommand("Sample", "Generate text from a run's checkpoint", lambda: self.open_sampling(None))
        yield SystemCommand("Pilot", "Short real trials of the selected preset's recipes and lrs; saves the best",
                            self.open_pilot)
        yield SystemCommand("Help", "Every key of every screen", self.action_help)
        yield SystemCommand("Re-measure the CPU peak", "the matmul rate MFU and CPU estimates use (kept per machine)",
                            self._remeasure_peak)
        if self.session_active():
            yield SystemCommand("Pause / resume training", "p on the training screen", self.toggle_pause)
            yield SystemCommand("Save checkpoint now", "s on the training screen", lambda: self.session.save_now())
            yield SystemCommand("Stop training", "checkpoint, then stop (resumable)", self.stop_session)
        yield SystemCommand("Quit gpttui", "asks first while a run trains", self.action_request_quit)

    @work(thread=True, exclusive=True, group="remeasure-peak", exit_on_error=False)
    def _remeasure_peak(self) -> None:
        """Measure the CPU matmul peak again (seconds; best on an idle machine) and keep it."""
        from gpttui.plan.hardware import remeasure_cpu_peak

        self.post_message(Notice("Measuring the CPU matmul peak (a few seconds)…", "information"))
        try:
            value = remeasure_cpu_peak()
        except (ImportError, OSError) as e:  # no torch, or a broken install: say so (a bug: the handler)
            self.post_message(Notice(f"Could not measure the CPU peak: {type(e).__name__}: {e}", "error"))
            return
        self.peaks.forget()
        self.post_message(Notice(f"CPU matmul peak: {value:.3g} TFLOPS, kept for this machine", "information"))

    def _runs_for(self, what: str) -> Any:
        def go() -> None:
            from gpttui.tui.screens.runs import RunsScreen

            if not isinstance(self.screen, RunsScreen):
                self.open_runs()
            hint = "mark runs with Space, then c" if what == "compare" else "pick a stopped run, then r"
            self.notify(f"Runs: {hint}")
        return go

    def _go_home(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()


def make_app(services: Services | None = None, **overrides: Any) -> GptTuiApp:
    """The app with real services, any of which `overrides` replaces (tests use fakes)."""
    services = services or Services()
    for key, value in overrides.items():
        if not hasattr(services, key):
            raise TypeError(f"unknown service {key!r}")
        setattr(services, key, value)
    return GptTuiApp(services)


def run_app(args: Any = None) -> int:
    """`gpttui` with no command: run the TUI; afterwards finish or hand off a live run."""
    import os

    if os.environ.get("GPTTUI_SERVED"):  # a browser tab of `gpttui serve`: runs outlive the tab
        from gpttui.tui.detached import DetachedSession

        app = make_app(new_session=lambda cfg, preset, listener: DetachedSession(cfg, preset, listener),
                       resume_session=lambda run_id, listener: DetachedSession(None, "", listener, resume=run_id))
    else:
        app = make_app()
    try:
        app.run()
    finally:
        hand_off(app)
    return int(app.return_code or 0)
