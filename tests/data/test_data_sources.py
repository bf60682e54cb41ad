"""Every source kind yields exactly tiktoken's tokens, EOT after each document."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from data_helpers import (
    expected_tokens,
    fineweb_texts,
    sentence_text,
    usable,
    write_parquet,
    write_shard,
)

from gpttui.data import sources
from gpttui.data.prepare import prepare
from gpttui.data.streams import split_pieces
from gpttui.tokenizer import EOT, get_encoding


def tokens_of(info) -> tuple[np.ndarray, np.ndarray]:
    return (np.fromfile(info.path / "train.bin", dtype="<u2"), np.fromfile(info.path / "val.bin", dtype="<u2"))


def docs_of(arr: np.ndarray) -> list[tuple[int, ...]]:
    """Split a .bin at EOT into documents (each must end with EOT)."""
    assert arr.size == 0 or arr[-1] == EOT
    cuts = np.flatnonzero(arr == EOT)
    return [tuple(s.tolist()) for s in np.split(arr, cuts + 1)[:-1]]


def check_exact(info, docs: list[str]) -> None:
    """Both splits together hold each document's tokens + EOT, each split in source order."""
    enc = get_encoding()
    expected = [tuple(enc.encode_ordinary(d)) + (EOT,) for d in docs]
    train, val = tokens_of(info)
    assert train.size + val.size == expected_tokens(docs)
    assert info.train_tokens == train.size and info.val_tokens == val.size
    got_train, got_val = docs_of(train), docs_of(val)
    assert sorted(got_train + got_val) == sorted(expected)
    assert info.train_docs == len(got_train) and info.val_docs == len(got_val) >= 1
    it = iter(expected)  # each split is a subsequence of the source order
    assert all(any(d == e for e in it) for d in got_train)
    assert info.ready and info.meta["dtype"] == "uint16" and info.meta["vocab_size"] == 50257


@pytest.mark.parametrize("large", [False, True])
def test_parquet_fineweb_schema_counts_match_tiktoken(tmp_path, large):
    texts = fineweb_texts(60)
    path = write_parquet(tmp_path / "f.parquet", texts, large=large)
    info = prepare([str(path)], "fw", workers=1)
    check_exact(info, usable(texts))
    assert info.meta["skipped"] == {"null": 2, "empty": 1, "undecodable_bytes": 0}
    assert info.meta["sources"][0]["files"] == 1


def test_parquet_folder_and_glob(tmp_path):
    (tmp_path / "shards").mkdir()
    a, b = fineweb_texts(20, seed=1), fineweb_texts(25, seed=2)
    write_parquet(tmp_path / "shards" / "000.parquet", a)
    write_parquet(tmp_path / "shards" / "001.parquet", b)
    check_exact(prepare([str(tmp_path / "shards")], "folder", workers=1), usable(a) + usable(b))
    check_exact(prepare([str(tmp_path / "shards" / "*.parquet")], "glob", workers=1), usable(a) + usable(b))


def test_text_folder_one_doc_per_file_bad_bytes_replaced(text_folder):
    root, docs = text_folder
    info = prepare([str(root)], "txt", workers=1)
    check_exact(info, docs)
    assert info.meta["skipped"] == {"null": 0, "empty": 1, "undecodable_bytes": 2}


def test_jsonl_field(jsonl_file):
    path, docs = jsonl_file
    info = prepare([str(path)], "js", text_column="content", workers=1)
    check_exact(info, docs)
    assert info.meta["skipped"]["null"] == 1 and info.meta["skipped"]["empty"] == 1


def test_llmc_shards_copied_without_retokenizing(tmp_path):
    rng = random.Random(3)
    docs = [sentence_text(rng, rng.randint(5, 100)) for _ in range(40)]
    raw1 = write_shard(tmp_path / "fineweb_train_000001.bin", docs[:15])
    # a document cut across shards, as llm.c does when a shard fills up
    raw2 = write_shard(tmp_path / "fineweb_train_000002.bin", docs[15:])
    cut = raw2.size // 2
    s2 = np.concatenate([raw1, raw2[:cut]])
    s3 = raw2[cut:]
    for name, arr in (("a_000.bin", s2), ("a_001.bin", s3)):
        header = np.zeros(256, dtype="<i4")
        header[:3] = (20240520, 1, arr.size)
        (tmp_path / "split").mkdir(exist_ok=True)
        (tmp_path / "split" / name).write_bytes(header.tobytes() + arr.astype("<u2").tobytes())
    check_exact(prepare([str(tmp_path / "split")], "shards", workers=1), docs)
    check_exact(prepare([str(tmp_path / "fineweb_train_*.bin")], "shards2", workers=1), docs)


def test_mixed_sources_keep_order(tmp_path, text_folder):
    texts = fineweb_texts(30)
    pq_path = write_parquet(tmp_path / "f.parquet", texts)
    shard_docs = ["shard doc one.", "shard doc two, last in the shard"]
    write_shard(tmp_path / "s.bin", shard_docs)
    # parquet (text) + shard + text folder, in the given order
    info = prepare([str(pq_path), str(tmp_path / "s.bin"), str(text_folder[0])], "mix", workers=1)
    check_exact(info, usable(texts) + shard_docs + text_folder[1])
    assert len(info.sources) == 3


def test_pystdlib_is_sorted_and_excludes_site_packages():
    files = sources.pystdlib_files()
    root = sources.pystdlib_root()
    rel = [f.relative_to(root).as_posix() for f in files]
    assert rel == sorted(rel) and len(rel) > 200
    assert not any("site-packages" in r for r in rel)
    assert "os.py" in rel and "json/__init__.py" in rel


def test_long_documents_cut_into_pieces_tokenize_identically():
    enc = get_encoding()
    rng = random.Random(4)
    src = (sources.pystdlib_root() / "argparse.py").read_text()
    for text in (sentence_text(rng, 60_000), src * 3, "x" * 300_000):
        pieces, rest = split_pieces(text, final=True, size=4096)
        assert rest == "" and "".join(pieces) == text and len(pieces) > 3
        if not text.startswith("xxx"):  # no safe cut in 'xxxx…': cut hard, tokens may differ
            got = [t for p in pieces for t in enc.encode_ordinary(p)]
            assert got == enc.encode_ordinary(text)
        # streaming (block by block) gives the same pieces as cutting the whole text
        streamed, buf = [], ""
        for i in range(0, len(text), 10_000):
            out, buf = split_pieces(buf + text[i : i + 10_000], final=False, size=4096)
            streamed += out
        streamed += split_pieces(buf, final=True, size=4096)[0]
        assert streamed == pieces


def test_long_text_file_is_one_document(tmp_path):
    rng = random.Random(5)
    big, small = sentence_text(rng, 80_000), sentence_text(rng, 100)  # ~450 kB: several pieces
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.txt").write_text(big)
    (tmp_path / "t" / "b.txt").write_text(small)
    info = prepare([str(tmp_path / "t")], "long", workers=1)
    train, val = tokens_of(info)
    assert train.size + val.size == expected_tokens([big, small])
    assert info.train_docs + info.val_docs == 2 and info.meta["split"]["units"] > 3
    assert json.loads((info.path / "meta.json").read_text())["splits"]["val"]["tokens"] == val.size
