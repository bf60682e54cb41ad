"""Starting and resuming a run have one home (`gpttui.train.launch`) that headless and the TUI
share: a TUI resume prepares a dataset that went missing, as a headless one always did."""

from __future__ import annotations

import argparse
import random
import shutil

import pytest
from trainutil import one_thread, tiny_cfg  # noqa: F401 - one_thread is a fixture

from gpttui import events as E
from gpttui.cli import headless
from gpttui.data.store import get_dataset
from gpttui.runs import store as runs
from gpttui.train import launch
from gpttui.tui.services import RealSession

WORDS = "the of and to in is was for that on with as by at from model training data token language".split()


def _text_source(tmp_path) -> str:
    """Twenty small .txt documents: enough tokens for block_size 16 in both splits."""
    rng = random.Random(0)
    root = tmp_path / "texts"
    root.mkdir()
    for i in range(20):
        (root / f"d{i:02d}.txt").write_text(" ".join(rng.choice(WORDS) for _ in range(300)) + ".")
    return str(root)


def _train(session: RealSession) -> None:
    session.start()
    session.join(120)
    assert not session.is_alive()


@pytest.mark.usefixtures("one_thread")
def test_a_tui_resume_prepares_a_dataset_that_went_missing(tmp_path):
    cfg = tiny_cfg(dataset="gone", data_source=_text_source(tmp_path), val_fraction=0.2, max_iters=2,
                   eval_interval=2, lr_decay_iters=2, warmup_iters=0)
    got: list[E.Event] = []
    first = RealSession(cfg, "tiny", got.append)
    _train(first)
    assert isinstance(got[-1], E.Finished) and get_dataset("gone").ready
    shutil.rmtree(get_dataset("gone").path)  # e.g. deleted to free disk between sessions

    got.clear()
    later = RealSession(None, "", got.append, resume=first.run_id)
    toml = runs.get_run(first.run_id).path / "config.toml"  # a finished run resumes to a higher goal
    toml.write_text(toml.read_text().replace("max_iters = 2", "max_iters = 4"))
    _train(later)
    failed = [e for e in got if isinstance(e, E.Failed)]
    assert not failed, failed[0].reason if failed else ""
    assert any(isinstance(e, E.PrepareProgress) for e in got)  # prepared again, shown on the screen
    assert isinstance(got[-1], E.Finished) and got[-1].iter == 4 and get_dataset("gone").ready


def test_headless_and_the_tui_start_and_resume_through_launch(monkeypatch, tmp_path):
    """Both doors call the same two functions (the copies used to drift apart)."""
    calls: list[tuple[str, object]] = []

    class Stop(Exception):
        pass

    def fake_start(cfg, preset, **kw):
        calls.append(("start", preset))
        raise Stop

    def fake_resume(run_ref, **kw):
        calls.append(("resume", getattr(run_ref, "id", run_ref)))
        raise Stop

    monkeypatch.setattr(launch, "start", fake_start)
    monkeypatch.setattr(launch, "resume", fake_resume)
    cfg = tiny_cfg()
    run = runs.create_run(cfg, "tiny", "r1")
    with pytest.raises(Stop):
        headless.cmd_run(argparse.Namespace(run="demo", overrides=[], name=None, plain=True))
    with pytest.raises(Stop):
        headless.cmd_resume(argparse.Namespace(resume=run.id, overrides=[], plain=True))
    with pytest.raises(Stop):
        RealSession(cfg, "tiny", lambda ev: None).start()
    with pytest.raises(Stop):
        RealSession(None, "", lambda ev: None, resume=run.id).start()
    assert calls == [("start", "demo"), ("resume", "r1"), ("start", "tiny"), ("resume", "r1")]
