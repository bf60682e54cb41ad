"""Pilot tests: walk Home, the editor and the training screen with a scripted trainer."""

from __future__ import annotations

from conftest import settle, text_of
from textual.widgets import DataTable, Input, Static
from tui_fakes import FakeSession, services

from gpttui import events as E
from gpttui.tui.app import make_app
from gpttui.tui.screens.dialogs import ChoiceScreen, TooSmallNote
from gpttui.tui.screens.editor import EditorScreen
from gpttui.tui.screens.home import HomeScreen
from gpttui.tui.screens.training import TrainingScreen


async def test_home_lists_presets_with_estimates() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        table = app.screen.query_one("#presets", DataTable)
        assert [str(k.value) for k in table.rows] == ["gpt2-small", "tiny"]
        row = table.get_row("gpt2-small")
        assert row[1] == "123.6M"  # params (nanoGPT count) of the 12/12/768 config
        assert "fits" in row[4] or "tight" in row[4] or "OOM" in row[4]
        assert "RTX 4070" in text_of(app.screen.query_one("#device", Static))


async def test_home_ignores_a_superseded_load_finishing_late() -> None:
    """Mount and screen-resume both load; the cancelled first load used to post its
    'measuring…' rows after the second load's final ones, leaving the time column at '–'."""
    from gpttui.tui.messages import HomeData

    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        home = app.screen
        rows = list(home.rows)
        assert rows
        stale = [type(r)(r.name, r.source, "stale") for r in rows]
        home.post_message(HomeData(stale, [], generation=home._generation - 1))
        await settle(pilot)
        assert [r.description for r in home.rows] == [r.description for r in rows]
        home.post_message(HomeData(stale, [], generation=home._generation))
        await settle(pilot)
        assert [r.description for r in home.rows] == ["stale"] * len(rows)


async def test_home_filter() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "t", "i", "n")
        table = app.screen.query_one("#presets", DataTable)
        assert [str(k.value) for k in table.rows] == ["tiny"]
        await pilot.press("escape")
        assert table.row_count == 2


async def test_editor_validates_and_estimate_changes() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "e")  # tiny
        await settle(pilot)
        ed = app.screen
        assert isinstance(ed, EditorScreen) and ed.preset == "tiny"
        before = ed.estimate.params_nanogpt.value
        inp = ed.query_one("#f-n_layer", Input)
        inp.focus()
        inp.value = "4"
        await settle(pilot)
        assert ed.estimate.params_nanogpt.value > before
        assert "4" in str(ed.cfg.n_layer)
        # a wrong type shows its message under the field
        inp.value = "four"
        await settle(pilot)
        help_ = ed.query_one("#h-n_layer", Static)
        assert help_.has_class("error")
        assert "must be a whole number" in text_of(help_), text_of(help_)
        assert ed.cfg is None
        # a cross-field rule (n_embd % n_head) is shown under the field it names
        inp.value = "2"
        ed.query_one("#f-n_embd", Input).value = "33"
        await settle(pilot)
        assert ed.query_one("#h-n_embd", Static).has_class("error")
        assert "divisible" in text_of(ed.query_one("#form-error", Static))
        ed.query_one("#f-n_embd", Input).value = "32"
        await settle(pilot)
        assert ed.cfg is not None and not ed.query_one("#h-n_embd", Static).has_class("error")


async def test_editor_saves_user_preset(isolated_dirs) -> None:
    _, conf = isolated_dirs
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "n")  # new preset from tiny
        await settle(pilot)
        ed = app.screen
        ed.query_one("#f-max_iters", Input).value = "77"
        ed.query_one("#save-name", Input).value = "mine"
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        text = (conf / "presets" / "mine.toml").read_text()
        assert "max_iters = 77" in text and "n_layer = 2" in text


async def test_run_pause_save_stop() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "r")
        await settle(pilot, 0.3)
        scr = app.screen
        assert isinstance(scr, TrainingScreen)
        sess = FakeSession.instances[-1]
        assert sess.preset == "tiny" and sess.cfg.n_layer == 2
        assert app.live.step.iter == 20 and len(app.live.evals) == 2
        scr.refresh_view()
        assert "iter 20/40" in text_of(scr.query_one("#iter", Static))
        assert "41.0%" in text_of(scr.query_one("#mfu"))
        await pilot.press("p")
        await settle(pilot)
        assert app.live.state == E.PAUSED and sess.calls[-1] == "pause"
        await pilot.press("p")
        await settle(pilot)
        assert app.live.state == E.TRAINING and sess.calls[-1] == "resume"
        await pilot.press("s")
        await settle(pilot)
        assert sess.calls[-1] == "save" and app.live.checkpoints[-1].reason == "manual"
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("escape")  # cancel: still training
        await settle(pilot)
        assert "stop" not in sess.calls
        await pilot.press("x")
        await settle(pilot)
        await pilot.click("#choice-stop")
        await settle(pilot)
        assert "stop" in sess.calls and app.live.state == E.STOPPED
        assert not app.session_active()


async def test_quit_while_training_asks() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "r")
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.click("#choice-cancel")
        await settle(pilot)
        assert isinstance(app.screen, TrainingScreen) and app.exit_choice is None
        await pilot.press("q")
        await settle(pilot)
        await pilot.click("#choice-stop")
        await settle(pilot)
    assert app.exit_choice == "stop" and "stop" in FakeSession.instances[-1].calls


async def test_too_small_terminal_shows_message() -> None:
    app = make_app(services())
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        assert "too small: 60×20" in text_of(app.screen.query_one(TooSmallNote))
        await pilot.resize_terminal(100, 30)
        await settle(pilot)
        assert not app.screen.query(TooSmallNote)
        await pilot.resize_terminal(70, 30)
        await settle(pilot)
        assert "70×30" in text_of(app.screen.query_one(TooSmallNote))


async def test_help_lists_keys() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        from gpttui.tui.screens.help import HelpScreen, help_table

        assert isinstance(app.screen, HelpScreen)
        keys = [c for c in help_table().columns[1]._cells]
        assert "p" in keys and "x" in keys and "ctrl+g" in keys
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)


class SlowSession(FakeSession):
    """A trainer in the middle of a long step: it takes requests but answers later."""

    def pause(self) -> None:
        self.calls.append("pause")

    def answer(self) -> None:
        self._emit(E.StatusChanged(self.run_id, state=E.PAUSED, message="paused by user"))


async def test_control_key_is_answered_before_the_trainer() -> None:
    app = make_app(services(new_session=lambda cfg, preset, listener: SlowSession(cfg, preset, listener)))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "r")
        await settle(pilot, 0.3)
        status = app.screen.query_one("#status", Static)
        await pilot.press("p")
        await pilot.pause()
        assert app.live.state == E.TRAINING and "pausing at the end of this step" in text_of(status)
        FakeSession.instances[-1].answer()
        await settle(pilot)
        assert app.live.state == E.PAUSED and "pausing" not in text_of(status)
        assert "PAUSED" in text_of(status)


def test_chart_downsamples_long_runs() -> None:
    import time

    from gpttui.tui.widgets.chart import Series, downsample, render_chart

    n = 200_000
    s = Series("train", tuple(float(i) for i in range(n)), tuple(10.0 - i / n for i in range(n)))
    d = downsample(s, 160)
    assert len(d.xs) == 160 and d.xs[0] < d.xs[-1] and abs(d.ys[0] - 10.0) < 0.01 and abs(d.ys[-1] - 9.0) < 0.01
    assert downsample(Series("x", (1.0, 2.0), (3.0, 4.0)), 160).xs == (1.0, 2.0)
    t0 = time.perf_counter()
    text = render_chart([s], 80, 20, "iter")
    assert time.perf_counter() - t0 < 1.0 and "train" in text.plain  # raw: 2.5 s on the dev box


async def test_events_after_the_app_stopped_are_not_kept() -> None:
    """A run handed off (or whose terminal was lost) keeps emitting; nobody drains then."""
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app._listener(E.LogMessage("r", level="info", text="while running"))
        assert len(app.inbox._events) == 1
    for i in range(100):
        app._listener(E.LogMessage("r", level="info", text=f"after exit {i}"))
    assert len(app.inbox._events) <= 1
