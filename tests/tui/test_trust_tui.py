"""Pilot tests for faults a long run meets: a broken user preset, a damaged run folder."""

from __future__ import annotations

from conftest import settle, text_of
from textual.widgets import DataTable, Static
from tui_fakes import script, services, write_run

from gpttui import events as E
from gpttui.tui.app import make_app
from gpttui.tui.screens.runs import RunsScreen


async def test_one_broken_user_preset_does_not_empty_home(isolated_dirs) -> None:
    _, conf = isolated_dirs
    (conf / "presets" / "broken.toml").write_text("n_layer = = 3\n")
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#presets", DataTable)
        assert [str(k.value) for k in table.rows] == ["broken", "gpt2-small", "tiny"]
        row = table.get_row("broken")
        assert row[4] == "error" and "not valid TOML" in str(row[5])
        assert table.get_row("tiny")[1] != "–"  # the others still estimate


async def test_damaged_runs_are_listed_as_damaged(isolated_dirs) -> None:
    data, _ = isolated_dirs
    done = script("20231114-a", 20) + [E.Finished("20231114-a", state=E.FINISHED, iter=20, best_val_loss=3.5,
                                                  tokens_seen=2560, elapsed_s=5.0, time=0)]
    write_run(data, "20231114-a", "tiny", done)
    bad = write_run(data, "20231114-b", "tiny", script("20231114-b", 10), state=E.STOPPED)
    (bad / "status.json").write_text('{"state": "trai')
    (bad / "ckpt.pt").write_bytes(b"")  # present: resume and sample are offered
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        table = app.screen.query_one("#runs", DataTable)
        assert table.row_count == 2
        assert table.get_row("20231114-b")[2] == "damaged"
        hint = text_of(app.screen.query_one("#runs-hint", Static))
        assert "20231114-b: status.json damaged; resume and sample work from its checkpoint" in hint
        table.move_cursor(row=table.get_row_index("20231114-b"))
        await pilot.press("enter")  # its view opens from metrics.jsonl; nothing raises
        await settle(pilot)
        assert app.screen.__class__.__name__ == "RunViewScreen"
