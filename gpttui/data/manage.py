"""Managing prepared datasets from a front end: what uses one, when it was made, deleting it.

Deleting is refused while a live run trains on the dataset (its reader maps the .bin files);
a run that ended keeps working for sampling (it needs only its checkpoint) and can be resumed
once the dataset is prepared again.
"""

from __future__ import annotations

import shutil

from gpttui.data.store import META, DatasetInfo, get_dataset
from gpttui.errors import DataError


def prepared_at(info: DatasetInfo) -> float | None:
    """When the dataset was completed (its meta.json, else train.bin), epoch seconds."""
    for name in (META, "train.bin"):
        try:
            return (info.path / name).stat().st_mtime
        except OSError:
            continue
    return None


def runs_training_on(name: str) -> list[str]:
    """Ids of live runs (a process is training them now) whose dataset is `name`."""
    from gpttui.runs.store import get_run, list_runs

    out = []
    for s in list_runs():
        if not s.alive:
            continue
        try:
            if get_run(s.id).config().dataset == name:
                out.append(s.id)
        except Exception:  # a damaged run folder says nothing about this dataset
            continue
    return out


def delete_dataset(name: str) -> None:
    """Remove the dataset folder `name`; DataError if missing or in use by a live run."""
    info = get_dataset(name)
    if info is None:
        raise DataError(f"no dataset called {name!r}", "see `gpttui datasets`")
    users = runs_training_on(name)
    if users:
        raise DataError(f"dataset {name!r} is in use by run {', '.join(users)}", "stop that run first, then delete")
    shutil.rmtree(info.path)
