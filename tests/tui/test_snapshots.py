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


async def home_ready(pilot, timeout: float = 300.0) -> None:
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

async def run_first_preset(pilot) -> None:
    """Start Home's first preset and draw the Training screen with every event so far."""
    await settle(pilot)
    await pilot.press("down", "r")
    await settle(pilot, 0.2)
    pilot.app.drain_events()
    pilot.app.screen.refresh_view(chart=True)
    await settle(pilot)



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
    from gpttui.plan.hardware import DeviceInfo

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
    run_before = run_first_preset

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


# -- Runs, a followed run, Help, the quit dialog, a failed run ---------------------------------
def _runs_on_disk(data) -> None:
    """A finished, a stopped and a failed run (the Runs table's states)."""
    write_run(data, "20231114-a", "tiny", script("20231114-a", 20) + [
        E.Finished("20231114-a", state=E.FINISHED, iter=20, best_val_loss=3.5, tokens_seen=2560, elapsed_s=5.0, time=0)])
    write_run(data, "20231114-b", "tiny", script("20231114-b", 12), state=E.STOPPED, iters=12)
    write_run(data, "20231114-c", "gpt2-small", script("20231114-c", 3) + [
        E.Failed("20231114-c", reason="CUDA out of memory", hint="lower batch_size", iter=3, time=0)],
        state=E.FAILED, iters=3)


def test_runs_table(snap_compare, isolated_dirs) -> None:
    data, _ = isolated_dirs
    _runs_on_disk(data)

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)

    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=run_before)


def test_run_followed(snap_compare, isolated_dirs) -> None:
    """A run another process of this host trains (its pid alive: ours), followed from its files."""
    import json
    import os

    from gpttui.runs.store import host

    data, _ = isolated_dirs
    path = write_run(data, "20231114-live", "tiny", script("20231114-live", 14), state=E.TRAINING, iters=14)
    status = json.loads((path / "status.json").read_text())
    (path / "status.json").write_text(json.dumps({**status, "pid": os.getpid(), "host": host()}))

    async def run_before(pilot) -> None:
        await settle(pilot)
        pilot.app.open_run("20231114-live")
        await settle(pilot, 0.3)

    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=run_before)


def test_help(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=run_before)


def test_quit_dialog_while_training(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "r")
        await settle(pilot, 0.2)
        pilot.app.drain_events()
        await pilot.press("q")
        await settle(pilot)

    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=run_before)


def test_failed_run(snap_compare) -> None:
    """The run this window trains dies: the Training screen says why and what to change."""
    from tui_fakes import FakeSession

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "r")
        await settle(pilot, 0.2)
        session = FakeSession.instances[-1]
        session.alive = False
        session.listener(E.Failed(session.run_id, reason="CUDA out of memory at iter 20 (batch_size 12)",
                                  hint="lower batch_size or set batch_size = 'auto'", iter=20, time=0))
        pilot.app.drain_events()
        pilot.app.screen.refresh_view(chart=True)
        await settle(pilot)
        pilot.app.clear_notifications()  # the toast times out in real time: not part of the picture
        await settle(pilot)

    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=run_before)
