"""Experiment trackers: Weights & Biases and TensorBoard, fed from the run's event stream.

Both are optional extras (`pip install 'gpttui[wandb]'`, `'gpttui[tensorboard]'`). Each is a
backend behind one `TrackerListener`: the trainer thread only puts the (frozen) event on a
queue; the backends run in a child process at the lowest CPU priority (`trackchild`), fed
through a pipe, so that neither their Python (the GIL) nor W&B's service process takes CPU
time from training. A backend that cannot start or fails later, or a child that dies, says
so in one log line; training goes on either way. At the end of the run the child gets a
bounded time to flush (`finish`), then finishes on its own.

W&B respects its own environment (`WANDB_MODE=offline` logs into the run folder's `wandb/`
for a later `wandb sync`); its run id is gpttui's, so a resumed run continues the same
W&B run. TensorBoard's event files go to `<run>/tensorboard/`; the child's stray output
(W&B's, say) to `<run>/trackers.log`.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import importlib.util
import json
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpttui import events as E
from gpttui.train.trackers.child import Start

Log = Callable[[str, str], None]  # (text, level)
INSTALL = {"wandb": "pip install 'gpttui[wandb]'", "tensorboard": "pip install 'gpttui[tensorboard]'"}
_STOP = object()
BATCH_S = 0.5  # events reach the tracker process at most this late, in one write


def step_scalars(ev: E.StepMetrics) -> dict[str, float]:
    """The numbers of a step event, under nanoGPT's W&B names where it has one."""
    out = {"train/loss": ev.loss, "lr": ev.lr, "tokens_per_s": ev.tokens_per_s,
           "tokens_seen": float(ev.tokens_seen), "step_time_s": ev.step_time_s}
    optional = {"grad_norm": ev.grad_norm, "mfu": ev.mfu, "vram_peak_gib": ev.vram_peak and ev.vram_peak / 2**30,
                "power_w": ev.power_w, "energy_kwh": ev.energy_kwh}
    out.update({k: float(v) for k, v in optional.items() if v is not None})
    return out


def eval_scalars(ev: E.EvalResult) -> dict[str, float]:
    return {"eval/train_loss": ev.train_loss, "val/loss": ev.val_loss, "val/best_loss": ev.best_val_loss}


def task_scalars(ev: E.TaskEval) -> dict[str, float]:
    """A benchmark's figures (HellaSwag on the loop's fixed subset): acc_norm and its ±."""
    return {f"eval/{ev.task}_acc_norm": ev.acc_norm, f"eval/{ev.task}_acc": ev.acc,
            f"eval/{ev.task}_stderr": ev.stderr}


def sample_text(ev: E.Event) -> str | None:
    """Text of a training-time sample event, whatever its class ('sample' kinds with a text)."""
    if "sample" in ev.kind and ev.kind != "sample_token":
        text = getattr(ev, "text", None)
        return text if isinstance(text, str) else None
    return None


def _samples_table(wandb: Any) -> Any:
    """A W&B table in INCREMENTAL mode (wandb >= 0.19.2: each log uploads the rows added
    since the last), or None where this wandb has no such mode."""
    try:
        return wandb.Table(columns=["iter", "text"], log_mode="INCREMENTAL")
    except (TypeError, ValueError):
        return None


class WandbBackend:
    name = "wandb"

    def __init__(self, start: Start):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=start.project, name=start.name,
                              id=start.run_id, resume="allow", dir=start.run_path, config=start.config,
                              settings=wandb.Settings(console="off", silent=True))  # never write into a TUI's screen
        self.samples = _samples_table(wandb)

    def handle(self, ev: E.Event, it: int) -> None:
        if isinstance(ev, E.StepMetrics):
            self.run.log({**step_scalars(ev), "iter": ev.iter}, step=ev.iter)
        elif isinstance(ev, E.EvalResult):
            self.run.log({**eval_scalars(ev), "iter": ev.iter}, step=ev.iter)
        elif isinstance(ev, E.TaskEval):
            self.run.log({**task_scalars(ev), "iter": ev.iter}, step=ev.iter)
        elif (text := sample_text(ev)) is not None:
            # each sample uploaded once: an incremental table sends only its new rows (the
            # whole table at every eval grew quadratically); older wandb: a one-row table
            table = self.samples or self.wandb.Table(columns=["iter", "text"])
            table.add_data(it, text)
            self.run.log({"samples": table}, step=it)
        elif isinstance(ev, E.Finished | E.Failed):
            self.run.summary["state"] = getattr(ev, "state", "failed")

    def close(self) -> None:
        self.run.finish()


class TensorboardBackend:
    name = "tensorboard"

    def __init__(self, start: Start):
        # tensorboard's own writer: no torch import in the tracker process
        from gpttui.train.trackers.tbwriter import TbWriter

        self._cls = TbWriter
        self.dir = Path(start.run_path) / "tensorboard"
        self.resumed = self.dir.is_dir() and any(self.dir.iterdir())
        self.config = start.config
        self.writer: Any = None

    def _open(self, it: int) -> Any:
        if self.writer is None:  # purge_step: a resumed run hides what the lost session logged past its checkpoint
            self.writer = self._cls(self.dir, purge_step=it if self.resumed else None)
            if not self.resumed:
                rows = "\n".join(f"| {k} | {v!r} |" for k, v in self.config.items())
                self.writer.add_text("config", "| key | value |\n|---|---|\n" + rows, 0)
        return self.writer

    def handle(self, ev: E.Event, it: int) -> None:
        if isinstance(ev, E.StepMetrics):
            w = self._open(ev.iter)
            for k, v in step_scalars(ev).items():
                w.add_scalar(k, v, ev.iter)
        elif isinstance(ev, E.EvalResult):
            w = self._open(ev.iter)
            for k, v in eval_scalars(ev).items():
                w.add_scalar(k, v, ev.iter)
        elif isinstance(ev, E.TaskEval):
            w = self._open(ev.iter)
            for k, v in task_scalars(ev).items():
                w.add_scalar(k, v, ev.iter)
        elif (text := sample_text(ev)) is not None:
            self._open(it).add_text("samples", text, it)
        elif isinstance(ev, E.CheckpointSaved) and self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


BACKENDS: dict[str, type] = {"wandb": WandbBackend, "tensorboard": TensorboardBackend}


class TrackerListener:
    """A trainer listener that hands events to the tracker process (`trackchild`).

    On the trainer thread an event is only put on a queue; a feeder thread pickles it into
    the child's stdin and a reader thread collects the child's warnings, which are emitted
    from the trainer thread with the next event (emit is not thread-safe) or at `finish`."""

    def __init__(self, names: list[str], cfg: Any, run: Any, log: Log):
        from gpttui.config import to_dict

        self.names, self.run, self.log = names, run, log
        self.start = Start(run_id=run.id, run_path=str(run.path), project=cfg.wandb_project or "gpttui",
                           name=cfg.wandb_run_name or run.id, config=to_dict(cfg),
                           backends=tuple(BACKENDS[n] for n in names))
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.pending: collections.deque[tuple[str, str]] = collections.deque()
        self.cpu_s = 0.0  # the child's CPU seconds (it and what it waited for), for bench/train.py
        self.done = threading.Event()  # the child said it closed every backend
        self.dead = False
        self._lock = threading.Lock()
        self.proc = self._spawn()
        self.feeder = threading.Thread(target=self._feed, name=f"gpttui-trackers-{run.id}", daemon=True)
        self.reader = threading.Thread(target=self._read, name=f"gpttui-trackers-in-{run.id}", daemon=True)
        self.feeder.start()
        self.reader.start()
        atexit.register(self.close)

    def _spawn(self) -> subprocess.Popen:
        boot = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "  # this gpttui, this test's modules
                "from gpttui.train.trackers.child import main; raise SystemExit(main())")
        cmd = [sys.executable, "-c", boot, json.dumps(sys.path)]
        with open(Path(self.run.path) / "trackers.log", "ab") as err:  # the child's (and W&B's) stray output
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, start_new_session=True)  # no terminal signals: the parent ends it
        return proc

    def __call__(self, ev: E.Event) -> None:  # on the trainer thread: O(1), never blocks
        self.queue.put(ev)
        self._emit_pending()

    def _emit_pending(self) -> None:
        while self.pending:
            self.log(*self.pending.popleft())

    def _warn(self, text: str) -> None:
        self.pending.append((text, "warning"))

    def _died(self, why: str) -> None:
        with self._lock:
            if self.dead or self.done.is_set():
                return
            self.dead = True
        self._warn(f"tracker process {why}; no more {' or '.join(self.names)} logging; training goes on")

    def _feed(self) -> None:
        """Pickle events into the child, in batches of what came within `BATCH_S` (the child
        and W&B's service wake ~2× a second, not at every step), until the run's end; after
        a failed write only drain the queue (the reader reports the child's end once)."""
        stdin = self.proc.stdin
        assert stdin is not None
        ok = self._write(stdin, self.start)
        end = False
        while not end:
            batch, end = self._next_batch()
            if batch and ok and not self.dead:
                ok = self._write(stdin, batch)
        with contextlib.suppress(OSError):
            stdin.close()  # EOF: the child closes its backends

    def _next_batch(self) -> tuple[list[E.Event], bool]:
        """The events of the next `BATCH_S` after the first one, and whether the run ended."""
        ev = self.queue.get()
        batch: list[E.Event] = []
        deadline = time.monotonic() + BATCH_S
        while True:
            if ev is _STOP:
                return batch, True
            batch.append(ev)
            if isinstance(ev, E.Finished | E.Failed):
                return batch, True
            left = deadline - time.monotonic()
            if left <= 0:
                return batch, False
            try:
                ev = self.queue.get(timeout=left)
            except queue.Empty:
                return batch, False

    @staticmethod
    def _write(stdin: Any, obj: Any) -> bool:
        try:
            pickle.dump(obj, stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.flush()
            return True
        except pickle.PicklingError:  # not plain data: this one event is skipped
            return True
        except (OSError, ValueError):  # the child is gone (BrokenPipe) or its pipe closed
            return False

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        for line in stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "warn" in msg:
                self._warn(str(msg["warn"]))
            if "done" in msg:
                self.cpu_s = float(msg["done"])
                self.done.set()
        code = self.proc.wait()
        if not self.done.is_set():
            self._died(f"ended early (exit code {code})")

    def finish(self, timeout: float = 10.0) -> None:
        """At the end of the run (trainer thread): give the child `timeout` s to write what
        is queued and close, then emit its last warnings. A slower child goes on alone."""
        self.queue.put(_STOP)
        self.reader.join(timeout)
        self._emit_pending()

    def close(self, timeout: float = 60.0) -> None:
        """Wait (bounded) for the child to finish; it is left to end by itself past that."""
        self.queue.put(_STOP)
        self.reader.join(timeout)
        if not self.reader.is_alive():
            atexit.unregister(self.close)


def listeners_for(cfg: Any, run: Any, log: Log) -> list[TrackerListener]:
    """The tracker listener the config asks for (none without a run folder); a missing
    package is one log line with its install command."""
    if run is None:
        return []
    wanted = [n for n, on in (("wandb", cfg.wandb_log), ("tensorboard", getattr(cfg, "tensorboard_log", False))) if on]
    names = []
    for name in wanted:
        if importlib.util.find_spec(name) is None:
            log(f"{name}_log = true but the {name} package is not installed: {INSTALL[name]}; "
                "training goes on without it", "warning")
        else:
            names.append(name)
    if not names:
        return []
    try:
        return [TrackerListener(names, cfg, run, log)]
    except OSError as e:  # no process could be started (limits, a full disk for trackers.log)
        log(f"could not start the tracker process ({type(e).__name__}: {e}); "
            f"no {' or '.join(names)} logging, training goes on", "warning")
        return []
