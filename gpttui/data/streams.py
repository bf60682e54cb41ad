"""Read checked sources as a stream of batches, in order, in bounded memory.

Text sources (parquet, .txt/.md/.py, JSONL) become `TextBatch`es of about `TASK_CHARS`
characters for the tokenizer workers; llm.c shards become `TokenBatch`es directly. Parquet
is read a few hundred rows at a time (only the text column), text files 4 MiB at a time,
shards a window of tokens at a time, so memory does not grow with the input.

Split units: a document, or a piece of about `PIECE_CHARS` characters of a longer one. Pieces
are cut only where GPT-2's pre-tokenizer would split anyway (an ASCII letter, a space, an
ASCII letter), so the tokens equal those of the whole document; only a document with no such
place in 4 × `PIECE_CHARS` characters is cut hard (its tokens may then differ at that spot).
`<|endoftext|>` follows the last piece of each document only.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gpttui.data.sources import JSONL, PARQUET, SHARD, SHARD_HEADER_BYTES, SourceFile, SourceGroup
from gpttui.errors import DataError, first_line
from gpttui.tokenizer import EOT, VOCAB

PIECE_CHARS = 64 * 1024
TASK_CHARS = 1 << 20  # characters per tokenizer task: big enough to amortize the IPC
READ_BYTES = 4 << 20
PARQUET_ROWS = 256
SHARD_WINDOW = 1 << 22  # tokens read from a shard at a time
_SAFE_CUT = re.compile(r"(?<=[A-Za-z]) (?=[A-Za-z])")
_ESCAPED = re.compile("[\udc80-\udcff]")  # bytes surrogateescape could not decode


@dataclass
class Skipped:
    """What was left out or repaired: null texts, empty texts, undecodable bytes (replaced)."""

    null: int = 0
    empty: int = 0
    undecodable_bytes: int = 0

    def replace_escapes(self, text: str) -> str:
        """Turn surrogate-escaped bad bytes into U+FFFD, counting them."""
        fixed, n = _ESCAPED.subn("\ufffd", text)
        self.undecodable_bytes += n
        return fixed


@dataclass(frozen=True)
class TextBatch:
    pieces: list[str]
    ends: list[bool]  # True where the piece ends its document (EOT follows it)
    bytes_done: int  # source bytes consumed once this batch is written


@dataclass(frozen=True)
class TokenBatch:
    tokens: np.ndarray  # uint16, the units back to back (EOT included where a document ends)
    lengths: np.ndarray  # int64 tokens per split unit
    bytes_done: int


def split_pieces(buf: str, final: bool, size: int = PIECE_CHARS) -> tuple[list[str], str]:
    """Cut `buf` into pieces of about `size` characters at tokenization-neutral spaces.

    Returns the pieces and the unconsumed tail (always "" when `final`). A cut is only
    decided once the whole search window is in `buf`, so streaming a file block by block
    gives the same pieces as cutting the whole text at once.
    """
    pieces: list[str] = []
    pos, n = 0, len(buf)
    while n - pos > (size if final else 4 * size):
        end = min(n, pos + 4 * size)
        m = _SAFE_CUT.search(buf, pos + size, end)
        if m is None and end == n:  # final short remainder with no good cut: keep it whole
            break
        cut = m.start() if m else pos + size
        pieces.append(buf[pos:cut])
        pos = cut
    if final:
        if pos < n:
            pieces.append(buf[pos:])
        return pieces, ""
    return pieces, buf[pos:]


class _Batcher:
    """Collects pieces until a tokenizer task is full."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.ends: list[bool] = []
        self.chars = 0

    def add(self, pieces: list[str], end: bool) -> None:
        for i, p in enumerate(pieces):
            self.pieces.append(p)
            self.ends.append(end and i == len(pieces) - 1)
            self.chars += len(p)

    def take(self, bytes_done: int) -> TextBatch | None:
        if not self.pieces:
            return None
        batch = TextBatch(self.pieces, self.ends, bytes_done)
        self.pieces, self.ends, self.chars = [], [], 0
        return batch


def _read_text(f: SourceFile, skipped: Skipped) -> Iterator[tuple[list[str], bool, int]]:
    """One document per file, read in blocks; yields (pieces, ends_document, bytes_read)."""
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    buf, seen, done = "", False, 0
    with open(f.path, "rb") as fh:
        while block := fh.read(READ_BYTES):
            done += len(block)
            buf += skipped.replace_escapes(decoder.decode(block))
            pieces, buf = split_pieces(buf, final=False)
            seen = seen or bool(pieces)
            yield pieces, False, done
    buf += skipped.replace_escapes(decoder.decode(b"", final=True))
    if not seen and not buf:
        skipped.empty += 1
        return
    pieces, _ = split_pieces(buf, final=True)
    yield pieces or [""], True, done


def _document(value: object, skipped: Skipped) -> list[str] | None:
    if value is None or not isinstance(value, str):
        skipped.null += 1
        return None
    if not value:
        skipped.empty += 1
        return None
    return split_pieces(value, final=True)[0]


def _read_jsonl(f: SourceFile, field: str, skipped: Skipped) -> Iterator[tuple[list[str], bool, int]]:
    """One document per line, the text in `field`."""
    done, first = 0, True
    with open(f.path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            done += len(raw)
            if not raw.strip():
                continue
            line = skipped.replace_escapes(raw.decode("utf-8", "surrogateescape"))
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise DataError(f"{f.path}:{lineno}: invalid JSON ({e})", "fix or remove that line") from None
            if not isinstance(obj, dict):
                raise DataError(f"{f.path}:{lineno}: not a JSON object", "JSONL needs one object per line, e.g. {\"text\": \"...\"}")
            if first and field not in obj:
                keys = ", ".join(map(str, obj)) or "none"
                raise DataError(f"{f.path}:{lineno}: no field {field!r} (fields: {keys})", "pass --text-column NAME")
            first = False
            pieces = _document(obj.get(field), skipped)
            if pieces:
                yield pieces, True, done


def _read_parquet(f: SourceFile, column: str, skipped: Skipped) -> Iterator[tuple[list[str], bool, int]]:
    """The text column only, a few hundred rows at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f.path, buffer_size=READ_BYTES, pre_buffer=False)
        rows_total, rows = max(1, pf.metadata.num_rows), 0
        for batch in pf.iter_batches(batch_size=PARQUET_ROWS, columns=[column], use_threads=False):
            rows += batch.num_rows
            done = f.size * rows // rows_total
            for value in batch.column(0).to_pylist():
                pieces = _document(value, skipped)
                if pieces:
                    yield pieces, True, done
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{f.path}: cannot read ({first_line(e)})", "the file is truncated or corrupt; re-download it") from None


class _ShardStream:
    """llm.c shards as one token stream: documents are cut at EOT, even across shards."""

    def __init__(self) -> None:
        self.carry = np.empty(0, dtype=np.uint16)

    def read(self, f: SourceFile, offset: int) -> Iterator[TokenBatch]:
        with open(f.path, "rb") as fh:
            fh.seek(SHARD_HEADER_BYTES)
            read = 0
            while read < f.shard_tokens:
                w = np.fromfile(fh, dtype="<u2", count=min(SHARD_WINDOW, f.shard_tokens - read))
                if w.size == 0:
                    raise DataError(f"{f.path}: shard ended early", "re-download the shard")
                read += w.size
                if int(w.max()) >= VOCAB:
                    raise DataError(f"{f.path}: token id {int(w.max())} is not a GPT-2 token", "only GPT-2 (50,257-token) shards are accepted")
                batch = self._cut(np.concatenate([self.carry, w.astype(np.uint16)]), offset + SHARD_HEADER_BYTES + 2 * read)
                if batch is not None:
                    yield batch

    def _cut(self, w: np.ndarray, bytes_done: int) -> TokenBatch | None:
        eot = np.flatnonzero(w == EOT)
        if eot.size == 0:
            self.carry = w
            return None
        body, self.carry = w[: eot[-1] + 1], w[eot[-1] + 1 :].copy()
        starts = np.concatenate([[0], eot[:-1] + 1])
        lengths = (eot - starts + 1).astype(np.int64)
        empty = lengths == 1  # EOT right after EOT (llm.c puts one before each document)
        if empty.any():
            keep = np.ones(body.size, dtype=bool)
            keep[eot[empty]] = False
            body, lengths = body[keep], lengths[~empty]
        return TokenBatch(body, lengths, bytes_done) if lengths.size else None

    def flush(self, bytes_done: int) -> Iterator[TokenBatch]:
        """The last document of a run of shards, which has no EOT after it yet."""
        if self.carry.size:
            tokens = np.concatenate([self.carry, np.array([EOT], dtype=np.uint16)])
            self.carry = np.empty(0, dtype=np.uint16)
            yield TokenBatch(tokens, np.array([tokens.size], dtype=np.int64), bytes_done)


def _reader(f: SourceFile, column: str, skipped: Skipped) -> Iterator[tuple[list[str], bool, int]]:
    if f.kind == PARQUET:
        return _read_parquet(f, column, skipped)
    if f.kind == JSONL:
        return _read_jsonl(f, column, skipped)
    return _read_text(f, skipped)


def iter_batches(groups: list[SourceGroup], column: str, skipped: Skipped) -> Iterator[TextBatch | TokenBatch]:
    """All sources' split units, in order, as text batches (to tokenize) or token batches."""
    batcher, shards, offset = _Batcher(), _ShardStream(), 0
    for f in (f for g in groups for f in g.files):
        if f.kind == SHARD:
            if (b := batcher.take(offset)) is not None:
                yield b
            yield from shards.read(f, offset)
        else:
            yield from shards.flush(offset)
            for pieces, end, done in _reader(f, column, skipped):
                batcher.add(pieces, end)
                if batcher.chars >= TASK_CHARS:
                    yield batcher.take(offset + done)  # type: ignore[misc]
        offset += f.size
    yield from shards.flush(offset)
    if (b := batcher.take(offset)) is not None:
        yield b


def total_bytes(groups: list[SourceGroup]) -> int:
    return sum(f.size for g in groups for f in g.files)

