"""A run folder's health: damaged files noted (never hidden), and whether its lock is held.

`gpttui runs`, `runs --json` and the TUI's Runs screen list a run whose run.json or
status.json does not parse as damaged, with what still works, instead of skipping it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gpttui.errors import RunError, first_line

try:  # POSIX advisory locks; elsewhere a held lock is not detectable here
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

DAMAGED = "damaged"  # listing-only state: status.json unreadable (its checkpoint may be fine)


_DAMAGE_HINTS = {
    "status.json": "the checkpoint is separate: `gpttui --resume RUN` continues from it and writes a new status.json",
    "run.json": "only the listing's details are lost: resume and sample still work from the checkpoint",
}


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in a run's file ({} if missing); RunError naming the damage and what
    still works if it is not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        hint = _DAMAGE_HINTS.get(path.name, "fix or restore the file").replace("RUN", path.parent.name)
        raise RunError(f"{path}: damaged ({first_line(e, 80)})", hint) from None
    if not isinstance(data, dict):
        hint = _DAMAGE_HINTS.get(path.name, "fix or restore the file").replace("RUN", path.parent.name)
        raise RunError(f"{path}: damaged (not a JSON object)", hint)
    return data


def read_or_note(path: Path, damage: list[str]) -> dict[str, Any]:
    """The JSON object in `path` ({} if missing); if it is damaged, {} and its name noted."""
    try:
        return read_json(path)
    except RunError:
        damage.append(path.name)
        return {}


def damage_note(run: Any, damage: list[str]) -> str | None:
    """'status.json damaged; resume and sample work from its checkpoint' (None if whole)."""
    if not damage:
        return None
    works = "resume and sample work from its checkpoint" if run.latest_checkpoint() else "it has no checkpoint"
    return f"{' and '.join(damage)} damaged; {works}"


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
