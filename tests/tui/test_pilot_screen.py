"""The Pilot screen: reached from Home (p), the editor (ctrl+t) and the palette; shows the
trials live (a scripted pilot: the engine itself is tested for real in tests/engine); its
recommendation starts with one key."""

from __future__ import annotations

import asyncio
import threading
import time

from conftest import settle
from textual.widgets import DataTable, Input, Static
from tui_fakes import FakeSession, services

from gpttui import config as C
from gpttui.errors import ConfigError
from gpttui.presets import save_user_preset
from gpttui.train import pilotplan as P
from gpttui.train.pilot import PilotState, TrialState
from gpttui.tui.app import make_app
from gpttui.tui.screens.pilot import PilotScreen, curves
from gpttui.tui.widgets.chart import LineChart

CANDS = [P.Candidate("gpt2"), P.Candidate("gpt2 lr x2", (("learning_rate", 2e-3),), "the preset's peak lrs x2"),
         P.Candidate("modern", (("recipe", "modern"),), "modern recipe"),
         P.Candidate("modern lr x2", (("recipe", "modern"), ("muon_lr", 0.04)), "modern, peak lrs x2")]


class FakePilot:
    """Plays a 4-candidate, 2-rung pilot through on_update; `gate` holds it mid-rung."""

    made: list[FakePilot] = []

    def __init__(self, preset, values, candidates, budget_s, on_update, finish=True):
        self.values, self.on_update, self.finish = values, on_update, finish
        self.state = PilotState(preset, "20231114-221300-tiny-pilot", budget_s, list(candidates), f"{preset}-pilot",
                                rung_sizes=[4, 2])
        self.gate = threading.Event()
        self.stopped = False
        FakePilot.made.append(self)

    def stop(self):
        self.stopped = True
        self.gate.set()

    def _trial(self, label, rung, speed, final):
        t = TrialState(label, rung, 20 * rung, eval_iters=2, run_id=f"r{rung}-{label}", state="finished", iter=20 * rung,
                       tokens_per_s=speed, peak_bytes=300 * 2**20, mfu=0.012, val_loss=final)
        t.curve = [(i * 0.5, final + 3.0 / (1 + i)) for i in range(0, 20 * rung, 2)]
        return t

    def run(self):
        st = self.state
        for i, c in enumerate(st.candidates):
            st.batching[c.label] = P.Batching(4, 1, 900.0 + 100 * i, 250 * 2**20, 0.01, "fastest of 2 (measured)")
        st.phase, st.elapsed_s = "rung 1/2: 4 trials x 10 s of training", 30.0
        for i, c in enumerate(st.candidates):
            st.trials.append(self._trial(c.label, 1, 900.0 + 100 * i, 6.0 - 0.1 * i))
        st.trials[-1].state, st.trials[-1].val_loss = "training", None
        st.log.append("rung 1: trials running")
        self.on_update(st)
        self.gate.wait(10)
        if self.stopped or not self.finish:
            st.phase, st.done = "stopped", True
            self.on_update(st)
            return st
        st.trials[-1].state, st.trials[-1].val_loss = "finished", 5.7
        for lb in ("modern lr x2", "modern"):
            st.trials.append(self._trial(lb, 2, 1200.0, 5.2 if lb == "modern lr x2" else 5.3))
        st.winner, st.elapsed_s, st.phase, st.done = "modern lr x2", 95.0, "done", True
        cfg = C.build({**self.values, **st.candidate("modern lr x2").values}, source="t")
        st.preset_path = str(save_user_preset(st.save_as, cfg))
        st.log.append("recommendation: modern lr x2; saved as preset 'tiny-pilot'")
        self.on_update(st)
        return st


def pilot_services(**kw):
    FakePilot.made.clear()
    prepared: list = []

    def prepare(preset, tries, values):
        from gpttui.presets import get

        prepared.append((preset, tries, values))
        if tries and tries[0].startswith("nope"):
            raise ConfigError("--try: unknown key 'nope'", "check the key")
        return preset, values if values is not None else dict(get(preset).values), CANDS

    s = services(prepare_pilot=prepare, new_pilot=lambda *a: FakePilot(*a), **kw)
    s.prepared = prepared
    return s


async def wait_for(pilot, cond, timeout=60.0):
    """Poll `cond` (asyncio.sleep, not Pilot.pause: under load a screen of many widgets can
    take longer to settle than Pilot's own 30 s wait, issue #20)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def pilot_mounted(app) -> bool:
    return isinstance(app.screen, PilotScreen) and bool(app.screen.query("#pilot-minutes")) and bool(
        app.screen.query("HeaderTitle"))


async def open_from_home(pilot):
    await settle(pilot)
    await pilot.press("down", "p")  # the tiny preset's row, then Pilot
    await wait_for(pilot, lambda: pilot_mounted(pilot.app))
    return pilot.app.screen


async def test_from_home_live_then_run_recommendation():
    app = make_app(pilot_services())
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_from_home(pilot)
        assert screen.preset == "tiny" and screen.values is None
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: FakePilot.made and screen.state is not None)
        fake = FakePilot.made[0]
        assert fake.state.budget_s == 30 * 60  # the default 30 minutes
        table = screen.query_one("#pilot-table", DataTable)
        assert table.row_count == 4
        assert "training" in [str(c) for c in table.get_row_at(3)]
        assert not screen.check_action("run_best", ()) and screen.check_action("stop", ())
        await pilot.press("escape")  # refused while running
        assert pilot.app.screen is screen
        fake.gate.set()
        await wait_for(pilot, lambda: screen.state.done and screen.state.winner)
        await pilot.pause(0.1)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows[3][0] == "* modern lr x2" and rows[3][-1].startswith("5.2000")
        assert len(screen.query_one("#pilot-chart", LineChart).series) == 4
        note = str(screen.query_one("#pilot-log", Static).render())  # what the memory column is
        assert "peak mem: this process's resident memory" in note and "upper bound" in note
        await pilot.press("r")
        await wait_for(pilot, lambda: FakeSession.instances)
        assert FakeSession.instances[-1].preset == "tiny-pilot"
        assert FakeSession.instances[-1].cfg.muon_lr == 0.04


async def test_from_editor_pilots_the_edited_values_and_stop():
    svc = pilot_services()
    app = make_app(svc)
    from gpttui.presets import get
    from gpttui.tui.screens.editor import EditorScreen

    assert any(b.key == "ctrl+t" and b.action == "pilot" for b in EditorScreen.BINDINGS)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        # (opened directly, not by keys: the editor's ~60 fields can take longer to mount under
        # load than Pilot.press waits, issue #20)
        app.open_editor("tiny", get("tiny").config())
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.query("#f-n_layer"))
        app.screen.query_one("#f-n_layer", Input).value = "3"
        await wait_for(pilot, lambda: app.screen.cfg is not None and app.screen.cfg.n_layer == 3)
        app.screen.action_pilot()
        await wait_for(pilot, lambda: pilot_mounted(pilot.app))
        screen = pilot.app.screen
        assert screen.values["n_layer"] == 3  # unsaved edit carried
        screen.query_one("#pilot-minutes", Input).value = "2"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.state is not None)
        assert svc.prepared[-1][2]["n_layer"] == 3 and FakePilot.made[0].state.budget_s == 120
        screen.query_one("#pilot-table", DataTable).focus()
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.state.done)
        assert FakePilot.made[0].stopped and screen.state.winner is None


async def test_bad_minutes_and_bad_try_are_one_line():
    app = make_app(pilot_services())
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_from_home(pilot)
        screen.query_one("#pilot-minutes", Input).value = "soon"
        await pilot.press("ctrl+r")
        await pilot.pause(0.2)
        assert not FakePilot.made and any("minutes" in n.message for n in app._notifications)
        screen.query_one("#pilot-minutes", Input).value = "5"
        screen.query_one("#pilot-tries", Input).value = "nope=1,2"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("unknown key 'nope'" in n.message for n in app._notifications))
        assert not FakePilot.made and screen.check_action("start", ())  # can start again


async def test_palette_command_pilots_the_selected_preset(monkeypatch):
    from textual.app import App

    monkeypatch.setattr(App, "get_system_commands", lambda self, screen: iter(()))  # only gpttui's own
    app = make_app(pilot_services())
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down")
        names = [c.title for c in app.get_system_commands(app.screen)]
        assert "Pilot" in names
        app.open_pilot()
        await wait_for(pilot, lambda: pilot_mounted(pilot.app))
        assert pilot.app.screen.preset == "tiny"
        await settle(pilot)


def test_curves_overlay_each_candidates_latest_trial():
    st = PilotState("p", "id", 60, CANDS)
    a = TrialState("gpt2", 1, 10, curve=[(0.0, 5.0), (1.0, 4.0)])
    b = TrialState("gpt2", 2, 20, curve=[(0.0, 5.0), (2.0, 3.5)])
    st.trials = [a, b, TrialState("modern", 1, 10)]
    (s,) = curves(st)
    assert s.label == "gpt2 (r2)" and s.xs == (0.0, 2.0)


def test_pilot_screen_snapshot(snap_compare):
    async def run_before(pilot) -> None:
        await open_from_home(pilot)
        screen = pilot.app.screen
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: FakePilot.made)
        FakePilot.made[0].gate.set()
        await wait_for(pilot, lambda: screen.state is not None and screen.state.done)
        for inp in screen.query(Input):
            inp.cursor_blink = False
        await settle(pilot)

    assert snap_compare(make_app(pilot_services()), terminal_size=(140, 40), run_before=run_before)
