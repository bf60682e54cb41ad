"""Fixtures for the data tests: small FineWeb-schema parquet, text, JSONL and llm.c shards."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from data_helpers import UNICODE_DOCS, fineweb_texts, sentence_text, write_parquet


@pytest.fixture
def fineweb(tmp_path: Path) -> tuple[Path, list[str | None]]:
    texts = fineweb_texts(60)
    return write_parquet(tmp_path / "000_00000.parquet", texts), texts


@pytest.fixture
def text_folder(tmp_path: Path) -> tuple[Path, list[str]]:
    """A folder of .txt/.md files, one nested, one empty, one with undecodable bytes."""
    root = tmp_path / "texts"
    (root / "sub").mkdir(parents=True)
    rng = random.Random(1)
    docs = {"a.txt": sentence_text(rng, 200), "b.md": "# Title\n\n" + sentence_text(rng, 50),
            "sub/c.txt": UNICODE_DOCS[0]}
    for name, text in docs.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "empty.txt").write_bytes(b"")
    (root / "latin1.txt").write_bytes(b"caf\xe9 ok \xff end")
    (root / "ignored.csv").write_text("not,read\n")
    expected = [docs["a.txt"], docs["b.md"], "caf\ufffd ok \ufffd end", docs["sub/c.txt"]]
    return root, expected


@pytest.fixture
def jsonl_file(tmp_path: Path) -> tuple[Path, list[str]]:
    rng = random.Random(2)
    docs = [sentence_text(rng, rng.randint(3, 80)) for _ in range(20)] + UNICODE_DOCS
    lines = [json.dumps({"content": d, "n": i}) for i, d in enumerate(docs)]
    lines.insert(4, json.dumps({"content": None}))
    lines.insert(6, "")
    lines.insert(9, json.dumps({"content": ""}))
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, docs
