"""The tracker process: W&B and TensorBoard run here, at the lowest CPU priority.

`trackers.TrackerListener` starts this module as a child (`python -c ...` with the parent's
`sys.path`) and feeds it, through its stdin, pickled objects: a `Start` (what to log into,
which backends), then lists of the run's events (frozen dataclasses of plain data), sent
in batches so that neither process wakes for every step; EOF at the end. The child answers on its stdout with JSON lines: `{"warn": text}` for a backend
that could not start or failed, and `{"done": cpu_seconds}` when every backend closed.

Why a process: a tracker thread inside the trainer's process holds the GIL while it
serialises (the trainer thread needs it to launch kernels), and W&B's own service process
competed with training at the same priority (bench/train.py: d/c 0.91 on 2 cores). Here the
child lowers its priority (nice 19) before importing anything heavy; W&B's service process
inherits it. A child that dies costs one warning in the run; training goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import sys
from dataclasses import dataclass, field
from typing import IO, Any

from gpttui import events as E
from gpttui.errors import first_line


@dataclass(frozen=True)
class Start:
    """What the child needs to start its backends (plain data, pickled)."""

    run_id: str
    run_path: str
    project: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    backends: tuple[type, ...] = ()  # backend classes, pickled by reference


def lower_priority() -> str:
    """Make this process (and what it starts) yield the CPU to training; says what it did.

    nice 19, and on Linux SCHED_IDLE: at nice 19 a tracker still took ~1.5 % of a busy core
    and, worse, delayed the trainer's OpenMP threads when they woke on its core; a
    SCHED_IDLE task runs only on a core nothing else wants and is preempted at once."""
    done = []
    try:
        now = os.nice(0)
        if now < 19:
            os.nice(19 - now)
        done.append("nice 19")
    except (AttributeError, OSError):  # no nice() on this platform
        pass
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            done.append("SCHED_IDLE")
        except OSError:
            pass
    return ", ".join(done) or "normal priority"


class Sinks:
    """The started backends; each failure drops one backend with one warning."""

    def __init__(self, start: Start, warn: Any):
        self.warn = warn
        self.backends: list[Any] = []
        self.it = 0
        for cls in start.backends:
            name = getattr(cls, "name", cls.__name__)
            try:
                self.backends.append(cls(start))
            except Exception as e:  # noqa: BLE001 - a tracker must never stop a run
                warn(f"{name}: could not start ({type(e).__name__}: {first_line(e)}); training goes on without it"
                     + ("; set WANDB_MODE=offline to log into the run folder" if name == "wandb" else ""))

    def handle(self, ev: E.Event) -> None:
        self.it = getattr(ev, "iter", self.it)
        for b in list(self.backends):
            try:
                b.handle(ev, self.it)
            except Exception as e:  # noqa: BLE001
                self.backends.remove(b)
                self.warn(f"{b.name}: logging failed ({type(e).__name__}: {first_line(e)}); no more {b.name} logging")

    def close(self) -> None:
        for b in self.backends:
            try:
                b.close()
            except Exception as e:  # noqa: BLE001
                self.warn(f"{b.name}: closing failed ({type(e).__name__}: {first_line(e)})")
        self.backends = []


def _cpu_seconds() -> float:
    """CPU time of this process and of the children it waited for (W&B's service)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0.0
    ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(r.ru_utime + r.ru_stime for r in ru)


def _protocol_streams() -> tuple[IO[bytes], IO[str]]:
    """Move the pipes to the parent off fds 0 and 1 (non-inheritable copies), so that what
    this process starts (W&B's service) neither reads our input nor keeps our output open;
    library prints go to stderr (the run folder's trackers.log)."""
    fin, fout = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return os.fdopen(fin, "rb"), os.fdopen(fout, "w", buffering=1)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when logging ends
    how = lower_priority()
    inp, out = _protocol_streams()

    def send(**msg: Any) -> None:
        with contextlib.suppress(OSError, ValueError):  # the parent is gone: nothing to tell
            out.write(json.dumps(msg) + "\n")

    start: Start = pickle.load(inp)
    print(f"gpttui tracker process {os.getpid()} for run {start.run_id} ({how})", file=sys.stderr, flush=True)
    sinks = Sinks(start, lambda text: send(warn=text))
    ended = False
    while sinks.backends and not ended:
        try:
            batch = pickle.load(inp)  # a list of events: the parent sends at most ~2 a second
        except (EOFError, OSError, pickle.UnpicklingError):  # the parent ended or closed the pipe
            break
        for ev in batch:
            sinks.handle(ev)
            ended = ended or isinstance(ev, E.Finished | E.Failed)
    sinks.close()
    send(done=_cpu_seconds())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
