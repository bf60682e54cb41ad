"""Textual messages that carry frozen `gpttui.events` from worker threads to the UI.

Threads only ever call `post_message` with one of these (thread-safe, never blocks).
High-rate ones (`StepMessage`, `PrepareMessage`) may replace a pending message of the same
kind: each StepMetrics carries its recent loss history, so dropping a superseded one while
the UI is busy loses nothing the screen shows.
"""

from __future__ import annotations

from textual.message import Message

from gpttui.events import Event, PrepareProgress, StepMetrics


class RunEvent(Message):
    """An event of the run this app is training (or following)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class StepMessage(RunEvent):
    """A StepMetrics; a newer one supersedes a pending older one."""

    event: StepMetrics

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StepMessage) and message.event.run_id == self.event.run_id


class PrepareMessage(RunEvent):
    """Dataset preparation progress; only the latest matters."""

    event: PrepareProgress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PrepareMessage)


class SessionFailed(Message):
    """Starting a run failed before the trainer ran (bad dataset, locked run, ...)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


def wrap(event: Event) -> RunEvent:
    """The message for `event` (replaceable kinds get their own class)."""
    if isinstance(event, StepMetrics):
        return StepMessage(event)
    if isinstance(event, PrepareProgress):
        return PrepareMessage(event)
    return RunEvent(event)
