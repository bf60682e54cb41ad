"""Faults a long run meets, turned into one line that names the cause and the fix.

- `check_data_dir(write)`: `GPTTUI_DATA_DIR` (or the platform default) is a file, cannot be
  created, or sits on a read-only file system → a GpttuiError before anything is written.
- `os_error(e, what)`: a disk-full / permission / read-only error while writing `what`
  (a checkpoint, status.json, a dataset) → a GpttuiError saying so, with the fix.
- `pause_point(name)`: a test hook. With `GPTTUI_TEST_PAUSE=name` the process writes
  `GPTTUI_TEST_PAUSE_FILE` and sleeps at that point (on its GPTTUI_TEST_PAUSE_AFTER-th
  visit), so a fault-injection test can kill it there deterministically. Unset (always, outside tests) it costs one dict lookup.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from gpttui.errors import GpttuiError

# errno -> (cause, fix) for the write failures a user can do something about.
_CAUSES: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full", "free space on {where} (or point GPTTUI_DATA_DIR at a bigger disk), then resume"),
    errno.EACCES: ("permission denied", "make {where} writable by this user (or point GPTTUI_DATA_DIR elsewhere)"),
    errno.EPERM: ("operation not permitted", "make {where} writable by this user (or point GPTTUI_DATA_DIR elsewhere)"),
    errno.EROFS: ("the file system is read-only", "point GPTTUI_DATA_DIR at a writable disk"),
    errno.ENOTDIR: ("a path component is a file, not a folder", "point GPTTUI_DATA_DIR at a folder"),
    errno.EIO: ("an I/O error (failing disk or lost network mount)", "check the disk holding {where}, then resume"),
}
if hasattr(errno, "EDQUOT"):
    _CAUSES[errno.EDQUOT] = ("the disk quota is exceeded", "free space within your quota on {where}, then resume")


def is_user_os_error(e: BaseException) -> bool:
    """An OSError a user fixes (disk full, permissions, read-only), not a bug."""
    return isinstance(e, OSError) and e.errno in _CAUSES


def os_error(e: OSError, what: str, where: Path | str | None = None) -> GpttuiError:
    """A one-line GpttuiError for `e`, raised while writing `what` (e.g. "the checkpoint")."""
    place = Path(where) if where is not None else Path(e.filename) if e.filename else None
    cause, fix = _CAUSES.get(e.errno or 0, (e.strerror or type(e).__name__, "check {where}"))
    at = str(place.parent if place is not None and place.suffix else place) if place is not None else "the data dir"
    return GpttuiError(f"cannot write {what}: {cause} ({place or e.filename or '?'})", fix.format(where=at))


def check_data_dir(write: bool = True) -> Path:
    """The data dir, usable: created if missing and `write`; GpttuiError if it is a file, cannot
    be created or (with `write`) is not writable. Reading commands pass write=False: a missing
    folder is then simply empty."""
    from gpttui.paths import data_dir

    root = data_dir()
    env = "GPTTUI_DATA_DIR" if os.environ.get("GPTTUI_DATA_DIR") else "the data dir"
    if root.exists() and not root.is_dir():
        raise GpttuiError(f"{env} {root} is a file, not a folder",
                          "point GPTTUI_DATA_DIR at a folder (or unset it for the default)")
    if not write:
        for sub in ("runs", "datasets"):
            if (root / sub).exists() and not (root / sub).is_dir():
                raise GpttuiError(f"{root / sub} is a file, not a folder", "move it away; gpttui keeps its runs and datasets there")
        if not root.exists():  # missing is empty, but only where it could be made (not /proc/x)
            _probe_creatable(root, env)
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("runs", "datasets"):
            (root / sub).mkdir(exist_ok=True)
        probe = root / f".gpttui-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError as e:
        raise GpttuiError(f"{e.filename} is a file, not a folder", "move it away; gpttui keeps its runs and datasets there") from None
    except OSError as e:
        cause = _CAUSES.get(e.errno or 0, (e.strerror or type(e).__name__, ""))[0]
        raise GpttuiError(f"cannot use {env} {root}: {cause} ({e.filename or root})",
                          "point GPTTUI_DATA_DIR at a writable folder, e.g. GPTTUI_DATA_DIR=~/gpttui-data") from None
    return root


def _probe_creatable(root: Path, env: str) -> None:
    """GpttuiError unless a folder can be made where the missing data dir would go: a
    temporary folder is made and removed in its nearest existing ancestor."""
    import tempfile

    parent = root.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        if not parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(parent))
        os.rmdir(tempfile.mkdtemp(prefix=".gpttui-probe-", dir=parent))
    except OSError as e:
        cause = _CAUSES.get(e.errno or 0, (e.strerror or type(e).__name__, ""))[0]
        raise GpttuiError(f"cannot use {env} {root}: it does not exist and cannot be created: {cause} ({parent})",
                          "point GPTTUI_DATA_DIR at a writable folder, e.g. GPTTUI_DATA_DIR=~/gpttui-data") from None


def remove_stale_temporaries(path: Path, older_than_s: float = 30.0) -> int:
    """Delete `.<name>.*.tmp` siblings of `path` left by a write that was killed; only those
    older than `older_than_s` (a live writer's temporary is seconds old). Returns the count."""
    n = 0
    now = time.time()
    try:
        candidates = list(path.parent.glob(f".{path.name}.*.tmp"))
    except OSError:
        return 0
    for tmp in candidates:
        try:
            if now - tmp.stat().st_mtime >= older_than_s:
                tmp.unlink()
                n += 1
        except OSError:
            continue
    return n


_hits: dict[str, int] = {}


def pause_point(name: str) -> None:
    """Test hook: block here forever when GPTTUI_TEST_PAUSE names this point, on its
    GPTTUI_TEST_PAUSE_AFTER-th visit (default: the first; see the module doc)."""
    if os.environ.get("GPTTUI_TEST_PAUSE") != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] < int(os.environ.get("GPTTUI_TEST_PAUSE_AFTER", "1")):
        return
    marker = os.environ.get("GPTTUI_TEST_PAUSE_FILE")
    if marker:
        Path(marker).write_text(f"{name} {os.getpid()}\n")
    while True:
        time.sleep(3600)
