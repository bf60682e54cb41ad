"""Runs: every run in the data dir; open (charts, live if another process trains it),
compare two, resume, delete. All file reads happen in thread workers."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from gpttui import events as E
from gpttui import fmt
from gpttui.errors import GpttuiError
from gpttui.tui.failures import ReportsWorkerFailures
from gpttui.tui.live import LiveRun
from gpttui.tui.messages import Followed, RunDeleted, RunsLoaded
from gpttui.tui.screens.compare import CompareScreen
from gpttui.tui.screens.dialogs import ChoiceScreen
from gpttui.tui.screens.training import TrainingScreen
from gpttui.tui.widgets.footer import StableFooter
from gpttui.tui.widgets.tables import add_rows

RUN_COLUMNS = ("", "run", "state", "preset", "params", "tokens", "best val", "HellaSwag", "forecast", "tok/s", "MFU", "time")
OPTIONAL_COLUMNS = frozenset({"HellaSwag", "forecast"})  # shown when a run has one


class RunsScreen(ReportsWorkerFailures, Screen):
    """The table of runs."""

    BINDINGS = [
        Binding("enter", "open", "Open", show=False),
        Binding("o", "open", "Open"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("r", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Any] = []
        self.marked: list[str] = []
        self._generation = 0  # of the latest load: an older one finishing late is stale

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("space marks runs to compare (two), c compares", id="runs-hint")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="run-detail")  # the selected run: why it ended, what r/o do
        yield StableFooter()

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        self._set_columns(RUN_COLUMNS)
        t.focus()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        self._generation += 1
        self._load(self._generation)

    @work(thread=True, exclusive=True, group="runs-load", exit_on_error=False)
    def _load(self, generation: int) -> None:
        try:
            self.post_message(RunsLoaded(self.app.services.list_runs(), generation=generation))
        except GpttuiError as e:
            self.post_message(RunsLoaded([], str(e), generation))

    def on_runs_loaded(self, msg: RunsLoaded) -> None:
        if msg.generation != self._generation:
            return  # a load started before a newer one (e.g. before a delete) finished late
        if msg.error:
            self.notify(msg.error, severity="error")
        self.runs = list(reversed(msg.runs))
        self._fill()

    def _set_columns(self, labels: tuple[str, ...]) -> None:
        t = self.query_one(DataTable)
        if tuple(str(c.label) for c in t.columns.values()) != labels:
            t.clear(columns=True)
            for label in labels:
                t.add_column(label, key=label or "mark")

    def _fill(self) -> None:
        t = self.query_one(DataTable)
        row = t.cursor_row
        rows = []
        for s in self.runs:
            cells = dict(zip(RUN_COLUMNS, (
                "●" if s.id in self.marked else "", fmt.short_run_id(s.id), fmt.run_state(s), s.preset_label,
                fmt.si(s.params), fmt.si(s.tokens_seen), fmt.num(s.best_val_loss, ".4f"), hellaswag_cell(s),
                fmt.forecast_cell(s), fmt.si(s.tokens_per_s), fmt.pct(s.mfu), fmt.duration(s.duration_s)), strict=True))
            rows.append((s.id, cells))
        # A column no run has a figure in says nothing, and pushed tok/s, MFU and time off at 120.
        shown = tuple(c for c in RUN_COLUMNS
                      if c not in OPTIONAL_COLUMNS or any(cells[c] != fmt.DASH for _, cells in rows))
        self._set_columns(shown)
        t.clear()
        add_rows(t, ((tuple(cells[c] for c in shown), key) for key, cells in rows))
        if t.row_count:
            t.move_cursor(row=min(row, t.row_count - 1))
        self._show_detail()
        damaged = [f"{s.id}: {s.damaged}" for s in self.runs if getattr(s, "damaged", None)]
        self.query_one("#runs-hint", Static).update(
            f"{len(self.runs)} runs · marked: {', '.join(self.marked) or 'none'} · space marks, c compares two"
            + "".join(f"\n⚠ {d}" for d in damaged))

    def current(self) -> Any:
        t = self.query_one(DataTable)
        if not t.row_count:
            return None
        key = t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value
        return next((s for s in self.runs if s.id == key), None)

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        s = self.current()
        self.query_one("#run-detail", Static).update("" if s is None else run_detail(s))

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        s = self.current()
        if s is not None:
            open_run_view(self.app, s.id)

    def action_mark(self) -> None:
        s = self.current()
        if s is None:
            return
        if s.id in self.marked:
            self.marked.remove(s.id)
        else:
            self.marked = (self.marked + [s.id])[-2:]
        self._fill()

    def action_compare(self) -> None:
        ids = list(self.marked)
        s = self.current()
        if len(ids) == 1 and s is not None and s.id not in ids:
            ids.append(s.id)
        if len(ids) != 2:
            self.notify("Mark two runs with space (or one, and put the cursor on the other).", severity="warning")
            return
        self.app.push_screen(CompareScreen(ids[0], ids[1]))

    def action_resume(self) -> None:
        s = self.current()
        if s is None:
            return
        if s.alive:
            self.notify(f"{s.id} is training in another process.", severity="warning")
        elif s.state == E.FINISHED:
            self.notify(f"{s.id} already reached max_iters.", severity="warning")
        else:
            self.app.resume_run(s.id)

    def action_delete(self) -> None:
        s = self.current()
        if s is None:
            return
        if s.alive:  # the dialog asked, then the delete was refused: say so at once
            self.notify(f"{s.id} is training (live): stop it first, then delete it.", severity="warning")
            return

        def done(choice: str | None) -> None:
            if choice == "delete":
                self._delete(s.id)

        self.app.push_screen(ChoiceScreen(f"Delete run {s.id}?", [("cancel", "Keep"), ("delete", "Delete")],
                                          "Its checkpoints, metrics and samples are removed."), done)

    @work(thread=True, group="runs-delete", exit_on_error=False)
    def _delete(self, run_id: str) -> None:
        try:
            self.app.services.delete_run(run_id)
        except GpttuiError as e:
            self.post_message(RunDeleted(run_id, str(e)))
            return
        self.post_message(RunDeleted(run_id))

    def on_run_deleted(self, msg: RunDeleted) -> None:
        if msg.error:
            self.notify(msg.error, severity="error")
        else:
            self.marked = [m for m in self.marked if m != msg.run_id]
        self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()


def run_detail(s: Any) -> str:
    """The selected run in words: where it stands, why it ended (its status message), and
    what the keys do for it. The table says "failed" or "interrupted"; this says why."""
    where = f"{s.id}: {fmt.run_state(s)} at iter {s.iter:,}/{s.max_iters:,}"
    if s.pilot:
        where += f" · a pilot's trial ({s.pilot})"
    why = s.damaged or s.message or s.stop_reason
    if not why and s.state == "interrupted":
        why = "its process ended without stopping it (killed, crashed or the machine went down)"
    if s.alive:
        keys = "o follows it live"
    elif s.resumable:
        keys = "r resumes from its last checkpoint" if s.has_checkpoint else "no checkpoint to resume from"
    else:
        keys = "o opens its charts, g there samples it" if s.has_checkpoint else "o opens its charts"
    return " · ".join(p for p in (where, why, keys) if p)


# -- one run ---------------------------------------------------------------------------------

class RunViewScreen(TrainingScreen):
    """A run from its files: charts of a finished run, or live by following metrics.jsonl."""

    BINDINGS = [Binding("g", "sample", "Sample"), Binding("r", "resume", "Resume"), Binding("escape", "back", "Back")]

    def __init__(self, run_id: str) -> None:
        super().__init__(live=LiveRun(run_id=run_id, state="unknown"), controllable=False)
        self.metrics_offset = 0

    def on_mount(self) -> None:
        super().on_mount()
        self.sub_title = f"run {self._live.run_id} (from its files)"
        self._poll()
        self.set_interval(self.app.services.follow_interval_s, self._poll)

    def _poll(self) -> None:
        self._follow(self.metrics_offset)

    @work(thread=True, exclusive=True, group="follow", exit_on_error=False)
    def _follow(self, offset: int) -> None:
        try:
            run = self.app.services.get_run(self._live.run_id)
            events, new = run.follow(offset)
        except GpttuiError:
            return
        if events or new != offset:
            self.post_message(Followed(events, new))

    def on_followed(self, msg: Followed) -> None:
        if msg.metrics_offset < self.metrics_offset:
            return  # a stale read
        first = self.metrics_offset == 0
        for ev in msg.events:
            self._live.apply(ev)
        self.metrics_offset = msg.metrics_offset
        self.mark_dirty(urgent=first or any(not isinstance(ev, (E.StepMetrics, E.Progress)) for ev in msg.events))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """r resumes a run that has ended; while another process trains it, no key to offer."""
        if action == "resume":
            return not self._live.active
        return super().check_action(action, parameters)

    def action_resume(self) -> None:
        if self._live.active:
            self.notify("The run is still training (in another process).", severity="warning")
            return
        self.app.pop_screen()
        self.app.resume_run(self._live.run_id)


def open_run_view(app: Any, run_id: str) -> None:
    """The in-process training screen for our own run, else a file-following view."""
    if app.live is not None and app.live.run_id == run_id and app.session_active():
        app.open_training()
    else:
        app.push_screen(RunViewScreen(run_id))


def hellaswag_cell(s: Any) -> str:
    """acc_norm ± its binomial standard error (`gpttui eval`'s newest, else the loop's subset)."""
    v = getattr(s, "hellaswag", None)
    return fmt.DASH if v is None else f"{v:.4f}±{getattr(s, 'hellaswag_stderr', 0) or 0:.3f}"
