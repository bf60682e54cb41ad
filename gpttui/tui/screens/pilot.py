"""Pilot: short real trials of a preset's candidates (recipes x learning rates, or `try`
values), live: a table of every candidate (measured tokens/s, peak memory, MFU, each rung's
final val loss) beside their train-loss curves overlaid against training seconds.

The pilot runs in a thread worker (`Services.new_pilot`); its updates reach the screen as
messages at most a few times a second. Once it has a recommendation (saved as the user
preset `<preset>-pilot`), `r` starts the full run of it.
"""

from __future__ import annotations

import time
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Label, Static

from gpttui import fmt
from gpttui.errors import GpttuiError
from gpttui.tui.failures import ReportsWorkerFailures
from gpttui.tui.messages import PilotChanged, PilotPresetReady
from gpttui.tui.widgets.chart import LineChart, Series
from gpttui.tui.widgets.footer import StableFooter
from gpttui.tui.widgets.tables import add_rows

UPDATE_EVERY_S = 0.3  # the engine calls back on every step; the screen redraws at most this often


class PilotScreen(ReportsWorkerFailures, Screen):
    """Set the budget (and optional `try` values), start, watch, run the recommendation."""

    DEFAULT_CSS = """
    PilotScreen #pilot-form { height: 3; }
    PilotScreen #pilot-form Label { padding: 1 1 0 1; }
    PilotScreen #pilot-minutes { width: 10; }
    PilotScreen #pilot-tries { width: 1fr; }
    PilotScreen #pilot-status { height: 2; padding: 0 1; }
    PilotScreen #pilot-body { height: 1fr; }
    PilotScreen #pilot-table { height: auto; max-height: 14; }
    PilotScreen #pilot-chart { width: 1fr; height: 1fr; }
    PilotScreen #pilot-log { height: 5; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("ctrl+r", "start", "Start pilot"),
        Binding("x", "stop", "Stop pilot"),
        Binding("r", "run_best", "Run recommendation"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, preset: str, values: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.preset, self.values = preset, values
        self.pilot: Any = None
        self.state: Any = None
        self._next_t = 0.0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="pilot-form"):
            yield Label("minutes")
            yield Input("30", id="pilot-minutes")
            yield Label("try")
            yield Input("", id="pilot-tries", placeholder="default: both recipes x 3 lrs; or e.g. "
                        "learning_rate=1e-3,3e-3; n_embd=64,128")
        yield Static("", id="pilot-status")
        with Vertical(id="pilot-body"):
            yield DataTable(id="pilot-table", cursor_type="row", zebra_stripes=True)
            yield LineChart(xlabel="training seconds", title="train loss", id="pilot-chart")
        yield Static("", id="pilot-log")
        yield StableFooter()

    def on_mount(self) -> None:
        self.sub_title = f"pilot of {self.preset}"
        self.query_one("#pilot-status", Static).update(
            f"Short real runs of {self.preset}'s candidates on this device, compared at equal training time "
            "(successive halving). ctrl+r starts.")
        # Idle, the empty chart said "waiting for data…", as if a pilot ran: nothing runs yet.
        self.query_one("#pilot-chart", LineChart).display = False
        self.query_one("#pilot-log", Static).update(
            "Nothing runs until ctrl+r. Then each candidate trains for a share of the minutes; the table "
            "(measured tok/s, memory, MFU, val loss per rung) and their train-loss curves fill in here, "
            "and the best is saved as a preset that r runs in full.")
        self.query_one("#pilot-minutes", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        running = self.state is not None and not self.state.done
        if action == "start":
            return self.pilot is None or (self.state is not None and self.state.done)
        if action == "stop":
            return running
        if action == "run_best":
            return self.state is not None and bool(self.state.winner)
        return True

    # -- actions ---------------------------------------------------------------------------
    def action_start(self) -> None:
        raw = self.query_one("#pilot-minutes", Input).value.strip()
        try:
            minutes = float(raw)
        except ValueError:
            minutes = -1.0
        if not 0.5 <= minutes <= 24 * 60:
            self.notify(f"minutes: {raw!r} is not a number from 0.5 to 1440", severity="error")
            return
        text = self.query_one("#pilot-tries", Input).value
        tries = [t.strip() for t in text.replace("\n", ";").split(";") if t.strip()]
        self.pilot, self.state = True, None  # starting (the worker makes the real one)
        self.query_one("#pilot-table", DataTable).focus()  # x and r reach the screen, not a field
        self.refresh_bindings()
        self._run(minutes * 60, tries)

    @work(thread=True, exclusive=True, group="pilot", exit_on_error=False)
    def _run(self, budget_s: float, tries: list[str]) -> None:
        svc = self.app.services
        try:
            name, values, cands = svc.prepare_pilot(self.preset, tries, self.values)
            pilot = svc.new_pilot(name, values, cands, budget_s, self._pilot_update)
        except GpttuiError as e:
            self.post_message(PilotChanged(None, str(e)))
            return
        self.pilot = pilot
        try:
            pilot.run()
        except GpttuiError as e:
            self.post_message(PilotChanged(pilot.state, str(e)))
            return
        self.post_message(PilotChanged(pilot.state))

    def _pilot_update(self, state: Any) -> None:
        """On the pilot's thread: a message at most every UPDATE_EVERY_S (and at the end)."""
        now = time.monotonic()
        if now >= self._next_t or state.done:
            self._next_t = now + UPDATE_EVERY_S
            self.post_message(PilotChanged(state))

    def on_pilot_changed(self, msg: PilotChanged) -> None:
        if msg.error:
            self.notify(msg.error, severity="error", timeout=10)
            if msg.state is None:
                self.pilot = None
        if msg.state is not None:
            self.state = msg.state
            self.show(msg.state)
        self.refresh_bindings()

    def action_stop(self) -> None:
        if self.pilot is not None and self.pilot is not True:
            self.pilot.stop()
            self.notify("Stopping the pilot: the trial in progress saves a checkpoint (resumable under Runs)")

    def action_run_best(self) -> None:
        if self.state is not None and self.state.winner:
            self._load_best(self.state.save_as)

    @work(thread=True, exclusive=True, group="pilot-preset", exit_on_error=False)
    def _load_best(self, name: str) -> None:
        from gpttui.presets import get

        try:
            self.post_message(PilotPresetReady(name, get(name).config()))
        except GpttuiError as e:
            self.post_message(PilotPresetReady(name, error=str(e)))

    def on_pilot_preset_ready(self, msg: PilotPresetReady) -> None:
        if msg.error:
            self.notify(msg.error, severity="error")
        else:
            self.app.start_training(msg.cfg, msg.name)

    def action_back(self) -> None:
        if self.state is not None and not self.state.done or self.pilot is True:
            self.notify("The pilot is running: stop it first (x)", severity="warning")
            return
        self.app.pop_screen()

    # -- drawing ----------------------------------------------------------------------------
    def show(self, st: Any) -> None:
        from gpttui.train.pilotreport import progress_line, table_columns, table_note, table_rows

        frac = min(1.0, st.elapsed_s / st.budget_s) if st.budget_s else 0.0
        head = progress_line(st)
        if st.winner:
            head = (f"recommendation: {st.winner} — saved as preset '{st.save_as}'; r starts the full run"
                    f"  ({fmt.duration_compact(st.elapsed_s)} used of {fmt.duration_compact(st.budget_s)})")
        self.query_one("#pilot-status", Static).update(f"{head}\n{fmt.bar(frac, 40)} {frac:.0%} of the budget")
        table = self.query_one("#pilot-table", DataTable)
        cols = table_columns(st)
        if len(table.columns) != len(cols):
            table.clear(columns=True)
            table.add_columns(*cols)
        table.clear()
        add_rows(table, ((tuple(row), None) for row in table_rows(st)))
        chart = self.query_one("#pilot-chart", LineChart)
        chart.display = True
        chart.set_series(curves(st))
        self.query_one("#pilot-log", Static).update("\n".join([table_note(st), *st.log[-4:]]))


def curves(st: Any) -> list[Series]:
    """Each candidate's latest trial: train loss against training seconds (equal-time axis)."""
    latest: dict[str, Any] = {}
    for t in st.trials:
        if t.curve:
            latest[t.label] = t
    return [Series(f"{label} (r{t.rung})", tuple(x for x, _ in t.curve), tuple(y for _, y in t.curve))
            for label, t in latest.items()]
