"""The editor's validation on each keystroke stays cheap on the UI thread (#20: it ran a
whole-DOM CSS query per field, ~60 per keystroke, and the editor's tests timed out under load)."""

from __future__ import annotations

import textual.css.query as textual_query
from conftest import settle
from tui_fakes import services

from gpttui.tui.app import make_app
from gpttui.tui.screens.editor import EditorScreen


async def test_validating_the_form_does_not_walk_the_dom_per_field(monkeypatch) -> None:
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "e")
        await settle(pilot)
        ed = app.screen
        assert isinstance(ed, EditorScreen)
        nodes = len(list(ed.walk_children()))
        matched = 0
        match = textual_query.match

        def counting(selector_set, node) -> bool:
            nonlocal matched
            matched += 1
            return match(selector_set, node)

        monkeypatch.setattr(textual_query, "match", counting)
        ed.validate_all()
        # one whole-DOM query walks every node once; the old code ran one per field (~60)
        assert matched <= 2 * nodes, f"validate_all matched selectors {matched} times over {nodes} nodes"
