"""Whether a dataset is ready is decided in one place (`data.store`): the loop refuses a
folder whose files do not hold what its meta.json records, as the store and the prepare
step always did (the loop used to check only that train.bin existed)."""

from __future__ import annotations

import os

import pytest
from trainutil import one_thread, tiny_cfg, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui import events as E
from gpttui.data.store import get_dataset
from gpttui.runs import store as runs
from gpttui.train.trainer import Trainer


@pytest.mark.usefixtures("one_thread")
def test_the_loop_refuses_a_truncated_dataset_the_store_calls_incomplete():
    folder = write_dataset()
    with open(folder / "train.bin", "r+b") as f:  # e.g. a copy cut short by a full disk
        f.truncate(os.path.getsize(folder / "train.bin") - 2000)
    assert not get_dataset("tiny").ready
    cfg = tiny_cfg(max_iters=2)
    got: list[E.Event] = []
    res = Trainer(cfg, runs.create_run(cfg, "tiny", name="cut"), [got.append]).run()
    assert isinstance(res, E.Failed) and "dataset 'tiny' is incomplete" in res.reason
    assert "gpttui prepare" in res.hint and not any(isinstance(e, E.StepMetrics) for e in got)
