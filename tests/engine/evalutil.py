"""Helpers for the HellaSwag tests: a tiny HellaSwag-shaped Arrow file, written here."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = ("the man", "a dog", "she", "runs", "jumps over", "the fence", "into the water", "slowly", "and then",
         "picks up", "a ball", "laughs", "the crowd", "cheers", "on the roof", "with a rope", "(", ")", "123", "é")


def sentence(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).strip() + "."


def rows(n: int, seed: int = 0, long_every: int = 0) -> list[dict]:
    """n examples with ctx, four endings and a label ('0'..'3', as the real file stores it);
    every `long_every`-th context is long (hundreds of tokens: truncation, chunks)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        long = long_every and i % long_every == long_every - 1
        ctx = sentence(rng, 60, 90) if long else sentence(rng, 2, 14)
        out.append({"ind": i, "ctx": ctx, "endings": [sentence(rng, 1, 9) for _ in range(4)],
                    "label": str(rng.randrange(4)), "activity_label": "test"})
    return out


def write_arrow(path: Path, n: int = 24, seed: int = 0, long_every: int = 0) -> Path:
    """An Arrow IPC stream (what Hugging Face datasets writes) at `path`."""
    import pyarrow as pa

    table = pa.Table.from_pylist(rows(n, seed, long_every))
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return path


def install(n: int = 24, seed: int = 0, long_every: int = 0) -> Path:
    """The synthetic file where gpttui looks for HellaSwag (the test's private data dir)."""
    from gpttui.evals import data

    return write_arrow(data.data_path(), n, seed, long_every)
