"""Split determinism, no-op re-runs, stale folders, the store and ensure_dataset."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from data_helpers import fineweb_texts, write_parquet

from gpttui.config import TrainConfig
from gpttui.data import streams
from gpttui.data.ensure import ensure_dataset
from gpttui.data.prepare import prepare
from gpttui.data.store import get_dataset, list_datasets
from gpttui.data.writer import val_mask
from gpttui.errors import DataError
from gpttui.paths import datasets_dir


def bins(name: str) -> tuple[bytes, bytes]:
    d = datasets_dir() / name
    return (d / "train.bin").read_bytes(), (d / "val.bin").read_bytes()


def test_bytes_do_not_depend_on_workers_or_batch_size(tmp_path, monkeypatch, text_folder):
    path = write_parquet(tmp_path / "f.parquet", fineweb_texts(400, seed=7))
    srcs = [str(path), str(text_folder[0])]
    prepare(srcs, "w1", workers=1, val_fraction=0.1)
    monkeypatch.setattr(streams, "TASK_CHARS", 3000)  # many batches in flight
    prepare(srcs, "w2", workers=2, val_fraction=0.1)
    monkeypatch.setattr(streams, "TASK_CHARS", 50_000)
    prepare(srcs, "w1b", workers=1, val_fraction=0.1)
    assert bins("w1") == bins("w2") == bins("w1b")
    train, val = bins("w1")
    assert len(val) > 0 and len(train) > 4 * len(val)


def test_val_mask_is_deterministic_and_near_the_fraction():
    m = val_mask(0, 200_000, 0.01)
    assert not m[0] and m[1]
    assert abs(m[2:].mean() - 0.01) < 0.002
    assert np.array_equal(val_mask(0, 200_000, 0.01)[1000:2000], val_mask(1000, 1000, 0.01))


def test_small_corpus_gets_a_minimum_val_fraction(fineweb):
    info = prepare([str(fineweb[0])], "small", val_fraction=0.0005, workers=1)
    split = info.meta["split"]
    assert split["effective_val_fraction"] > 0.0005 and info.val_tokens > 0


def test_rerun_unchanged_is_a_noop_force_and_changes_rebuild(fineweb):
    path = fineweb[0]
    stages: list[str] = []
    first = prepare([str(path)], "fw", workers=1, progress=lambda e: stages.append(e.stage))
    assert stages[0] == "scanning" and stages[-1] == "done"
    created = first.meta["created"]
    mtime = (first.path / "train.bin").stat().st_mtime_ns
    stages.clear()
    again = prepare([str(path)], "fw", workers=1, progress=lambda e: stages.append(e.stage))
    assert stages[-1] == "unchanged" and again == first
    assert (first.path / "train.bin").stat().st_mtime_ns == mtime
    stages.clear()
    prepare([str(path)], "fw", workers=1, force=True, progress=lambda e: stages.append(e.stage))
    assert stages[-1] == "done"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    stages.clear()
    prepare([str(path)], "fw", workers=1, progress=lambda e: stages.append(e.stage))
    assert stages[-1] == "done"
    stages.clear()
    prepare([str(path)], "fw", workers=1, val_fraction=0.01, progress=lambda e: stages.append(e.stage))
    assert stages[-1] == "done" and get_dataset("fw").meta["split"]["val_fraction"] == 0.01
    assert created  # sanity: meta carries its creation time


def test_stale_temp_folders_are_cleaned_and_old_dataset_restored(fineweb):
    root = datasets_dir()
    info = prepare([str(fineweb[0])], "keep", workers=1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = root / f".fw.tmp-{pid}-abc123"
    stale.mkdir()
    (stale / "train.bin").write_bytes(b"\0\0")
    os.rename(info.path, root / f".keep.old-{pid}-abc123")  # killed between the two renames
    assert [d.name for d in list_datasets()] == []
    prepare([str(fineweb[0])], "fw", workers=1)
    assert not stale.exists()
    assert get_dataset("keep").ready and not (root / f".keep.old-{pid}-abc123").exists()


def test_a_live_prepare_of_the_same_name_is_refused(fineweb):
    root = datasets_dir()
    root.mkdir(parents=True)
    (root / f".fw.tmp-{os.getppid()}-abc123").mkdir()  # a live process (pytest's parent)
    with pytest.raises(DataError, match="being prepared by process"):
        prepare([str(fineweb[0])], "fw", workers=1)


def test_store_readiness():
    root = datasets_dir()
    nano = root / "nanogpt-copy"
    nano.mkdir(parents=True)
    np.arange(100, dtype="<u2").tofile(nano / "train.bin")
    np.arange(10, dtype="<u2").tofile(nano / "val.bin")
    (root / "half").mkdir()
    (root / "half" / "train.bin").write_bytes(b"\0\0")
    (root / ".hidden.tmp-1").mkdir()
    infos = {i.name: i for i in list_datasets()}
    assert set(infos) == {"nanogpt-copy", "half"}
    assert infos["nanogpt-copy"].ready and infos["nanogpt-copy"].train_tokens == 100
    assert not infos["half"].ready
    assert get_dataset("../x") is None and get_dataset("missing") is None


def test_damaged_dataset_is_not_ready(fineweb):
    info = prepare([str(fineweb[0])], "fw", workers=1)
    with open(info.path / "train.bin", "ab") as f:
        f.write(b"\0\0")
    assert not get_dataset("fw").ready
    (info.path / "meta.json").write_text("{not json")
    assert not get_dataset("fw").ready


def test_ensure_dataset_prepares_once(tmp_path, fineweb):
    other = write_parquet(tmp_path / "g.parquet", fineweb_texts(30, seed=9))
    cfg = TrainConfig(dataset="auto", data_source=f"{fineweb[0]} ; {other}", val_fraction=0.01)
    events = []
    info = ensure_dataset(cfg, progress=events.append)
    assert info.ready and len(info.sources) == 2 and events[-1].stage == "done"
    events.clear()
    assert ensure_dataset(cfg, progress=events.append) == info and events == []
    with pytest.raises(DataError, match="no data_source names what to prepare it from"):
        ensure_dataset(TrainConfig(dataset="nothing", data_source=""))


SHAKESPEARE_CHAR = """# train a miniature character-level shakespeare model
out_dir = 'out-shakespeare-char'
eval_interval = 250
eval_iters = 200
log_interval = 10
always_save_checkpoint = False
wandb_log = False
dataset = 'shakespeare_char'
gradient_accumulation_steps = 1
batch_size = 64
block_size = 256
n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.2
learning_rate = 1e-3
max_iters = 5000
lr_decay_iters = 5000
min_lr = 1e-4
beta2 = 0.99
warmup_iters = 100
"""


def test_a_missing_dataset_is_never_built_from_a_source_the_user_did_not_name(tmp_path, capsys):
    """Before: nanoGPT's train_shakespeare_char.py prepared 'shakespeare_char' from
    builtin:pystdlib (the default data_source) and trained on Python source; a config with
    no dataset trained on demo-pystdlib; --set dataset=corpsu made a new copy."""
    from gpttui.cli.main import main

    assert TrainConfig().data_source == ""
    cfg_py = tmp_path / "train_shakespeare_char.py"
    cfg_py.write_text(SHAKESPEARE_CHAR)
    ensure_dataset(TrainConfig(dataset="corpus", data_source="builtin:pystdlib", val_fraction=0.01))
    for argv, name in (([str(cfg_py)], "shakespeare_char"), ([str(cfg_py), "--set", "dataset=corpsu"], "corpsu")):
        assert main(["--run", *argv, "--set", "device=cpu"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"dataset '{name}' does not exist" in err, err
        assert f"gpttui prepare SOURCE --name {name}" in err
        assert get_dataset(name) is None
    assert "did you mean --set dataset=corpus" in err
    no_dataset = tmp_path / "train_gpt2.py"  # nanoGPT's train.py default: openwebtext, never the demo's
    no_dataset.write_text("batch_size = 12\nblock_size = 1024\n")
    assert main(["--run", str(no_dataset), "--set", "device=cpu"]) == 2
    assert "dataset 'openwebtext' does not exist" in capsys.readouterr().err
    assert {d.name for d in list_datasets()} == {"corpus"}


def test_a_new_name_for_an_already_prepared_source_is_refused_not_copied(tmp_path, fineweb):
    cfg = TrainConfig(dataset="first", data_source=str(fineweb[0]), val_fraction=0.01)
    ensure_dataset(cfg)
    with pytest.raises(DataError) as e:
        ensure_dataset(cfg.replace(dataset="nope"))
    msg = str(e.value)
    assert "no dataset 'nope'" in msg and "already prepared as 'first'" in msg and "--set dataset=first" in msg
    assert get_dataset("nope") is None
    # another split of the same source is different data: prepared under the new name
    assert ensure_dataset(cfg.replace(dataset="other-split", val_fraction=0.05)).ready


def _tokenizer_children() -> list:
    import multiprocessing

    return multiprocessing.active_children()  # also reaps the ones that ended


@pytest.mark.parametrize("workers", [1, 2])
def test_a_cancelled_prepare_stops_and_keeps_nothing(tmp_path, monkeypatch, fineweb, workers):
    """cancel() is asked between batches: the prepare stops there, its tokenizer processes
    end, no hidden folder stays, and a dataset of that name is kept as it was."""
    import time

    from gpttui.data.prepare import PrepareCancelled

    old = prepare([str(fineweb[0])], "fw", workers=1)
    before = bins("fw")
    big = write_parquet(tmp_path / "big.parquet", fineweb_texts(400, seed=3))
    monkeypatch.setattr(streams, "TASK_CHARS", 3000)  # many batches
    seen: list[str] = []

    def progress(ev):
        seen.append(ev.stage)

    asked = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) > 3  # after a few batches
    with pytest.raises(PrepareCancelled, match="'fw' was stopped; nothing of it was kept"):
        prepare([str(big)], "fw", workers=workers, force=True, progress=progress, cancel=cancel)
    assert "done" not in seen and len(asked) == 4
    assert bins("fw") == before and get_dataset("fw").meta == old.meta  # the old dataset, untouched
    assert [p.name for p in datasets_dir().iterdir()] == ["fw"]  # no .fw.tmp-* left
    end = time.monotonic() + 10
    while _tokenizer_children() and time.monotonic() < end:
        time.sleep(0.1)
    assert not _tokenizer_children()
    with pytest.raises(PrepareCancelled):  # before any file is read: nothing at all
        prepare([str(big)], "new", workers=workers, cancel=lambda: True)
    assert not (datasets_dir() / "new").exists() and [p.name for p in datasets_dir().iterdir()] == ["fw"]
