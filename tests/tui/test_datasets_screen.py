"""The Datasets screen: the list, preparing with live progress, deleting (asks, Keep first)."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import settle, text_of
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

    def __call__(self, sources, name, text_column="text", progress=None):
        self.calls.append((sources, name, text_column))
        progress(E.PrepareProgress(name, bytes_done=12_300_000, bytes_total=45_000_000, documents=3400,
                                   tokens=1_200_000, tokens_per_s=350_000.0, eta_s=9.0, time=NOW))
        assert self.release.wait(10)
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
        assert row[:4] == ["books", "5.5k", "44", "/data/books/*.txt"] and row[6] == "ready"
        # prepare: the dialog, then live progress while the worker runs
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, PrepareScreen)
        app.screen.query_one("#p-source", Input).value = "/data/web/*.parquet"
        app.screen.query_one("#p-name", Input).value = "web"
        await pilot.click("#p-go")
        await pilot.pause(0.3)
        progress = text_of(screen.query_one("#ds-progress", Static))
        assert "preparing web: tokenizing 12.3 MB / 45.0 MB (27 %) · 1.2M tokens · 3,400 docs" in progress
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
