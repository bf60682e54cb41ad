"""#22's walk through every screen at 80x24, 120x40 and 200x60 (all but Training): what
read wrong to a newcomer, each pinned here."""

from __future__ import annotations

from conftest import settle, text_of, wait_for
from textual.widgets import DataTable, Static
from tui_fakes import TINY_PRESET, services, write_run

from gpttui.tui.app import make_app
from gpttui.tui.screens.home import HomeScreen

# A preset that sizes its own model and batch but inherits nanoGPT's 40 micro-batches.
LEAN_PRESET = TINY_PRESET.replace('"tiny test preset"', '"lean: no accumulation key"').replace(
    "gradient_accumulation_steps = 1\n", "")


async def open_runs(pilot, rows: int) -> None:
    """From Home, `u`: the Runs screen once it lists `rows` runs."""
    from gpttui.tui.screens.runs import RunsScreen

    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
    await pilot.press("u")
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.query_one("#runs", DataTable).row_count == rows,
                   what=f"{rows} run(s) listed")
    await settle(pilot)


def presets_rows(app) -> dict[str, list[str]]:
    t = app.screen.query_one("#presets", DataTable)
    return {str(k.value): [str(c) for c in t.get_row(k)] for k in t.rows}


async def test_home_marks_presets_with_warnings_and_says_the_selected_ones(isolated_dirs) -> None:
    """Home's table showed no warnings (the editor and --estimate did): a newcomer picked a
    preset inheriting 40 micro-batches per iteration unwarned. Now ⚠ marks it in the table
    and the detail line under it gives the warning."""
    _, conf = isolated_dirs
    (conf / "presets" / "lean.toml").write_text(LEAN_PRESET)
    app = make_app(services())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await wait_for(pilot, lambda: presets_rows(app).get("lean", ["", "–"])[1] != "–", what="lean's estimate")
        await settle(pilot)
        assert presets_rows(app)["lean"][0] == "lean * ⚠"
        t = app.screen.query_one("#presets", DataTable)
        t.move_cursor(row=t.get_row_index("lean"))
        await settle(pilot)
        detail = text_of(app.screen.query_one("#preset-detail", Static))
        assert detail.startswith("lean: lean: no accumulation key\n⚠ gradient_accumulation_steps = 40 is nanoGPT's default"), detail


async def test_home_lists_runs_of_other_processes_as_runs_does(isolated_dirs) -> None:
    """Home said "training" where Runs said "training (live)" for the same run; and the
    detail line sat at the bottom of a tall terminal, far from the presets it describes."""
    import json
    import os

    data, _ = isolated_dirs
    path = write_run(data, "20231114-other", "tiny", [], state="training")
    status = json.loads((path / "status.json").read_text())
    status.update(pid=os.getpid(), host=__import__("socket").gethostname())
    (path / "status.json").write_text(json.dumps(status))
    app = make_app(services())
    async with app.run_test(size=(200, 60)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        recent = app.screen.query_one("#recent", DataTable)
        await wait_for(pilot, lambda: recent.row_count == 1, what="the run listed")
        await settle(pilot)
        assert str(recent.get_row_at(0)[1]) == "training (live)"
        presets = app.screen.query_one("#presets", DataTable)
        detail = app.screen.query_one("#preset-detail", Static)
        assert detail.region.y - presets.region.bottom <= 1, (presets.region, detail.region)
        assert recent.region.height > 20  # the runs take the rest of the screen


def test_help_lists_every_screen_once_per_action() -> None:
    """Help repeated "? Help" and "q Quit" under Home (they are listed for everywhere),
    gave Enter and e (both Edit) two lines, and had no Pilot screen nor a run's own view."""
    from rich.console import Console

    from gpttui.tui.screens.help import help_table

    console = Console(width=120, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(help_table())
    lines = console.export_text().splitlines()
    assert sum("this help" in line or line.split()[-1:] == ["Help"] for line in lines) == 1, lines
    assert any(line.split()[:4] == ["Home", "Enter", "/", "e"] for line in lines), lines
    assert any(line.startswith("Pilot ") and "Start pilot" in line for line in lines), lines
    assert any(line.startswith("A run (o on Runs)") for line in lines), lines
    assert any(line.split()[-4:] == ["p", "Pause", "/", "Resume"] for line in lines), lines  # one row, not two


async def test_runs_says_why_the_selected_run_ended_and_what_r_does(isolated_dirs) -> None:
    """Runs listed "failed" and "interrupted" with no why: the failure's message was only in
    status.json. A line under the table now says it, and whether r can resume the run."""
    import json


    data, _ = isolated_dirs
    failed = write_run(data, "20231114-a-failed", "tiny", [], state="failed")
    st = json.loads((failed / "status.json").read_text())
    st["message"] = "loss became nan at iteration 3; stopped before any checkpoint was saved"
    (failed / "status.json").write_text(json.dumps(st))
    write_run(data, "20231114-b-killed", "tiny", [], state="training")  # pid 0: its process is gone
    app = make_app(services())
    async with app.run_test(size=(80, 24)) as pilot:
        await open_runs(pilot, 2)
        detail = app.screen.query_one("#run-detail", Static)
        text = " ".join(text_of(detail).split())
        assert text.startswith("20231114-b-killed: interrupted at iter 20/40 · its process ended without stopping it"), text
        assert text.endswith("no checkpoint to resume from"), text
        await pilot.press("down")
        await settle(pilot)
        text = " ".join(text_of(detail).split())
        assert "20231114-a-failed: failed at iter 20/40 · loss became nan at iteration 3" in text, text


def test_compare_table_reads_whole_at_120x40() -> None:
    """At 120x40 the table beside the chart has 44 columns: it cut "step time (med…",
    "tokens to val …", "HellaSwag (in …", "0.2600±0.040 @…", "GPT-2 124…" and a forecast
    "3.412 ± 0.050 fore…". Nothing is cut now; units and origin are in labels and caption."""
    from rich.console import Console
    from tui_fakes import step

    from gpttui import events as E
    from gpttui.tui.screens.compare import compare_table

    a, b = "20261202-004513-demo", "20261202-010203-demo-modern"

    def events(rid: str) -> list[E.Event]:
        return [*(step(rid, i) for i in range(1, 21)),
                *(E.EvalResult(rid, iter=i, train_loss=6.0, val_loss=5.5182 - i / 100, best_val_loss=5.3,
                               tokens_seen=1000 * i) for i in (10, 20)),
                E.TaskEval(rid, iter=20, task="hellaswag", acc_norm=0.26, acc=0.25, stderr=0.04, n=200),
                E.Forecast(rid, iter=20, loss=3.4123, band=0.0501, at_iter=5000, n_evals=2)]

    console = Console(width=44, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(compare_table(a, events(a), b, events(b),
                                hellaswag={a: "0.2671±0.004 (n 10,042)", b: "0.2702±0.004 (n 10,042)"}))
    text = console.export_text()
    header, *rows = text.splitlines()
    assert "…" not in "\n".join(rows), text
    assert header.split() == ["004513-demo", "010203-demo…"], header  # (the title names them in full)
    for want in ("step medians", "step time", "0.2600±0.040", "0.2671±0.004", "10,042", "~3.412±0.050",
                 "GPT-2 124M 0.2955", "~ forecast (computed)"):
        assert want in text, (want, text)


async def test_the_editor_says_a_nanogpt_py_configs_dataset_is_nanogpts_default(tmp_path) -> None:
    """A nanoGPT .py config without `dataset`: the editor said "set by the preset"."""
    from gpttui import presets
    from gpttui.tui.screens.editor import EditorScreen

    path = tmp_path / "train_bare.py"
    path.write_text("n_layer = 2\nn_head = 2\nn_embd = 32\nbatch_size = 2\nblock_size = 32\n"
                    "gradient_accumulation_steps = 1\nmax_iters = 40\nwarmup_iters = 2\nlr_decay_iters = 40\n")
    p = presets.get(str(path))
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        app.open_editor(p.name, p.config(), new=True, own=p.keys)
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.query("#h-dataset"),
                       what="the editor")
        await settle(pilot)
        assert text_of(app.screen.query_one("#h-dataset", Static)).endswith("· inherited: nanoGPT's default")
        assert text_of(app.screen.query_one("#h-n_layer", Static)).endswith("· set by the preset")


def test_the_estimate_says_whether_its_speed_is_measured_or_computed() -> None:
    """Home's time for demo (a past run's measured speed) and the editor's (its matmul peak
    at an assumed MFU) differed, and neither said which: the editor's speed row says it."""
    from types import SimpleNamespace as NS

    from gpttui.tui.widgets.estimate_panel import speed_basis

    def est(value, basis):
        return NS(tokens_per_s=NS(value=value, basis=basis))

    assert speed_basis(est(333.9, "measured in run other")) == "measured, run other"
    assert speed_basis(est(333.9, "measured in a past run of the same shape")) == "measured"
    assert speed_basis(est(1e6, "assumed MFU 35% of 1 × 58.3 TFLOPS")) == "computed"
    assert speed_basis(est(None, "no peak or measured throughput for this device")) == ""


async def test_the_dataset_field_says_checking_until_the_datasets_are_listed(isolated_dirs) -> None:
    """Under load the editor's first frames said "demo-pystdlib (not prepared" of a
    prepared dataset, until the worker listing the datasets came back."""
    import threading

    from test_datasets_screen import make_dataset
    from textual.widgets import Select
    from textual.widgets._select import SelectCurrent

    from gpttui.tui.screens.editor import EditorScreen
    from gpttui.tui.services import Services

    data, _ = isolated_dirs
    make_dataset(data, "tiny-ds", 5000)
    release = threading.Event()

    def slow_list() -> list:
        release.wait(60)
        return Services.list_datasets()

    app = make_app(services(list_datasets=slow_list))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await wait_for(pilot, lambda: presets_rows(app).get("tiny", ["", "–"])[1] != "–", what="tiny's estimate")
        t = app.screen.query_one("#presets", DataTable)
        t.move_cursor(row=t.get_row_index("tiny"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.query("#f-dataset"), what="the editor")
        await pilot.pause(0.1)

        def shown() -> str:
            return text_of(app.screen.query_one("#f-dataset", Select).query_one(SelectCurrent).query_one("#label", Static))

        assert "checking…" in shown() and "not prepared" not in shown(), shown()
        release.set()
        await wait_for(pilot, lambda: "tokens" in shown(), what="the listed dataset")
        assert "5.5k tokens" in shown(), shown()


async def test_the_prepare_dialogs_labels_are_whole_at_80_and_120_columns() -> None:
    """The source's label was cut ("… .bin); ';' betwee") in the Prepare dialog at 120x40."""
    from textual.widgets import Label

    from gpttui.tui.screens.datasets import PrepareScreen

    for size in ((80, 24), (120, 40)):
        app = make_app(services())
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda app=app: isinstance(app.screen, HomeScreen))
            app.push_screen(PrepareScreen())
            await wait_for(pilot, lambda app=app: isinstance(app.screen, PrepareScreen) and app.screen.query(Label))
            await settle(pilot)
            box = app.screen.query_one("#dialog").content_region
            for label in app.screen.query(Label):
                text = str(label.render())
                assert label.region.right <= box.right, (size, text, label.region, box)
                assert label.region.width * label.region.height >= len(text), (size, text, label.region)


async def test_datasets_show_their_state_at_80_columns(isolated_dirs) -> None:
    """At 80x24 the datasets table showed name, tokens, documents and a long source glob:
    "state" (ready / incomplete) and "prepared" were off-screen. State comes second now and
    the source last."""
    from test_datasets_screen import make_dataset, open_datasets

    data, _ = isolated_dirs
    make_dataset(data, "books", 5000)
    app = make_app(services())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_datasets(pilot)
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the dataset listed")
        keys = [str(k.value) for k in table.columns]
        assert keys[:2] == ["name", "state"] and keys[-1] == "source", keys
        shown = 0
        for key in keys[: keys.index("prepared") + 1]:
            shown += table.columns[key].get_render_width(table)
        assert shown <= 78, shown  # everything up to "prepared" fits beside the scrollbar


async def test_an_idle_pilot_screen_says_nothing_runs_yet() -> None:
    """Opened, the Pilot screen's empty chart said "waiting for data…" though nothing runs
    until ctrl+r; and its footer was Textual's (the leak StableFooter fixes; cut keys)."""
    from gpttui.tui.screens.pilot import PilotScreen
    from gpttui.tui.widgets.chart import LineChart
    from gpttui.tui.widgets.footer import StableFooter

    app = make_app(services())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        app.open_pilot("tiny")
        await wait_for(pilot, lambda: isinstance(app.screen, PilotScreen) and app.screen.query("#pilot-log"))
        await settle(pilot)
        assert not app.screen.query_one("#pilot-chart", LineChart).display
        assert text_of(app.screen.query_one("#pilot-log", Static)).startswith("Nothing runs until ctrl+r.")
        assert app.screen.query(StableFooter)


async def test_the_palette_names_every_key_of_an_action_and_one_help() -> None:
    """From Home the palette said "Edit · Enter on this screen" (e too edits), and listed
    Textual's "Keys" (the focused widget's keys) beside gpttui's Help (every screen's)."""
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await settle(pilot)
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert commands["Edit"] == "Enter / e on this screen", commands
        assert "Keys" not in commands and "Help" in commands


async def test_deleting_a_live_run_is_refused_before_the_dialog(isolated_dirs) -> None:
    """d on a run another process trains asked "Delete run …?", then said it is still
    training. It says so at once now, with no dialog."""
    import json
    import os
    import socket

    from gpttui.tui.screens.dialogs import ChoiceScreen

    data, _ = isolated_dirs
    path = write_run(data, "20231114-live", "tiny", [], state="training")
    st = json.loads((path / "status.json").read_text())
    st.update(pid=os.getpid(), host=socket.gethostname())
    (path / "status.json").write_text(json.dumps(st))
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await open_runs(pilot, 1)
        await pilot.press("d")
        await settle(pilot)
        assert not isinstance(app.screen, ChoiceScreen)
        assert any("stop it first" in str(n.message) for n in app._notifications), list(app._notifications)
        assert path.exists()


async def test_runs_keep_every_column_at_120_with_a_pilot_trials_long_id(isolated_dirs) -> None:
    """A pilot trial's id (20261202-070813-demo-pilot-r1-c0) widened the run column until
    tok/s, MFU and time were off-screen at 120 columns; the line under the table names it."""

    data, _ = isolated_dirs
    write_run(data, "20261202-070813-demo-pilot-r1-c0", "tiny", [])
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await open_runs(pilot, 1)
        table = app.screen.query_one("#runs", DataTable)
        assert str(table.get_row_at(0)[1]) == "…070813-demo-pilot-r1-c0"
        width = sum(c.get_render_width(table) for c in table.columns.values())
        assert width <= 118, width
        assert text_of(app.screen.query_one("#run-detail", Static)).startswith("20261202-070813-demo-pilot-r1-c0: finished")


def test_the_too_small_note_claims_no_training() -> None:
    """Below 80x24 with nothing training the note said "(training continues meanwhile)"."""
    from gpttui.tui.screens.dialogs import TooSmallNote

    text = TooSmallNote.message((70, 20), (80, 24))
    assert "training continues" not in text and "nothing stops while it is small" in text


async def test_home_lists_a_pilot_trial_as_runs_does(isolated_dirs) -> None:
    """Home listed a pilot's trial by its whole 32-character id and plain preset; Runs
    marks it "(pilot trial)" and keeps the id's end."""
    import json

    data, _ = isolated_dirs
    path = write_run(data, "20261202-070813-demo-pilot-r1-c0", "tiny", [])
    st = json.loads((path / "status.json").read_text())
    st["pilot"] = "20261202-070813-demo-pilot · preset · rung 1"
    (path / "status.json").write_text(json.dumps(st))
    app = make_app(services())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        recent = app.screen.query_one("#recent", DataTable)
        await wait_for(pilot, lambda: recent.row_count == 1, what="the trial listed")
        row = [str(c) for c in recent.get_row_at(0)]
        assert row[0] == "…070813-demo-pilot-r1-c0" and row[2] == "tiny (pilot trial)", row


async def test_runs_drop_the_columns_no_run_has_a_figure_in(isolated_dirs) -> None:
    """HellaSwag and forecast columns of dashes only took 25 columns: at 120 tok/s, MFU and
    time were cut. They show when a run has a figure."""
    import json


    data, _ = isolated_dirs
    write_run(data, "20231114-a", "tiny", [])
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        await open_runs(pilot, 1)
        table = app.screen.query_one("#runs", DataTable)
        labels = [str(c.label) for c in table.columns.values()]
        assert "HellaSwag" not in labels and "forecast" not in labels and labels[-3:] == ["tok/s", "MFU", "time"], labels
        path = data / "runs" / "20231114-a" / "status.json"
        st = json.loads(path.read_text())
        st.update(forecast=3.4123, forecast_band=0.05, state="stopped")
        path.write_text(json.dumps(st))
        app.screen.reload()
        await wait_for(pilot, lambda: "forecast" in [str(c.label) for c in table.columns.values()], what="the forecast column")
        assert str(table.get_row_at(0)[[str(c.label) for c in table.columns.values()].index("forecast")]) == "3.412±0.050"
