"""Events a run emits: frozen dataclasses of plain data (floats, ints, strings, tuples).

They cross from the trainer thread to any listener (TUI, headless printer, metrics file)
and are written one per line to a run's `metrics.jsonl`; `from_json` reads them back, so
a second gpttui can follow a run it did not start. Never put tensors or widgets in here.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

# States a run can be in (status.json "state" and StatusChanged.state).
PREPARING = "preparing"
COMPILING = "compiling"
TRAINING = "training"
EVALUATING = "evaluating"
PAUSED = "paused"
SAVING = "saving"
STOPPING = "stopping"
FINISHED = "finished"  # reached max_iters
STOPPED = "stopped"  # stopped by the user, resumable
FAILED = "failed"
ACTIVE_STATES = (PREPARING, COMPILING, TRAINING, EVALUATING, PAUSED, SAVING, STOPPING)
END_STATES = (FINISHED, STOPPED, FAILED)


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"
    run_id: str
    time: float = field(default_factory=_now, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["type"] = self.kind
        return d


@dataclass(frozen=True)
class StatusChanged(Event):
    """The run's state changed (see the state constants above)."""

    kind: ClassVar[str] = "status"
    state: str
    message: str = ""


@dataclass(frozen=True)
class StepMetrics(Event):
    """Every `log_interval` steps. Measured values; None where not available on this device."""

    kind: ClassVar[str] = "step"
    iter: int  # optimizer steps done (1-based after the first step)
    max_iters: int
    loss: float  # train loss of this step (mean over micro-batches)
    lr: float
    grad_norm: float | None
    step_time_s: float  # wall time of this optimizer step
    tokens_per_s: float  # measured, over the last log window
    tokens_seen: int
    elapsed_s: float  # training wall time so far (excludes pauses)
    eta_s: float | None  # None while compiling / warming up
    mfu: float | None  # fraction of peak_tflops, None if the peak is unknown
    peak_tflops: float | None
    peak_basis: str  # e.g. "H100 SXM bf16 dense 989 TFLOPS (table)" or "CPU matmul 0.4 TFLOPS (measured)"
    vram_used: int | None = None  # bytes allocated by torch now
    vram_peak: int | None = None  # bytes, torch max allocated since start
    vram_reserved: int | None = None  # bytes reserved by torch's caching allocator
    vram_total: int | None = None  # bytes on the device
    vram_nvml_used: int | None = None  # bytes used on the device, all processes (NVML)
    power_w: float | None = None  # NVML board power now
    energy_kwh: float | None = None  # NVML energy since the run started
    compiling: bool = False  # True while the first (compiling) steps run
    # (no loss history here: a step record costs the same at step 10 as at 600,000;
    # receivers keep their own series, the checkpoint its `recent_losses`)
    ram_used: int | None = None  # bytes: the training process's resident memory (host RAM)
    ram_total: int | None = None  # bytes: the host's physical memory


@dataclass(frozen=True)
class EvalResult(Event):
    kind: ClassVar[str] = "eval"
    iter: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    tokens_seen: int


@dataclass(frozen=True)
class TaskEval(Event):
    """A benchmark's accuracy at an evaluation (HellaSwag on the loop's fixed subset):
    `acc_norm` (mean per-token loss picks the ending), `acc` (summed loss), the binomial
    standard error of acc_norm, over `n` examples."""

    kind: ClassVar[str] = "task_eval"
    iter: int
    task: str
    acc_norm: float
    acc: float
    stderr: float
    n: int
    seconds: float = 0.0
    tokens_seen: int = 0


@dataclass(frozen=True)
class CheckpointSaved(Event):
    kind: ClassVar[str] = "checkpoint"
    iter: int
    path: str
    reason: str  # "eval", "best", "interval", "manual", "stop", "final"
    best_val_loss: float | None = None


@dataclass(frozen=True)
class LogMessage(Event):
    kind: ClassVar[str] = "log"
    level: str  # "info", "warning", "error"
    text: str


@dataclass(frozen=True)
class Finished(Event):
    """The run ended normally: state is FINISHED (max_iters reached) or STOPPED (by request)."""

    kind: ClassVar[str] = "finished"
    state: str
    iter: int
    best_val_loss: float | None
    tokens_seen: int
    elapsed_s: float
    reason: str = ""  # why it ended early, in words (e.g. an early stop on a plateau)


@dataclass(frozen=True)
class Failed(Event):
    """The run died; `reason` is one line, `hint` says what to change."""

    kind: ClassVar[str] = "failed"
    reason: str
    hint: str = ""
    iter: int = 0


@dataclass(frozen=True)
class PrepareProgress(Event):
    """Dataset preparation progress (run_id is the dataset name)."""

    kind: ClassVar[str] = "prepare"
    bytes_done: int
    bytes_total: int
    documents: int
    tokens: int
    tokens_per_s: float
    eta_s: float | None
    stage: str = "tokenizing"  # "scanning", "tokenizing", "finalizing", "done"


@dataclass(frozen=True)
class Progress(Event):
    """Where the run is inside a step (a long step's micro-steps) or inside an evaluation
    (its batches), at most once a second. Host clock only: emitting it never waits for the
    device. Not written to metrics.jsonl."""

    kind: ClassVar[str] = "progress"
    iter: int  # optimizer steps done
    max_iters: int
    micro: int  # micro-steps of the step in progress done (queued on the device)
    accum: int  # micro-steps per optimizer step (this process)
    tokens_seen: int  # including the micro-steps of the step in progress
    elapsed_s: float
    eval_done: int = 0  # during an evaluation: its batches done (both splits)...
    eval_total: int = 0  # ...of this many; 0 = not evaluating


@dataclass(frozen=True)
class Sample(Event):
    """A short completion of the config's fixed prompt, generated at an evaluation."""

    kind: ClassVar[str] = "sample"
    iter: int
    prompt: str
    text: str  # the completion only (without the prompt)
    val_loss: float | None = None
    seconds: float = 0.0  # generation time


@dataclass(frozen=True)
class RunWarning(Event):
    """Something the user should act on while the run goes on (`code` names the check)."""

    kind: ClassVar[str] = "warning"
    code: str  # "overfit", "spike", "throughput", "vram", "disk"
    text: str  # what was seen, with figures
    hint: str  # what to do about it
    iter: int = 0


@dataclass(frozen=True)
class Forecast(Event):
    """The run's final val loss at `at_iter` (max_iters), forecast from `n_evals` evals up to
    `iter` (gpttui.plan.forecast): computed, not measured; `band` is its ± half-width."""

    kind: ClassVar[str] = "forecast"
    iter: int
    loss: float
    band: float
    at_iter: int
    n_evals: int


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (StatusChanged, StepMetrics, EvalResult, TaskEval, CheckpointSaved, LogMessage, Finished, Failed, PrepareProgress,
                Progress, Sample, RunWarning, Forecast)
}


def from_json(d: dict[str, Any]) -> Event | None:
    """The event a `to_json()` dict came from, or None for an unknown type (newer writer)."""
    cls = EVENT_TYPES.get(d.get("type", ""))
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in d.items() if k in names}
    try:
        return cls(**kwargs)
    except TypeError:
        return None
