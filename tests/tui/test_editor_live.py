"""The editor: the dataset picker (prepared datasets, "from a source…"), Esc with unsaved
changes asks, errors in the editor's words, the description's start shown."""

from __future__ import annotations

from conftest import settle, text_of
from test_datasets_screen import make_dataset
from textual.widgets import Input, Select, Static
from tui_fakes import services

from gpttui.tui.app import make_app
from gpttui.tui.screens.datasets import PrepareScreen
from gpttui.tui.screens.dialogs import ChoiceScreen
from gpttui.tui.screens.editor import FROM_SOURCE, EditorScreen
from gpttui.tui.screens.home import HomeScreen


async def open_editor(pilot) -> EditorScreen:
    await settle(pilot)
    await pilot.press("down", "e")
    await settle(pilot)
    assert isinstance(pilot.app.screen, EditorScreen)
    return pilot.app.screen


async def test_dataset_picker_lists_prepared_datasets_and_prepares_from_a_source(isolated_dirs) -> None:
    data, _ = isolated_dirs
    make_dataset(data, "books", 5000)
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        ed = await open_editor(pilot)
        sel = ed.query_one("#f-dataset", Select)
        labels = [str(label) for label, _ in sel._options]
        assert labels == ["tiny-ds  (not prepared yet)", "books  (5.5k tokens)", "from a source…"]
        sel.value = "books"
        await settle(pilot)
        assert ed.values["dataset"] == "books" and ed.cfg is not None and ed.cfg.dataset == "books"
        sel.value = FROM_SOURCE
        await settle(pilot)
        assert isinstance(app.screen, PrepareScreen)
        assert app.screen.query_one("#p-source", Input).value == "builtin:pystdlib"
        app.screen.query_one("#p-source", Input).value = "/data/web/*.parquet"
        app.screen.query_one("#p-name", Input).value = "web"
        app.screen.query_one("#p-column", Input).value = "content"
        await pilot.click("#p-go")
        await settle(pilot)
        assert ed.values["dataset"] == "web" and ed.values["data_source"] == "/data/web/*.parquet"
        assert ed.values["text_column"] == "content" and ed.cfg is not None and ed.cfg.dataset == "web"
        assert sel.value == "web" and str(sel._options[0][0]) == "web  (not prepared yet)"


async def test_escape_with_unsaved_changes_asks_and_keep_is_the_default() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        ed = await open_editor(pilot)
        ed.query_one("#f-n_layer", Input).value = "4"
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen) and app.screen.focused.id == "choice-keep"
        assert "Changed: n_layer" in text_of(app.screen.query_one("#detail", Static))
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is ed and ed.values["n_layer"] == 4
        await pilot.press("escape")
        await settle(pilot)
        await pilot.click("#choice-discard")
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)


async def test_escape_without_changes_goes_straight_back() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        ed = await open_editor(pilot)
        ed.query_one("#f-n_layer", Input).value = "4"
        ed.query_one("#f-n_layer", Input).value = "2"  # back to the preset's value: nothing to lose
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)


async def test_errors_speak_the_editors_language_and_the_description_shows_its_start() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        ed = await open_editor(pilot)
        assert ed.query_one("#f-description", Input).cursor_position == 0
        ed.query_one("#f-n_layer", Input).value = "x"
        await settle(pilot)
        msg = text_of(ed.query_one("#h-n_layer", Static))
        assert "--set" not in msg and "'n_layer' must be a whole number, got 'x'" in msg and "e.g. 12" in msg
        ed.query_one("#f-n_layer", Input).value = "2"
        ed.query_one("#f-n_head", Input).value = "5"
        await settle(pilot)
        form = text_of(ed.query_one("#form-error", Static))
        assert "--set" not in form and "editor:" not in form and "not divisible by n_head = 5" in form
