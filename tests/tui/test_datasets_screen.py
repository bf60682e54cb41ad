"""The Datasets screen: the list, preparing with live progress, deleting (asks, Keep first)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from conftest import settle, text_of, wait_for
from textual.widgets import DataTable, Input, Static
from tui_fakes import NOW, services

from gpttui import events as E
from gpttui.tui.app import make_app
from gpttui.tui.screens.datasets import DatasetsScreen, PrepareScreen
from gpttui.tui.screens.dialogs import ChoiceScreen


def make_dataset(data_dir, name: str, tokens: int = 5000, source: str = "/data/books/*.txt") -> None:
    import os

    d = data_dir / "datasets" / name
    d.mkdir(parents=True)
    (d / "train.bin").write_bytes(b"\0\0" * tokens)
    (d / "val.bin").write_bytes(b"\0\0" * (tokens // 10))
    (d / "meta.json").write_text(json.dumps({
        "format_version": 1, "tokenizer": "gpt2", "vocab_size": 50257, "dtype": "uint16", "sources": [{"path": source}],
        "splits": {"train": {"tokens": tokens, "documents": 40}, "val": {"tokens": tokens // 10, "documents": 4}}}))
    for f in d.iterdir():
        os.utime(f, (NOW, NOW))


class BlockingPrepare:
    """prepare_dataset: reports progress, then waits for the test before it 'finishes'."""

    def __init__(self, data_dir) -> None:
        self.data_dir, self.release, self.calls = data_dir, threading.Event(), []
        self.cancelled = False

    def __call__(self, sources, name, text_column="text", progress=None, cancel=None):
        self.calls.append((sources, name, text_column))
        progress(E.PrepareProgress(name, bytes_done=12_300_000, bytes_total=45_000_000, documents=3400,
                                   tokens=1_200_000, tokens_per_s=350_000.0, eta_s=9.0, time=NOW))
        end = time.monotonic() + 300  # the test releases or cancels it (minutes under load)
        while not self.release.wait(0.02):  # the real prepare asks cancel() between batches
            if cancel is not None and cancel():
                from gpttui.data.prepare import PrepareCancelled

                self.cancelled = True
                raise PrepareCancelled(f"preparing {name!r} was stopped; nothing of it was kept")
            assert time.monotonic() < end
        make_dataset(self.data_dir, name, 1_500_000, ";".join(sources))
        from gpttui.data.store import get_dataset

        return get_dataset(name)


async def open_datasets(pilot) -> DatasetsScreen:
    await settle(pilot)
    await pilot.press("d")
    await settle(pilot)
    assert isinstance(pilot.app.screen, DatasetsScreen)
    return pilot.app.screen


async def test_datasets_lists_prepares_with_progress_and_deletes(isolated_dirs) -> None:
    data, _ = isolated_dirs
    make_dataset(data, "books", 5000)
    prep = BlockingPrepare(data)
    app = make_app(services(prepare_dataset=prep))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_datasets(pilot)
        table = screen.query_one(DataTable)
        assert table.row_count == 1
        row = table.get_row("books")
        assert row[:3] == ["books", "ready", "5.5k"] and row[4:] == ["44", row[5], "/data/books/*.txt"]
        # prepare: the dialog, then live progress while the worker runs
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, PrepareScreen)
        app.screen.query_one("#p-source", Input).value = "/data/web/*.parquet"
        app.screen.query_one("#p-name", Input).value = "web"
        await pilot.click("#p-go")
        await wait_for(pilot, lambda: "ETA" in text_of(screen.query_one("#ds-progress", Static)),
                       what="the prepare's progress")
        progress = text_of(screen.query_one("#ds-progress", Static))
        assert "preparing web: tokenizing 11.7 MiB / 42.9 MiB (27 %) · 1.2M tokens · 3,400 docs" in progress
        assert "ETA 9.0s" in progress
        prep.release.set()
        await settle(pilot, 0.2)
        assert prep.calls == [(["/data/web/*.parquet"], "web", "text")]
        assert table.row_count == 2 and "prepared web: 1.6M tokens" in text_of(screen.query_one("#ds-progress", Static))
        # delete: asks, Keep is the default answer
        table.move_cursor(row=list(table.rows).index(next(k for k in table.rows if k.value == "web")))
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen) and app.screen.focused.id == "choice-cancel"
        await pilot.press("enter")
        await settle(pilot)
        assert table.row_count == 2
        await pilot.press("d")
        await settle(pilot)
        await pilot.click("#choice-delete")
        await settle(pilot, 0.2)
        assert [k.value for k in table.rows] == ["books"]
        assert not (data / "datasets" / "web").exists()


def test_delete_refuses_a_dataset_a_live_run_trains_on(isolated_dirs, monkeypatch) -> None:
    from gpttui.data import manage
    from gpttui.errors import DataError

    data, _ = isolated_dirs
    make_dataset(data, "books")
    monkeypatch.setattr(manage, "runs_training_on", lambda name: ["20231114-tiny"] if name == "books" else [])
    with pytest.raises(DataError, match="in use by run 20231114-tiny"):
        manage.delete_dataset("books")
    assert (data / "datasets" / "books").is_dir()
    with pytest.raises(DataError, match="no dataset"):
        manage.delete_dataset("nope")


async def test_a_prepare_is_stopped_with_c_or_esc_after_asking(isolated_dirs) -> None:
    """c (or Esc, which would leave the screen) while preparing asks first, Keep being the
    default; Stop ends the prepare at its next batch and nothing of it is listed."""
    from textual.widgets import Button

    data, _ = isolated_dirs
    make_dataset(data, "books", 5000)
    prep = BlockingPrepare(data)
    app = make_app(services(prepare_dataset=prep))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_datasets(pilot)
        assert not screen.active_bindings.get("c")  # no stop key while nothing is prepared
        await pilot.press("n")
        await settle(pilot)
        app.screen.query_one("#p-source", Input).value = "/data/web/*.parquet"
        app.screen.query_one("#p-name", Input).value = "web"
        await pilot.click("#p-go")
        await wait_for(pilot, lambda: app.screen is screen and screen.active_bindings.get("c"), what="the stop key")
        assert screen.active_bindings["c"].binding.description == "Stop preparing"
        await pilot.press("c")  # (not settle(): the prepare's worker runs on)
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen) and app.screen.focused, what="the question")
        assert isinstance(app.screen, ChoiceScreen) and app.screen.focused.id == "choice-keep"
        assert "Stop preparing web?" in text_of(app.screen.query_one("#question", Static))
        await pilot.press("enter")  # Keep preparing
        await wait_for(pilot, lambda: app.screen is screen, what="the datasets screen again")
        assert app.screen is screen and screen.preparing == "web" and not prep.cancelled
        await pilot.press("escape")  # leaving would orphan the prepare: asks the same
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen), what="the question")
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.click("#choice-stop")
        await settle(pilot, 0.3)
        assert prep.cancelled and app.screen is screen and screen.preparing == ""
        assert "stopped preparing web; nothing of it was kept" in text_of(screen.query_one("#ds-progress", Static))
        assert [k.value for k in screen.query_one(DataTable).rows] == ["books"]
        assert not screen.active_bindings.get("c") and not list(app.screen.query(Button))
        await pilot.press("escape")  # nothing preparing: Esc goes back
        await settle(pilot)
        assert not isinstance(app.screen, DatasetsScreen)
