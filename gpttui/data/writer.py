"""The train/val split rule and the two output files.

Split rule (deterministic, independent of workers and batch sizes): split units (documents,
or ~64K-character pieces of long ones; see `streams.py`) are numbered 0, 1, 2, … in source
order. Unit 0 goes to train and unit 1 to val, so both splits are never empty; unit i ≥ 2
goes to val when splitmix64(i) / 2**64 < f, where
    f = min(0.5, max(val_fraction, MIN_VAL_TOKENS / estimated_tokens))
and estimated_tokens comes from the sources' sizes before reading (about 4 bytes per
token; exact for shards). So val gets the requested fraction, or at least about
`MIN_VAL_TOKENS` tokens (16 blocks of 1024) on a small corpus, spread over the whole input.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gpttui.data.streams import TokenBatch
from gpttui.errors import DataError
from gpttui.tokenizer import EOT

MIN_VAL_TOKENS = 16 * 1024
MAX_VAL_FRACTION = 0.5
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT} if hasattr(errno, "EDQUOT") else {errno.ENOSPC}
SPLIT_RULE = (
    "unit 0 -> train, unit 1 -> val, unit i -> val iff splitmix64(i)/2^64 < effective_val_fraction; "
    "a unit is a document or a ~64K-char piece of a longer one"
)


def effective_val_fraction(val_fraction: float, est_tokens: int) -> float:
    """The val fraction actually used: raised on small corpora so val has enough tokens."""
    need = MIN_VAL_TOKENS / max(1, est_tokens)
    return min(MAX_VAL_FRACTION, max(val_fraction, need))


def val_mask(first: int, n: int, fraction: float) -> np.ndarray:
    """True for the units `first .. first+n-1` that belong to val."""
    with np.errstate(over="ignore"):
        z = np.arange(first, first + n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    mask = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53 < fraction
    if first <= 1 < first + n:
        mask[1 - first] = True
    if first == 0 and n:
        mask[0] = False
    return mask


def _write_array(fh: BinaryIO, tokens: np.ndarray) -> None:
    """Append tokens as little-endian uint16 (tests replace this to simulate a full disk)."""
    fh.write(memoryview(np.ascontiguousarray(tokens, dtype="<u2")).cast("B"))


@dataclass
class SplitStats:
    train_tokens: int = 0
    val_tokens: int = 0
    train_docs: int = 0
    val_docs: int = 0
    units: int = 0


class SplitWriter:
    """Appends token batches to `train.bin` / `val.bin` in `folder` by the split rule."""

    def __init__(self, folder: Path, fraction: float) -> None:
        self.folder = folder
        self.fraction = fraction
        self.stats = SplitStats()
        self._files = {s: open(folder / f"{s}.bin", "wb", buffering=1 << 20) for s in ("train", "val")}

    def write(self, batch: TokenBatch) -> None:
        n = batch.lengths.size
        if n == 0:
            return
        is_val = val_mask(self.stats.units, n, self.fraction)
        self.stats.units += n
        token_val = np.repeat(is_val, batch.lengths)
        val, train = batch.tokens[token_val], batch.tokens[~token_val]
        self._append("train", train)
        self._append("val", val)
        s = self.stats
        s.train_tokens += train.size
        s.val_tokens += val.size
        s.train_docs += int(np.count_nonzero(train == EOT))
        s.val_docs += int(np.count_nonzero(val == EOT))

    def _append(self, split: str, tokens: np.ndarray) -> None:
        if tokens.size:
            with self._disk_errors(split):
                _write_array(self._files[split], tokens)

    def finish(self) -> SplitStats:
        """Flush and fsync both files (so the rename that follows publishes whole files)."""
        for split, fh in self._files.items():
            with self._disk_errors(split):
                fh.flush()
                os.fsync(fh.fileno())
        self.close()
        return self.stats

    def close(self) -> None:
        for fh in self._files.values():
            try:
                fh.close()
            except OSError:
                pass  # a flush that failed on a full disk; the folder is discarded anyway

    def _disk_errors(self, split: str):
        return _DiskErrors(self.folder / f"{split}.bin")


class _DiskErrors:
    """Turns a full disk into a one-line DataError naming the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, et, e, tb) -> bool:
        if isinstance(e, OSError) and e.errno in _DISK_FULL:
            raise DataError(
                f"{self.path}: disk full while writing the dataset",
                "free space there (or set GPTTUI_DATA_DIR to a bigger disk); any earlier dataset of that name is intact",
            ) from None
        return False
