"""Bad input: one-line DataError naming the file and what to do; nothing written."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
from data_helpers import fineweb_texts, write_parquet

from gpttui.data import writer
from gpttui.data.prepare import prepare
from gpttui.data.store import get_dataset
from gpttui.errors import DataError
from gpttui.paths import datasets_dir


def nothing_written() -> bool:
    root = datasets_dir()
    return not root.exists() or not any(root.iterdir())


def fails(sources, match: str, **kw) -> DataError:
    with pytest.raises(DataError, match=match) as exc:
        kw.setdefault("workers", 1)
        prepare([str(s) for s in sources], kw.pop("name", "bad"), **kw)
    msg = str(exc.value)
    assert "\n" not in msg and " — " in msg  # one line, with a hint
    return exc.value


def test_missing_path(tmp_path):
    fails([tmp_path / "nope.parquet"], r"nope\.parquet: no such file or folder")
    fails([str(tmp_path / "*.parquet")], r"no files match")
    assert nothing_written()


def test_not_parquet_and_truncated(tmp_path, fineweb):
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"this is not parquet at all" * 10)
    fails([junk], r"junk\.parquet: not a parquet file or truncated")
    half = tmp_path / "half.parquet"
    data = fineweb[0].read_bytes()
    half.write_bytes(data[: len(data) // 2])
    fails([half], r"half\.parquet: not a parquet file or truncated")
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    fails([empty], r"empty\.parquet")
    assert nothing_written()


def test_no_such_text_column_lists_columns(fineweb):
    err = fails([fineweb[0]], r"no column 'body' \(columns: text, id, dump, url", text_column="body")
    assert "--text-column" in str(err)
    assert nothing_written()


def test_zero_usable_documents(tmp_path):
    path = write_parquet(tmp_path / "nulls.parquet", [None, "", None, ""])
    fails([path], r"nulls\.parquet: no usable documents \(2 null, 2 empty skipped\)")
    assert nothing_written() or not any(p.name.startswith(".") for p in datasets_dir().iterdir())
    assert get_dataset("bad") is None


def test_single_document_cannot_be_split(tmp_path):
    (tmp_path / "one.txt").write_text("only one short document")
    fails([tmp_path / "one.txt"], r"only one document")
    assert get_dataset("bad") is None


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "x" * 200])
def test_names_that_escape_the_data_dir(fineweb, name):
    fails([fineweb[0]], "invalid dataset name", name=name)
    assert nothing_written()


def test_unsupported_and_bad_files(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n")
    fails([tmp_path / "data.csv"], r"data\.csv: unsupported file type")
    (tmp_path / "empty_dir").mkdir()
    fails([tmp_path / "empty_dir"], r"empty_dir: folder holds no")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "ok"}) + "\n{broken\n")
    fails([bad], r"bad\.jsonl:2: invalid JSON")
    nofield = tmp_path / "nofield.jsonl"
    nofield.write_text(json.dumps({"body": "x", "id": 1}) + "\n")
    fails([nofield], r"nofield\.jsonl:1: no field 'text' \(fields: body, id\)")
    shard = tmp_path / "wrong.bin"
    shard.write_bytes(np.zeros(300, dtype="<i4").tobytes())
    fails([shard], r"wrong\.bin: not an llm\.c token shard")
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240520, 1, 1000)
    (tmp_path / "short.bin").write_bytes(header.tobytes() + b"\0\0" * 10)
    fails([tmp_path / "short.bin"], r"short\.bin: shard truncated")
    assert nothing_written()


def test_bad_arguments(fineweb):
    fails([fineweb[0]], "val fraction", val_fraction=0.7)
    fails([fineweb[0]], "workers", workers=-1)


def test_disk_full_keeps_the_old_dataset(tmp_path, monkeypatch, fineweb):
    old = prepare([str(fineweb[0])], "fw", workers=1)
    before = (old.path / "train.bin").read_bytes(), (old.path / "meta.json").read_bytes()
    calls = {"n": 0}
    real = writer._write_array

    def full_disk(fh, tokens):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fh, tokens)

    monkeypatch.setattr(writer, "_write_array", full_disk)
    bigger = write_parquet(tmp_path / "big.parquet", fineweb_texts(300, seed=3))
    with pytest.raises(DataError, match=r"(train|val)\.bin: disk full while writing the dataset.*intact"):
        prepare([str(bigger)], "fw", workers=1, force=True)
    after = get_dataset("fw")
    assert after is not None and after.ready
    assert ((after.path / "train.bin").read_bytes(), (after.path / "meta.json").read_bytes()) == before
    assert [p.name for p in datasets_dir().iterdir()] == ["fw"]  # no temp folder left
