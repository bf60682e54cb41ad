"""The dataset store: `datasets_dir()/<name>/` folders, listed, looked up, judged ready.

A folder is *ready* when its `meta.json` parses and `train.bin`/`val.bin` hold exactly the
token counts it records. A folder with the two .bin files and no meta.json (copied from
nanoGPT's `data/<name>/`) is also ready; its counts come from the file sizes. Hidden folders
(`.name.tmp-PID`, a prepare in progress or killed) are never listed.

Whether a dataset is ready is decided here only (`read_info`, and `require_ready` for the
callers that must stop on an unready one); preparing a missing one is `data/ensure.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpttui.errors import DataError
from gpttui.paths import datasets_dir

META = "meta.json"
SPLITS = ("train", "val")


@dataclass(frozen=True)
class DatasetInfo:
    """What the store knows about one dataset folder."""

    name: str
    path: Path
    train_tokens: int
    val_tokens: int
    train_docs: int
    val_docs: int
    size_bytes: int  # train.bin + val.bin + meta.json
    sources: tuple[str, ...]  # the source specs it was prepared from
    ready: bool  # complete and consistent: the reader may use it
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "path": str(self.path), "ready": self.ready,
            "train_tokens": self.train_tokens, "val_tokens": self.val_tokens,
            "train_docs": self.train_docs, "val_docs": self.val_docs,
            "size_bytes": self.size_bytes, "sources": list(self.sources),
        }


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def read_info(path: Path) -> DatasetInfo:
    """Describe the dataset folder `path` (never raises for a damaged one: ready=False)."""
    sizes = {s: _size(path / f"{s}.bin") for s in SPLITS}
    meta_size = _size(path / META)
    try:
        meta = json.loads((path / META).read_text(encoding="utf-8")) if meta_size is not None else {}
        splits = meta.get("splits", {})
        tokens = {s: int(splits[s]["tokens"]) for s in SPLITS} if meta else {}
        docs = {s: int(splits[s]["documents"]) for s in SPLITS} if meta else {}
        sources = tuple(str(src.get("path", "")) for src in meta.get("sources", []))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        meta, tokens, docs, sources = {"damaged": True}, {}, {}, ()
    have_bins = all(v is not None for v in sizes.values())
    if not meta and have_bins:  # nanoGPT-style folder: trust the files
        tokens = {s: sizes[s] // 2 for s in SPLITS}  # type: ignore[operator]
        ready = all(sizes[s] % 2 == 0 and sizes[s] > 0 for s in SPLITS)  # type: ignore[operator]
    else:
        ready = have_bins and bool(tokens) and all(sizes[s] == 2 * tokens[s] for s in SPLITS)
        ready = ready and meta.get("dtype", "uint16") == "uint16"
    return DatasetInfo(
        name=path.name, path=path,
        train_tokens=tokens.get("train", 0), val_tokens=tokens.get("val", 0),
        train_docs=docs.get("train", 0), val_docs=docs.get("val", 0),
        size_bytes=sum(v or 0 for v in sizes.values()) + (meta_size or 0),
        sources=sources, ready=ready, meta=meta,
    )


def list_datasets() -> list[DatasetInfo]:
    """Every dataset folder in the data dir, by name (ready or not; never temp folders)."""
    root = datasets_dir()
    if not root.is_dir():
        return []
    return [read_info(p) for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]


def train_tokens(name: str) -> int | None:
    """Train tokens of the ready dataset `name` (None if missing, unready or empty): the
    figure estimates need for epochs."""
    info = get_dataset(name)
    return info.train_tokens if info is not None and info.ready and info.train_tokens else None


def get_dataset(name: str) -> DatasetInfo | None:
    """The dataset called `name`, or None if there is no such folder."""
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        return None
    path = datasets_dir() / name
    return read_info(path) if path.is_dir() else None


def not_ready(info: DatasetInfo | None) -> str:
    """What is wrong with a dataset that is not ready: 'does not exist', 'is damaged (…)'
    or 'is incomplete' ('' for a ready one)."""
    if info is None:
        return "does not exist"
    if info.ready:
        return ""
    return "is damaged (its meta.json does not parse)" if info.meta.get("damaged") else "is incomplete"


def require_ready(name: str) -> DatasetInfo:
    """The ready dataset `name`; a one-line DataError when it is missing, damaged or
    incomplete (a training run must not start on it)."""
    info = get_dataset(name)
    if info is None or not info.ready:
        raise DataError(f"dataset {name!r} {not_ready(info)}",
                        f"run `gpttui prepare SOURCE --name {name}` (gpttui --run prepares data_source itself)")
    return info
