"""The one training loop: a Trainer runs a config in a thread and reports through events.

The TUI, headless mode and torchrun all drive this class; they differ only in the
listeners they attach. Control calls (pause, resume, stop, save_now) set flags that the
loop checks at every micro-step; everything that leaves the loop is a frozen event from
`gpttui.events`. Failures never vanish in the thread: every exception ends the run with a
`Failed` event (reason + hint), also written to the run's status.json.

The loop is nanoGPT's: gradient accumulation with the next batch fetched while the device
works, clipping, cosine LR with warmup, fused AdamW on CUDA, bf16 autocast (fp16 with a
GradScaler on older GPUs), torch.compile on CUDA with an eager fallback, DDP under torchrun.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import torch

from gpttui import events as E
from gpttui.config import TrainConfig
from gpttui.errors import GpttuiError, RunError, first_line
from gpttui.faults import is_user_os_error, os_error
from gpttui.train import ddp
from gpttui.train.loop import Loop
from gpttui.train.metrics import NonFiniteLoss
from gpttui.train.owner import Job

Listener = Callable[[E.Event], None]


class Trainer:
    """Trains `cfg` into `run` (a `gpttui.runs.store.Run`, or None: no files, e.g. a benchmark).

    Listeners are called on the trainer thread with each event; keep them quick. With a run,
    a `MetricsWriter` (metrics.jsonl + status.json) is always the first listener, and the
    run's lock is held while training. Under torchrun only rank 0 writes anything.
    Runs are started and resumed through `gpttui.train.launch` (dataset, run folder, torchrun)."""

    def __init__(self, cfg: TrainConfig, run: Any = None, listeners: Iterable[Listener] = (),
                 *, resume: bool = False, dist: ddp.DistInfo | None = None):
        self.cfg = cfg
        self.run_obj = run
        self.dist = dist or ddp.from_env()
        self.resume_requested = resume
        self.run_id = run.id if run is not None else "bench"
        self._listeners: list[Listener] = list(listeners)
        self._failed_listeners: set[int] = set()
        self._state = E.PREPARING
        self._stop = threading.Event()
        self._save = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._thread: threading.Thread | None = None
        self.result: E.Event | None = None  # Finished or Failed once the run ends
        self._loop: Loop | None = None
        self.refused: str | None = None  # set when another process holds the run's lock

    # -- control API (any thread) ----------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def start(self) -> threading.Thread:
        """Run in a background (daemon) thread; returns it."""
        if self._thread is not None:
            raise RuntimeError("Trainer.start() called twice")
        self._thread = threading.Thread(target=self.run, name=f"gpttui-trainer-{self.run_id}", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_alive(self) -> bool:
        """Training or about to: its thread runs, or it has not been started and not ended."""
        if self._thread is not None:
            return self._thread.is_alive()
        return self._state not in (E.FINISHED, E.STOPPED, E.FAILED)

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        """Checkpoint, then stop (at the next micro-step; a paused run is woken)."""
        self._stop.set()
        self._running.set()

    def save_now(self) -> None:
        """Write a checkpoint after the current optimizer step."""
        self._save.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def iter_num(self) -> int:
        """The last iteration taken (0 before the loop has set up)."""
        return self._loop.iter_num if self._loop is not None else 0

    # -- events --------------------------------------------------------------------------------
    def emit(self, ev: E.Event) -> None:
        """Send `ev` to every listener; a listener that raises is reported once, not fatal."""
        if not self.dist.is_master:
            return
        for i, fn in enumerate(list(self._listeners)):
            try:
                fn(ev)
            except Exception as e:  # a broken UI must not kill a 20-hour run
                if i not in self._failed_listeners:
                    self._failed_listeners.add(i)
                    msg = E.LogMessage(self.run_id, level="warning",
                                       text=f"event listener {getattr(fn, '__name__', type(fn).__name__)} failed: {e}")
                    for j, other in enumerate(self._listeners):
                        if j not in self._failed_listeners:
                            with contextlib.suppress(Exception):
                                other(msg)

    def log(self, text: str, level: str = "info") -> None:
        self.emit(E.LogMessage(self.run_id, level=level, text=text))

    def set_state(self, state: str, message: str = "") -> None:
        if state != self._state:
            self._state = state
            self.emit(E.StatusChanged(self.run_id, state=state, message=message))

    def end_state(self, state: str) -> None:
        """The final state (finished/stopped), announced even when it does not change."""
        self._state = state
        self.emit(E.StatusChanged(self.run_id, state=state))

    # -- the thread body -------------------------------------------------------------------------
    def run(self) -> E.Event:
        """Train to the end (blocking); returns the Finished or Failed event."""
        writer = None
        run = self.run_obj if self.dist.is_master else None
        loop: Loop | None = None
        trackers: list[Any] = []
        try:
            if run is not None:
                from gpttui.runs.writer import MetricsWriter

                try:
                    run.acquire_lock()
                except RunError as e:  # not a failure of this run: someone else trains it
                    self.refused = str(e)
                    self._state = E.FAILED
                    self.result = E.Failed(self.run_id, reason=str(e.args[0]), hint=e.hint or "", iter=self.iter_num)
                    self.emit(self.result)
                    return self.result
                writer = MetricsWriter(run)
                self._listeners.insert(0, writer)
                from gpttui.train.trackers.listener import listeners_for

                trackers = listeners_for(self.cfg, run, self.log)
                self._listeners.extend(trackers)  # W&B, TensorBoard
            self.emit(E.StatusChanged(self.run_id, state=E.PREPARING, message="starting"))
            job = Job(self.cfg, self.run_obj, self.run_id, self.dist, self.resume_requested)
            loop = self._loop = Loop(job, self)
            self.result = loop.train()
        except NonFiniteLoss as e:
            self._fail(loop, *_nan_text(e, self.cfg, loop))
        except torch.OutOfMemoryError:
            self._fail(loop, "out of GPU memory", _oom_hint(loop.cfg if loop else self.cfg))
        except GpttuiError as e:
            self._fail(loop, str(e.args[0] if e.args else e).replace("\n", " "), e.hint or "")
        except OSError as e:
            if not is_user_os_error(e):
                self._fail_bug(e, run, loop)
            else:
                err = os_error(e, "a run or dataset file")
                self._fail(loop, str(err.args[0]), err.hint or "")
        except BaseException as e:  # noqa: BLE001 - the thread must report, never vanish
            self._fail_bug(e, run, loop)
        finally:
            if loop is not None:
                loop.close()
            for t in trackers:  # a bounded flush; their last warnings still reach the run's log
                t.finish()
            if writer is not None:
                writer.close()
            if run is not None:
                run.release_lock()
        return self.result  # type: ignore[return-value]

    def _fail_bug(self, e: BaseException, run: Any, loop: Loop | None) -> None:
        first = first_line(e, 300)
        self._write_traceback(run)
        where = f" (traceback in {run.path / 'error.log'})" if run is not None else ""
        self._fail(loop, f"{type(e).__name__}: {first}{where}", "this looks like a bug in gpttui or torch; please report it")

    def _fail(self, loop: Loop | None, reason: str, hint: str) -> None:
        it = loop.iter_num if loop is not None else 0
        if it == 0 and self.resume_requested and self.run_obj is not None:
            it = self._checkpoint_iter()  # failed while loading: the run stands where it was
        self._state = E.FAILED
        self.result = E.Failed(self.run_id, reason=reason, hint=hint, iter=it)
        self.emit(E.StatusChanged(self.run_id, state=E.FAILED, message=reason))
        self.emit(self.result)

    def _checkpoint_iter(self) -> int:
        try:
            st = self.run_obj.status()
            return int(st.get("checkpoint_iter", st.get("iter", 0)) or 0)
        except (RunError, ValueError, TypeError):
            return 0

    def _write_traceback(self, run: Any) -> None:
        if run is None:
            return
        with contextlib.suppress(OSError):
            (run.path / "error.log").write_text(traceback.format_exc(), encoding="utf-8")

    # -- used by the loop ------------------------------------------------------------------------
    def wait_if_paused(self) -> float:
        """Block while paused (emitting PAUSED/previous state); returns the seconds paused."""
        if self._running.is_set():
            return 0.0
        before = self._state
        self.set_state(E.PAUSED)
        t0 = time.perf_counter()
        while not self._running.wait(0.2):
            pass
        if not self._stop.is_set():
            self.set_state(before)
        return time.perf_counter() - t0

    @property
    def pause_requested(self) -> bool:
        return not self._running.is_set()

    def take_save_request(self) -> bool:
        if self._save.is_set():
            self._save.clear()
            return True
        return False


def _oom_hint(cfg: TrainConfig) -> str:
    b, a = cfg.batch_size, cfg.gradient_accumulation_steps
    if isinstance(b, int) and b > 1:
        return (f"halve batch_size to {b // 2} and double gradient_accumulation_steps to {a * 2} "
                f"(keeps tokens/iter at {b * a * cfg.block_size:,}), or set batch_size = \"auto\"")
    return "lower block_size, n_layer or n_embd (even one sequence does not fit), or use dtype = \"bfloat16\""


def _nan_text(e: NonFiniteLoss, cfg: TrainConfig, loop: Loop | None) -> tuple[str, str]:
    """(reason, hint) of a NaN/inf loss: which checkpoint survives (none before the first
    save), and grad_clip only where it is off (the hint offered what was already set)."""
    saved = loop.last_saved_iter if loop is not None else -1
    kept = f"the checkpoint of iter {saved:,} is kept" if saved >= 0 else "no checkpoint had been written yet"
    fixes = [f"lower learning_rate (now {cfg.learning_rate:g})", "raise warmup_iters"]
    if not cfg.grad_clip:
        fixes.append("set grad_clip = 1.0")
    then = "then resume" if saved >= 0 else "then start it again"
    seen = loop.iter_num if loop is not None else e.iter_num  # losses are read back at the log
    at = f"at iteration {e.iter_num}" + (f" (read at iteration {seen}'s log)" if seen != e.iter_num else "")
    return f"loss became {e.value} {at}; stopped, {kept}", f"{', '.join(fixes[:-1])} or {fixes[-1]}, {then}"
