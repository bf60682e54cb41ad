"""Control requests to a run trained by another process, through files in its folder.

A browser tab (`gpttui serve`) trains its runs in detached `gpttui --run` processes, so the
tab can close while the run goes on; its pause/resume/save/stop keys write a request in the
run folder and the headless driver, which polls four times a second, obeys. Files, not
signals: any gpttui that can read the run folder can steer the run.

Nothing is lost: each request is its own file (`control.<ns>.<pid>.<n>`, written atomically;
a hand-written `control` holding one word is read too), and the trainer claims a file by
renaming it away before reading it, so a request written at any moment is either claimed
whole or left for the next poll. Requests are applied in the order they were written.
Anything else (an unknown word, bytes that are not UTF-8) is ignored and reported, never fatal.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpttui.fsutil import atomic_write_text

ACTIONS = ("pause", "resume", "save", "stop")
NAME = "control"
_seq = itertools.count()


def request(run_path: Path | str, action: str) -> None:
    """Ask the process training the run at `run_path` to `action`."""
    if action not in ACTIONS:
        raise ValueError(f"unknown control action {action!r}")
    name = f"{NAME}.{time.time_ns():020d}.{os.getpid()}.{threading.get_ident()}.{next(_seq)}"
    atomic_write_text(Path(run_path) / name, action + "\n")


def _pending(folder: Path) -> list[Path]:
    """Request files, oldest first (atomic writes' temporaries and claimed files start with '.')."""
    found = []
    for p in folder.glob(NAME + "*"):
        if p.name == NAME or p.name.startswith(NAME + "."):
            with contextlib.suppress(OSError):
                found.append((p.stat().st_mtime_ns, p.name, p))
    return [p for _, _, p in sorted(found)]


def _claim(path: Path) -> bytes | None:
    """The request in `path`, claimed by an atomic rename (None: another taker won, or unreadable)."""
    claimed = path.with_name(f".{NAME}-claimed.{os.getpid()}.{uuid.uuid4().hex}")
    try:
        os.rename(path, claimed)
    except OSError:
        return None
    try:
        return claimed.read_bytes()
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(claimed)


def take(run_path: Path | str, warn: Callable[[str], None] | None = None) -> list[str]:
    """The pending requests, oldest first, each removed. What is not a request (an unknown
    word, bytes that are not UTF-8) is dropped and described to `warn`."""
    out: list[str] = []
    try:
        files = _pending(Path(run_path))
    except OSError:
        return out
    for path in files:
        data = _claim(path)
        if data is None:
            continue
        try:
            word = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            word = None
        if word in ACTIONS:
            out.append(word)
        elif warn is not None:
            shown = repr(word[:40]) if word is not None else f"{len(data)} bytes that are not UTF-8"
            warn(f"control file {path.name}: ignored {shown} (requests are one of {', '.join(ACTIONS)})")
    return out


def obey(run_path: Path | str, trainer: Any) -> list[str]:
    """Apply the pending requests to `trainer` (a `gpttui.train.trainer.Trainer`), in order;
    returns them. Ignored ones become warnings in the run's log."""
    actions = take(run_path, warn=lambda text: trainer.log(text, "warning"))
    for action in actions:
        {"pause": trainer.pause, "resume": trainer.resume, "save": trainer.save_now, "stop": trainer.stop}[action]()
    return actions
