"""The gpttui Textual app: start-up, terminal size, navigation between screens, quitting.

`make_app(services)` builds the app (tests pass fake services); `run_app(args)` is the CLI
entry. The one in-process training session is `session_host.SessionHost` (training runs in
the trainer's own thread; its events reach `self.live` through an inbox); the palette's
commands are `commands.PaletteCommands`.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.events import Resize
from textual.screen import Screen
from textual.worker import Worker

from gpttui.config import TrainConfig
from gpttui.plan.target import peak_key
from gpttui.tui import failures
from gpttui.tui.commands import PaletteCommands
from gpttui.tui.live import LiveRun
from gpttui.tui.messages import EventInbox
from gpttui.tui.peaks import PeakCache
from gpttui.tui.quitting import ask_quit, hand_off
from gpttui.tui.screens.dialogs import TooSmallNote
from gpttui.tui.services import Services, TrainSession
from gpttui.tui.session_host import SessionHost

MIN_SIZE = (80, 24)


class GptTuiApp(SessionHost, PaletteCommands, App):
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

    @on(Worker.StateChanged)
    def _worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one handler of failed workers, the app's and (forwarded) the screens'."""
        if failures.failed(event):
            failures.report(self, event.worker)

    # -- quitting --------------------------------------------------------------------------
    def action_request_quit(self) -> None:
        ask_quit(self)

    def action_help_quit(self) -> None:
        """ctrl+c (outside a text field, where it copies): the quit path, as q is."""
        self.action_request_quit()

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
