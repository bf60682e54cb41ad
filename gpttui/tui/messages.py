"""How events cross from worker threads to the UI.

The trainer's events go into an `EventInbox`, not one Textual message each: at one
StepMetrics per ~40 ms step, a message per event kept the UI thread (and with it the GIL
the trainer needs to launch kernels) busy dispatching. The app drains the inbox at its
redraw rate; an event that changes what the screen says at once (a state change, an eval,
a failure) also posts one `InboxReady`, which replaces a pending one.
"""

from __future__ import annotations

from collections import deque

from textual.message import Message

from gpttui.events import Event, PrepareProgress, Progress, StepMetrics

ROUTINE = (StepMetrics, PrepareProgress, Progress)  # frequent; shown at the next redraw tick


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


class SessionFailed(Message):
    """Starting a run failed before the trainer ran (bad dataset, locked run, ...)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
