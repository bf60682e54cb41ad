"""A REAL tiny CPU run started from the TUI: the trainer thread's events reach the
training screen, stop checkpoints, the run appears on the Runs screen, and sampling works."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from conftest import settle, text_of
from textual.widgets import DataTable, Static

from gpttui import events as E
from gpttui.tui.app import make_app
from gpttui.tui.screens.training import TrainingScreen

pytestmark = pytest.mark.slow


def write_dataset(data_dir, name: str = "tiny-ds", train: int = 20_000, val: int = 2_000) -> None:
    """Raw uint16 tokens + meta.json, as the data store writes them."""
    folder = data_dir / "datasets" / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        rng.integers(0, 500, n, dtype=np.uint16).tofile(folder / f"{split}.bin")
    meta = {"format_version": 1, "tokenizer": "gpt2", "vocab_size": 50257, "dtype": "uint16",
            "splits": {"train": {"tokens": train, "documents": 10}, "val": {"tokens": val, "documents": 1}},
            "skipped": 0, "sources": [], "split": {}}
    (folder / "meta.json").write_text(json.dumps(meta))


async def wait_for(pilot, cond, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.1)


async def test_real_tiny_cpu_run(isolated_dirs, monkeypatch) -> None:
    data, conf = isolated_dirs
    write_dataset(data)
    # many iterations so it is still training when we stop it
    p = conf / "presets" / "tiny.toml"
    p.write_text(p.read_text().replace("max_iters = 40", "max_iters = 100000").replace("lr_decay_iters = 40", "lr_decay_iters = 100000"))
    from tui_fakes import fake_device, user_presets

    from gpttui.tui.services import Services

    app = make_app(Services(detect_device=fake_device, list_presets=user_presets))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "r")
        await wait_for(pilot, lambda: app.live is not None and app.live.step is not None and app.live.step.iter >= 3)
        scr = app.screen
        assert isinstance(scr, TrainingScreen)
        first = app.live.step.iter
        await wait_for(pilot, lambda: app.live.step.iter > first + 2)
        scr.refresh_view()
        assert f"/{100000:,}" in text_of(scr.query_one("#iter", Static))
        await pilot.press("p")
        await wait_for(pilot, lambda: app.live.state == E.PAUSED)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.live.state == E.TRAINING)
        await pilot.press("x")
        await settle(pilot)
        await pilot.click("#choice-stop")
        await wait_for(pilot, lambda: app.live.state == E.STOPPED)
        run_id = app.live.run_id
        app.session.join(30)
        # stopping leaves a checkpoint of the last step (a "stop" one, or the eval/interval
        # checkpoint of that same step when one was just written)
        from gpttui.runs.store import get_run

        st = get_run(run_id).status()
        assert st["state"] == E.STOPPED and st["checkpoint_iter"] == st["iter"] > 0, st
        assert app.live.checkpoints and app.live.checkpoints[-1].iter == st["iter"]
        await pilot.press("escape", "u")
        await settle(pilot, 0.2)
        table = app.screen.query_one("#runs", DataTable)
        assert run_id in [str(k.value) for k in table.rows]
        assert (data / "runs" / run_id / "ckpt.pt").is_file()
        # resume it here: the screen shows the curve and best val loss from before at once
        stopped_at = st["iter"]
        app.resume_run(run_id)
        await wait_for(pilot, lambda: app.live.step is not None and app.live.step.iter > stopped_at)
        assert app.live.losses[0][0] < stopped_at and app.live.best_val is not None
        assert [i for i, _ in app.live.losses] == sorted({i for i, _ in app.live.losses})
        app.stop_session()
        await wait_for(pilot, lambda: app.live.state == E.STOPPED)
        app.session.join(30)


async def test_quit_to_background_hands_run_to_resume(isolated_dirs) -> None:
    """Quit while training, choose 'keep training in background': the run is checkpointed,
    this process lets go, and a detached `gpttui --resume` carries it on."""
    import os
    import signal

    from tui_fakes import fake_device, user_presets

    from gpttui.runs.store import get_run, pid_alive
    from gpttui.tui.quitting import hand_off
    from gpttui.tui.services import Services

    data, conf = isolated_dirs
    write_dataset(data)
    p = conf / "presets" / "tiny.toml"
    p.write_text(p.read_text().replace("max_iters = 40", "max_iters = 100000").replace("lr_decay_iters = 40", "lr_decay_iters = 100000"))
    app = make_app(Services(detect_device=fake_device, list_presets=user_presets))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "r")
        await wait_for(pilot, lambda: app.live is not None and app.live.step is not None and app.live.step.iter >= 3)
        await pilot.press("q")
        await settle(pilot)
        await pilot.click("#choice-background")
        await pilot.pause(0.2)
    assert app.exit_choice == "background" and app.session.is_alive()
    old_hup = signal.getsignal(signal.SIGHUP)
    try:
        hand_off(app)
    finally:
        signal.signal(signal.SIGHUP, old_hup)
    run = get_run(app.session.run_id)
    stopped = run.status()
    assert stopped["state"] == E.STOPPED and run.latest_checkpoint() is not None
    deadline = time.monotonic() + 120
    st = stopped
    try:
        while not (st.get("pid") != os.getpid() and st.get("iter", 0) > stopped["iter"] + 2):
            assert time.monotonic() < deadline, f"background resume did not train: {st}\n" + \
                (run.path / "background.log").read_text()
            time.sleep(0.5)
            st = run.status()
        assert st["state"] in (E.TRAINING, E.EVALUATING, E.SAVING) and pid_alive(st["pid"])
    finally:
        pid = run.status().get("pid")
        if pid and pid != os.getpid() and pid_alive(pid):  # the resume process this test started
            os.kill(pid, signal.SIGTERM)  # headless: checkpoint, then stop
            end = time.monotonic() + 60
            while time.monotonic() < end:
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our child: reap it
                        break
                except ChildProcessError:
                    break
                time.sleep(0.3)
    assert "resuming run" in (run.path / "background.log").read_text()
    assert run.status()["state"] == E.STOPPED
