"""Terminal behaviour: NO_COLOR, and the driver that survives a lost terminal.

Textual honours NO_COLOR in `App.__init__`: `self.no_color` is set and a `Monochrome` line
filter is added, which every widget's rendering passes through (so screenshots and the
terminal show only greys); widgets also get the `:nocolor` pseudo-class, which app.tcss
uses to mark invalid inputs by reverse video instead of a red background.
"""

from __future__ import annotations

import os
import re

from conftest import settle
from textual.filter import Monochrome
from textual.widgets import Input
from tui_fakes import services

from gpttui.tui.app import make_app
from gpttui.tui.terminal import SafeLinuxDriver, _GuardedFile

HEX = re.compile(r'(?:fill: |<rect fill=")#([0-9a-f]{6})')
SVG_THEME_FOREGROUND = "c5c8c6"  # rich's SVG default text colour (window title), not the app's


def screen_colours(svg: str) -> set[tuple[int, int, int]]:
    """Text and background colours of an SVG screenshot (the window's traffic-light
    circles are not part of the screen and are not matched)."""
    return {(int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)) for h in HEX.findall(svg)
            if h != SVG_THEME_FOREGROUND}


async def editor_with_error(app) -> str:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "e")
        await settle(pilot)
        bad = app.screen.query_one("#f-n_layer", Input)
        bad.value = "x"
        await settle(pilot)
        assert bad.has_class("invalid")
        return app.export_screenshot()


async def test_no_color_renders_only_greys(monkeypatch) -> None:
    colourful = screen_colours(await editor_with_error(make_app(services())))
    assert any(len({r, g, b}) > 1 for r, g, b in colourful)  # the control: colours without NO_COLOR

    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(services())
    assert app.no_color and any(isinstance(f, Monochrome) for f in app.get_line_filters())
    grey = screen_colours(await editor_with_error(app))
    assert len(grey) >= 3 and all(r == g == b for r, g, b in grey), sorted(grey)


async def test_no_color_marks_invalid_input_without_colour(monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "e")
        await settle(pilot)
        bad = app.screen.query_one("#f-n_layer", Input)
        bad.value = "x"
        await settle(pilot)
        assert bad.styles.text_style.reverse
        assert not app.screen.query_one("#f-n_head", Input).styles.text_style.reverse


def test_guarded_file_reports_a_lost_terminal() -> None:
    lost: list[bool] = []
    r, w = os.pipe()
    os.close(r)
    f = _GuardedFile(os.fdopen(w, "w", buffering=1), lambda: lost.append(True))
    f.write("x\n")  # EPIPE, like EIO on a hung-up tty: swallowed and reported
    f.flush()
    assert lost


def test_app_uses_the_safe_driver_on_posix() -> None:
    if os.name == "nt":
        return
    assert make_app(services()).driver_class is SafeLinuxDriver
