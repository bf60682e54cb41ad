"""SVG snapshots (fixed size, fake clock/device/events): home, editor, training, sampling,
compare. Update with `pytest tests/tui/test_snapshots.py --snapshot-update` after checking
the report."""

from __future__ import annotations

import time

from conftest import settle as _settle
from textual.widgets import Input
from tui_fakes import script, services, write_run

from gpttui import events as E
from gpttui.tui.app import make_app


async def home_ready(pilot, timeout: float = 20.0) -> None:
    """Wait until Home has its presets with final estimates (a CPU preset's time waits for
    the measured peak, a second message: fixed settle rounds lost that race under load)."""
    from gpttui.tui.peaks import waits_for_peak
    from gpttui.tui.screens.home import HomeScreen

    deadline = time.monotonic() + timeout
    while True:
        home = pilot.app.screen
        if not isinstance(home, HomeScreen) or (home.rows and not any(waits_for_peak(r.est) for r in home.rows)):
            return  # (only Home's own picture depends on it)
        assert time.monotonic() < deadline, "Home did not finish loading"
        await pilot.pause(0.05)


async def settle(pilot, delay: float = 0.05) -> None:
    """Wait for workers and Home's estimates; stop cursors blinking so the picture is stable."""
    await home_ready(pilot)
    await _settle(pilot, delay)
    for inp in pilot.app.screen.query(Input):
        inp.cursor_blink = False
    await _settle(pilot, delay)


def test_home_120x40(snap_compare) -> None:
    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=settle)


def test_home_80x24(snap_compare) -> None:
    assert snap_compare(make_app(services()), terminal_size=(80, 24), run_before=settle)


def test_editor(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "e")
        await settle(pilot)
        pilot.app.screen.query_one("#f-n_layer", Input).value = "x"
        await settle(pilot)

    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=run_before)


def cpu_services():
    """A CPU machine (its matmul peak 'measures' 0.125 TFLOPS: see tui_fakes.services)."""
    from gpttui.hardware import DeviceInfo

    dev = DeviceInfo("cpu", "CPU (Test, 2 threads)", 0, 16 * 2**30, None, None,
                     "CPU: no table peak; measured with a matmul when needed", None)
    return services(detect_device=lambda: dev)


async def open_editor(pilot) -> None:
    await settle(pilot)
    await pilot.press("down", "e")
    await settle(pilot)


def test_editor_cpu_estimate_120x40(snap_compare) -> None:
    assert snap_compare(make_app(cpu_services()), terminal_size=(120, 40), run_before=open_editor)


def test_editor_cpu_estimate_80x24(snap_compare) -> None:
    assert snap_compare(make_app(cpu_services()), terminal_size=(80, 24), run_before=open_editor)


def test_home_cpu_80x24(snap_compare) -> None:
    assert snap_compare(make_app(cpu_services()), terminal_size=(80, 24), run_before=settle)


def test_training(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "r")
        await settle(pilot, 0.2)
        pilot.app.drain_events()
        pilot.app.screen.refresh_view(chart=True)
        await settle(pilot)

    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=run_before)


def test_sampling(snap_compare, isolated_dirs) -> None:
    data, _ = isolated_dirs
    write_run(data, "20231114-a", "tiny", script("20231114-a", 20))

    def fake_stream(run, prompt, **kw):
        yield from ["def ", "main", "():\n", "    return ", "42\n"]

    async def run_before(pilot) -> None:
        await settle(pilot)
        pilot.app.open_sampling("20231114-a")
        await settle(pilot)
        pilot.app.screen.query_one("#s-prompt", Input).value = "# "
        await pilot.press("ctrl+g")
        await settle(pilot)

    app = make_app(services(stream_sample=fake_stream, save_sample=lambda run, *a: run.path / "samples" / "s.json"))
    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_compare(snap_compare, isolated_dirs) -> None:
    data, _ = isolated_dirs
    write_run(data, "20231114-a", "tiny", script("20231114-a", 40))
    slow = [E.EvalResult("20231114-b", iter=e.iter, train_loss=e.train_loss, val_loss=e.val_loss + 0.4,
                         best_val_loss=e.val_loss + 0.4, tokens_seen=e.tokens_seen, time=0)
            if isinstance(e, E.EvalResult) else e for e in script("20231114-b", 40)]
    write_run(data, "20231114-b", "tiny", slow)

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("space", "down", "c")
        await settle(pilot)

    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=run_before)
