"""A reference run on the live chart: `f` on the Training screen picks an earlier run whose
train and val loss curves are drawn next to the live ones, against iterations.

The run list and the chosen run's metrics.jsonl are read in workers, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from gpttui import events as E
from gpttui.errors import GpttuiError
from gpttui.tui.failures import ReportsWorkerFailures
from gpttui.tui.messages import ReferenceLoaded, ReferenceRunsListed
from gpttui.tui.widgets.chart import Series

NONE = "__none__"  # the picker's "no reference" answer
ENDED = (E.FINISHED, E.STOPPED)


def reference_series(run_id: str, events: Sequence[E.Event]) -> list[Series]:
    """The run's train loss per logged step and val loss per eval, labelled with its id."""
    steps = [e for e in events if isinstance(e, E.StepMetrics)]
    evals = [e for e in events if isinstance(e, E.EvalResult)]
    tag = run_id[-18:]
    return [Series(f"{tag} train", tuple(float(e.iter) for e in steps), tuple(e.loss for e in steps)),
            Series(f"{tag} val", tuple(float(e.iter) for e in evals), tuple(e.val_loss for e in evals))]


def candidates(runs: Sequence[Any], exclude: str | None) -> list[Any]:
    """Finished or stopped runs other than the live one, newest first."""
    return [r for r in reversed(runs) if r.state in ENDED and not r.alive and r.id != exclude]


class ReferencePicker(ModalScreen[str | None]):
    """Pick a run id (or NONE to remove the reference); Esc leaves it as it is."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]
    DEFAULT_CSS = "ReferencePicker OptionList { height: auto; max-height: 16; }"

    def __init__(self, runs: Sequence[Any], current: str | None) -> None:
        super().__init__()
        self.runs, self.current = list(runs), current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Reference run to draw on the loss chart:", id="question")
            options = [Option("none (no reference)", id=NONE)]
            for r in self.runs:
                best = "-" if r.best_val_loss is None else f"{r.best_val_loss:.3f}"
                mark = " (shown)" if r.id == self.current else ""
                options.append(Option(f"{r.id}  {r.state}  iter {r.iter}  best val {best}{mark}", id=r.id))
            yield OptionList(*options, id="reference-runs")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)




class ReferenceOverlay(ReportsWorkerFailures):
    """Mixed into the Training screen: `reference` holds the extra series it draws."""

    reference: list[Series]
    reference_id: str | None

    def _reference_init(self) -> None:
        self.reference, self.reference_id = [], None

    def action_reference(self) -> None:
        self._list_reference_runs()

    @work(thread=True, exclusive=True, group="reference", exit_on_error=False)
    def _list_reference_runs(self) -> None:
        try:
            self.post_message(ReferenceRunsListed(self.app.services.list_runs()))
        except GpttuiError as e:
            self.post_message(ReferenceRunsListed([], str(e)))

    def on_reference_runs_listed(self, msg: ReferenceRunsListed) -> None:
        if msg.error:
            self.notify(msg.error, severity="error")
            return
        live = self.live
        runs = candidates(msg.runs, live.run_id if live is not None else None)
        if not runs and self.reference_id is None:
            self.notify("No finished or stopped run to compare with yet.", severity="warning")
            return
        self.app.push_screen(ReferencePicker(runs, self.reference_id), self._reference_picked)

    def _reference_picked(self, choice: str | None) -> None:
        if choice is None:
            return
        if choice == NONE:
            self.reference, self.reference_id = [], None
            self.mark_dirty(True)
            return
        self._load_reference(choice)

    @work(thread=True, exclusive=True, group="reference", exit_on_error=False)
    def _load_reference(self, run_id: str) -> None:
        try:
            events = self.app.services.get_run(run_id).events()
        except GpttuiError as e:
            self.post_message(ReferenceLoaded(run_id, [], str(e)))
            return
        self.post_message(ReferenceLoaded(run_id, reference_series(run_id, events)))

    def on_reference_loaded(self, msg: ReferenceLoaded) -> None:
        if msg.error:
            self.notify(msg.error, severity="error")
            return
        self.reference, self.reference_id = msg.series, msg.run_id
        self.mark_dirty(True)
