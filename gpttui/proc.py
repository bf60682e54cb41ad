"""Processes: is one alive (the run store's locks, dataset preparation's stale folders), and
the one way gpttui starts a detached `gpttui` of its own (a served tab's run, a run quit
to the background)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# what a served tab (or the TUI's own terminal) sets and a detached trainer must not inherit:
# textual-serve's driver would make the child wait for a browser that never connects
SESSION_ENV = ("TEXTUAL_DRIVER", "GPTTUI_SERVED", "COLUMNS", "ROWS")


def spawn_gpttui(args: list[str], log_path: Path) -> subprocess.Popen:
    """`python -m gpttui ARGS --plain` in its own session, stdin closed, output appended to
    `log_path`, without the UI session's environment: it outlives this process."""
    env = {k: v for k, v in os.environ.items() if k not in SESSION_ENV}
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "gpttui", *args, "--plain"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True, env=env)


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists on this host (permission errors count as alive)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process stays a zombie until its parent reaps it (some container inits never
    do): signal 0 still reaches it, but it trains nothing. Linux only; elsewhere False."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
