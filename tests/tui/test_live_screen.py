"""The Training screen as a long run shows it: micro-step progress and a ticking clock inside
a long step, the meters of a CPU run, samples at each eval, warning banners, an early stop,
and a first frame that claims nothing."""

from __future__ import annotations

import pytest
from conftest import settle, text_of, wait_for
from textual.widgets import Static
from tui_fakes import NOW, FakeSession, services, step

from gpttui import events as E
from gpttui.tui.app import make_app
from gpttui.tui.screens.training import TrainingScreen

GIB = 2**30


class Clock:
    """A settable wall clock for the app (events carry time=NOW)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def cpu_step(run_id: str, i: int, **kw):
    return step(run_id, i, vram_used=None, vram_peak=None, vram_total=None, power_w=None, energy_kwh=None,
                grad_norm=None, ram_used=3 * GIB, ram_total=16 * GIB, mfu=0.12, peak_tflops=0.125,
                peak_basis="CPU fp32 matmul 0.125 TFLOPS (measured once on this machine)", **kw)


async def start(pilot) -> tuple[FakeSession, TrainingScreen]:
    await settle(pilot)
    await pilot.press("down", "r")
    await settle(pilot, 0.2)
    pilot.app.drain_events()
    screen = pilot.app.screen
    assert isinstance(screen, TrainingScreen)
    return FakeSession.instances[-1], screen


async def feed(pilot, session: FakeSession, *events: E.Event) -> None:
    for ev in events:
        session.listener(ev)
    pilot.app.drain_events()
    pilot.app.screen.refresh_view(chart=True)
    await pilot.pause(0.05)


def shown(screen, selector: str) -> str:
    if selector == "#progress":
        w = screen.query_one(selector)
        return w.render().plain
    return text_of(screen.query_one(selector, Static))


async def test_a_long_step_moves_by_micro_steps_and_the_clock_ticks() -> None:
    clock = Clock()
    app = make_app(services(clock=clock))
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        rid = session.run_id
        await feed(pilot, session, E.Progress(rid, iter=20, max_iters=40, micro=12, accum=64, tokens_seen=2700,
                                              elapsed_s=30.0, time=NOW))
        assert "50.5%  iter 20/40 · step 21: micro 12/64 · 2.7k tok" in shown(screen, "#iter")  # (20 + 12/64) / 40
        assert "█" in shown(screen, "#progress")
        await feed(pilot, session, E.Progress(rid, iter=20, max_iters=40, micro=40, accum=64, tokens_seen=2756,
                                              elapsed_s=31.0, time=NOW + 1))
        assert "51.6%  iter 20/40 · step 21: micro 40/64" in shown(screen, "#iter")
        clock.now = NOW + 1  # no event, one second later: elapsed still ticks
        assert "elapsed    31s" in shown(screen, "#numbers")
        clock.now = NOW + 4
        await wait_for(pilot, lambda: "elapsed    34s" in shown(screen, "#numbers"),
                       what="the screen's own 1 Hz tick to redraw")
        assert "ETA 1.0s" in shown(screen, "#numbers")  # 5 s measured at NOW, 4 s ago


async def test_a_cpu_run_shows_ram_and_leaves_out_what_it_cannot_measure() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        await feed(pilot, session, cpu_step(session.run_id, 21))
        assert screen.query_one("#ram").display and not screen.query_one("#vram").display
        assert "3.0/16.0 GiB (process)" in text_of(screen.query_one("#ram"))
        numbers = shown(screen, "#numbers")
        assert "–" not in numbers and "power" not in numbers and "grad norm" not in numbers
        basis = shown(screen, "#mfu-basis")
        assert basis.count("0.125") == 1 and "(measured once on this machine)" in basis  # the peak named once, with its origin
        assert shown(screen, "#spark-label").startswith("train loss, last 21 logs")


async def test_the_first_frame_shows_an_empty_bar_and_no_percentage() -> None:
    def slow_start(self) -> None:  # a session that has not emitted anything yet
        self.alive = True

    app = make_app(services())
    orig = FakeSession.start
    FakeSession.start = slow_start
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            _, screen = await start(pilot)
            bar = shown(screen, "#progress")
            assert "█" not in bar and "%" not in bar
            assert "waiting for the first step" in shown(screen, "#iter")
    finally:
        FakeSession.start = orig


async def test_samples_panel_browses_each_evaluations_sample() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        rid = session.run_id
        await feed(pilot, session, E.Sample(rid, iter=10, prompt="def ", text="foo(x):", val_loss=5.25, time=NOW),
                   E.Sample(rid, iter=20, prompt="def ", text="main():\n    return 42", val_loss=3.5, time=NOW))
        text = shown(screen, "#sample")
        assert "sample 2/2 @ iter 20 · val 3.5000" in text and "def main():" in text
        await pilot.press("left_square_bracket")
        await pilot.pause(0.05)
        assert "sample 1/2 @ iter 10 · val 5.2500" in shown(screen, "#sample")
        await pilot.press("right_square_bracket")
        await pilot.pause(0.05)
        assert "sample 2/2" in shown(screen, "#sample")


async def test_a_warning_shows_a_banner_until_dismissed() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        assert not screen.query_one("#banner").display
        await feed(pilot, session, E.RunWarning(session.run_id, code="throughput", iter=20, time=NOW,
                                                text="throughput fell to 300 tok/s, 41 % below this run's median 512 tok/s",
                                                hint="another process or thermal throttling: check nvidia-smi and top"))
        assert screen.query_one("#banner").display
        assert "41 % below" in shown(screen, "#banner") and "nvidia-smi" in shown(screen, "#banner")
        await pilot.press("w")
        await pilot.pause(0.05)
        assert not screen.query_one("#banner").display


async def test_an_early_stopped_run_says_why() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        reason = "early stop: val loss has not improved for 3 evaluations (best 3.5000 at iter 20, now 3.5100)"
        await feed(pilot, session, E.StatusChanged(session.run_id, state=E.STOPPING, message=reason, time=NOW),
                   E.Finished(session.run_id, state=E.STOPPED, iter=20, best_val_loss=3.5, tokens_seen=2560,
                              elapsed_s=60.0, reason=reason, time=NOW))
        status = shown(screen, "#status")
        assert "STOPPED" in status and reason in status


async def test_a_finished_runs_samples_are_browsable_beside_the_loss(isolated_dirs) -> None:
    from tui_fakes import script, write_run

    data, _ = isolated_dirs
    rid = "20231114-a"
    evs = script(rid, 20) + [E.Sample(rid, iter=10, prompt="", text="import os", val_loss=5.25, time=NOW),
                             E.Sample(rid, iter=20, prompt="", text="def main():", val_loss=3.5, time=NOW)]
    write_run(data, rid, "tiny", evs)
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_run(rid)
        await settle(pilot, 0.3)
        screen = app.screen
        assert "sample 2/2 @ iter 20 · val 3.5000" in shown(screen, "#sample") and "def main():" in shown(screen, "#sample")
        await pilot.press("left_square_bracket")
        await pilot.pause(0.05)
        assert "sample 1/2 @ iter 10 · val 5.2500" in shown(screen, "#sample")


async def test_b_toggles_the_bell_rung_at_a_warning() -> None:
    app = make_app(services())
    rung = []
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        app.bell = lambda: rung.append(1)
        await pilot.press("b")
        await feed(pilot, session, E.RunWarning(session.run_id, code="disk", text="only 1.0 GiB free", hint="free space",
                                                time=NOW))
        assert app.bell_on_warning and rung == [1]


async def test_a_long_evaluation_shows_how_long_it_has_run() -> None:
    clock = Clock()
    app = make_app(services(clock=clock))
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        await feed(pilot, session, E.StatusChanged(session.run_id, state=E.EVALUATING, time=NOW))
        clock.now = NOW + 42
        await wait_for(pilot, lambda: "for 42s" in shown(screen, "#status"), what="the 1 Hz tick to redraw")
        assert "EVALUATING" in shown(screen, "#status")
        assert "batch" not in shown(screen, "#status")  # no count claimed before one arrives
        rid = session.run_id
        it = app.live.step.iter if app.live.step is not None else 0
        await feed(pilot, session, E.Progress(rid, iter=it, max_iters=40, micro=0, accum=1, tokens_seen=0,
                                              elapsed_s=42.0, eval_done=140, eval_total=400, time=NOW + 42))
        assert "for 42s  batch 140/400" in shown(screen, "#status")
        await feed(pilot, session, E.StatusChanged(rid, state=E.TRAINING, time=NOW + 60))
        assert "batch" not in shown(screen, "#status")  # the eval is over: its count goes


@pytest.mark.parametrize("size", [(120, 40), (100, 28)])
async def test_the_sample_panel_stays_in_the_side_column_under_a_long_banner(size) -> None:
    """Seen at 120x40: an overfitting banner of two lines pushed the sample out of view."""
    app = make_app(services())
    async with app.run_test(size=size) as pilot:
        session, screen = await start(pilot)
        rid = session.run_id
        long = "the gap between val and train loss widened over 4 evaluations: 0.12 → 0.31 → 0.55 → 0.83 " * 2
        await feed(pilot, session, step(rid, 20, ram_used=3 * GIB, ram_total=16 * GIB),
                   E.Sample(rid, iter=20, prompt="def ", text="main():\n    return 42\n" * 4, val_loss=3.5, time=NOW),
                   E.RunWarning(rid, code="overfit", iter=20, time=NOW, text=long,
                                hint="add dropout (e.g. dropout = 0.1) or more data"))
        await pilot.pause(0.1)
        side, sample = screen.query_one("#side").region, screen.query_one("#sample").region
        assert screen.query_one("#banner").region.height >= 2
        assert sample.y >= side.y and sample.bottom <= side.bottom  # inside the column, not cut off below it
        assert sample.height >= 3  # its border, header line and at least a line of text


async def test_the_forecast_line_says_when_it_cannot_fit_then_the_forecast() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        session, screen = await start(pilot)
        rid = session.run_id
        ev = [E.EvalResult(rid, iter=i, train_loss=4.0, val_loss=4.0, best_val_loss=4.0, tokens_seen=i, time=NOW)
              for i in (0, 10)]
        await feed(pilot, session, cpu_step(rid, 10), *ev)
        n = len(screen.live.evals)
        assert f"forecast   not enough evals yet ({n} so far)" in shown(screen, "#numbers")
        await feed(pilot, session, E.Forecast(rid, iter=10, loss=3.4123, band=0.0456, at_iter=20000, n_evals=12,
                                              time=NOW))
        assert "forecast   3.412 ± 0.046 @ 20,000 · 12 evals" in shown(screen, "#numbers")
        from gpttui.tui.screens.training_view import forecast_text

        screen.live.forecast = E.Forecast(rid, iter=10, loss=3.4123, band=0.0456, at_iter=600000, n_evals=120)
        assert forecast_text(screen.live) == "forecast   3.412±0.046 @ 600,000 · 120 evals"
        screen.live.forecast = E.Forecast(rid, iter=10, loss=3.4123, band=0.0456, at_iter=40, n_evals=8)
        assert forecast_text(screen.live) == "forecast   3.412 ± 0.046 @ 40 · 8 evals"
        reason = "early stop: forecast 3.412 ± 0.046 at iter 20,000 (12 evals) cannot beat run ref's best val 3.3000"
        await feed(pilot, session, E.Finished(rid, state=E.STOPPED, iter=10, best_val_loss=4.0, tokens_seen=10,
                                              elapsed_s=6.0, reason=reason, time=NOW))
        assert reason in shown(screen, "#status")
