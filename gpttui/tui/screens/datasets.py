"""Datasets: the prepared datasets (tokens, documents, source, size, date), preparing a new
one from a path or glob with live progress, deleting one.

Preparing is the same streaming `gpttui.data.prepare.prepare` as `gpttui prepare`, run in a
thread worker (its tokenizer processes are spawned, so the UI keeps its GIL); its throttled
progress events reach the screen as messages. Listing reads small files, also in a worker.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Header, Input, Label, Static
from textual.worker import get_current_worker

from gpttui import events as E
from gpttui import fmt
from gpttui.errors import GpttuiError
from gpttui.tui.failures import ReportsWorkerFailures
from gpttui.tui.messages import DatasetDeleted, DatasetsLoaded, PrepareUpdate
from gpttui.tui.screens.dialogs import ChoiceScreen
from gpttui.tui.widgets.footer import StableFooter
from gpttui.tui.widgets.tables import add_rows


def progress_text(p: E.PrepareProgress) -> str:
    """`tokenizing 11.7 MiB / 42.9 MiB (27 %) · 1.2M tokens · 3,400 docs · 350k tok/s · ETA 9s`."""
    parts = [p.stage]
    if p.bytes_total:
        parts[0] += (f" {fmt.bytes_binary(p.bytes_done)} / {fmt.bytes_binary(p.bytes_total)} "
                     f"({100 * p.bytes_done / p.bytes_total:.0f} %)")
    parts += [f"{fmt.si(p.tokens)} tokens", f"{p.documents:,} docs"]
    if p.tokens_per_s:
        parts.append(f"{fmt.si(p.tokens_per_s)} tok/s")
    if p.eta_s is not None and p.stage == "tokenizing":
        parts.append(f"ETA {fmt.duration(p.eta_s)}")
    return " · ".join(parts)


def _dataset_cells(info: Any, when: float | None) -> tuple[Any, ...]:
    """name, state, tokens, size, documents, prepared, source (a long glob cut from the left)."""
    src = ", ".join(info.sources) or "–"
    return (info.name, "ready" if info.ready else Text("incomplete", style="red"),
            fmt.si(info.train_tokens + info.val_tokens), fmt.bytes_binary(info.size_bytes),
            f"{info.train_docs + info.val_docs:,}", fmt.clock(when) if when else "–",
            src if len(src) <= 40 else "…" + src[-39:])


class PrepareScreen(ModalScreen[dict[str, str] | None]):
    """Ask for the source(s), the new dataset's name and the text column."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    # A label wraps in the dialog: the source's (66 columns) was cut at "';' betwee" at 120x40.
    DEFAULT_CSS = "PrepareScreen Label { width: 100%; }"

    def __init__(self, name: str = "", source: str = "", text_column: str = "text") -> None:
        super().__init__()
        self._defaults = (source, name, text_column)

    def compose(self) -> ComposeResult:
        source, name, column = self._defaults
        with Vertical(id="dialog"):
            yield Static("Prepare a dataset", id="question")
            yield Label("source: paths or globs (parquet, txt, md, jsonl, .bin); ';' between")
            yield Input(source, placeholder="/data/fineweb/*.parquet", id="p-source")
            yield Label("name (letters, digits, . _ -)")
            yield Input(name, placeholder="fineweb-sample", id="p-name")
            yield Label("text column (parquet) / field (JSONL)")
            yield Input(column, id="p-column")
            yield Static("", id="p-error")
            with Horizontal(id="buttons"):
                yield Button("Prepare", id="p-go", variant="primary")
                yield Button("Cancel", id="p-cancel")

    def on_mount(self) -> None:
        self.query_one("#p-source", Input).focus()

    def _values(self) -> dict[str, str]:
        return {k: self.query_one(f"#p-{k}", Input).value.strip() for k in ("source", "name", "column")}

    @on(Input.Submitted)
    @on(Button.Pressed, "#p-go")
    def _go(self) -> None:
        v = self._values()
        missing = [k for k in ("source", "name", "column") if not v[k]]
        if missing:  # Enter in a field moves on to the next one still empty
            self.query_one("#p-error", Static).update(Text(f"fill in: {', '.join(missing)}", style="red"))
            self.query_one(f"#p-{missing[0]}", Input).focus()
            return
        self.dismiss(v)

    @on(Button.Pressed, "#p-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class DatasetsScreen(ReportsWorkerFailures, Screen):
    """The dataset store: n prepares a new dataset, d deletes the selected one, c (or Esc)
    while preparing asks whether to stop."""

    BINDINGS = [
        Binding("n", "prepare", "Prepare new"),
        Binding("d", "delete", "Delete"),
        Binding("c", "stop_prepare", "Stop preparing"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[Any, float | None]] = []
        self.preparing: str = ""  # the name being prepared, '' when none
        self._stop = threading.Event()  # set to stop the prepare between two batches

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("prepared datasets in the data dir · n prepare a new one · d delete", id="ds-hint")
        yield DataTable(id="datasets", cursor_type="row", zebra_stripes=True)
        yield Static("", id="ds-progress")
        yield StableFooter()

    def on_mount(self) -> None:
        self.sub_title = "Datasets"
        table = self.query_one(DataTable)
        # state first and the source (a long glob) last: at 80 columns the state was off-screen
        for col in ("name", "state", "tokens", "size", "documents", "prepared", "source"):
            table.add_column(col, key=col)
        self.query_one("#ds-progress").display = False
        self.reload()
        table.focus()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="datasets-load", exit_on_error=False)
    def _load(self) -> None:
        try:
            rows = self.app.services.list_datasets()
        except GpttuiError as e:
            self.post_message(DatasetsLoaded([], str(e)))
            return
        self.post_message(DatasetsLoaded(rows))

    def on_datasets_loaded(self, msg: DatasetsLoaded) -> None:
        if msg.error:
            self.notify(msg.error, severity="error")
        self.rows = msg.rows
        table = self.query_one(DataTable)
        table.clear()
        add_rows(table, ((_dataset_cells(info, when), info.name) for info, when in msg.rows))
        if not msg.rows:
            self.query_one("#ds-hint", Static).update("no prepared datasets yet · n prepares one from files")

    def current(self) -> Any:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return next((info for info, _ in self.rows if info.name == key), None)

    # -- prepare -----------------------------------------------------------------------------
    def action_prepare(self) -> None:
        if self.preparing:
            self.notify(f"Already preparing {self.preparing}; one at a time.", severity="warning")
            return
        self.app.push_screen(PrepareScreen(), self._prepare_answer)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_prepare":
            return bool(self.preparing)  # in the footer only while preparing
        return True

    def _prepare_answer(self, values: dict[str, str] | None) -> None:
        if not values:
            return
        self._stop.clear()
        self.preparing = values["name"]
        self.refresh_bindings()
        bar = self.query_one("#ds-progress", Static)
        bar.display = True
        bar.update(f"preparing {values['name']}: starting…")
        self._prepare([s.strip() for s in values["source"].split(";") if s.strip()], values["name"], values["column"])

    @work(thread=True, exclusive=True, group="datasets-prepare", exit_on_error=False)
    def _prepare(self, sources: list[str], name: str, column: str) -> None:
        worker = get_current_worker()  # cancelled too when the app quits: the prepare stops with it
        try:
            info = self.app.services.prepare_dataset(
                sources, name, text_column=column, progress=lambda p: self.post_message(PrepareUpdate(p)),
                cancel=lambda: self._stop.is_set() or worker.is_cancelled)
        except GpttuiError as e:
            self.post_message(PrepareUpdate(None, error=str(e)))
            return
        except Exception as e:  # a bug: not 'preparing' forever; the failed-worker handler logs it
            self.post_message(PrepareUpdate(None, error=f"{type(e).__name__}: {e}"))
            raise
        self.post_message(PrepareUpdate(None, done=f"{info.name}: {fmt.si(info.train_tokens + info.val_tokens)} tokens"))

    def on_prepare_update(self, msg: PrepareUpdate) -> None:
        bar = self.query_one("#ds-progress", Static)
        if msg.progress is not None:
            bar.update(f"preparing {self.preparing}: {progress_text(msg.progress)}")
            return
        name, self.preparing = self.preparing, ""
        self.refresh_bindings()
        if msg.error and self._stop.is_set():  # stopped on request: said plainly, not as a failure
            bar.update(Text(f"stopped preparing {name}; nothing of it was kept"))
            self.notify(f"Stopped preparing {name}.")
        elif msg.error:
            bar.update(Text(f"preparing {name} failed: {msg.error}", style="red"))
            self.notify(msg.error, severity="error", timeout=10)
        else:
            bar.update(f"prepared {msg.done}")
            self.notify(f"Dataset ready: {msg.done}")
        self.reload()

    # -- delete ------------------------------------------------------------------------------
    def action_delete(self) -> None:
        info = self.current()
        if info is None:
            return

        def done(choice: str | None) -> None:
            if choice == "delete":
                self._delete(info.name)

        self.app.push_screen(ChoiceScreen(
            f"Delete dataset {info.name}?", [("cancel", "Keep"), ("delete", "Delete")],
            f"{fmt.si(info.train_tokens + info.val_tokens)} tokens, {fmt.bytes_binary(info.size_bytes)} on disk. "
            "Runs trained on it keep their checkpoints; resuming them needs it prepared again."), done)

    @work(thread=True, group="datasets-delete", exit_on_error=False)
    def _delete(self, name: str) -> None:
        try:
            self.app.services.delete_dataset(name)
        except GpttuiError as e:
            self.post_message(DatasetDeleted(name, str(e)))
            return
        self.post_message(DatasetDeleted(name))

    def on_dataset_deleted(self, msg: DatasetDeleted) -> None:
        if msg.error:
            self.notify(msg.error, severity="error")
        self.reload()

    def action_stop_prepare(self) -> None:
        """Ask, then stop the prepare at its next batch (its temporary files are deleted)."""
        name = self.preparing
        if not name or self._stop.is_set():
            return

        def done(choice: str | None) -> None:
            if choice == "stop" and self.preparing == name:
                self._stop.set()
                self.query_one("#ds-progress", Static).update(f"stopping {name}…")

        self.app.push_screen(ChoiceScreen(
            f"Stop preparing {name}?", [("keep", "Keep preparing"), ("stop", "Stop")],
            "What is tokenized so far is deleted; a dataset already named so stays as it was."), done)

    def action_back(self) -> None:
        if self.preparing:  # the prepare's progress lives here: leaving means stopping it
            self.action_stop_prepare()
            return
        self.app.pop_screen()
