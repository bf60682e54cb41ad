"""Faults that must end in one line with the cause and the fix: a data dir that is a file,
cannot be created or is read-only; a disk that fills during a checkpoint, a status write or
a dataset; temporaries a kill left; the best checkpoint kept beside the latest."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import pytest
import torch
from trainutil import one_thread, tiny_cfg, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui import events as E
from gpttui.cli import main as cli
from gpttui.errors import GpttuiError, RunError
from gpttui.runs import store as runs
from gpttui.runs import writer as runwriter
from gpttui.train.trainer import Trainer
from gpttui.weights import checkpoint as CK


def _main(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("argv", [["runs"], ["datasets"], ["--run", "demo"], ["prepare", "builtin:pystdlib", "--name", "x"],
                                  ["runs", "--json"]])
def test_data_dir_that_is_a_file_is_one_line(tmp_path, monkeypatch, capsys, argv):
    f = tmp_path / "afile"
    f.write_text("")
    monkeypatch.setenv("GPTTUI_DATA_DIR", str(f))
    code, err = _main(capsys, *argv)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"gpttui: error: GPTTUI_DATA_DIR {f} is a file, not a folder — point GPTTUI_DATA_DIR at a folder")


def test_data_dir_uncreatable_or_read_only_is_one_line(tmp_path, monkeypatch, capsys):
    f = tmp_path / "afile"
    f.write_text("")
    monkeypatch.setenv("GPTTUI_DATA_DIR", str(f / "sub"))  # parent is a file: cannot be created
    code, err = _main(capsys, "--run", "demo")
    assert code == 2 and err.count("\n") == 1 and f"cannot use GPTTUI_DATA_DIR {f / 'sub'}" in err
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setenv("GPTTUI_DATA_DIR", str(ro))

    def read_only(self, *a, **k):  # root ignores chmod: fake the file system's answer
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "write_bytes", read_only)
    code, err = _main(capsys, "prepare", "builtin:pystdlib", "--name", "x")
    assert code == 2 and err.count("\n") == 1
    assert "the file system is read-only" in err and "point GPTTUI_DATA_DIR at a writable folder" in err


@pytest.mark.parametrize("argv", [["runs"], ["datasets"], ["runs", "--json"]])
def test_reading_commands_refuse_a_data_dir_that_cannot_exist(tmp_path, monkeypatch, capsys, argv):
    """Before: `GPTTUI_DATA_DIR=/proc/nope gpttui runs` said "no runs yet" and exited 0."""
    monkeypatch.setenv("GPTTUI_DATA_DIR", "/proc/nope" if Path("/proc/self").exists() else str(tmp_path / "f" / "x"))
    if not Path("/proc/self").exists():
        (tmp_path / "f").write_text("")
    code, err = _main(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and "does not exist and cannot be created" in err
    fresh = tmp_path / "new" / "data"  # a missing dir that could be made: empty, and left unmade
    monkeypatch.setenv("GPTTUI_DATA_DIR", str(fresh))
    code, err = _main(capsys, *argv)
    assert code == 0 and not (tmp_path / "new").exists() and not list(tmp_path.glob(".gpttui-probe-*"))


def test_disk_full_while_writing_a_dataset_is_one_line(tmp_path, monkeypatch, capsys):
    src = tmp_path / "t.txt"
    src.write_text("hello world, this is a document.\n" * 200)
    real_fsync = os.fsync

    def full(fd):
        real_fsync(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code, err = _main(capsys, "prepare", str(src), "--name", "d", "--workers", "1", "--plain")
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("gpttui: error: ") and "free space" in last and "intact" in last


def _full_save(monkeypatch, after: int = 0) -> None:
    """torch.save writes part of the file, then the disk is full (from the `after`+1-th save)."""
    real = torch.save
    calls = [0]

    def save(obj, f, *a, **k):
        calls[0] += 1
        if calls[0] <= after:
            return real(obj, f, *a, **k)
        f.write(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(CK.torch, "save", save)


def test_checkpoint_disk_full_keeps_the_previous_one_and_says_so(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    CK.save_checkpoint(path, {"model": {"w": torch.ones(3)}, "iter_num": 4})
    _full_save(monkeypatch)
    with pytest.raises(GpttuiError) as e:
        CK.save_checkpoint(path, {"model": {"w": torch.zeros(3)}, "iter_num": 8})
    msg = str(e.value)
    assert msg.startswith("cannot write the checkpoint ckpt.pt (the previous one is intact): the disk is full")
    assert f"free space on {tmp_path}" in msg and "\n" not in msg
    assert CK.load_checkpoint(path)["iter_num"] == 4 and not CK.stale_temporaries(path)


def test_trainer_disk_full_at_the_second_checkpoint_fails_with_the_cause(monkeypatch, one_thread):  # noqa: F811
    write_dataset()
    cfg = tiny_cfg(always_save_checkpoint=True)
    run = runs.create_run(cfg, "tiny", name="full")
    _full_save(monkeypatch, after=1)
    got: list[E.Event] = []
    res = Trainer(cfg, run, [got.append]).run()
    assert isinstance(res, E.Failed) and res.iter == 8
    assert "the disk is full" in res.reason and "bug" not in res.hint and "free space" in res.hint
    assert CK.load_checkpoint(run.checkpoint_path)["iter_num"] == 4
    st = run.status()
    assert st["state"] == E.FAILED and st["checkpoint_iter"] == 4


def test_best_checkpoint_is_kept_beside_the_latest(tmp_path):
    latest = tmp_path / "ckpt.pt"
    CK.save_checkpoint(latest, {"model": {"w": torch.ones(2)}, "iter_num": 75, "best_val_loss": 4.1105})
    CK.keep_best(latest)
    CK.save_checkpoint(latest, {"model": {"w": torch.zeros(2)}, "iter_num": 150, "best_val_loss": 4.1105})
    assert CK.load_checkpoint(tmp_path / "best.pt")["iter_num"] == 75
    assert CK.load_checkpoint(latest)["iter_num"] == 150
    assert CK.choose(tmp_path, None) == (latest, "latest")
    assert CK.choose(tmp_path, "best") == (tmp_path / "best.pt", "best")
    (tmp_path / "best.pt").unlink()
    with pytest.raises(RunError, match="has no best.pt yet"):
        CK.choose(tmp_path, "best")


def test_trainer_keeps_best_pt_at_the_lowest_val_loss(one_thread):  # noqa: F811
    write_dataset()
    cfg = tiny_cfg(always_save_checkpoint=True, max_iters=12, lr_decay_iters=12)
    run = runs.create_run(cfg, "tiny", name="best")
    got: list[E.Event] = []
    Trainer(cfg, run, [got.append]).run()
    evals = [e for e in got if isinstance(e, E.EvalResult) and e.iter > 0]
    best = min(evals, key=lambda e: e.val_loss)
    assert CK.load_checkpoint(run.path / "best.pt")["iter_num"] == best.iter
    assert CK.load_checkpoint(run.checkpoint_path)["iter_num"] == 12


def test_status_write_disk_full_is_one_line(monkeypatch):
    run = runs.create_run(tiny_cfg(), "tiny", name="st")
    real = os.replace

    def full(src, dst):
        if str(dst).endswith("status.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(GpttuiError, match=r"cannot write run st status.json: the disk is full"):
        run.write_status(state=E.TRAINING)
    assert not list(run.path.glob(".status.json.*.tmp"))


def test_temporaries_left_by_a_kill_are_removed():
    run = runs.create_run(tiny_cfg(), "tiny", name="tmp")
    run.write_status(state=E.STOPPED)
    old = run.path / ".status.json.abc123.tmp"
    fresh = run.path / ".status.json.def456.tmp"
    big = run.path / ".ckpt.pt.xyz.tmp"
    for p in (old, fresh, big):
        p.write_text("{")
    past = time.time() - 3600
    os.utime(old, (past, past))
    os.utime(big, (past, past))
    runs.list_runs()  # not alive: old ones go, a fresh one may belong to a writer starting up
    assert not old.exists() and not big.exists() and fresh.exists()
    with run.lock():  # the lock holder is the only writer: everything left is garbage
        assert not fresh.exists()


def test_damaged_status_and_run_json_are_listed_not_hidden():
    cfg = tiny_cfg()
    a = runs.create_run(cfg, "tiny", name="a")
    b = runs.create_run(cfg, "tiny", name="b")
    (a.path / "status.json").write_text('{"state": "trai')
    (b.path / "run.json").write_text("[1, 2]")
    CK.save_checkpoint(a.checkpoint_path, {"model": {"w": torch.ones(1)}, "iter_num": 2})
    rows = {r.id: r for r in runs.list_runs()}
    assert rows["a"].state == "damaged" and rows["a"].resumable
    assert rows["a"].damaged == "status.json damaged; resume and sample work from its checkpoint"
    assert rows["b"].state == E.PREPARING and rows["b"].damaged.startswith("run.json damaged; it has no checkpoint")
    with pytest.raises(RunError) as e:
        a.status()
    assert "delete" not in str(e.value) and "gpttui --resume a" in str(e.value)
    # a resume continues from the checkpoint and writes a fresh status.json
    a.write_status(state=E.TRAINING)
    assert json.loads((a.path / "status.json").read_text())["state"] == E.TRAINING


def test_a_stop_during_eval_does_not_wait_for_it(one_thread):  # noqa: F811
    write_dataset()
    cfg = tiny_cfg(eval_iters=50)
    run = runs.create_run(cfg, "tiny", name="evalstop")
    got: list[E.Event] = []
    tr = Trainer(cfg, run, [got.append])
    tr.add_listener(lambda ev: tr.stop() if isinstance(ev, E.StatusChanged) and ev.state == E.EVALUATING
                    and tr.iter_num == 4 else None)
    res = tr.run()
    assert isinstance(res, E.Finished) and res.state == E.STOPPED and res.iter == 4
    assert [e.iter for e in got if isinstance(e, E.EvalResult)] == [0]  # the eval at 4 was dropped
    assert CK.load_checkpoint(run.checkpoint_path)["iter_num"] == 4


def test_metrics_disk_full_is_one_line_and_writing_resumes_after():
    run = runs.create_run(tiny_cfg(), "tiny", name="mf")
    w = runwriter.MetricsWriter(run)
    w(E.LogMessage(run.id, level="info", text="before"))

    class FullDisk:
        """The metrics file on a full disk: part of a line gets out, then ENOSPC."""

        def __init__(self, real):
            self.real, self.closed = real, False

        def write(self, text):
            self.real.write(text[:17])
            self.real.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            self.closed = True
            self.real.close()

    w._file = FullDisk(w._file)
    with pytest.raises(GpttuiError, match=r"cannot write run mf metrics.jsonl \(training goes on\): the disk is full"):
        w(E.LogMessage(run.id, level="info", text="lost"))
    w(E.LogMessage(run.id, level="info", text="after"))  # space again: a fresh line, nothing torn
    w.close()
    assert [e.text for e in run.events()] == ["before", "after"]
