"""Home: presets with their estimate for this machine, and the recent runs.

Presets, runs and estimates are loaded in a thread worker (file reads, NVML); the screen
shows the tables at once and fills the estimate columns when they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static
from textual.widgets.data_table import ColumnKey
from textual.worker import get_current_worker

from gpttui import fmt
from gpttui.config import TrainConfig
from gpttui.errors import GpttuiError
from gpttui.plan.target import peak_key
from gpttui.presets import with_preset_warning
from gpttui.tui.failures import ReportsWorkerFailures
from gpttui.tui.messages import HomeData
from gpttui.tui.peaks import waits_for_peak
from gpttui.tui.widgets.estimate_panel import fit_label
from gpttui.tui.widgets.footer import StableFooter
from gpttui.tui.widgets.tables import add_rows


@dataclass
class PresetRow:
    """One presets-table row: the preset and its config/estimate (or why not)."""

    name: str
    source: str
    description: str
    cfg: Any = None
    est: Any = None
    error: str = ""
    keys: frozenset[str] = frozenset()  # the keys the preset sets (the rest are inherited)



def _preset_cells(row: PresetRow) -> tuple[str, ...]:
    """A preset's row: name (* user, ⚠ warned), params, tokens, time, fit, description."""
    name = row.name + (" *" if row.source == "user" else "") + (" ⚠" if row.est and row.est.warnings else "")
    if row.est is None:
        return (name, "–", "–", "–", "error" if row.error else "…", row.error or row.description)
    e = row.est
    return (name, fmt.si(e.params_nanogpt.value), fmt.si(e.total_tokens.value), fmt.duration(e.time_s.value),
            fit_label(e), row.description)


RECENT_RUNS = 20  # the newest runs listed on Home (all of them: Runs, u)


class HomeScreen(ReportsWorkerFailures, Screen):
    """Pick a preset to run or edit; see recent runs."""

    BINDINGS = [
        Binding("enter", "edit", "Edit", show=False),
        # The app's Help and Quit first: at 80 columns the footer cuts what comes last.
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.request_quit", "Quit"),
        Binding("r", "run", "Run"),
        Binding("e", "edit", "Edit"),
        Binding("n", "new", "New from"),
        Binding("slash", "filter", "Filter"),
        Binding("u", "runs", "Runs"),
        Binding("d", "datasets", "Datasets"),
        Binding("t", "training", "Training"),
        Binding("m", "sample", "Sample"),
        Binding("p", "pilot", "Pilot", show=False),  # (off the footer: at 80 columns it is full)
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[PresetRow] = []
        self._generation = 0  # of the latest load; an older (cancelled) load's data is stale

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("detecting device…", id="device")
        yield Input(placeholder="filter presets (Enter to keep, Esc to clear)", id="filter")
        with Vertical(id="home-body"):
            yield DataTable(id="presets", cursor_type="row", zebra_stripes=True)
            yield Static("", id="preset-detail")  # the selected preset's description in full
            yield Static("Recent runs", id="runs-title", classes="section")
            yield DataTable(id="recent", cursor_type="row")
        yield StableFooter(compact=True)

    def on_mount(self) -> None:
        t = self.query_one("#presets", DataTable)
        t.add_column("preset", key="name")
        for label in ("params", "tokens", "time", "VRAM"):
            t.add_column(label, key=label.lower())
        t.add_column("description", key="desc")
        r = self.query_one("#recent", DataTable)
        for label in ("run", "state", "preset", "iter", "best val"):
            r.add_column(label)
        self.query_one("#filter", Input).display = False
        t.focus()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        self._generation += 1
        self._load(self._generation)

    @work(thread=True, exclusive=True, group="home-load", exit_on_error=False)
    def _load(self, generation: int) -> None:
        """Presets with their estimates, and the runs; then, where an estimate needs a
        measured peak (CPU), measure it (seconds, once per process) and send them again."""
        services = self.app.services
        rows: list[PresetRow] = []
        error = ""
        try:
            presets = services.list_presets()
        except GpttuiError as e:
            presets, error = [], str(e)
        for p in presets:
            row = PresetRow(p.name, p.source, p.description,
                            keys=getattr(p, "keys", frozenset()))
            try:
                row.cfg = p.config()
            except GpttuiError as e:
                row.error = str(e)
            rows.append(row)
        try:
            runs = services.list_runs()  # listed once: the estimates look in it for measured speeds
        except GpttuiError as e:
            runs, error = [], error or str(e)
        rows = self._estimated(rows, runs, measure=False)
        self.post_message(HomeData(rows, runs, error, generation))
        if any(waits_for_peak(r.est) for r in rows):
            rows = self._estimated(rows, runs, measure=True)
            if not get_current_worker().is_cancelled:
                self.post_message(HomeData(rows, runs, generation=generation))

    def _estimated(self, rows: list[PresetRow], runs: list[Any], measure: bool) -> list[PresetRow]:
        """Copies of `rows` with their estimates (the UI keeps the previous copies)."""
        out = []
        for row in rows:
            row = replace(row)
            if row.cfg is not None:
                try:
                    row.est = with_preset_warning(self.app.estimate(row.cfg, measure=measure, runs=runs),
                                                  row.keys, row.cfg)
                except GpttuiError as e:
                    row.error = str(e)
            out.append(row)
        return out

    def on_home_data(self, msg: HomeData) -> None:
        if msg.generation != self._generation:
            return  # a cancelled load finishing late must not overwrite a newer one
        self.rows = msg.rows
        self._fill_presets()
        self._show_device()
        recent = self.query_one("#recent", DataTable)
        recent.clear()
        add_rows(recent, (((fmt.short_run_id(s.id), fmt.run_state(s), s.preset_label, f"{s.iter:,}/{s.max_iters:,}",
                            fmt.num(s.best_val_loss, ".4f")), s.id) for s in list(reversed(msg.runs))[:RECENT_RUNS]))
        self.query_one("#runs-title", Static).update(f"Recent runs ({len(msg.runs)} in all, u: all runs)")
        if msg.error:
            self.notify(msg.error, severity="error")

    def _show_device(self) -> None:
        """The device line, with its measured peak once known; 'RAM' heads the memory
        column on a CPU (the estimate compares with system RAM there)."""
        dev = self.app.device
        if dev is None:
            return
        mem = f" · {fmt.gib(dev.memory_bytes)}{' RAM' if dev.kind == 'cpu' else ''}" if dev.memory_bytes else ""
        known = self.app.peaks.known(peak_key(TrainConfig(), dev))
        basis = f"peak: {known[1]}" if known is not None else dev.peak_basis
        self.query_one("#device", Static).update(f"Device: {dev.name}{mem} · {basis}")
        t = self.query_one("#presets", DataTable)
        label = "RAM" if dev.kind == "cpu" else "VRAM"
        if str(t.columns[ColumnKey("vram")].label) != label:
            t.columns[ColumnKey("vram")].label = Text(label)
            t.refresh()

    def _fill_presets(self) -> None:
        t = self.query_one("#presets", DataTable)
        keep = self.selected().name if self.selected() else None
        needle = self.query_one("#filter", Input).value.strip().lower()
        t.clear()
        add_rows(t, ((_preset_cells(row), row.name) for row in self.rows
                     if not needle or needle in f"{row.name} {row.description}".lower()))
        if keep is not None and keep in t.rows:
            t.move_cursor(row=t.get_row_index(keep))
        self._show_detail()

    @on(DataTable.RowHighlighted, "#presets")
    def _highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        """The selected preset's whole description (the table cuts it at 80 columns), and
        its estimate's first warning (⚠ in the table), so a preset is not picked unwarned."""
        row = self.selected()
        text = Text("" if row is None else f"{row.name}: {row.error or row.description or 'no description'}",
                    style="red" if row and row.error else "")
        warnings = row.est.warnings if row is not None and row.est is not None else ()
        if warnings:
            more = f" (+{len(warnings) - 1} more: e shows them)" if len(warnings) > 1 else ""
            text.append(f"\n⚠ {warnings[0]}{more}", style="yellow")
        self.query_one("#preset-detail", Static).update(text)

    def selected(self) -> PresetRow | None:
        t = self.query_one("#presets", DataTable)
        if not t.row_count:
            return None
        key = t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value
        return next((r for r in self.rows if r.name == key), None)

    # -- filter ----------------------------------------------------------------------------
    def action_filter(self) -> None:
        f = self.query_one("#filter", Input)
        f.display = True
        f.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self._fill_presets()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one("#presets", DataTable).focus()

    def action_clear_filter(self) -> None:
        f = self.query_one("#filter", Input)
        f.value = ""
        f.display = False
        self.query_one("#presets", DataTable).focus()

    # -- actions ---------------------------------------------------------------------------
    def _row_or_warn(self) -> PresetRow | None:
        row = self.selected()
        if row is None:
            self.notify("No preset selected.", severity="warning")
        elif row.cfg is None:
            self.notify(row.error or "This preset is still loading.", severity="error" if row.error else "information")
            return None
        return row

    @on(DataTable.RowSelected, "#presets")
    def _row_selected(self) -> None:
        self.action_edit()

    @on(DataTable.RowSelected, "#recent")
    def _run_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_run(str(event.row_key.value))

    def action_edit(self) -> None:
        row = self._row_or_warn()
        if row is not None:
            self.app.open_editor(row.name, row.cfg, new=False, user=row.source == "user", own=row.keys)

    def action_new(self) -> None:
        row = self._row_or_warn()
        if row is not None:
            self.app.open_editor(row.name, row.cfg, new=True, user=False, own=row.keys)

    def action_run(self) -> None:
        row = self._row_or_warn()
        if row is not None:
            self.app.start_training(row.cfg, row.name)

    def action_runs(self) -> None:
        self.app.open_runs()

    def action_datasets(self) -> None:
        self.app.open_datasets()

    def action_training(self) -> None:
        self.app.open_training()

    def action_sample(self) -> None:
        self.app.open_sampling(None)

    def action_pilot(self) -> None:
        row = self._row_or_warn()
        if row is not None:
            self.app.open_pilot(row.name)

    def pilot_target(self) -> tuple[str | None, dict[str, Any] | None]:
        """The preset the palette's Pilot command pilots: the selected row's."""
        row = self._row_or_warn()
        return (row.name, None) if row is not None else (None, None)
