"""Build a dataset from sources: check, tokenize in parallel, split, publish atomically.

The build happens in a hidden sibling folder `.NAME.tmp-PID-XXXX` of the data dir; files
are fsynced, `meta.json` is written last, and the folder is renamed to `NAME` at the very
end (an old `NAME` is moved aside just before and deleted just after). So a dataset that
lists is always complete; a killed prepare leaves only a hidden folder, which the next
prepare deletes once its process is gone. Re-running with unchanged sources (paths, sizes,
mtimes), text column, val fraction and tokenizer is a no-op (progress stage "unchanged").
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from gpttui.data import sources as src
from gpttui.data.store import DatasetInfo, get_dataset, read_info
from gpttui.data.streams import Skipped, iter_batches, total_bytes
from gpttui.data.tokenize import available_cores, tokenized
from gpttui.data.writer import (
    MIN_VAL_TOKENS,
    SPLIT_RULE,
    SplitStats,
    SplitWriter,
    effective_val_fraction,
)
from gpttui.errors import DataError, GpttuiError
from gpttui.events import PrepareProgress
from gpttui.fsutil import atomic_write_text, fsync_dir
from gpttui.paths import check_name, datasets_dir
from gpttui.proc import pid_alive
from gpttui.tokenizer import EOT, NAME, VOCAB, tokenizer_hash

FORMAT_VERSION = 1
SMALL_INPUT_BYTES = 4 << 20  # below this, workers=0 tokenizes in-process (no start-up cost)
PROGRESS_EVERY_S = 0.25
MAX_REQUEST = 0.5  # val_fraction must be below this
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:-[0-9a-f]+)?$")

Progress = Callable[[PrepareProgress], None]
Cancel = Callable[[], bool]  # True once the caller wants the prepare stopped


class PrepareCancelled(DataError):
    """The caller stopped the prepare; nothing of it was kept (the dataset is as before)."""


class _Tracker:
    """Throttled PrepareProgress events for one dataset."""

    def __init__(self, name: str, bytes_total: int, callback: Progress | None) -> None:
        self.name, self.bytes_total, self.callback = name, bytes_total, callback
        self.start = time.monotonic()
        self.last = 0.0
        self.bytes_done = self.documents = self.tokens = 0

    def update(self, bytes_done: int, stats: SplitStats, stage: str = "tokenizing", force: bool = False) -> None:
        self.bytes_done = bytes_done
        self.documents = stats.train_docs + stats.val_docs
        self.tokens = stats.train_tokens + stats.val_tokens
        now = time.monotonic()
        if self.callback is None or (not force and now - self.last < PROGRESS_EVERY_S):
            return
        self.last = now
        elapsed = max(1e-9, now - self.start)
        rate = bytes_done / elapsed
        eta = (self.bytes_total - bytes_done) / rate if rate > 0 and stage == "tokenizing" else None
        self.callback(PrepareProgress(
            run_id=self.name, bytes_done=bytes_done, bytes_total=self.bytes_total,
            documents=self.documents, tokens=self.tokens, tokens_per_s=self.tokens / elapsed,
            eta_s=eta if stage == "tokenizing" else (0.0 if stage == "done" else None), stage=stage,
        ))


def clean_stale(root: Path, name: str) -> None:
    """Delete leftovers of killed prepares; refuse if `name` is being prepared right now."""
    if not root.is_dir():
        return
    for p in root.iterdir():
        m = _TEMP_RE.match(p.name)
        if not m or not p.is_dir():
            continue
        pid = int(m["pid"])
        if pid_alive(pid):
            if m["name"] == name and m["kind"] == "tmp":
                raise DataError(f"dataset {name!r} is being prepared by process {pid}", "wait for it to finish (or stop it) and try again")
            continue
        final = root / m["name"]
        if m["kind"] == "old" and not final.exists():
            os.rename(p, final)  # killed between the two renames: put the old dataset back
        else:
            shutil.rmtree(p, ignore_errors=True)


def _fingerprint(groups: list[src.SourceGroup], text_column: str, val_fraction: float) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "tokenizer_hash": tokenizer_hash(),
        "text_column": text_column,
        "val_fraction": val_fraction,
        "sources": [g.meta() for g in groups],
    }


def _check_args(name: str, val_fraction: float, workers: int, text_column: str) -> None:
    try:
        check_name(name, "dataset name")
    except GpttuiError as e:
        raise DataError(str(e.args[0]), e.hint) from None
    if not 0 < val_fraction < MAX_REQUEST:
        raise DataError(f"val fraction {val_fraction} is out of range", "use a value in (0, 0.5), e.g. 0.0005 for big data, 0.05 for small")
    if workers < 0:
        raise DataError(f"workers {workers} is negative", "use 0 for all cores, or a positive count")
    if not text_column:
        raise DataError("the text column is empty", "pass --text-column NAME")



def _meta(name: str, groups, text_column, val_fraction, fraction, est, stats: SplitStats, skipped: Skipped, elapsed: float) -> dict:
    sources = [g.meta() | ({"python": src.python_tag(), "root": str(src.pystdlib_root())} if g.spec == src.BUILTIN_PYSTDLIB else {}) for g in groups]
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "tokenizer": NAME,
        "tokenizer_hash": tokenizer_hash(),
        "vocab_size": VOCAB,
        "eot": EOT,
        "dtype": "uint16",
        "splits": {
            "train": {"tokens": stats.train_tokens, "documents": stats.train_docs},
            "val": {"tokens": stats.val_tokens, "documents": stats.val_docs},
        },
        "skipped": {"null": skipped.null, "empty": skipped.empty, "undecodable_bytes": skipped.undecodable_bytes},
        "sources": sources,
        "text_column": text_column,
        "split": {
            "rule": SPLIT_RULE, "val_fraction": val_fraction, "effective_val_fraction": fraction,
            "min_val_tokens": MIN_VAL_TOKENS, "estimated_tokens": est, "units": stats.units,
        },
        "fingerprint": _fingerprint(groups, text_column, val_fraction),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "prepare_seconds": round(elapsed, 3),
    }


def _check_usable(groups, stats: SplitStats, skipped: Skipped) -> None:
    where = groups[0].spec if len(groups) == 1 else f"{len(groups)} sources"
    if stats.units == 0:
        raise DataError(
            f"{where}: no usable documents ({skipped.null} null, {skipped.empty} empty skipped)",
            "check --text-column and that the files hold text",
        )
    if stats.val_tokens == 0 or stats.train_tokens == 0:
        raise DataError(f"{where}: only one document, cannot hold out a val split", "add at least one more document (file, row or line)")


def _check_cancel(cancel: Cancel | None, name: str) -> None:
    if cancel is not None and cancel():
        raise PrepareCancelled(f"preparing {name!r} was stopped; nothing of it was kept",
                               "prepare it again to start over")


def _build(tmp: Path, name: str, groups, text_column: str, val_fraction: float, workers: int, tracker: _Tracker,
           cancel: Cancel | None = None) -> dict:
    """Write train.bin, val.bin and meta.json into `tmp`; return the meta. `cancel` is asked
    between batches; closing the batch stream then stops the tokenizer processes."""
    est = sum(f.est_tokens for g in groups for f in g.files)
    fraction = effective_val_fraction(val_fraction, est)
    skipped = Skipped()
    tmp.mkdir(parents=True)
    writer = SplitWriter(tmp, fraction)
    try:
        with contextlib.closing(tokenized(iter_batches(groups, text_column, skipped), workers)) as batches:
            for batch in batches:
                _check_cancel(cancel, name)
                writer.write(batch)
                tracker.update(batch.bytes_done, writer.stats)
        _check_cancel(cancel, name)
        stats = writer.finish()
    finally:
        writer.close()
    _check_usable(groups, stats, skipped)
    tracker.update(tracker.bytes_total, stats, stage="finalizing", force=True)
    meta = _meta(name, groups, text_column, val_fraction, fraction, est, stats, skipped, time.monotonic() - tracker.start)
    atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2) + "\n")
    fsync_dir(tmp)
    return meta


def _install(tmp: Path, final: Path) -> None:
    """Rename the finished folder into place; an old dataset is replaced only now."""
    root = final.parent
    if final.exists():
        old = root / f".{final.name}.old-{os.getpid()}-{secrets.token_hex(3)}"
        os.rename(final, old)
        os.rename(tmp, final)
        fsync_dir(root)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
        fsync_dir(root)


def _workers(workers: int, groups) -> int:
    if workers:
        return workers
    return 1 if total_bytes(groups) < SMALL_INPUT_BYTES else available_cores()


def prepare(
    sources: list[str], name: str, *, text_column: str = "text", val_fraction: float = 0.0005,
    workers: int = 0, force: bool = False, progress: Progress | None = None, cancel: Cancel | None = None,
) -> DatasetInfo:
    """Tokenize `sources` into the dataset `name` (see the module docstring); return it.
    `cancel() -> True` stops it between batches with `PrepareCancelled`: the temporary
    folder is deleted, an existing dataset of that name is left as it was."""
    _check_args(name, val_fraction, workers, text_column)
    tracker = _Tracker(name, 0, progress)
    tracker.update(0, SplitStats(), stage="scanning", force=True)
    groups = src.resolve(list(sources), text_column)
    _check_cancel(cancel, name)
    tracker.bytes_total = total_bytes(groups)
    root = datasets_dir()
    clean_stale(root, name)
    existing = get_dataset(name)
    if existing is not None and existing.ready and not force:
        if existing.meta.get("fingerprint") == _fingerprint(groups, text_column, val_fraction):
            tracker.update(tracker.bytes_total, _stats_of(existing), stage="unchanged", force=True)
            return existing
    tmp = root / f".{name}.tmp-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        _build(tmp, name, groups, text_column, val_fraction, _workers(workers, groups), tracker, cancel)
        _install(tmp, root / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    info = read_info(root / name)
    tracker.update(tracker.bytes_total, _stats_of(info), stage="done", force=True)
    return info


def _stats_of(info: DatasetInfo) -> SplitStats:
    return SplitStats(info.train_tokens, info.val_tokens, info.train_docs, info.val_docs)
