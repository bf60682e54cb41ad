"""The editor's recipe picker: picking 'modern' re-validates and re-estimates the config,
and a modern knob out of range is shown in one line under its field."""

from __future__ import annotations

from conftest import settle, text_of
from textual.widgets import Input, Select, Static
from tui_fakes import services

from gpttui.tui.app import make_app
from gpttui.tui.screens.editor import EditorScreen


async def test_recipe_picker_switches_the_recipe_and_validates_its_knobs() -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "e")  # tiny
        await settle(pilot)
        ed = app.screen
        assert isinstance(ed, EditorScreen)
        picker = ed.query_one("#f-recipe", Select)
        assert picker.value == "gpt2"
        total_before = ed.estimate.params_total.value
        picker.value = "modern"
        await settle(pilot)
        assert ed.cfg is not None and ed.cfg.recipe == "modern"
        assert ed.estimate.params_total.value != total_before  # untied head, no position table
        assert "Muon" in ed.estimate.mem_optimizer.basis
        ed.query_one("#f-muon_momentum", Input).value = "1.5"
        await settle(pilot)
        help_ = ed.query_one("#h-muon_momentum", Static)
        assert ed.cfg is None and help_.has_class("error") and "[0, 1)" in text_of(help_)
        assert "\n" not in text_of(ed.query_one("#form-error", Static)).strip()
