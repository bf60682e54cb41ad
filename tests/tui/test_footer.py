"""StableFooter: Textual's Footer without its leak (textual #6666): screen switches and
binding changes must not keep old FooterKeys alive, and the keys shown stay right."""

from __future__ import annotations

import gc

from conftest import settle, wait_for
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey
from tui_fakes import services

from gpttui.tui.app import make_app
from gpttui.tui.screens.help import HelpScreen
from gpttui.tui.screens.home import HomeScreen
from gpttui.tui.widgets.footer import StableFooter


def footer_keys_alive() -> int:
    """FooterKey objects anywhere in the process, after a full collection."""
    gc.collect()
    return sum(isinstance(o, FooterKey) for o in gc.get_objects())


async def test_screen_switches_keep_no_old_footer_keys() -> None:
    """Home -> Help -> Home, 20 times: Textual's Footer recomposes at each return and kept
    every old key alive (~8 more per switch); the count must not grow."""
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.screen.query(Footer) and all(isinstance(f, StableFooter) for f in app.screen.query(Footer))

        async def round_trip() -> None:
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help screen")
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), what="Home again")
            await pilot.pause(0.05)  # the footer's recompose runs after a refresh

        await round_trip()  # warm up: Help is installed once
        before = footer_keys_alive()
        for _ in range(20):
            await round_trip()
        await settle(pilot)
        after = footer_keys_alive()
        assert after <= before, f"{after - before} FooterKeys more after 20 screen switches"
        shown = [k.key for k in app.screen.query(FooterKey)]
        assert "question_mark" in shown and len(shown) == len(set(shown))


class Toggling(Screen):
    """A screen whose binding `b` is shown only while `armed` (check_action)."""

    BINDINGS = [Binding("a", "arm", "Arm"), Binding("b", "fire", "Fire"), Binding("c", "noop", "Other")]
    armed = False

    def compose(self) -> ComposeResult:
        yield StableFooter()

    def action_arm(self) -> None:
        self.armed = not self.armed
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.armed if action == "fire" else True


class ToggleApp(App):
    def on_mount(self) -> None:
        self.push_screen(Toggling())


async def test_changed_bindings_are_shown_and_old_keys_freed() -> None:
    """When the keys do change the footer is rebuilt (the key appears and goes), and the
    keys it removed are not kept alive by their data binding."""
    app = ToggleApp()
    async with app.run_test(size=(80, 10)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, Toggling))

        def shown() -> list[str]:
            return [k.key for k in app.screen.query(FooterKey)]

        await wait_for(pilot, lambda: "a" in shown(), what="the footer's keys")
        before = footer_keys_alive()
        for i in range(20):
            await pilot.press("a")
            want = i % 2 == 0
            await wait_for(pilot, lambda want=want: ("b" in shown()) == want, what=f"key b shown={want}")
        await settle(pilot)
        assert "b" not in shown() and {"a", "c"} <= set(shown())
        after = footer_keys_alive()
        assert after <= before + 3, f"{after - before} FooterKeys more after 20 binding changes"


async def test_at_80_columns_the_footer_shows_whole_keys_and_the_palette_key_at_the_edge() -> None:
    """Home at 80x24: Textual cut "t Training" to "t Tr", hid Sample under the palette key,
    and left the last column to it ("▏^p palettea"). Keys that do not fit whole are hidden
    (Help and the palette still name them) and come back when the terminal widens."""
    app = make_app(services())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await settle(pilot)
        footer = app.screen.query_one(StableFooter)
        keys = [k for k in footer.query(FooterKey) if not k.has_class("-command-palette")]
        palette = footer.query_one("FooterKey.-command-palette", FooterKey)
        assert palette.region.right == 80, palette.region
        shown = [k for k in keys if k.display]
        assert shown and all(k.region.right <= palette.region.x for k in shown)
        assert [k.key for k in keys if not k.display] == ["t", "m"]
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: all(k.display for k in keys), what="every key at 120 columns")
