"""A run folder's health: damaged files noted (never hidden), and whether its lock is held.

`gpttui runs`, `runs --json` and the TUI's Runs screen list a run whose run.json or
status.json does not parse as damaged, with what still works, instead of skipping it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

try:  # POSIX advisory locks; elsewhere a held lock is not detectable here
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

DAMAGED = "damaged"  # listing-only state: status.json unreadable (its checkpoint may be fine)


def read_or_note(path: Path, damage: list[str]) -> dict[str, Any]:
    """The JSON object in `path` ({} if missing); if it is damaged, {} and its name noted."""
    from gpttui.errors import RunError
    from gpttui.runs.store import _read_json

    try:
        return _read_json(path)
    except RunError:
        damage.append(path.name)
        return {}


def damage_note(run: Any, damage: list[str]) -> str | None:
    """'status.json damaged; resume and sample work from its checkpoint' (None if whole)."""
    if not damage:
        return None
    works = "resume and sample work from its checkpoint" if run.latest_checkpoint() else "it has no checkpoint"
    return f"{' and '.join(damage)} damaged; {works}"


def damaged_summary(run: Any, note: str) -> Any:
    """A RunSummary for a folder whose files say nothing usable."""
    from gpttui.runs.store import RunSummary

    t = mtime(run.path)
    return RunSummary(id=run.id, preset="", state=DAMAGED, iter=0, max_iters=0, tokens_seen=0,
                      best_val_loss=None, tokens_per_s=None, mfu=None, params=None, created=t, updated=t,
                      duration_s=None, alive=run.lock_held(), damaged=note,
                      has_checkpoint=run.latest_checkpoint() is not None)


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def lock_held(path: Path) -> bool:
    """Whether another live process holds the flock on `path` (False where unknown)."""
    if fcntl is None or not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # drops the shared lock if we got it
    return False
