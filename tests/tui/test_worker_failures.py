"""Nothing fails silently: a worker's unexpected exception (the app's or a screen's)
reaches the app's one handler, which notifies one line and appends the traceback to
<data dir>/logs/tui-errors.log; an expected GpttuiError stays one line. TUI messages are
dataclasses in one module, and workers post results instead of assigning screen state."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import threading

from conftest import settle
from test_runs_sampling import two_runs
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input
from tui_fakes import services

import gpttui.tui
from gpttui.errors import DataError
from gpttui.tui.app import make_app
from gpttui.tui.failures import ReportsWorkerFailures, log_path
from gpttui.tui.screens.editor import EditorScreen
from gpttui.tui.screens.runs import RunsScreen


def notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def until(pilot, predicate, timeout: float = 300.0) -> None:
    """Pause until `predicate()` (settle's wait_for_complete re-raises a failed worker)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


def boom(*_a, **_k):
    raise RuntimeError("boom in a worker")


async def test_a_screen_workers_runtime_error_is_notified_and_logged(isolated_dirs) -> None:
    """Home's loading worker (a screen's) fails on a bug: before, the error vanished."""
    data, _ = isolated_dirs
    app = make_app(services(list_presets=boom))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: any("boom" in n for n in notes(app)))
        await pilot.pause(0.2)
        path = data / "logs" / "tui-errors.log"
        assert path == log_path()
        failed = [n for n in notes(app) if "RuntimeError: boom in a worker" in n]
        assert len(failed) == 1 and str(path) in failed[0] and "\n" not in failed[0], notes(app)
        log = path.read_text()
        assert "Traceback (most recent call last)" in log and "RuntimeError: boom in a worker" in log
        assert "_load" in log and "group home-load" in log  # which worker, and where it failed


async def test_the_apps_own_worker_failure_reaches_the_same_handler(isolated_dirs) -> None:
    data, _ = isolated_dirs
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.run_worker(boom, name="probe", thread=True, exit_on_error=False)
        await until(pilot, lambda: any("probe" in n for n in notes(app)))
        assert any("Internal error in probe: RuntimeError: boom in a worker" in n for n in notes(app)), notes(app)
        assert "worker probe" in (data / "logs" / "tui-errors.log").read_text()
        app.run_worker(boom, name="probe", thread=True, exit_on_error=False)  # a poller failing again
        await pilot.pause(0.5)
        assert sum("probe" in n for n in notes(app)) == 1
        assert (data / "logs" / "tui-errors.log").read_text().count("worker probe") == 1


async def test_an_expected_error_stays_one_line_without_a_log(isolated_dirs) -> None:
    data, _ = isolated_dirs
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)

        def fails() -> None:
            raise DataError("dataset 'x' is not prepared", "run gpttui prepare")

        app.run_worker(fails, thread=True, exit_on_error=False)
        await until(pilot, lambda: any("not prepared" in n for n in notes(app)))
        assert "dataset 'x' is not prepared — run gpttui prepare" in notes(app)
        assert not (data / "logs").exists()


def _tui_classes():
    for mod in pkgutil.walk_packages(gpttui.tui.__path__, "gpttui.tui."):
        module = importlib.import_module(mod.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                yield cls


def test_every_message_is_a_dataclass_in_the_messages_module():
    messages = [c for c in _tui_classes() if issubclass(c, Message)]
    assert messages
    elsewhere = [f"{c.__module__}.{c.__name__}" for c in messages if c.__module__ != "gpttui.tui.messages"]
    assert not elsewhere
    assert all(dataclasses.is_dataclass(c) for c in messages), [c for c in messages if not dataclasses.is_dataclass(c)]


def test_every_screen_that_runs_workers_forwards_their_failures():
    def runs_workers(cls) -> bool:
        return any("@work(" in inspect.getsource(k) for k in cls.__mro__ if k.__module__.startswith("gpttui."))

    screens = [c for c in _tui_classes() if issubclass(c, Screen) and runs_workers(c)]
    assert len(screens) >= 7
    assert [c.__name__ for c in screens if not issubclass(c, ReportsWorkerFailures)] == []


async def test_workers_post_results_instead_of_assigning_screen_state(isolated_dirs, monkeypatch) -> None:
    """Runs' marked list after a delete and the editor's preset after a save change on the
    UI thread only (before, the delete and save workers assigned them from their thread)."""
    data, _ = isolated_dirs
    two_runs(data)
    ui = threading.get_ident()
    off_thread: list[str] = []
    for cls, names in ((RunsScreen, {"marked", "runs"}), (EditorScreen, {"preset", "saved_values", "values", "cfg"})):
        real = cls.__setattr__

        def guard(self, name, value, _real=real, _names=names):
            if name in _names and threading.get_ident() != ui:
                off_thread.append(f"{type(self).__name__}.{name}")
            _real(self, name, value)

        monkeypatch.setattr(cls, "__setattr__", guard)
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("space", "d")
        await settle(pilot)
        await pilot.click("#choice-delete")
        await settle(pilot)
        assert app.screen.marked == [] and len(app.screen.runs) == 1
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("down", "n")
        await settle(pilot)
        app.screen.query_one("#save-name", Input).value = "mine"
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen.preset == "mine" and any("Saved preset 'mine'" in n for n in notes(app))
    assert off_thread == []


async def test_a_bug_starting_a_run_fails_the_run_and_is_logged_once(isolated_dirs) -> None:
    """Before, the run's screen said 'RuntimeError: …' and the traceback was lost."""
    from tui_fakes import FakeSession

    data, _ = isolated_dirs

    class Broken(FakeSession):
        def start(self) -> None:
            raise RuntimeError("bug while preparing")

    app = make_app(services(new_session=lambda cfg, preset, listener: Broken(cfg, preset, listener)))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "r")
        await until(pilot, lambda: any("bug while preparing" in n for n in notes(app)))
        await pilot.pause(0.3)
        assert app.live.state == "failed" and "RuntimeError: bug while preparing" in app.live.message
        said = [n for n in notes(app) if "bug while preparing" in n]
        assert len(said) == 1 and "tui-errors.log" in said[0], said
        assert "_start_session" in (data / "logs" / "tui-errors.log").read_text()


async def test_starting_a_run_on_an_unusable_data_dir_is_the_clis_one_line(isolated_dirs, tmp_path, monkeypatch) -> None:
    """Before: "Internal error in _start_session: OSError: [Errno 30] Read-only file system"."""
    import errno

    from tui_fakes import FakeSession

    blocker = tmp_path / "afile"
    blocker.write_text("")
    monkeypatch.setenv("GPTTUI_DATA_DIR", str(blocker / "data"))  # cannot be created
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await until(pilot, lambda: any("cannot use GPTTUI_DATA_DIR" in n for n in notes(app)))
        assert not any("Internal error" in n for n in notes(app)), notes(app)

    def read_only(self) -> None:
        raise OSError(errno.EROFS, "Read-only file system", "/data/runs/x/config.json")

    monkeypatch.setenv("GPTTUI_DATA_DIR", str(tmp_path / "ok"))
    monkeypatch.setattr(FakeSession, "start", read_only)
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await until(pilot, lambda: any("read-only" in n for n in notes(app)))
        line = next(n for n in notes(app) if "read-only" in n)
        assert line.startswith("cannot write the run's files: the file system is read-only") and "\n" not in line
        assert not any("Internal error" in n for n in notes(app)), notes(app)
