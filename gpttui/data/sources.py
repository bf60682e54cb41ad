"""Find and check the files a `gpttui prepare SOURCE...` names, before anything is written.

A source spec is a file, a folder (searched recursively for supported files, sorted), a glob
(`~` expanded, `**` allowed) or `builtin:pystdlib`. Each file is checked up front (parquet
footer and text column, llm.c shard header), so bad input fails with a one-line `DataError`
naming the file, and nothing is written. Reading the documents is `streams.py`'s job.
"""

from __future__ import annotations

import glob
import hashlib
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpttui.errors import DataError, first_line

BUILTIN_PYSTDLIB = "builtin:pystdlib"
PARQUET, TEXT, JSONL, SHARD = "parquet", "text", "jsonl", "shard"
SUFFIXES = {
    ".parquet": PARQUET, ".pq": PARQUET,
    ".txt": TEXT, ".md": TEXT, ".py": TEXT,
    ".jsonl": JSONL, ".ndjson": JSONL,
    ".bin": SHARD,
}
FOLDER_SUFFIXES = {s: k for s, k in SUFFIXES.items() if s != ".py"}  # .py: given by name, or builtin
SHARD_MAGIC, SHARD_VERSION, SHARD_HEADER_BYTES = 20240520, 1, 256 * 4
BYTES_PER_TOKEN = 4  # rough size of a GPT-2 token in text, only for the val-size estimate
_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}


@dataclass(frozen=True)
class SourceFile:
    """One input file, checked: its kind, size, mtime and a rough token estimate."""

    path: Path
    kind: str  # PARQUET, TEXT, JSONL or SHARD
    size: int
    mtime_ns: int
    est_tokens: int
    shard_tokens: int = 0  # SHARD only: token count from the header


@dataclass(frozen=True)
class SourceGroup:
    """The files one spec on the command line stands for, in reading order."""

    spec: str
    files: tuple[SourceFile, ...]

    def meta(self) -> dict:
        """The `meta.json` entry: what was read, enough to tell whether it changed since."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(f"{f.path}\0{f.size}\0{f.mtime_ns}\n".encode("utf-8", "surrogateescape"))
        return {
            "path": self.spec,
            "kinds": sorted({f.kind for f in self.files}),
            "files": len(self.files),
            "size": sum(f.size for f in self.files),
            "mtime": max(f.mtime_ns for f in self.files) / 1e9,
            "digest": h.hexdigest()[:24],
        }


def pystdlib_root() -> Path:
    """The running Python's standard library folder."""
    return Path(sysconfig.get_paths()["stdlib"])


def pystdlib_files() -> list[Path]:
    """The standard library's `.py` files in sorted relative-path order (no site-packages)."""
    root = pystdlib_root()
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        out.extend(Path(dirpath) / f for f in filenames if f.endswith(".py"))
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def _folder_files(folder: Path) -> list[Path]:
    out = [
        Path(d) / f
        for d, dirnames, files in os.walk(folder)
        for f in files
        if Path(f).suffix.lower() in FOLDER_SUFFIXES and not f.startswith(".")
    ]
    return sorted(out, key=lambda p: p.relative_to(folder).as_posix())


def expand_spec(spec: str) -> list[Path]:
    """The files a spec names, in reading order; DataError if it names none."""
    if spec == BUILTIN_PYSTDLIB:
        files = pystdlib_files()
        if not files:
            raise DataError(f"{spec}: no .py files under {pystdlib_root()}", "this Python ships without its sources; prepare a dataset from files instead")
        return files
    if spec.startswith("builtin:"):
        raise DataError(f"{spec}: unknown built-in corpus", f"the built-in corpus is {BUILTIN_PYSTDLIB}")
    expanded = os.path.expanduser(spec)
    if glob.has_magic(expanded):
        hits = sorted(glob.glob(expanded, recursive=True))
        files: list[Path] = []
        for h in map(Path, hits):
            files.extend(_folder_files(h) if h.is_dir() else [h])
        if not files:
            raise DataError(f"{spec}: no files match", "check the pattern (quote it so the shell does not expand it)")
        return files
    path = Path(expanded)
    if path.is_dir():
        files = _folder_files(path)
        if not files:
            raise DataError(f"{path}: folder holds no .parquet, .txt, .md, .jsonl or .bin files", "point at the data files or their folder")
        return files
    if not path.exists():
        raise DataError(f"{path}: no such file or folder", "check the path (globs and ~ are expanded)")
    return [path]


def _kind(path: Path) -> str:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}",
            "use .parquet, .txt/.md, .jsonl or llm.c .bin shards",
        )
    return kind


def check_parquet(path: Path, text_column: str) -> int:
    """Open the footer, check the text column; return the column's uncompressed bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise DataError(
            f"{path}: not a parquet file or truncated ({first_line(e)})",
            "re-download or re-export the file",
        ) from None
    schema = pf.schema_arrow
    if text_column not in schema.names:
        raise DataError(
            f"{path}: no column {text_column!r} (columns: {', '.join(schema.names)})",
            "pass --text-column NAME (text_column in a preset)",
        )
    ftype = schema.field(text_column).type
    if not (pa.types.is_string(ftype) or pa.types.is_large_string(ftype) or str(ftype) == "string_view"):
        raise DataError(f"{path}: column {text_column!r} is {ftype}, not text", "pass the column that holds the documents with --text-column")
    md = pf.metadata
    total = 0
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        total += sum(
            rg.column(j).total_uncompressed_size
            for j in range(rg.num_columns)
            if rg.column(j).path_in_schema == text_column
        )
    return total or path.stat().st_size


def check_shard(path: Path, size: int) -> int:
    """Validate an llm.c / modded-nanogpt header; return the token count."""
    with open(path, "rb") as f:
        header = np.frombuffer(f.read(SHARD_HEADER_BYTES), dtype="<i4")
    if header.size < 3 or int(header[0]) != SHARD_MAGIC:
        raise DataError(f"{path}: not an llm.c token shard (magic {SHARD_MAGIC} missing)", "only llm.c / modded-nanogpt .bin shards are accepted; pass text or parquet instead")
    if int(header[1]) != SHARD_VERSION:
        raise DataError(f"{path}: llm.c shard version {int(header[1])} is not supported", "re-export the shard with version 1 (uint16 GPT-2 tokens)")
    ntok = int(header[2])
    if size != SHARD_HEADER_BYTES + 2 * ntok:
        raise DataError(f"{path}: shard truncated ({size} bytes, header says {ntok} tokens)", "re-download the shard")
    return ntok


def check_file(path: Path, text_column: str) -> SourceFile:
    """Stat and validate one file; DataError on anything that would fail later."""
    try:
        st = path.stat()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})", "check the path and its permissions") from None
    kind = _kind(path)
    if kind == PARQUET:
        est = check_parquet(path, text_column) // BYTES_PER_TOKEN
        return SourceFile(path, kind, st.st_size, st.st_mtime_ns, est)
    if kind == SHARD:
        ntok = check_shard(path, st.st_size)
        return SourceFile(path, kind, st.st_size, st.st_mtime_ns, ntok, ntok)
    return SourceFile(path, kind, st.st_size, st.st_mtime_ns, st.st_size // BYTES_PER_TOKEN)


def resolve(specs: list[str], text_column: str) -> list[SourceGroup]:
    """Expand and check every spec; the groups in the order given."""
    if not specs:
        raise DataError("no sources given", "name parquet/text/JSONL files, folders, globs or builtin:pystdlib")
    groups = []
    for spec in specs:
        files = tuple(check_file(p, text_column) for p in expand_spec(spec))
        groups.append(SourceGroup(spec if spec == BUILTIN_PYSTDLIB else _display(spec), files))
    return groups


def _display(spec: str) -> str:
    """A spec as stored in meta.json: absolute, so a re-run from elsewhere compares equal."""
    expanded = os.path.expanduser(spec)
    return os.path.abspath(expanded) if glob.has_magic(expanded) else str(Path(expanded).resolve())


def python_tag() -> str:
    """Which Python's stdlib `builtin:pystdlib` was read from (stored in meta.json)."""
    return f"{sys.implementation.name}-{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
