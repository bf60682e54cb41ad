"""Builders for the data tests' inputs: FineWeb-schema parquet, text, JSONL, llm.c shards."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gpttui.tokenizer import EOT, get_encoding

WORDS = (
    "the of and to in is was for that on with as by at from his it an were are which this be "
    "not or had have one all their they but new has been first who its after also two time "
    "model training data token language python function return value year people world city"
).split()
UNICODE_DOCS = [
    "Café déjà vu — naïve façade, 東京 and 北京, emoji 🙂🚀, combining e\u0301 and Ωμέγα.",
    "A literal <|endoftext|> inside a document stays plain text.",
    "  leading spaces, trailing newlines\n\n\n",
]


def sentence_text(rng: random.Random, n_words: int) -> str:
    """Zipf-ish English-like text with punctuation and paragraphs."""
    out = []
    for i in range(n_words):
        w = WORDS[min(len(WORDS) - 1, int(rng.paretovariate(1.1)) - 1)]
        out.append(w.capitalize() if i % 12 == 0 else w)
        if i % 12 == 11:
            out[-1] += "." if i % 60 != 59 else ".\n\n"
    return " ".join(out)


def fineweb_table(texts: list[str | None], large: bool = False) -> pa.Table:
    n = len(texts)
    return pa.table({
        "text": pa.array(texts, type=pa.large_string() if large else pa.string()),
        "id": [f"<urn:uuid:{i:08d}>" for i in range(n)],
        "dump": ["CC-MAIN-2013-20"] * n,
        "url": [f"http://example.com/{i}" for i in range(n)],
        "date": ["2013-05-18T05:48:54Z"] * n,
        "file_path": ["s3://commoncrawl/x.warc.gz"] * n,
        "language": ["en"] * n,
        "language_score": [0.9] * n,
        "token_count": [0] * n,
    })


def fineweb_texts(n: int, seed: int = 0) -> list[str | None]:
    rng = random.Random(seed)
    texts: list[str | None] = [sentence_text(rng, rng.randint(5, 300)) for _ in range(n)]
    texts[3] = None
    texts[5] = ""
    texts[8] = None
    texts[10:10] = UNICODE_DOCS
    return texts


def write_parquet(path: Path, texts: list[str | None], large: bool = False, row_group_size: int = 7) -> Path:
    pq.write_table(fineweb_table(texts, large), path, row_group_size=row_group_size)
    return path


def expected_tokens(docs: list[str]) -> int:
    """Tokens a prepared dataset must hold: encode_ordinary(doc) + EOT per document."""
    enc = get_encoding()
    return sum(len(enc.encode_ordinary(d)) + 1 for d in docs)


def usable(texts: list[str | None]) -> list[str]:
    return [t for t in texts if t]


def write_shard(path: Path, docs: list[str]) -> np.ndarray:
    """An llm.c / modded-nanogpt shard: EOT before each document, 256 int32 header."""
    enc = get_encoding()
    toks: list[int] = []
    for d in docs:
        toks.append(EOT)
        toks.extend(enc.encode_ordinary(d))
    arr = np.array(toks, dtype="<u2")
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240520, 1, arr.size)
    path.write_bytes(header.tobytes() + arr.tobytes())
    return arr


