"""W&B (offline) and TensorBoard as listeners of the trainer: what they record is read back
from their own files; a missing package or a failing tracker is one warning, never a failed run."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import struct
import sys
import time

import pytest
from trainutil import one_thread, tiny_cfg, train_closing_trackers, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui import events as E
from gpttui.train.trackers import listener as trackers


@pytest.fixture(autouse=True)
def dataset(one_thread):  # noqa: F811 - the imported fixture, requested by name
    return write_dataset()


_train = train_closing_trackers


def _steps(run):
    return {e.iter: e.loss for e in run.events() if isinstance(e, E.StepMetrics)}


def test_tensorboard_event_files_hold_the_runs_losses():
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _ = _train(tiny_cfg(tensorboard_log=True))
    acc = EventAccumulator(str(run.path / "tensorboard"))
    acc.Reload()
    got = {s.step: s.value for s in acc.Scalars("train/loss")}
    assert got == pytest.approx(_steps(run), rel=1e-6)
    evals = [e for e in run.events() if isinstance(e, E.EvalResult)]
    assert [s.step for s in acc.Scalars("val/loss")] == [e.iter for e in evals]
    assert "config/text_summary" in acc.Tags()["tensors"]


def test_a_resumed_tensorboard_log_hides_what_the_lost_session_wrote_past_its_checkpoint(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from gpttui.train.trackers.tbwriter import TbWriter

    first = TbWriter(tmp_path / "tb")
    for i in range(1, 11):
        first.add_scalar("train/loss", 10.0 - i, i)
    first.close()
    time.sleep(1.1)  # event files are named by the second
    second = TbWriter(tmp_path / "tb", purge_step=6)  # resumed from the checkpoint at step 5
    for i in range(6, 9):
        second.add_scalar("train/loss", 100.0 + i, i)
    second.add_text("samples", "def f():", 8)
    second.close()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    got = {s.step: s.value for s in acc.Scalars("train/loss")}
    assert got == {**{i: 10.0 - i for i in range(1, 6)}, **{i: 100.0 + i for i in range(6, 9)}}
    assert "samples/text_summary" in acc.Tags()["tensors"]
    import subprocess

    out = subprocess.run([sys.executable, "-c", "import sys, gpttui.train.trackers.tbwriter; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # the tracker process's TensorBoard writer imports no torch (1.8 s of CPU)


def _wandb_records(path):
    """Records of W&B's offline `.wandb` file (LevelDB log framing around protobuf records)."""
    from wandb.proto import wandb_internal_pb2 as pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, buf, out = 7, b"", []
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _crc, n, typ = struct.unpack("<IHB", data[pos:pos + 7])
        buf += data[pos + 7:pos + 7 + n]
        pos += 7 + n
        if typ in (1, 4):  # FULL or LAST
            rec = pb2.Record()
            rec.ParseFromString(buf)
            out.append(rec)
            buf = b""
    return out


def test_wandb_offline_logs_config_steps_and_evals_into_the_run_folder(monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run, got = _train(tiny_cfg(wandb_log=True, wandb_project="proj"))
    files = list((run.path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    end = time.monotonic() + 20  # wandb-core (its own process) may still be writing after finish()
    while True:
        recs = _wandb_records(files[0])
        types = {r.WhichOneof("record_type") for r in recs}
        if {"run", "history", "exit"} <= types or time.monotonic() > end:
            break
        time.sleep(0.5)
    first = next(r.run for r in recs if r.WhichOneof("record_type") == "run")
    assert (first.run_id, first.project) == (run.id, "proj")
    config = {u.key for r in recs if r.WhichOneof("record_type") == "run" for u in r.run.config.update}
    assert {"learning_rate", "n_layer", "wandb_log"} <= config
    hist = [{(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item}
            for r in recs if r.WhichOneof("record_type") == "history"]
    losses = {int(h["iter"]): h["train/loss"] for h in hist if "train/loss" in h}
    kinds = sorted({r.WhichOneof("record_type") or "" for r in recs})
    assert losses == pytest.approx(_steps(run), rel=1e-6), f"{len(hist)} history records; record types {kinds}"
    assert any("val/loss" in h for h in hist)
    assert any(k.startswith("samples") for h in hist for k in h)  # the eval samples, as a W&B table
    assert not [e for e in got if isinstance(e, E.LogMessage) and e.level == "warning"]


def test_a_missing_package_is_one_line_and_training_goes_on(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    _, got = _train(tiny_cfg(wandb_log=True))
    warn = [e.text for e in got if isinstance(e, E.LogMessage) and e.level == "warning"]
    assert len(warn) == 1 and "pip install 'gpttui[wandb]'" in warn[0] and "training goes on" in warn[0]


class Broken:
    """A backend whose logging fails at the first step (module level: the tracker process
    imports it by reference)."""

    name = "tensorboard"

    def __init__(self, *a):
        pass

    def handle(self, ev, it):
        if isinstance(ev, E.StepMetrics):
            raise OSError("disk full")

    def close(self):
        pass


class Dies(Broken):
    """A backend that takes its whole process down at the first step."""

    def handle(self, ev, it):
        if isinstance(ev, E.StepMetrics):
            os._exit(3)


def _fake_tensorboard(monkeypatch, cls):
    monkeypatch.setitem(trackers.BACKENDS, "tensorboard", cls)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "tensorboard" else real(name, *a))


def test_a_tracker_that_fails_is_dropped_with_a_warning(monkeypatch):
    _fake_tensorboard(monkeypatch, Broken)
    run, got = _train(tiny_cfg(tensorboard_log=True))
    warn = [e.text for e in got if isinstance(e, E.LogMessage) and e.level == "warning"]
    assert warn == ["tensorboard: logging failed (OSError: disk full); no more tensorboard logging"]
    assert len(_steps(run)) == 8  # every step still reached metrics.jsonl
    assert any(isinstance(e, E.LogMessage) and "disk full" in e.text for e in run.events())  # and the warning


def test_a_dead_tracker_process_is_one_warning_and_training_goes_on(monkeypatch):
    _fake_tensorboard(monkeypatch, Dies)
    run, got = _train(tiny_cfg(tensorboard_log=True, max_iters=8))
    warn = [e.text for e in got if isinstance(e, E.LogMessage) and e.level == "warning"]
    assert len(warn) == 1 and "tracker process ended early (exit code 3)" in warn[0], warn
    assert "training goes on" in warn[0]
    assert len(_steps(run)) == 8 and any(e.kind == "finished" for e in got)


def test_the_tracker_process_runs_at_the_lowest_priority(monkeypatch):
    """The child lowers its own priority before starting any backend (W&B's service inherits it)."""
    _fake_tensorboard(monkeypatch, Broken)
    run, _ = _train(tiny_cfg(tensorboard_log=True))
    log = (run.path / "trackers.log").read_text()
    assert "(nice 19" in log, log
    if sys.platform == "linux":
        assert "SCHED_IDLE)" in log, log


def test_a_tracker_process_that_cannot_start_is_one_warning(monkeypatch):
    import subprocess

    def refuse(*a, **kw):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    _fake_tensorboard(monkeypatch, Broken)
    run, got = _train(tiny_cfg(tensorboard_log=True))
    warn = [e.text for e in got if isinstance(e, E.LogMessage) and e.level == "warning"]
    assert len(warn) == 1 and "could not start the tracker process" in warn[0] and "training goes on" in warn[0]
    assert len(_steps(run)) == 8


def test_wandb_uploads_each_sample_once(monkeypatch):
    """Issue #20: the samples table was logged whole at every eval (n evals: n(n+1)/2 rows
    uploaded). Now each eval's table file holds only that eval's new sample."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run, got = _train(tiny_cfg(wandb_log=True, wandb_project="proj", max_iters=12, lr_decay_iters=12, eval_interval=4))
    samples = [e for e in got if trackers.sample_text(e) is not None]
    assert len(samples) >= 3
    end = time.monotonic() + 20  # wandb-core may still be writing the media files after finish()
    while True:
        tables = sorted((run.path / "wandb").glob("offline-run-*/files/media/table/samples_*.table.json"))
        if len(tables) >= len(samples) or time.monotonic() > end:
            break
        time.sleep(0.5)
    rows = [json.loads(t.read_text())["data"] for t in tables]
    assert len(rows) == len(samples), [t.name for t in tables]
    assert [len(r) for r in rows] == [1] * len(samples)  # before: 1, 2, 3, ...
    assert sorted(r[0][1] for r in rows) == sorted(trackers.sample_text(e) for e in samples)
