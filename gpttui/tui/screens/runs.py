"""Runs: every run in the data dir; open (charts, live if another process trains it),
compare two, resume, delete. All file reads happen in thread workers."""

from __future__ import annotations

import statistics
from typing import Any

from rich.table import Table
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from gpttui import events as E
from gpttui import fmt
from gpttui.errors import GpttuiError
from gpttui.tui.failures import ReportsWorkerFailures
from gpttui.tui.live import LiveRun
from gpttui.tui.messages import Compared, Followed, RunDeleted, RunsLoaded
from gpttui.tui.screens.dialogs import ChoiceScreen
from gpttui.tui.screens.training import TrainingScreen
from gpttui.tui.widgets.chart import LineChart, Series
from gpttui.tui.widgets.footer import StableFooter


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
        yield StableFooter()

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        for label in ("", "run", "state", "preset", "params", "tokens", "best val", "HellaSwag", "forecast", "tok/s", "MFU", "time"):
            t.add_column(label, key=label or "mark")
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

    def _fill(self) -> None:
        t = self.query_one(DataTable)
        row = t.cursor_row
        t.clear()
        for s in self.runs:
            mark = "●" if s.id in self.marked else ""
            state = s.state + (" (live)" if s.alive else "")
            if getattr(s, "damaged", None) and s.state != "damaged":
                state += " (damaged)"
            t.add_row(mark, s.id, state, s.preset_label, fmt.si(s.params), fmt.si(s.tokens_seen),
                      fmt.num(s.best_val_loss, ".4f"), hellaswag_cell(s), fmt.forecast_cell(s), fmt.si(s.tokens_per_s), fmt.pct(s.mfu),
                      fmt.duration(s.duration_s), key=s.id)
        if t.row_count:
            t.move_cursor(row=min(row, t.row_count - 1))
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


def full_eval_text(run: Any) -> str | None:
    """`gpttui eval`'s newest HellaSwag figure for a run (None if never evaluated)."""
    from gpttui.evals import results

    path = getattr(run, "path", None)
    h = results.headline(path, {}) if path is not None else None
    return None if h is None else f"{h.text()} (n {h.n:,})"


def hellaswag_cell(s: Any) -> str:
    """acc_norm ± its binomial standard error (`gpttui eval`'s newest, else the loop's subset)."""
    v = getattr(s, "hellaswag", None)
    return fmt.DASH if v is None else f"{v:.4f}±{getattr(s, 'hellaswag_stderr', 0) or 0:.3f}"


# -- comparison ------------------------------------------------------------------------------

def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def short_names(a: str, b: str, width: int = 14) -> tuple[str, str]:
    """Two run ids as told apart in a legend or a column: the shared leading parts (the
    date, '20261202-') dropped, each cut at its end to `width` ('…') if still too long."""
    pa, pb = a.split("-"), b.split("-")
    k = 0
    while k < min(len(pa), len(pb)) - 1 and pa[k] == pb[k]:
        k += 1
    out = []
    for parts in (pa, pb):
        name = "-".join(parts[k:]) or "-".join(parts)
        out.append(name if len(name) <= width else name[: width - 1] + "…")
    return out[0], out[1]


def compare_table(a: str, ea: list[E.Event], b: str, eb: list[E.Event], rows: int = 6,
                  hellaswag: dict[str, str] | None = None) -> Table:
    """Side by side: step time, tokens/s, MFU (medians of measured steps), best val, and
    the val loss at the eval iterations both runs reached."""
    t = Table(box=None, header_style="bold", pad_edge=False)
    t.add_column("", no_wrap=True)
    for name in short_names(a, b):  # figures never wrap; a long name is cut with "…"
        t.add_column(name, justify="right", no_wrap=True, overflow="ellipsis")

    def steps(ev: list[E.Event]) -> list[E.StepMetrics]:
        return [e for e in ev if isinstance(e, E.StepMetrics) and not e.compiling]

    sa, sb = steps(ea), steps(eb)
    for label, get, f in (("step time", lambda s: s.step_time_s * 1000, lambda v: f"{v:,.0f} ms"),
                          ("tokens/s", lambda s: s.tokens_per_s, fmt.si),
                          ("MFU", lambda s: s.mfu, fmt.pct)):
        va = _median([get(s) for s in sa if get(s) is not None])
        vb = _median([get(s) for s in sb if get(s) is not None])
        t.add_row(label + " (median)", f(va) if va is not None else fmt.DASH, f(vb) if vb is not None else fmt.DASH)
    va_ev = {e.iter: e for e in ea if isinstance(e, E.EvalResult)}
    vb_ev = {e.iter: e for e in eb if isinstance(e, E.EvalResult)}
    t.add_row("best val", fmt.num(min((e.val_loss for e in va_ev.values()), default=None), ".4f"),
              fmt.num(min((e.val_loss for e in vb_ev.values()), default=None), ".4f"))
    _reach_rows(t, ea, eb)
    _task_rows(t, ea, eb, [(hellaswag or {}).get(r) for r in (a, b)])
    from gpttui.runs.compare import ending

    na, nb = ending(ea), ending(eb)
    if na is not None or nb is not None:
        t.add_row("final val", na.text() if na else fmt.DASH, nb.text() if nb else fmt.DASH)
    common = sorted(set(va_ev) & set(vb_ev))
    for it in common[-rows:]:
        t.add_row(f"val @ iter {it:,}", f"{va_ev[it].val_loss:.4f}", f"{vb_ev[it].val_loss:.4f}")
    if not common:
        t.add_row("val @ same iter", "no common eval", "")
    return t


def _task_rows(t: Table, ea: list[E.Event], eb: list[E.Event], full: list[str | None]) -> None:
    """HellaSwag acc_norm ± stderr: the loop's newest (its fixed subset) and `gpttui eval`'s."""
    def last(ev: list[E.Event]) -> str:
        tasks = [e for e in ev if isinstance(e, E.TaskEval)]
        return fmt.DASH if not tasks else f"{tasks[-1].acc_norm:.4f}±{tasks[-1].stderr:.3f} @{tasks[-1].iter:,}"

    la, lb = last(ea), last(eb)
    if (la, lb) != (fmt.DASH, fmt.DASH):
        t.add_row("HellaSwag (in loop)", la, lb)
    if any(full):
        t.add_row("HellaSwag (gpttui eval)", full[0] or fmt.DASH, full[1] or fmt.DASH)
    if (la, lb) != (fmt.DASH, fmt.DASH) or any(full):
        t.add_row("  references", "random 0.25", "GPT-2 124M 0.2955")


def _reach_rows(t: Table, ea: list[E.Event], eb: list[E.Event], target: float | None = None) -> None:
    """Tokens and training time each run needed to reach `target` (default: the best val
    loss both reached), measured at their evaluations."""
    from gpttui.runs.compare import common_target, reached

    target = common_target(ea, eb) if target is None else target
    if target is None:
        return
    ra, rb = reached(ea, target), reached(eb, target)

    def cell(r, f) -> str:
        return fmt.DASH if r is None else f(r)

    t.add_row(f"tokens to val {target:.4f}", cell(ra, lambda r: fmt.si(r.tokens)), cell(rb, lambda r: fmt.si(r.tokens)))
    t.add_row(f"time to val {target:.4f}", cell(ra, lambda r: fmt.duration(r.elapsed_s)),
              cell(rb, lambda r: fmt.duration(r.elapsed_s)))


class CompareScreen(ReportsWorkerFailures, Screen):
    """Val loss against tokens seen for two runs, and a side-by-side table."""

    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self, a: str, b: str) -> None:
        super().__init__()
        self.a, self.b = a, b

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="compare-body"):
            yield LineChart(xlabel="tokens seen", title="val loss", id="compare-chart")
            yield Static("loading…", id="compare-table")
        yield StableFooter()

    def on_mount(self) -> None:
        self.sub_title = f"{self.a} vs {self.b}"
        self._load()

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def _load(self) -> None:
        try:
            runs = {rid: self.app.services.get_run(rid) for rid in (self.a, self.b)}
            data = {rid: run.events() for rid, run in runs.items()}
        except GpttuiError as e:
            self.post_message(Compared({}, str(e)))
            return
        self.post_message(Compared(data, hellaswag={rid: full_eval_text(run) for rid, run in runs.items()}))

    def on_compared(self, msg: Compared) -> None:
        if msg.error:
            self.query_one("#compare-table", Static).update(msg.error)
            return
        series = []
        for rid, name in zip((self.a, self.b), short_names(self.a, self.b), strict=True):
            evs = [e for e in msg.data[rid] if isinstance(e, E.EvalResult)]
            series.append(Series(name, tuple(float(e.tokens_seen) for e in evs), tuple(e.val_loss for e in evs)))
        self.query_one(LineChart).set_series(series)
        self.query_one("#compare-table", Static).update(
            compare_table(self.a, msg.data[self.a], self.b, msg.data[self.b], hellaswag=msg.hellaswag))

    def action_back(self) -> None:
        self.app.pop_screen()
