"""The command palette: Textual's system commands (less its Quit), what the current
screen's keys do by name, and gpttui's screens and run controls (a mixin of GptTuiApp)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import SystemCommand
from textual.screen import Screen

from gpttui.tui.messages import Notice

if TYPE_CHECKING:
    from gpttui.tui.app import GptTuiApp

    _Base = GptTuiApp
else:
    _Base = object


# Textual's commands gpttui has its own of: "Quit" (gpttui's asks while a run trains) and
# "Keys" (a panel of the focused widget's keys, beside gpttui's Help of every screen's).
TEXTUAL_LEFT_OUT = frozenset({"Quit", "Keys"})


class PaletteCommands(_Base):
    """get_system_commands for every screen (a title once)."""

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's (less its "Quit" and "Keys": gpttui's Quit asks while a run trains, its
        Help lists every screen's keys), what this screen's keys do by name, then gpttui's
        screens and run controls (a title once)."""
        from gpttui.tui.screens.help import screen_commands

        shown: set[str] = set()
        for command in (*super().get_system_commands(screen), *screen_commands(screen), *self._commands()):
            if command.title not in shown and command.title not in TEXTUAL_LEFT_OUT:
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
