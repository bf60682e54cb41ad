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
        for key, cells in rows:
            t.add_row(*(cells[c] for c in shown), key=key)
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
    the val loss at the eval iterations both runs reached. Labels and figures are short
    enough for the 44 columns the table has beside the chart at 120x40 (nothing "…")."""
    t = Table(box=None, header_style="bold", pad_edge=False, caption_justify="left", caption_style="dim")
    t.add_column("", no_wrap=True)
    for name in short_names(a, b, 12):  # figures never wrap; a long name is cut with "…"
        t.add_column(name, justify="right", no_wrap=True, overflow="ellipsis")

    def steps(ev: list[E.Event]) -> list[E.StepMetrics]:
        return [e for e in ev if isinstance(e, E.StepMetrics) and not e.compiling]

    sa, sb = steps(ea), steps(eb)
    t.add_row("step medians", "", "")
    for label, get, f in (("  step time", lambda s: s.step_time_s * 1000, lambda v: f"{v:,.0f} ms"),
                          ("  tokens/s", lambda s: s.tokens_per_s, fmt.si),
                          ("  MFU", lambda s: s.mfu, fmt.pct)):
        va = _median([get(s) for s in sa if get(s) is not None])
        vb = _median([get(s) for s in sb if get(s) is not None])
        t.add_row(label, f(va) if va is not None else fmt.DASH, f(vb) if vb is not None else fmt.DASH)
    va_ev = {e.iter: e for e in ea if isinstance(e, E.EvalResult)}
    vb_ev = {e.iter: e for e in eb if isinstance(e, E.EvalResult)}
    t.add_row("best val", fmt.num(min((e.val_loss for e in va_ev.values()), default=None), ".4f"),
              fmt.num(min((e.val_loss for e in vb_ev.values()), default=None), ".4f"))
    _reach_rows(t, ea, eb)
    notes = []
    if _task_rows(t, ea, eb, [(hellaswag or {}).get(r) for r in (a, b)]):
        notes.append("HellaSwag: random 0.25, GPT-2 124M 0.2955")
    from gpttui.runs.compare import ending

    na, nb = ending(ea), ending(eb)
    if na is not None or nb is not None:
        t.add_row("final val", *(fmt.DASH if n is None else f"{n.loss:.4f}" if n.band is None
                                 else f"~{n.loss:.3f}±{n.band:.3f}" for n in (na, nb)))
        if any(n is not None and n.band is not None for n in (na, nb)):
            notes.append("~ forecast (computed); else measured")
    common = sorted(set(va_ev) & set(vb_ev))
    for it in common[-rows:]:
        t.add_row(f"val @ iter {it:,}", f"{va_ev[it].val_loss:.4f}", f"{vb_ev[it].val_loss:.4f}")
    if not common:
        t.add_row("val @ same iter", "none", "")
    t.caption = "\n".join(notes) or None
    return t


def _task_rows(t: Table, ea: list[E.Event], eb: list[E.Event], full: list[str | None]) -> bool:
    """HellaSwag acc_norm ± stderr: the loop's newest (its fixed subset) at its iteration,
    and `gpttui eval`'s; True if there was any (the caption then gives the references)."""
    def last(ev: list[E.Event]) -> E.TaskEval | None:
        return next((e for e in reversed(ev) if isinstance(e, E.TaskEval)), None)

    la, lb = last(ea), last(eb)
    if la is None and lb is None and not any(full):
        return False
    t.add_row("HellaSwag", "", "")
    if la is not None or lb is not None:
        t.add_row("  in loop", *(f"{x.acc_norm:.4f}±{x.stderr:.3f}" if x else fmt.DASH for x in (la, lb)))
        t.add_row("   at iter", *(f"{x.iter:,}" if x else fmt.DASH for x in (la, lb)))
    if any(full):
        t.add_row("  gpttui eval", *((f or fmt.DASH).split(" (n ")[0] for f in full))
        t.add_row("   examples", *(f.split(" (n ")[1].rstrip(")") if f and " (n " in f else fmt.DASH for f in full))
    return True


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

    t.add_row(f"to val {target:.4f}", "", "")
    t.add_row("  tokens", cell(ra, lambda r: fmt.si(r.tokens)), cell(rb, lambda r: fmt.si(r.tokens)))
    t.add_row("  time", cell(ra, lambda r: fmt.duration(r.elapsed_s)), cell(rb, lambda r: fmt.duration(r.elapsed_s)))


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
