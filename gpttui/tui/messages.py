"""How results cross from worker threads to the UI: every Textual message of the app, as
dataclasses, and the trainer's event inbox.

A worker never assigns screen state: it posts one of these messages and the screen's
handler (on the UI thread) applies it. A worker's unexpected exception is not caught:
it reaches the app's one handler of failed workers (`tui.failures`).

The trainer's events go into an `EventInbox`, not one Textual message each: at one
StepMetrics per ~40 ms step, a message per event kept the UI thread (and with it the GIL
the trainer needs to launch kernels) busy dispatching. The app drains the inbox at its
redraw rate; an event that changes what the screen says at once (a state change, an eval,
a failure) also posts one `InboxReady`, which replaces a pending one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from gpttui.events import Event, PrepareProgress, Progress, StepMetrics

ROUTINE = (StepMetrics, PrepareProgress, Progress)  # frequent; shown at the next redraw tick


@dataclass(eq=False)
class InboxReady(Message):
    """The inbox holds an event the screen should show now."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, InboxReady)


class EventInbox:
    """Events of the run this app trains, from the trainer thread to the UI thread.
    `put` never blocks (deque appends are atomic); `take` empties it on the UI thread."""

    def __init__(self) -> None:
        self._events: deque[Event] = deque()

    def put(self, event: Event) -> bool:
        """Queue `event`; True when it should be shown at once (not a routine event)."""
        self._events.append(event)
        return not isinstance(event, ROUTINE)

    def take(self) -> list[Event]:
        out = []
        while self._events:
            out.append(self._events.popleft())
        return out


# -- app ------------------------------------------------------------------------------------
@dataclass(eq=False)
class SessionFailed(Message):
    """Starting a run failed before the trainer ran (bad dataset, locked run, ...);
    `quiet`: the failed-worker handler notifies instead (a bug, with its traceback)."""

    text: str
    quiet: bool = False


@dataclass(eq=False)
class Notice(Message):
    """A notification from a worker thread (shown by the app)."""

    text: str
    severity: str = "information"


# -- home -----------------------------------------------------------------------------------
@dataclass(eq=False)
class HomeData(Message):
    """Home's loading worker: preset rows (with estimates), the runs, the first error."""

    rows: list[Any]
    runs: list[Any]
    error: str = ""
    generation: int = 0


# -- editor ---------------------------------------------------------------------------------
@dataclass(eq=False)
class DatasetsListed(Message):
    datasets: list[Any]


@dataclass(eq=False)
class EstimateReady(Message):
    """The editor's estimate of `cfg` (the config as estimated: with the shape pretrained
    weights impose), or the error and the key at fault."""

    est: Any
    error: str = ""
    key: str | None = None
    cfg: Any = None


@dataclass(eq=False)
class ReadyToStart(Message):
    """The editor's config with the pretrained shape applied, to start; or why not."""

    cfg: Any
    error: str = ""
    key: str | None = None


@dataclass(eq=False)
class PresetSaved(Message):
    """A user preset was written (`path`), or `error` says why not."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    error: str = ""


# -- runs -----------------------------------------------------------------------------------
@dataclass(eq=False)
class RunsLoaded(Message):
    runs: list[Any]
    error: str = ""
    generation: int = 0


@dataclass(eq=False)
class RunDeleted(Message):
    """A delete worker finished (with the error, if it failed); the list must be reloaded."""

    run_id: str
    error: str = ""


@dataclass(eq=False)
class Followed(Message):
    """New events of a followed run and the metrics offset read up to."""

    events: list[Event]
    metrics_offset: int


@dataclass(eq=False)
class Compared(Message):
    data: dict[str, list[Event]]
    error: str = ""
    hellaswag: dict[str, str] = field(default_factory=dict)  # run id -> `gpttui eval`'s figure


@dataclass(eq=False)
class ReferenceRunsListed(Message):
    runs: list[Any]
    error: str = ""


@dataclass(eq=False)
class ReferenceLoaded(Message):
    run_id: str
    series: list[Any]
    error: str = ""


# -- datasets -------------------------------------------------------------------------------
@dataclass(eq=False)
class DatasetsLoaded(Message):
    rows: list[tuple[Any, float | None]]
    error: str = ""


@dataclass(eq=False)
class DatasetDeleted(Message):
    name: str
    error: str = ""


@dataclass(eq=False)
class PrepareUpdate(Message):
    progress: PrepareProgress | None
    done: str = ""
    error: str = ""


# -- sampling -------------------------------------------------------------------------------
@dataclass(eq=False)
class LatestRun(Message):
    """The newest run, for the sampling form's empty run field."""

    run_id: str


@dataclass(eq=False)
class SamplePiece(Message):
    text: str


@dataclass(eq=False)
class SampleDone(Message):
    note: str
    error: bool = False


@dataclass(eq=False)
class PilotChanged(Message):
    """The pilot's state moved on (`state` is the engine's PilotState, read on the UI thread)."""

    state: Any
    error: str = ""


@dataclass(eq=False)
class PilotPresetReady(Message):
    """The preset a pilot starts from, built in a worker (or why it could not be)."""

    name: str
    cfg: Any = None
    error: str = ""
