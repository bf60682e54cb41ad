"""Failed workers: one handler for the whole app, so nothing fails silently.

Every worker runs with `exit_on_error=False` (a bug in a list or an estimate must not end
the app, nor a training run in it) and catches only what it expects, `GpttuiError`,
which it turns into its own message. Anything else ends the worker in Textual's ERROR
state. Textual tells the worker's node (a screen) and not the app, so each screen that
runs workers mixes in `ReportsWorkerFailures`, which forwards that state change to the
app; the app's one `@on(Worker.StateChanged)` handler calls `report`: a notification of
one line, and the traceback appended to `<data dir>/logs/tui-errors.log`; the same
failure of the same worker again (a polling worker) is reported once per session.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

from textual.worker import Worker, WorkerState

from gpttui.errors import GpttuiError

LOG_NAME = "tui-errors.log"


def log_path() -> Path:
    """Where the tracebacks of failed workers go (the data dir, next to runs and datasets)."""
    from gpttui.paths import data_dir

    return data_dir() / "logs" / LOG_NAME


def append_traceback(what: str, error: BaseException) -> Path:
    """Append `error`'s traceback, stamped with the time and `what` failed, to the log."""
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    with open(path, "a", encoding="utf-8") as f:  # a log: appended, never rewritten
        f.write(f"--- {stamp} {what}\n{text}\n")
    return path


def report(app: Any, worker: Worker) -> None:
    """Tell the user a worker failed: a `GpttuiError` as its one line; anything else (a
    bug) as one line naming the log file that holds its traceback."""
    error = worker.error
    if error is None:
        return
    seen = app.__dict__.setdefault("_failures_reported", set())
    key = (worker.name, worker.group, type(error).__name__, str(error))
    if key in seen:  # a polling worker (a followed run every 0.2 s) failing the same way again
        return
    seen.add(key)
    if isinstance(error, GpttuiError):
        app.notify(str(error), severity="error", timeout=10)
        return
    what = f"{type(error).__name__}: {error}".replace("\n", " ")
    try:
        where = f"traceback in {append_traceback(f'worker {worker.name} (group {worker.group})', error)}"
    except OSError as e:  # a full or read-only disk must not hide the failure itself
        where = f"the traceback could not be written ({e})"
    app.notify(f"Internal error in {worker.name or worker.group}: {what} — {where}", severity="error", timeout=20)


def failed(event: Worker.StateChanged) -> bool:
    return event.state == WorkerState.ERROR


class ReportsWorkerFailures:
    """Mixed into a screen that runs workers: its workers' failures reach the app's handler."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if failed(event):
            self.app.post_message(Worker.StateChanged(event.worker, event.state))  # type: ignore[attr-defined]
