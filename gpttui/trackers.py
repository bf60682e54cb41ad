"""Experiment trackers: Weights & Biases and TensorBoard, fed from the run's event stream.

Both are optional extras (`pip install 'gpttui[wandb]'`, `'gpttui[tensorboard]'`). Each is a
backend behind one `TrackerListener`: the trainer thread only puts the (frozen) event on a
queue; a background thread starts the backends, turns events into their calls and closes
them after the run's last event (or at interpreter exit). A backend that cannot start or
fails later says so in one log line and is dropped; training goes on either way.

W&B respects its own environment (`WANDB_MODE=offline` logs into the run folder's `wandb/`
for a later `wandb sync`); its run id is gpttui's, so a resumed run continues the same
W&B run. TensorBoard's event files go to `<run>/tensorboard/`.
"""

from __future__ import annotations

import atexit
import collections
import importlib.util
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpttui import events as E

Log = Callable[[str, str], None]  # (text, level)
INSTALL = {"wandb": "pip install 'gpttui[wandb]'", "tensorboard": "pip install 'gpttui[tensorboard]'"}
_STOP = object()


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


def sample_text(ev: E.Event) -> str | None:
    """Text of a training-time sample event, whatever its class ('sample' kinds with a text)."""
    if "sample" in ev.kind and ev.kind != "sample_token":
        text = getattr(ev, "text", None)
        return text if isinstance(text, str) else None
    return None


class WandbBackend:
    name = "wandb"

    def __init__(self, cfg: Any, run: Any, config: dict[str, Any]):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=cfg.wandb_project or "gpttui", name=cfg.wandb_run_name or run.id,
                              id=run.id, resume="allow", dir=str(run.path), config=config,
                              settings=wandb.Settings(console="off", silent=True))  # never write into a TUI's screen
        self.samples: list[tuple[int, str]] = []

    def handle(self, ev: E.Event, it: int) -> None:
        if isinstance(ev, E.StepMetrics):
            self.run.log({**step_scalars(ev), "iter": ev.iter}, step=ev.iter)
        elif isinstance(ev, E.EvalResult):
            self.run.log({**eval_scalars(ev), "iter": ev.iter}, step=ev.iter)
        elif (text := sample_text(ev)) is not None:
            self.samples.append((it, text))
            self.run.log({"samples": self.wandb.Table(columns=["iter", "text"], data=list(self.samples))}, step=it)
        elif isinstance(ev, E.Finished | E.Failed):
            self.run.summary["state"] = getattr(ev, "state", "failed")

    def close(self) -> None:
        self.run.finish()


class TensorboardBackend:
    name = "tensorboard"

    def __init__(self, cfg: Any, run: Any, config: dict[str, Any]):
        from torch.utils.tensorboard import SummaryWriter

        self._cls = SummaryWriter
        self.dir = Path(run.path) / "tensorboard"
        self.resumed = self.dir.is_dir() and any(self.dir.iterdir())
        self.config = config
        self.writer: Any = None

    def _open(self, it: int) -> Any:
        if self.writer is None:  # purge_step: a resumed run hides what the lost session logged past its checkpoint
            self.writer = self._cls(log_dir=str(self.dir), purge_step=it if self.resumed else None)
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
        elif (text := sample_text(ev)) is not None:
            self._open(it).add_text("samples", text, it)
        elif isinstance(ev, E.CheckpointSaved) and self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


BACKENDS: dict[str, type] = {"wandb": WandbBackend, "tensorboard": TensorboardBackend}


class TrackerListener:
    """A trainer listener that hands events to tracker backends on its own thread."""

    def __init__(self, names: list[str], cfg: Any, run: Any, log: Log):
        self.names, self.cfg, self.run, self.log = names, cfg, run, log
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.pending: collections.deque[tuple[str, str]] = collections.deque()
        self.cpu_s = 0.0
        self.thread = threading.Thread(target=self._work, name=f"gpttui-trackers-{run.id}", daemon=True)
        self.thread.start()
        atexit.register(self.close)

    def __call__(self, ev: E.Event) -> None:  # on the trainer thread: O(1), never blocks
        self.queue.put(ev)
        while self.pending:  # the worker's warnings, emitted from the trainer thread (emit is not thread-safe)
            self.log(*self.pending.popleft())

    def _warn(self, text: str) -> None:
        self.pending.append((text, "warning"))

    def close(self, timeout: float = 60.0) -> None:
        """Let the backends write what is queued and close (idempotent)."""
        if self.thread.is_alive():
            self.queue.put(_STOP)
            self.thread.join(timeout)

    def _start(self) -> list[Any]:
        from gpttui.config import to_dict

        config = to_dict(self.cfg)
        started = []
        for name in self.names:
            try:
                started.append(BACKENDS[name](self.cfg, self.run, config))
            except Exception as e:  # noqa: BLE001 - a tracker must never stop a run
                self._warn(f"{name}: could not start ({type(e).__name__}: {_first(e)}); training goes on without it"
                           + ("; set WANDB_MODE=offline to log into the run folder" if name == "wandb" else ""))
        return started

    def _work(self) -> None:
        try:
            self._dispatch()
        finally:
            self.cpu_s = time.thread_time()  # this thread's CPU time, for bench/train.py
            atexit.unregister(self.close)

    def _dispatch(self) -> None:
        backends = self._start()
        it = 0
        while backends:
            ev = self.queue.get()
            if ev is _STOP:
                break
            it = getattr(ev, "iter", it)
            for b in list(backends):
                try:
                    b.handle(ev, it)
                except Exception as e:  # noqa: BLE001
                    backends.remove(b)
                    self._warn(f"{b.name}: logging failed ({type(e).__name__}: {_first(e)}); no more {b.name} logging")
            if isinstance(ev, E.Finished | E.Failed):
                break
        for b in backends:
            try:
                b.close()
            except Exception as e:  # noqa: BLE001
                self._warn(f"{b.name}: closing failed ({type(e).__name__}: {_first(e)})")


def _first(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:200]


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
    return [TrackerListener(names, cfg, run, log)] if names else []
