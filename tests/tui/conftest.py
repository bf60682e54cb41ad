"""TUI test fixtures: fixed presets in the private config dir, UTC clock."""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest
from tui_fakes import FakeSession, write_presets

# How long a Pilot may wait for the screen's widgets to process what was queued (after each
# press, click and pause, and at run_test's start). Textual waits 30 s of wall time, then
# raises WaitForScreenTimeout; at load 8-20 on 2 cores a process gets 1/4-1/10 of a core, and
# composing a screen of ~300 widgets (the editor) is seconds of CPU. The wait is on a condition
# (every queue drained), so a long limit costs nothing when the machine is idle.
PILOT_WAIT_S = 600.0


@pytest.fixture(autouse=True)
def patient_pilot(monkeypatch):
    """Every Pilot wait (press, click, pause, run_test's start) waits up to PILOT_WAIT_S for
    the screen's queues to drain, instead of Textual's 30 s."""
    from textual.pilot import Pilot

    drain = Pilot._wait_for_screen

    async def wait_for_screen(self, timeout: float = PILOT_WAIT_S) -> bool:
        return await drain(self, timeout=max(timeout, PILOT_WAIT_S))

    monkeypatch.setattr(Pilot, "_wait_for_screen", wait_for_screen)


@pytest.fixture(autouse=True)
def tui_env(isolated_dirs, monkeypatch):
    """Write the test presets; fix the time zone so clock times render the same."""
    data, conf = isolated_dirs
    write_presets(conf)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    FakeSession.instances.clear()
    monkeypatch.delenv("NO_COLOR", raising=False)
    return data, conf


async def settle(pilot, delay: float = 0.05) -> None:
    """Let workers finish and their messages be handled (tables size their columns as rows
    are added: gpttui.tui.widgets.tables.add_rows)."""
    for _ in range(3):
        await wait_workers(pilot.app)
        await pilot.pause(delay)


async def wait_for(pilot, condition, timeout: float = 300.0, what: str = "") -> None:
    """Wait until `condition()` holds, checking every 20 ms; fail after `timeout` seconds
    (generous: a loaded 2-core machine can be 20x slower than an idle one)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or condition}")
        await asyncio.sleep(0.02)


async def wait_workers(app) -> None:
    """Wait until no worker runs. An exclusive worker cancelled by a newer one of its group
    (the editor's `_estimate` on each keystroke) is expected, not a failure: wait for the
    others (under load the old one can still be waited on when the new one cancels it)."""
    from textual.worker import WorkerCancelled

    for _ in range(50):
        try:
            await app.workers.wait_for_complete()
            return
        except WorkerCancelled:
            await asyncio.sleep(0)
    await app.workers.wait_for_complete()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run `async def` tests in a fresh event loop (no async plugin is installed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None


def text_of(widget) -> str:
    """The plain text a Static (or Gauge/chart) currently shows."""
    from rich.console import Console

    content = widget.content
    if isinstance(content, str):
        return content
    console = Console(width=200, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(content)
    return console.export_text()
