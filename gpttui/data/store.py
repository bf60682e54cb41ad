"""The dataset store: `datasets_dir()/<name>/` folders, listed, looked up, prepared on demand.

A folder is *ready* when its `meta.json` parses and `train.bin`/`val.bin` hold exactly the
token counts it records. A folder with the two .bin files and no meta.json (copied from
nanoGPT's `data/<name>/`) is also ready; its counts come from the file sizes. Hidden folders
(`.name.tmp-PID`, a prepare in progress or killed) are never listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def ensure_dataset(cfg, progress=None) -> DatasetInfo:
    """`cfg.dataset`, prepared from `cfg.data_source` (';'-separated) first if not ready."""
    from gpttui.errors import DataError

    info = get_dataset(cfg.dataset)
    if info is not None and info.ready:
        return info
    specs = [s.strip() for s in (cfg.data_source or "").split(";") if s.strip()]
    if not specs:
        state = "does not exist" if info is None else (
            "is damaged (its meta.json does not parse)" if info.meta.get("damaged") else "is incomplete")
        raise DataError(
            f"dataset {cfg.dataset!r} {state} and data_source is empty",
            f"run `gpttui prepare SOURCE --name {cfg.dataset}` or set data_source",
        )
    if info is None:
        twin = _prepared_from(specs, cfg.text_column, cfg.val_fraction)
        if twin is not None:
            # A name that does not exist with a data_source already prepared is a typo or a
            # guess far more often than a wish for a second copy (minutes, and as much disk
            # again); a deliberate copy is one explicit `gpttui prepare` away.
            raise DataError(
                f"no dataset {cfg.dataset!r}; data_source {';'.join(specs)} is already prepared as {twin.name!r}",
                f"use --set dataset={twin.name} (or dataset = \"{twin.name}\"); for a second copy run "
                f"`gpttui prepare {' '.join(specs)} --name {cfg.dataset}`")
    from gpttui.data.prepare import prepare

    return prepare(specs, cfg.dataset, text_column=cfg.text_column, val_fraction=cfg.val_fraction, progress=progress)


def _prepared_from(specs: list[str], text_column: str, val_fraction: float) -> DatasetInfo | None:
    """A ready dataset prepared from exactly these sources with the same column and split."""
    def norm(spec: str) -> str:
        return spec if ":" in spec.split("/")[0] else str(Path(spec).expanduser().resolve())

    want = sorted(norm(s) for s in specs)
    for info in list_datasets():
        fp = info.meta.get("fingerprint") if info.ready else None
        if not isinstance(fp, dict):
            continue
        try:
            got = sorted(norm(str(src["path"])) for src in fp.get("sources", []))
        except (KeyError, TypeError):
            continue
        if got == want and fp.get("text_column", "text") == text_column and fp.get("val_fraction") == val_fraction:
            return info
    return None
