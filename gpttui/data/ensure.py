"""A run's dataset made ready: prepared from `data_source` on first use, refused on a typo.

A dataset that does not exist is built only from a source the user named (`data_source`
in the preset, the file or `--set`; its default is empty): never from a default the user
did not choose (nanoGPT's `train_shakespeare_char.py` used to train on the Python stdlib).

The orchestration above the store (`store.py`: what exists and whether it is ready) and
the preparation (`prepare.py`): starting and resuming a run (`gpttui.train.launch`) call
`ensure_dataset`, headless and TUI alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpttui.data.prepare import prepare
from gpttui.data.store import DatasetInfo, get_dataset, list_datasets, not_ready
from gpttui.errors import DataError
from gpttui.events import PrepareProgress


def ensure_dataset(cfg: Any, progress: Callable[[PrepareProgress], None] | None = None) -> DatasetInfo:
    """`cfg.dataset`, prepared from `cfg.data_source` (';'-separated) first if not ready."""
    info = get_dataset(cfg.dataset)
    if info is not None and info.ready:
        return info
    specs = [s.strip() for s in (cfg.data_source or "").split(";") if s.strip()]
    if not specs:  # never prepared from a source the user did not name (no default source)
        raise DataError(
            f"dataset {cfg.dataset!r} {not_ready(info)} and no data_source names what to prepare it from",
            f"run `gpttui prepare SOURCE --name {cfg.dataset}` (SOURCE: .txt/.md/.jsonl/parquet files or a glob, "
            f"or builtin:pystdlib){_close_hint(cfg.dataset)}, or set data_source",
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
    return prepare(specs, cfg.dataset, text_column=cfg.text_column, val_fraction=cfg.val_fraction, progress=progress)


def _close_hint(name: str) -> str:
    """"; or did you mean 'corpus'?" when a prepared dataset's name is close to `name`."""
    import difflib

    close = difflib.get_close_matches(name, [i.name for i in list_datasets()], n=1)
    return f"; or did you mean --set dataset={close[0]}?" if close else ""


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
