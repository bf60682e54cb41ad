"""#22: typing in the editor is never delayed by an estimate, and estimates do not pile up."""

from __future__ import annotations

import threading

from conftest import settle
from test_editor_live import open_editor
from textual.widgets import Input
from tui_fakes import services

from gpttui.plan.estimate import count_params
from gpttui.tui import services as S
from gpttui.tui.app import make_app


class SlowEstimator:
    """The real estimate, held back while `gate` is shut: a loaded machine's 15 s estimate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.armed = False  # Home's and the editor's first estimates go through at once
        self.calls: list[int] = []  # n_layer of each config estimated once armed

    def __call__(self, cfg, *args, **kw):
        if self.armed:
            self.calls.append(cfg.n_layer)
            assert self.gate.wait(30), "the test never opened the gate"
        return S._estimate(cfg, *args, **kw)


async def test_keys_are_handled_while_an_estimate_runs_and_the_last_value_is_estimated() -> None:
    slow = SlowEstimator()
    app = make_app(services(estimate=slow))
    async with app.run_test(size=(120, 40)) as pilot:
        ed = await open_editor(pilot)
        slow.armed = True
        field = ed.query_one("#f-n_layer", Input)
        field.focus()
        field.value = ""  # (an empty n_layer is invalid: no estimate)
        await pilot.press("3")  # -> an estimate starts and blocks
        await pilot.pause(0.05)
        for key, shown in (("1", "31"), ("backspace", "3"), ("6", "36")):
            await pilot.press(key)
            assert field.value == shown, "a key waited for the estimate"
        assert not slow.gate.is_set() and slow.calls == [3]  # the estimate for "3" is still running
        slow.gate.set()
        await settle(pilot)
        # one running estimate (for "3"), then one for the latest value: never one per key
        assert slow.calls == [3, 36], slow.calls
        assert ed.cfg is not None and ed.cfg.n_layer == 36
        assert ed.estimate.params_nanogpt.value == count_params(ed.cfg).nanogpt  # the shown one is 36's
