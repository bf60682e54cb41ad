"""Tokenize text batches on every core, results in input order, a bounded number in flight.

Worker processes (spawned, so a prepare started from the TUI's thread is safe) each load the
offline GPT-2 encoding once and turn a `TextBatch` into a `TokenBatch` with
`Encoding.encode_to_numpy` (no Python int lists). Measured on the 2-core dev machine, this
beat tiktoken's threaded `encode_ordinary_batch` (6.5 M vs 5.7 M tokens/s, see
bench/RESULTS.md) and keeps the tokenizer off the UI process's GIL. With one worker,
batches are tokenized in this process (no start-up cost for small inputs). The output does
not depend on the number of workers: batches are made before tokenization and written in
order.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from gpttui.data.streams import TextBatch, TokenBatch
from gpttui.tokenizer import EOT, get_encoding

_EOT = np.array([EOT], dtype=np.uint16)
log = logging.getLogger(__name__)


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def encode(pieces: list[str]) -> list[np.ndarray]:
    """GPT-2 tokens of each piece, exactly `encode_ordinary` (special tokens as plain text)."""
    enc = get_encoding()
    out = []
    for p in pieces:
        try:
            out.append(enc.encode_to_numpy(p, disallowed_special=()))
        except UnicodeEncodeError:  # lone surrogates (e.g. from JSON escapes): replace them
            fixed = p.encode("utf-8", "replace").decode("utf-8")
            out.append(enc.encode_to_numpy(fixed, disallowed_special=()))
    return out


def tokenize_batch(batch: TextBatch) -> TokenBatch:
    """The batch's units as uint16 tokens, EOT after each piece that ends a document."""
    arrays: list[np.ndarray] = []
    lengths = np.empty(len(batch.pieces), dtype=np.int64)
    for i, (toks, end) in enumerate(zip(encode(batch.pieces), batch.ends, strict=True)):
        arrays.append(toks.astype(np.uint16))
        if end:
            arrays.append(_EOT)
        lengths[i] = toks.size + end
    tokens = np.concatenate(arrays) if arrays else np.empty(0, dtype=np.uint16)
    return TokenBatch(tokens, lengths, batch.bytes_done)


def _init_worker(parent: int | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), name="gpttui-parent-watch", daemon=True).start()
    get_encoding()


def _exit_with_parent(parent: int, interval_s: float = 0.5) -> None:
    """End this worker once its parent is gone (a `kill -9` of `gpttui prepare` or of the
    TUI). Workers hold the task queue's write end themselves, so they never see EOF and
    would wait forever, and multiprocessing's resource tracker with them. Polling the
    parent pid works everywhere; prctl(PR_SET_PDEATHSIG) would fire when the *thread* that
    started the pool ends, which in the TUI is a worker thread."""
    while True:
        time.sleep(interval_s)
        if os.getppid() != parent:
            os._exit(1)


def _ensure_resource_tracker() -> None:
    """Start multiprocessing's resource tracker against a real stderr, without its leak report.

    The tracker hands `sys.stderr.fileno()` to its child process. Under Textual, sys.stderr
    is a capture object whose fileno() is -1, and spawning failed with "bad value(s) in
    fds_to_keep"; so the tracker is started here with the process's own stderr (or
    /dev/null). And when gpttui is killed (kill -9) mid-prepare, the tracker outlives it,
    frees the pool's semaphores as it should, then printed "resource_tracker: There appear
    to be 5 leaked semaphore objects" onto the user's terminal: noise about a clean-up that
    worked. The tracker is started with that warning filtered (`-W`, which it inherits).
    """
    from multiprocessing import resource_tracker

    try:
        ok = sys.stderr is not None and sys.stderr.fileno() >= 0
    except (AttributeError, OSError, ValueError):
        ok = False
    real = sys.__stderr__
    try:
        real_ok = real is not None and real.fileno() >= 0
    except (AttributeError, OSError, ValueError):
        real_ok = False
    saved, saved_opts = sys.stderr, list(sys.warnoptions)
    devnull = None if ok or real_ok else open(os.devnull, "w")  # noqa: SIM115
    try:
        if not ok:
            sys.stderr = real if real_ok else devnull
        sys.warnoptions.append("ignore:resource_tracker:UserWarning")  # passed on to the child
        resource_tracker.ensure_running()  # (a no-op once this process has started one)
    finally:
        sys.stderr = saved
        sys.warnoptions[:] = saved_opts
        if devnull is not None:
            devnull.close()


class _Ordered:
    """Tasks in flight, handed back in submission order.

    If the worker pool breaks (a worker killed, or spawn unable to start one, e.g. when the
    main program is `python -` from stdin), the affected batches and all later ones are
    tokenized in this process instead: slower, with the same bytes.
    """

    def __init__(self, workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        _ensure_resource_tracker()
        self.pool: ProcessPoolExecutor | None = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                                                      initargs=(os.getpid(),))
        self.pending: deque[tuple[TextBatch | TokenBatch, Future | None]] = deque()

    def submit(self, batch: TextBatch | TokenBatch) -> None:
        fut = None
        if isinstance(batch, TextBatch) and self.pool is not None:
            try:
                fut = self.pool.submit(tokenize_batch, batch)
            except BrokenProcessPool:
                self._broken()
        self.pending.append((batch, fut))

    def pop(self) -> TokenBatch:
        batch, fut = self.pending.popleft()
        if isinstance(batch, TokenBatch):
            return batch
        if fut is not None:
            try:
                return fut.result()
            except BrokenProcessPool:
                self._broken()
        return tokenize_batch(batch)

    def _broken(self) -> None:
        if self.pool is not None:
            log.warning("tokenizer worker processes failed to run; tokenizing in this process")
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def close(self, wait: bool = False) -> None:
        """Stop the workers: at the end wait for (and reap) them; on an error, don't."""
        if self.pool is not None:
            self.pool.shutdown(wait=wait, cancel_futures=True)
            self.pool = None


def tokenized(batches: Iterable[TextBatch | TokenBatch], workers: int) -> Iterator[TokenBatch]:
    """Token batches in input order; at most ~2 tasks per worker in flight."""
    if workers <= 1:
        for b in batches:
            yield tokenize_batch(b) if isinstance(b, TextBatch) else b
        return
    in_flight = 2 * workers + 1
    tasks = _Ordered(workers)
    try:
        for b in batches:
            tasks.submit(b)
            while len(tasks.pending) > in_flight:
                yield tasks.pop()
        while tasks.pending:
            yield tasks.pop()
        tasks.close(wait=True)
    finally:
        tasks.close()
