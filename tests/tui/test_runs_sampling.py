"""Pilot tests: Runs (open, compare, resume, delete) and Sampling, on run folders on disk."""

from __future__ import annotations

import json

from conftest import settle, text_of, wait_for
from textual.widgets import DataTable, Input, Static
from tui_fakes import FakeSession, script, services, write_run

from gpttui import events as E
from gpttui.tui.app import make_app
from gpttui.tui.screens.compare import CompareScreen
from gpttui.tui.screens.dialogs import ChoiceScreen
from gpttui.tui.screens.runs import RunsScreen, RunViewScreen
from gpttui.tui.screens.sampling import SamplingScreen
from gpttui.tui.screens.training import TrainingScreen


def two_runs(data) -> None:
    write_run(data, "20231114-a", "tiny", script("20231114-a", 20) + [E.Finished("20231114-a", state=E.FINISHED, iter=20, best_val_loss=3.5, tokens_seen=2560, elapsed_s=5.0, time=0)])
    slower = [e if not isinstance(e, E.EvalResult) else E.EvalResult(e.run_id, iter=e.iter, train_loss=e.train_loss, val_loss=e.val_loss + 0.5, best_val_loss=e.val_loss + 0.5, tokens_seen=e.tokens_seen, time=0)
              for e in script("20231114-b", 20)]
    write_run(data, "20231114-b", "tiny", [e.__class__(**{**e.__dict__, "run_id": "20231114-b"}) for e in slower], state=E.STOPPED)


async def test_runs_compare_and_delete(isolated_dirs) -> None:
    data, _ = isolated_dirs
    two_runs(data)
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        table = app.screen.query_one("#runs", DataTable)
        assert table.row_count == 2
        await pilot.press("space", "down", "c")
        await settle(pilot)
        cmp = app.screen
        assert isinstance(cmp, CompareScreen)
        chart = cmp.query_one("#compare-chart")
        assert [len(s.xs) for s in chart.series] == [2, 2]
        table_text = text_of(cmp.query_one("#compare-table", Static))
        assert "val @ iter 20" in table_text and "250 ms" in table_text
        await pilot.press("escape")
        await settle(pilot)
        # delete asks first
        listed_before = app.services.list_runs()
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.click("#choice-delete")
        await settle(pilot)
        assert app.screen.query_one("#runs", DataTable).row_count == 1
        # the reload started when the dialog closed may finish after the delete's: ignored
        from gpttui.tui.messages import RunsLoaded

        app.screen.post_message(RunsLoaded(listed_before, generation=app.screen._generation - 1))
        await settle(pilot)
        assert app.screen.query_one("#runs", DataTable).row_count == 1


async def test_open_run_follows_metrics_file(isolated_dirs) -> None:
    data, _ = isolated_dirs
    path = write_run(data, "20231114-live", "tiny", script("20231114-live", 10), state=E.TRAINING)
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_run("20231114-live")
        await settle(pilot)
        view = app.screen
        assert isinstance(view, RunViewScreen) and view.live.step.iter == 10
        with open(path / "metrics.jsonl", "a") as f:  # another process appends
            for ev in script("20231114-live", 15)[-5:]:
                f.write(json.dumps(ev.to_json()) + "\n")
        await wait_for(pilot, lambda: view.live.step.iter >= 15, what="the appended steps")
        assert view.live.step.iter == 15
        await pilot.press("p")  # not ours: refused with a note
        await settle(pilot)
        assert not FakeSession.instances


async def test_resume_from_runs(isolated_dirs) -> None:
    data, _ = isolated_dirs
    two_runs(data)
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("r")  # cursor on the newest: 20231114-b, stopped
        await settle(pilot)
        assert isinstance(app.screen, TrainingScreen)
        assert FakeSession.instances[-1].run_id == "20231114-b"
        assert app.live.run_id == "20231114-b"


async def test_sampling_streams_and_saves(isolated_dirs) -> None:
    data, _ = isolated_dirs
    two_runs(data)
    saved = {}

    def fake_stream(run, prompt, max_new_tokens, temperature, top_k, seed, checkpoint=None, on_load=None):
        assert (max_new_tokens, temperature, top_k, seed) == (5, 0.5, 10, 7)
        on_load(run.path / "best.pt", "best", {"iter_num": 10})
        yield from ["Hello", ",", " world", "!", "\n"]

    def fake_save(run, prompt, text, settings):
        saved.update(run=run.id, prompt=prompt, text=text, settings=settings)
        return run.path / "samples" / "x.json"

    app = make_app(services(stream_sample=fake_stream, save_sample=fake_save))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_sampling("20231114-a")
        await settle(pilot)
        scr = app.screen
        assert isinstance(scr, SamplingScreen)
        for key, value in (("temperature", "0.5"), ("top_k", "10"), ("max_new_tokens", "5"), ("seed", "7"), ("prompt", ">>> ")):
            scr.query_one(f"#s-{key}", Input).value = value
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert text_of(scr.query_one("#sample-out", Static)).startswith(">>> Hello, world!")
        assert saved["text"] == "Hello, world!\n" and saved["run"] == "20231114-a"
        status = text_of(scr.query_one("#sample-status", Static))
        assert "from best.pt (best, iter 10); 5 pieces, saved in the run folder" in status
        scr.query_one("#s-temperature", Input).value = "hot"
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert "temperature must be a float" in text_of(scr.query_one("#sample-status", Static))


async def test_runs_and_compare_show_the_forecast_of_an_unfinished_run(isolated_dirs) -> None:
    data, _ = isolated_dirs
    two_runs(data)  # a finished, b stopped: b's last forecast was 3.412 ± 0.046
    b = data / "runs" / "20231114-b"
    with open(b / "metrics.jsonl", "a") as f:
        f.write(json.dumps(E.Forecast("20231114-b", iter=20, loss=3.4123, band=0.0456, at_iter=40, n_evals=9,
                                      time=0).to_json()) + "\n")
    st = json.loads((b / "status.json").read_text())
    (b / "status.json").write_text(json.dumps({**st, "forecast": 3.4123, "forecast_band": 0.0456}))
    app = make_app(services())
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        table = app.screen.query_one("#runs", DataTable)
        col = [c.label.plain for c in table.columns.values()].index("forecast")
        cells = {table.get_row_at(r)[1]: table.get_row_at(r)[col] for r in range(table.row_count)}
        assert cells == {"20231114-b": "3.412±0.046", "20231114-a": "–"}
        await pilot.press("space", "down", "c")
        await settle(pilot)
        text = text_of(app.screen.query_one("#compare-table", Static))
        assert "final val" in text and "~3.412±0.046" in text and "~ forecast (computed)" in text  # (#22: fits 44 columns)
