"""The Training screen's reference run: `f` picks an earlier run whose loss curves join the
live chart (labelled with its id), and picking "none" takes them off again."""

from __future__ import annotations

from conftest import settle
from textual.widgets import OptionList
from tui_fakes import FakeSession, script, services, write_run

from gpttui import events as E
from gpttui.tui.app import make_app
from gpttui.tui.screens.reference import NONE, ReferencePicker
from gpttui.tui.screens.training import TrainingScreen
from gpttui.tui.widgets.chart import LineChart

REF = "20231110-ref"


def earlier_runs(data) -> None:
    write_run(data, REF, "tiny", script(REF, 30), state=E.STOPPED, iters=30)
    write_run(data, "20231111-broken", "tiny", script("20231111-broken", 10), state=E.FAILED, iters=10)


async def start(pilot) -> TrainingScreen:
    await settle(pilot)
    await pilot.press("down", "r")
    await settle(pilot, 0.2)
    pilot.app.drain_events()
    assert isinstance(pilot.app.screen, TrainingScreen)
    return pilot.app.screen


async def pick(pilot, choice: str) -> None:
    await pilot.press("f")
    await settle(pilot, 0.2)
    picker = pilot.app.screen
    assert isinstance(picker, ReferencePicker)
    options = picker.query_one(OptionList)
    ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
    assert ids == [NONE, REF]  # the failed run is not offered
    options.highlighted = ids.index(choice)
    await pilot.press("enter")
    await settle(pilot, 0.3)


def labels(screen: TrainingScreen) -> list[str]:
    return [s.label for s in screen.query_one(LineChart).series]


async def test_f_overlays_a_reference_run_and_none_removes_it(isolated_dirs) -> None:
    data, _ = isolated_dirs
    earlier_runs(data)
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        assert labels(screen) == ["train", "val"]
        await pick(pilot, REF)
        assert app.screen is screen
        assert labels(screen) == ["train", "val", f"{REF} train", f"{REF} val"]
        ref_train = screen.query_one(LineChart).series[2]
        assert ref_train.xs == tuple(float(i) for i in range(1, 31))  # its iterations, as the live curve
        assert ref_train.ys[0] == 10.0 / (1 + 1 / 10)
        ref_val = screen.query_one(LineChart).series[3]
        assert ref_val.xs == (10.0, 20.0, 30.0)
        assert f"{REF} val" in screen.query_one(LineChart).render().plain  # in the legend
        await pick(pilot, NONE)
        assert labels(screen) == ["train", "val"]
        assert FakeSession.instances[-1].calls == ["start"]  # picking touched no run control


async def test_f_with_no_earlier_run_says_so() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        await pilot.press("f")
        await settle(pilot, 0.2)
        assert app.screen is screen
        assert labels(screen) == ["train", "val"]
