"""The narrow interface between the training loop and whoever runs it.

The loop gets two things: a `Job` (frozen: what to train, into which run, where in a
torchrun job, whether it resumes) and a `LoopOwner` (the Trainer: control flags to read,
and the one way out for events, logs and state). It reads nothing else of its owner and
writes none of its state; the owner reads the loop's `iter_num` and `cfg` back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gpttui import events as E
from gpttui.config import TrainConfig
from gpttui.train.ddp import DistInfo


@dataclass(frozen=True)
class Job:
    """What one loop trains: `cfg` into `run` (a `gpttui.runs.store.Run`, or None: no files)."""

    cfg: TrainConfig
    run: Any
    run_id: str
    dist: DistInfo
    resume: bool  # continue `run` from its ckpt.pt


class LoopOwner(Protocol):
    """What the loop calls on its owner (the Trainer); every call is from the loop's thread."""

    @property
    def state(self) -> str: ...

    @property
    def stop_requested(self) -> bool: ...

    @property
    def pause_requested(self) -> bool: ...

    def wait_if_paused(self) -> float:
        """Block while paused; the seconds paused."""

    def take_save_request(self) -> bool:
        """Whether a checkpoint was asked for since the last call."""

    def emit(self, ev: E.Event) -> None: ...

    def log(self, text: str, level: str = "info") -> None: ...

    def set_state(self, state: str, message: str = "") -> None: ...

    def end_state(self, state: str) -> None:
        """The run's final state (finished/stopped), announced even if unchanged."""
