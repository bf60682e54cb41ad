"""The Training screen as a newcomer reads it in each state of a run, at 80x24, 120x40 and
200x60 (issue #22's walk): what each state says before the first log, the keys the footer
offers in that state, a pause that does not eat the ETA, a log that wraps and follows its
end, a sparkline that draws nothing before it has a line, and the Sampling screen opened
from a run."""

from __future__ import annotations

import dataclasses
import time

import pytest
from conftest import settle, text_of, wait_for
from test_live_screen import Clock, cpu_step, feed, shown, start
from textual.widgets import Input
from tui_fakes import NOW, FakeSession, services, step, write_run

from gpttui import events as E
from gpttui.tui.app import make_app
from gpttui.tui.screens.training import TrainingScreen


def footer_keys(screen) -> dict[str, str]:
    """What the footer offers: key -> description of each shown, enabled binding."""
    return {b.key: b.description for _n, b, enabled, _t in screen.active_bindings.values() if b.show and enabled}


def silent_start(self) -> None:  # a session that has not emitted anything yet
    self.alive = True


@pytest.fixture
def silent_sessions(monkeypatch):
    """Sessions that start without emitting anything (the run's first frames)."""
    monkeypatch.setattr(FakeSession, "start", silent_start)


async def test_a_pause_stops_the_eta_and_names_no_clock_time() -> None:
    """Seen: paused, the ETA still pointed at a clock time ("→ Wed 06:46"); after resuming it
    had counted the pause down ("4m 35s" before, "3m 59s" three seconds after)."""
    clock = Clock()
    app = make_app(services(clock=clock))
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        rid = session.run_id
        await feed(pilot, session, step(rid, 21, eta_s=100.0, elapsed_s=50.0, time=NOW))
        await feed(pilot, session, E.StatusChanged(rid, state=E.PAUSED, time=NOW + 10))
        clock.now = NOW + 70
        screen.refresh_view(chart=False)
        numbers = shown(screen, "#numbers")
        assert "ETA 1m 30s once resumed" in numbers and "→" not in numbers  # 10 s trained, then paused
        assert "elapsed    1m 00s" in numbers
        await feed(pilot, session, E.StatusChanged(rid, state=E.TRAINING, time=NOW + 70))
        clock.now = NOW + 75
        screen.refresh_view(chart=False)
        numbers = shown(screen, "#numbers")
        assert "ETA 1m 25s → 22:16" in numbers and "elapsed    1m 05s" in numbers  # 15 s of training since the step
        assert "Tue" not in numbers  # today's clock time, without the weekday
        await feed(pilot, session, step(rid, 22, eta_s=2 * 86400.0, time=NOW + 75))
        assert "ETA 2d 0h → Thu 22:14" in shown(screen, "#numbers")  # another day: named


async def test_the_footer_offers_the_keys_the_state_allows() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        keys = footer_keys(screen)
        assert keys.get("p") == "Pause" and "s" in keys and "x" in keys
        await pilot.press("p")
        await pilot.pause(0.05)
        app.drain_events()
        screen.refresh_view()
        await pilot.pause(0.05)
        assert footer_keys(screen).get("p") == "Resume" and "p resumes" in shown(screen, "#status")
        await pilot.press("p")  # the Resume binding resumes
        await pilot.pause(0.05)
        app.drain_events()
        assert app.live.state == E.TRAINING and session.calls[-1] == "resume"
        await feed(pilot, session, E.Finished(session.run_id, state=E.STOPPED, iter=20, best_val_loss=3.5,
                                              tokens_seen=2560, elapsed_s=60.0, time=NOW))
        await pilot.pause(0.05)
        keys = footer_keys(screen)
        assert not {"p", "s", "x"} & set(keys), keys  # an ended run: nothing to pause, save or stop
        assert "g" in keys


async def test_an_ended_run_says_no_forecast_is_coming() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        assert "not enough evals yet" in shown(screen, "#numbers")
        await feed(pilot, session, E.Finished(session.run_id, state=E.STOPPED, iter=20, best_val_loss=3.5,
                                              tokens_seen=2560, elapsed_s=60.0, time=NOW))
        assert "forecast" not in shown(screen, "#numbers")


async def test_before_the_first_log_the_side_panel_says_what_the_run_does(silent_sessions) -> None:
    """Seen: "waiting for the first step…" while the run evaluated the untrained model."""
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        assert "new run (named once its data is ready)" in shown(screen, "#status")
        assert "from the first logged step" in text_of(screen.query_one("#loss-chart"))
        assert "preparing the data" in shown(screen, "#numbers")
        rid = "20231114-tiny"
        await feed(pilot, session, E.StatusChanged(rid, state=E.COMPILING, time=NOW,
                                                   message="torch.compile: the first steps take longer"))
        assert "compiling the model" in shown(screen, "#numbers")
        await feed(pilot, session, E.StatusChanged(rid, state=E.EVALUATING, time=NOW))
        assert "evaluating the untrained model (iter 0)" in shown(screen, "#numbers")
        assert f"run {rid}" in shown(screen, "#status")
        await feed(pilot, session, E.StatusChanged(rid, state=E.COMPILING, time=NOW,
                                                   message="torch.compile: the first steps take longer"),
                   step(rid, 1, compiling=True))
        assert shown(screen, "#status").lower().count("compil") == 2  # the state and its message, said once


async def test_the_sparkline_draws_nothing_until_it_has_a_line(silent_sessions) -> None:
    """Seen: "train loss (per log): waiting" beside a ▁▁▁ baseline, and the one-log label cut
    at the label's 44 columns ("(a line from 2")."""
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        assert not screen.query_one("#spark").display
        await feed(pilot, session, step("r", 10))
        label = shown(screen, "#spark-label")
        assert not screen.query_one("#spark").display and "1 log" in label
        assert len(label) <= screen.query_one("#spark-label").size.width
        await feed(pilot, session, step("r", 20))
        assert screen.query_one("#spark").display


async def test_the_log_wraps_follows_its_end_and_draws_no_scrollbars() -> None:
    """Seen: a warning's hint cut at the right edge, a horizontal scrollbar under it, the
    vertical thumb as "▅▅" glyphs, and after a resize the log stuck on its first lines."""
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        log = screen.query_one("#log")
        hint = ("warning: HellaSwag skipped in this run: no data in /tmp/data/evals/hellaswag (run `gpttui eval "
                "--download` once; hellaswag_every = 0 turns this check off)")
        await feed(pilot, session, E.LogMessage(session.run_id, level="info", text=hint),
                   *[E.LogMessage(session.run_id, level="info", text=f"line {i}") for i in range(12)])
        await pilot.pause(0.1)
        assert log.max_scroll_x == 0 and log.virtual_size.width <= log.scrollable_content_region.width
        region = log.region
        for y in range(region.y + 1, region.bottom):  # (below its border) no scrollbar drawn at its right edge
            assert screen.get_widget_at(region.right - 1, y)[0] is log
        rows = ["".join(seg.text for seg in strip) for strip in log.lines]
        assert any("turns this check off" in r for r in rows)  # the end of the hint, on a wrapped row
        for size in ((80, 24), (200, 60)):
            await pilot.resize_terminal(*size)
            await wait_for(pilot, lambda: log.scroll_y == log.max_scroll_y and log.max_scroll_x == 0,
                           timeout=30, what=f"the log to follow its end at {size}")
            rows = ["".join(seg.text for seg in strip) for strip in log.lines]
            assert max(len(r.rstrip()) for r in rows) <= log.scrollable_content_region.width
            assert rows[-1].strip() == "line 11"


async def test_a_large_terminal_gives_the_log_more_rows_and_the_sample_longer_lines() -> None:
    """Seen at 200x60: a 5-line log under a 45-row chart, and samples wrapped at 44 columns."""
    app = make_app(services())
    async with app.run_test(size=(80, 24)) as pilot:
        _session, screen = await start(pilot)
        small = screen.query_one("#log").size.height
        side = screen.query_one("#side").size.width
        await pilot.resize_terminal(200, 60)
        await wait_for(pilot, lambda: screen.query_one("#log").size.height >= 2 * small, timeout=30,
                       what="the log to grow at 200x60")
        assert screen.query_one("#side").size.width > side and screen.query_one("#loss-chart").size.width >= 130


async def test_the_mfu_basis_keeps_its_origin_at_80_columns() -> None:
    """Seen at 80x24: "MFU = measured model FLOPs/s ÷ peak 0.0186 TFLOPS: CPU matmul 0.0186 TFLOPS"
    lost its "(measured)" at the right edge, and named the peak twice."""
    app = make_app(services())
    async with app.run_test(size=(80, 24)) as pilot:
        session, screen = await start(pilot)
        ev = dataclasses.replace(cpu_step(session.run_id, 21), peak_basis="CPU matmul 0.125 TFLOPS (measured)")
        await feed(pilot, session, ev)
        await pilot.pause(0.1)
        w = screen.query_one("#mfu-basis")
        text = text_of(w)
        assert text.count("0.125") == 1 and text.rstrip().endswith("(measured)")
        assert w.size.width * w.size.height >= len(text.strip())  # all of it on screen


async def test_sample_before_any_checkpoint_says_when_there_will_be_one(silent_sessions) -> None:
    """Seen: g at iter 5 opened Sampling, which said "no checkpoint at … — train first"."""
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        await feed(pilot, session, E.StatusChanged("r", state=E.TRAINING, time=NOW), step("r", 5))
        await pilot.press("g")
        await pilot.pause(0.1)
        assert app.screen is screen
        notes = [n.message for n in app._notifications]
        assert any("No checkpoint to sample from" in n and "s saves one now" in n for n in notes), notes
        await feed(pilot, session, E.CheckpointSaved("r", iter=5, path="ckpt.pt", reason="manual", time=NOW))
        await pilot.press("g")
        await pilot.pause(0.1)
        assert app.screen is not screen


async def test_a_run_trained_elsewhere_offers_no_resume_while_it_trains(isolated_dirs) -> None:
    import json
    import os

    from tui_fakes import script

    from gpttui.runs.store import host

    data, _ = isolated_dirs
    path = write_run(data, "20231114-live", "tiny", script("20231114-live", 14), state=E.TRAINING, iters=14)
    status = json.loads((path / "status.json").read_text())
    (path / "status.json").write_text(json.dumps({**status, "pid": os.getpid(), "host": host()}))
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_run("20231114-live")
        await settle(pilot, 0.3)
        screen = app.screen
        assert isinstance(screen, TrainingScreen) and screen.live.active
        keys = footer_keys(screen)
        assert "r" not in keys and "p" not in keys and "g" in keys, keys
        assert "trained by another process" in shown(screen, "#status")
        screen.live.checkpoints.clear()  # (as before the first eval's checkpoint)
        await pilot.press("g")
        await pilot.pause(0.1)
        assert app.screen is screen and any("No checkpoint to sample from" in n.message and "s saves" not in n.message
                                            for n in app._notifications)
        with open(path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(E.Finished("20231114-live", state=E.STOPPED, iter=14, best_val_loss=3.5,
                                          tokens_seen=1792, elapsed_s=60.0, time=NOW).to_json()) + "\n")
        await wait_for(pilot, lambda: not screen.live.active, timeout=30, what="the followed run to end")
        await pilot.pause(0.1)
        assert footer_keys(screen).get("r") == "Resume"


async def test_ctrl_x_cancels_a_sample_while_the_prompt_has_the_focus(isolated_dirs) -> None:
    """Seen: ctrl+x in Sampling did nothing: the focused field took it (Input's cut)."""
    from tui_fakes import script

    data, _ = isolated_dirs
    write_run(data, "20231114-a", "tiny", script("20231114-a", 20))

    def endless(run, prompt, **kw):
        while True:
            time.sleep(0.02)
            yield "x"

    app = make_app(services(stream_sample=endless, save_sample=lambda run, *a: run.path / "samples" / "s.json"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_sampling("20231114-a")
        await pilot.pause(0.1)
        assert isinstance(app.focused, Input)
        assert "20231114-a" in app.screen.sub_title
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: len(app.screen.text) > 2, timeout=30, what="the sample to stream")
        await pilot.press("ctrl+x")
        await wait_for(pilot, lambda: "cancelled" in text_of(app.screen.query_one("#sample-status")), timeout=30,
                       what="ctrl+x to cancel the sample")


async def test_a_failed_run_at_80x24_shows_its_whole_reason_and_hint(silent_sessions) -> None:
    """Seen at 80x24: "FAILED run … loss became nan at iteration 3; stopped," and the rest (what
    to change) cut; the side panel still said "iter 4 done; loss and speed from the first logged
    step"; g opened Sampling on a run with no checkpoint."""
    app = make_app(services())
    async with app.run_test(size=(80, 24)) as pilot:
        session, screen = await start(pilot)
        rid = "20231114-boom"
        await feed(pilot, session, E.StatusChanged(rid, state=E.TRAINING, time=NOW),
                   E.Progress(rid, iter=4, max_iters=60, micro=0, accum=1, tokens_seen=4096, elapsed_s=21.0,
                              time=NOW),
                   E.Failed(rid, reason="loss became nan at iteration 3; stopped, no checkpoint had been "
                                        "written yet",
                            hint="lower learning_rate (now 1e+06) or raise warmup_iters, then start it again",
                            iter=3, time=NOW))
        await pilot.pause(0.1)
        status = screen.query_one("#status")
        text = shown(screen, "#status")
        assert "start it again" in text and status.size.height >= 2
        assert status.size.width * status.size.height >= len(text.strip())
        assert "failed at iter 4, before its first logged step" in shown(screen, "#numbers")
        assert text_of(screen.query_one("#loss-chart")).startswith("no loss was logged: the run failed")
        await pilot.press("g")
        await pilot.pause(0.1)
        assert app.screen is screen
        assert any("failed before writing one" in n.message for n in app._notifications)


async def test_a_resumed_run_samples_from_the_checkpoint_it_resumed_from(isolated_dirs, silent_sessions) -> None:
    from tui_fakes import script

    data, _ = isolated_dirs
    write_run(data, "20231114-a", "tiny", script("20231114-a", 20), state=E.STOPPED)
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.resume_run("20231114-a")
        await settle(pilot, 0.2)
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        await pilot.press("g")
        await pilot.pause(0.1)
        assert app.screen is not screen  # Sampling: the checkpoint it resumed from is there


async def test_the_palette_offers_pause_or_resume_as_the_state_allows() -> None:
    from gpttui.tui.screens.help import screen_commands

    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        titles = {c.title for c in screen_commands(screen)}
        assert "Pause" in titles and "Resume" not in titles and "Stop" in titles
        await feed(pilot, session, E.Finished(session.run_id, state=E.STOPPED, iter=20, best_val_loss=3.5,
                                              tokens_seen=2560, elapsed_s=60.0, time=NOW))
        titles = {c.title for c in screen_commands(screen)}
        assert not {"Pause", "Resume", "Stop", "Save ckpt"} & titles and "Sample" in titles


def _colors(text) -> list[str]:
    return [str(s.style) for s in text.spans if "•" in text.plain[s.start:s.end] or "⠁" <= text.plain[s.start] <= "⣿"]


def test_a_series_keeps_its_colour_before_the_one_ahead_of_it_has_points() -> None:
    """Seen: the val point of the eval at iter 0 drew in train's colour, then changed colour
    once the first train loss arrived."""
    from gpttui.tui.widgets.chart import SERIES_COLORS, Series, render_chart

    val = Series("val", (0.0,), (10.5,))
    alone = render_chart([Series("train", (), ()), val], 60, 12, "iter")
    both = render_chart([Series("train", (5.0, 10.0), (9.0, 8.0)), val], 60, 12, "iter")
    assert set(_colors(alone)) == {f"color({SERIES_COLORS[1]})"}
    assert set(_colors(both)) == {f"color({SERIES_COLORS[0]})", f"color({SERIES_COLORS[1]})"}  # (plotext's order)


def test_a_small_chart_names_its_series_on_the_label_line_and_ticks_are_unique() -> None:
    from gpttui.tui.widgets.chart import Series, render_chart

    series = [Series("train", (1.0, 2.0, 3.0), (9.0, 8.0, 7.0)), Series("val", (2.0,), (8.5,))]
    small = render_chart(series, 31, 10, "iter", key_below=(50, 16))
    lines = small.plain.splitlines()
    assert len(lines) == 10 and lines[-1].split() == ["iter", "•", "train", "•", "val"]
    assert "┌───" not in "".join(lines[1:-1])  # no legend box over the data
    ticks = render_chart(series, 60, 10, "iter").plain.splitlines()[-2].split()
    assert ticks == ["1", "2", "3"]  # was "1 2 2 2 3"
    assert "│ • train" in render_chart(series, 80, 20, "iter", key_below=(50, 16)).plain  # room: the legend box


async def test_at_80x24_the_loss_chart_keeps_its_data_clear_of_the_legend() -> None:
    app = make_app(services())
    async with app.run_test(size=(80, 24)) as pilot:
        _session, screen = await start(pilot)
        screen.refresh_view(chart=True)
        await pilot.pause(0.1)
        text = text_of(screen.query_one("#loss-chart")).rstrip().splitlines()
        assert text[-1].split()[:3] == ["iter", "•", "train"] and not any("│ • train" in ln for ln in text)


def test_the_loss_line_says_which_loss_and_when() -> None:
    """Seen while evaluating at iter 75: "loss 4.5856" (train? val? logged at 70)."""
    from gpttui.tui.live import LiveRun
    from gpttui.tui.screens.training_view import SIDE_WIDTH, numbers_text

    live = LiveRun(run_id="r", state=E.EVALUATING)
    live.apply(step("r", 70, max_iters=150))
    assert numbers_text(live, NOW).splitlines()[0] == "train loss 1.2500 @ 70"
    live.apply(E.EvalResult("r", iter=75, train_loss=4.3, val_loss=4.101, best_val_loss=4.101, tokens_seen=1))
    live.apply(step("r", 123_456, max_iters=200_000))
    first = numbers_text(live, NOW).splitlines()[0]
    assert first.startswith("train loss 0.0008") and "best val 4.1010" in first and len(first) <= SIDE_WIDTH
