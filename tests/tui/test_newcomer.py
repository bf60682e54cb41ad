"""#22, a newcomer's first hour: the editor says where each value comes from, its dataset
field agrees with its picker, and a run started from it returns to Home."""

from __future__ import annotations

from conftest import settle, text_of
from test_datasets_screen import make_dataset
from test_editor_live import open_editor
from textual.widgets import Input, Select, Static
from textual.widgets._select import SelectCurrent
from tui_fakes import services

from gpttui.tui.app import make_app
from gpttui.tui.screens.home import HomeScreen
from gpttui.tui.screens.runs import RunsScreen
from gpttui.tui.screens.training import TrainingScreen


async def test_the_dataset_field_shows_what_its_picker_says(isolated_dirs) -> None:
    """The field said "tiny-ds (not prepared" while its dropdown said "(5.5k tokens)"."""
    data, _ = isolated_dirs
    make_dataset(data, "tiny-ds", 5000)
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        ed = await open_editor(pilot)  # (down, e: the tiny preset, whose dataset is tiny-ds)
        shown = text_of(ed.query_one("#f-dataset", Select).query_one(SelectCurrent).query_one("#label", Static))
        assert "5.5k tokens" in shown and "not prepared" not in shown, shown


async def test_the_editor_says_where_each_value_comes_from() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        ed = await open_editor(pilot)
        beta1 = ed.query_one("#f-beta1", Input)
        assert beta1.has_class("inherited")  # the tiny preset does not set it
        assert text_of(ed.query_one("#h-beta1", Static)).endswith("· inherited: nanoGPT's default")
        assert text_of(ed.query_one("#h-dataset", Static)).endswith("· set by the preset")
        assert text_of(ed.query_one("#h-currency", Static)).endswith("· inherited: gpttui's default")
        assert not ed.query_one("#f-n_layer", Input).has_class("inherited")
        beta1.value = "0.8"
        await settle(pilot)
        assert not beta1.has_class("inherited")
        assert text_of(ed.query_one("#h-beta1", Static)).endswith("· edited")


async def test_a_run_started_from_the_editor_goes_back_to_home() -> None:
    """Esc from Training went back to the editor, where Home's `u` typed into a field."""
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await open_editor(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert isinstance(app.screen, TrainingScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)


def test_help_names_keys_as_typed() -> None:
    from gpttui.tui.screens.help import help_table, typed_key

    assert typed_key("question_mark") == "?" and typed_key("slash") == "/"
    assert typed_key("escape,q") == "Esc / q"
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(help_table())
    text = console.export_text()
    assert "question_mark" not in text and "slash" not in text and "escape" not in text


async def test_the_palette_offers_the_screens_keys_by_name_and_one_quit() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for name in ("Run", "Edit", "New from", "Compare runs", "Resume a run", "Quit gpttui"):
            assert name in titles, (name, titles)
        assert "Quit" not in titles  # Textual's "as soon as possible" beside gpttui's own
        assert len(titles) == len(set(titles))
        app.open_runs()
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Compare" in titles and "Resume" in titles and "Delete" in titles


async def test_ctrl_c_is_a_way_out() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+c")
        await pilot.pause(0.1)
        assert app.return_code is not None or not app.is_running


def test_a_chart_with_one_point_starts_its_axis_at_zero_and_ticks_read_as_counts() -> None:
    from gpttui.tui.widgets.chart import Series, render_chart

    one = render_chart([Series("a", (0.0,), (5.0,))], 60, 12, "iter").plain
    assert "-1" not in one and "−1" not in one
    many = render_chart([Series("x", (0.0, 13000.0, 26000.0), (10.0, 6.0, 5.5))], 60, 14, "tokens").plain
    assert "26.0k" in many and "e4" not in many and "e0" not in many


def test_compare_names_keep_what_tells_runs_apart_and_figures_do_not_wrap() -> None:
    from rich.console import Console

    from gpttui import events as E
    from gpttui.tui.screens.compare import compare_table, short_names

    assert short_names("20261202-004513-demo", "20261202-010203-demo") == ("004513-demo", "010203-demo")
    a, b = "20261202-004513-demo", "20261202-010203-demo"
    evs = [E.EvalResult(a, iter=i, train_loss=6.0, val_loss=5.5182 + i / 1000, best_val_loss=5.5182,
                        tokens_seen=1000 * i) for i in (10, 20)]
    console = Console(width=44, record=True)
    console.print(compare_table(a, evs, b, evs))
    text = console.export_text()
    assert "004513-demo" in text and "20261202-004" not in text
    lines = text.splitlines()
    assert all(not line.strip().replace(".", "").isdigit() for line in lines), text  # no figure alone on a line


def test_training_numbers_before_the_first_log_and_the_spark_label_agree() -> None:
    from gpttui import events as E
    from gpttui.tui.live import LiveRun
    from gpttui.tui.screens.training_view import numbers_text, spark_label

    live = LiveRun(run_id="r")
    live.progress = E.Progress("r", iter=5, max_iters=100, micro=0, accum=1, tokens_seen=640, elapsed_s=3.0)
    text = numbers_text(live, now=0.0)
    assert "waiting for the first step" not in text and "iter 5" in text
    assert spark_label((4.2,)) != "train loss (per log): waiting" and "4.200" in spark_label((4.2,))


async def test_below_80x24_the_note_says_how_to_quit_and_help_shows_above_it() -> None:
    from gpttui.tui.screens.dialogs import TooSmallNote
    from gpttui.tui.screens.help import HelpScreen

    app = make_app(services())
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        assert "q quits" in text_of(app.screen.query_one(TooSmallNote))
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen) and not app.screen.query(TooSmallNote)
        assert app.screen_stack[-2].query(TooSmallNote)  # still over Home below the help


async def test_home_at_80x24_shows_the_selected_presets_whole_description() -> None:
    app = make_app(services())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        detail = app.screen.query_one("#preset-detail", Static)
        assert text_of(detail).startswith("gpt2-small: a 124M GPT-2 for the snapshot")
        await pilot.press("down")
        await settle(pilot)
        assert text_of(detail).splitlines()[0] == "tiny: tiny test preset"  # (then its warning: test_walk)
