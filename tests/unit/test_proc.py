"""The one way gpttui starts a detached gpttui: its own session, stdin closed, output to the
log, and none of a served tab's environment (both callers: a served tab's run and a run quit
to the background)."""

from __future__ import annotations

import subprocess
import sys

from gpttui import proc


def test_spawn_gpttui_drops_the_session_environment(tmp_path, monkeypatch):
    seen = {}

    class FakePopen:
        def __init__(self, argv, **kw):
            seen.update(kw, argv=argv)

    monkeypatch.setenv("GPTTUI_SERVED", "1")
    monkeypatch.setenv("TEXTUAL_DRIVER", "textual_serve.driver:WebDriver")
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("GPTTUI_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    proc.spawn_gpttui(["--resume", "r1"], tmp_path / "background.log")
    assert seen["argv"] == [sys.executable, "-m", "gpttui", "--resume", "r1", "--plain"]
    assert not {"GPTTUI_SERVED", "TEXTUAL_DRIVER", "COLUMNS"} & set(seen["env"])
    assert seen["env"]["GPTTUI_DATA_DIR"] == str(tmp_path)
    assert seen["start_new_session"] is True and seen["stdin"] is subprocess.DEVNULL
    assert (tmp_path / "background.log").exists()


def test_the_background_hand_off_uses_it(monkeypatch, tmp_path):
    """tui.quitting's 'keep training' path goes through spawn_gpttui (it used to keep the
    served-tab environment)."""
    from gpttui.tui import quitting

    calls = []
    monkeypatch.setattr(quitting, "spawn_gpttui", lambda args, log: calls.append((args, log)))

    class Session:
        run_id = "r9"

        def stop(self):
            pass

        def join(self):
            pass

    class Run:
        path = tmp_path

    class App:
        session = Session()

        class services:
            @staticmethod
            def get_run(run_id):
                return Run()

    quitting.detach_to_background(App())
    assert calls == [(["--resume", "r9"], tmp_path / "background.log")]
