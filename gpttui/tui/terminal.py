"""A Textual Linux driver that survives losing its terminal (SSH dropped, tmux killed).

When the terminal goes away the process gets SIGHUP (usually followed by SIGCONT), then
reads and writes on the tty fail with EIO. Textual's stock driver then wedges: its writer
thread dies on the first EIO so the UI thread blocks forever on the writer's full queue,
SIGCONT restarts application mode on the dead tty, and the input threads spin — the
training in the same process slows to a crawl. This driver instead, on SIGHUP or on the
first EIO: stops reading input, points stdout/stderr at /dev/null, ignores the SIGCONT
restart and asks the app to exit; `quitting.hand_off` then lets the run finish headless.

It relies on two LinuxDriver internals (`_file`, `run_input_thread`) of textual 8.x.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from textual.drivers.linux_driver import LinuxDriver

from gpttui.tui.quitting import silence_terminal


class _GuardedFile:
    """The driver's output file: an OSError (EIO: tty gone) reports the loss, never raises."""

    def __init__(self, file: Any, on_lost: Any) -> None:
        self._file, self._on_lost = file, on_lost

    def write(self, text: str) -> None:
        try:
            self._file.write(text)
        except (OSError, ValueError):
            self._on_lost()

    def flush(self) -> None:
        try:
            self._file.flush()
        except (OSError, ValueError):
            self._on_lost()

    def fileno(self) -> int:
        return self._file.fileno()


class SafeLinuxDriver(LinuxDriver):
    """LinuxDriver plus terminal-loss handling (see the module docstring)."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.lost = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._file = _GuardedFile(sys.__stderr__, self.terminal_lost)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self.terminal_lost())

    def start_application_mode(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        super().start_application_mode()

    def terminal_lost(self) -> None:
        """Stop using the terminal and ask the app to exit. Safe from a signal handler
        and from any thread; only the first call acts."""
        if self.lost:
            return
        self.lost = True
        self.exit_event.set()  # the input thread stops at its next select (0.1 s)
        silence_terminal()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._app.exit)

    def _sigcont_application(self, *args: Any) -> None:
        if not self.lost:  # SIGCONT after a hangup must not restart on the dead tty
            super()._sigcont_application(*args)

    def run_input_thread(self) -> None:
        try:
            super().run_input_thread()
        except OSError:  # EIO: the tty is gone
            self.terminal_lost()
