"""Control requests to a run trained by another process, through a file in its folder.

A browser tab (`gpttui serve`) trains its runs in detached `gpttui --run` processes, so the
tab can close while the run goes on; its pause/resume/save/stop keys write `control` in the
run folder and the headless driver, which polls it four times a second, obeys. Files, not
signals: any gpttui that can read the run folder can steer the run, and nothing is lost
while the trainer is between polls (the newest request wins).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from gpttui.fsutil import atomic_write_text

ACTIONS = ("pause", "resume", "save", "stop")
NAME = "control"


def request(run_path: Path | str, action: str) -> None:
    """Ask the process training the run at `run_path` to `action`."""
    if action not in ACTIONS:
        raise ValueError(f"unknown control action {action!r}")
    atomic_write_text(Path(run_path) / NAME, action + "\n")


def take(run_path: Path | str) -> str | None:
    """The pending request (removed), or None."""
    path = Path(run_path) / NAME
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    with contextlib.suppress(OSError):
        os.unlink(path)
    return text if text in ACTIONS else None


def obey(run_path: Path | str, trainer: Any) -> str | None:
    """Apply a pending request to `trainer` (a `gpttui.train.trainer.Trainer`); returns it."""
    action = take(run_path)
    if action is not None:
        {"pause": trainer.pause, "resume": trainer.resume, "save": trainer.save_now, "stop": trainer.stop}[action]()
    return action
