"""Quitting while a run trains, and keeping that run alive when the UI goes away.

Three ways the UI can end while its run trains:
- the user quits and picks "stop": checkpoint, stop, wait, exit;
- the user quits and picks "background": checkpoint and stop here, then a detached
  headless `gpttui --resume` carries the run on (own session, no terminal);
- the terminal is lost (SSH dropped: SIGHUP, then EIO on the tty) or the UI crashed: the
  UI exits, the process ignores SIGHUP, drops its terminal output and trains to the end.

`terminal.SafeLinuxDriver` turns a lost terminal into an orderly exit of the UI;
`ask_quit` is the quit dialog; `hand_off` runs after `App.run()` returns (or raises) and
decides the run's fate.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from gpttui.proc import spawn_gpttui
from gpttui.tui.screens.dialogs import ChoiceScreen

if TYPE_CHECKING:
    from gpttui.tui.app import GptTuiApp

QUIT_DETAIL = ("Keep training: the run is checkpointed and continues in a detached "
               "`gpttui --resume` process; open gpttui again to watch it.")


def ask_quit(app: GptTuiApp) -> None:
    """Quit at once, or, while a run trains, ask whether to stop it or keep it training."""
    if not app.session_active():
        app.exit()
        return

    def chosen(choice: str | None) -> None:
        if choice not in ("stop", "background"):
            return
        app.exit_choice = choice
        if choice == "background":
            app.exit()
            return
        app.stop_session()
        session = app.session

        def wait_then_exit() -> None:
            if session is not None:
                session.join()
            app.call_from_thread(app.exit)

        app.run_worker(wait_then_exit, thread=True, group="quit", exit_on_error=False)

    app.push_screen(ChoiceScreen(
        "A run is training. Quit how?",
        [("stop", "Stop (checkpoint)"), ("background", "Keep training"), ("cancel", "Cancel")],
        QUIT_DETAIL), chosen)


def detach_to_background(app: GptTuiApp) -> None:
    """Checkpoint and stop the run here, then continue it in a detached `gpttui --resume`
    (its own session, stdin closed, output in the run folder's background.log)."""
    session = app.session
    assert session is not None and session.run_id
    session.stop()
    session.join()
    run_dir = Path(app.services.get_run(session.run_id).path)
    spawn_gpttui(["--resume", session.run_id], run_dir / "background.log")
    print(f"gpttui: run {session.run_id} continues in the background "
          f"(log: {run_dir / 'background.log'}); run `gpttui` to watch it.")


def silence_terminal() -> None:
    """Point stdout/stderr at /dev/null: the tty is gone (EIO on write) or must not be
    written any more; the run's own files keep every message."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        try:
            os.dup2(devnull, fd)
        except OSError:
            pass
    os.close(devnull)


def hand_off(app: GptTuiApp) -> None:
    """After the UI has ended: finish or hand off a run that is still training.

    'stop' waits for the stop's checkpoint; 'background' detaches a `gpttui --resume`;
    anything else (terminal lost, UI crash) keeps training here, silently, to the end."""
    session, live = app.session, app.live
    if session is None or live is None or not session.is_alive() or getattr(session, "detached", False):
        return  # nothing trains here (a served tab's runs train in their own process)
    if app.exit_choice == "stop":
        session.join()
        return
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if app.exit_choice == "background" and session.run_id:
        detach_to_background(app)
        return
    silence_terminal()
    session.join()
