"""Everything the TUI calls in the domain, behind one injectable object.

`Services()` wires the real modules (imported lazily, inside worker threads, so the first
frame never waits for torch or NVML); tests pass fakes for the clock, the device, the
trainer and the sampler. This is also the thin adapter layer between the screens and
`gpttui.train.launch`: a `TrainSession` is a trainer plus the run it creates or resumes (the
dataset preparation that has to happen first is `launch`'s, as for headless runs).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gpttui.config import TrainConfig
from gpttui.events import Event
from gpttui.plan.target import MEASURING
from gpttui.tui.peaks import PeakCache, measure_matmul

Listener = Callable[[Event], None]


class TrainSession(Protocol):
    """A training run driven from this process (the real Trainer or a test fake)."""

    run_id: str | None

    def start(self) -> None:
        """Prepare data, create the run and start training; blocks until the loop runs."""

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self) -> None: ...
    def save_now(self) -> None: ...
    def is_alive(self) -> bool: ...
    def join(self, timeout: float | None = None) -> None: ...


class RealSession:
    """A `gpttui.train.trainer.Trainer` on a new run (or resuming one) of this process."""

    def __init__(self, cfg: TrainConfig | None, preset: str, listener: Listener, resume: str | None = None):
        self.cfg, self.preset, self.listener, self.resume_id = cfg, preset, listener, resume
        self.run_id: str | None = resume
        self.trainer: Any = None
        self._stop_requested = threading.Event()

    def start(self) -> None:
        from gpttui.train import launch

        progress_for = lambda _cfg: self.listener  # noqa: E731 - PrepareProgress goes to the screen
        if self.resume_id is not None:
            trainer = launch.resume(self.resume_id, listeners=(self.listener,), progress_for=progress_for)
            self._replay_history(trainer.run_obj)
        else:
            assert self.cfg is not None
            trainer = launch.start(self.cfg, self.preset, listeners=(self.listener,), progress_for=progress_for,
                                   cancelled=self._stop_requested.is_set)
            if trainer is None:
                return
        self.run_id = trainer.run_obj.id
        self.trainer = trainer
        trainer.start()
        if self._stop_requested.is_set():
            trainer.stop()

    def _replay_history(self, run: Any) -> None:
        """The run's losses and evals up to the checkpoint it resumes from, so the screen
        shows the whole curve and the best val loss at once, not only what follows."""
        from gpttui.runs.store import history_to_checkpoint

        for ev in history_to_checkpoint(run.events()):
            self.listener(ev)

    def pause(self) -> None:
        if self.trainer is not None:
            self.trainer.pause()

    def resume(self) -> None:
        if self.trainer is not None:
            self.trainer.resume()

    def stop(self) -> None:
        self._stop_requested.set()
        if self.trainer is not None:
            self.trainer.stop()

    def save_now(self) -> None:
        if self.trainer is not None:
            self.trainer.save_now()

    def is_alive(self) -> bool:
        return self.trainer is not None and self.trainer.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self.trainer is not None:
            self.trainer.join(timeout)


def _detect_device() -> Any:
    from gpttui.plan.hardware import detect_device

    return detect_device()


def _estimate(cfg: TrainConfig, device: Any, peaks: PeakCache | None = None, runs: list[Any] | None = None) -> Any:
    """The estimate for `cfg` on the target `gpttui.plan.target` resolves (as `--estimate` does:
    an unknown `gpu` name is the same ConfigError), `device` being the detected one. A CPU
    or unlisted card uses its matmul peak once `peaks` has measured it (see
    `gpttui.tui.peaks`); until then time and speed are unknown. `runs`: the run summaries,
    when the caller has listed them already (a past run's measured speed)."""
    from gpttui.plan.target import estimate_for, resolve_target

    def measured(key: Any) -> tuple[float | None, str]:
        known = peaks.known(key) if peaks is not None else None
        if known is None and key[0] == "cpu":  # this machine's kept peak: a file read, no torch
            from gpttui.plan.hardware import measured_basis
            from gpttui.plan.peakstore import stored_cpu_peak

            kept = stored_cpu_peak(key[1])
            known = (kept, measured_basis("cpu", key[1], kept)) if kept is not None else None
        return known if known is not None else (None, MEASURING)

    return estimate_for(cfg, resolve_target(cfg, device, measured=measured), runs)


def _list_runs() -> list[Any]:
    from gpttui.runs.store import list_runs

    return list_runs()


def _get_run(run_id: str) -> Any:
    from gpttui.runs.store import get_run

    return get_run(run_id)


def _delete_run(run_id: str) -> None:
    from gpttui.runs.store import delete_run

    delete_run(run_id)


def _stream_sample(run: Any, **kw: Any) -> Iterator[str]:
    from gpttui.weights.sample import stream_sample

    return stream_sample(run, **kw)


def _save_sample(run: Any, prompt: str, text: str, settings: dict[str, Any]) -> Path:
    from gpttui.weights.sample import save_sample

    return save_sample(run, prompt, text, settings)


def _list_datasets() -> list[tuple[Any, float | None]]:
    """(DatasetInfo, prepared at) of every dataset folder."""
    from gpttui.data.manage import prepared_at
    from gpttui.data.store import list_datasets

    return [(info, prepared_at(info)) for info in list_datasets()]


def _prepare_dataset(sources: list[str], name: str, **kw: Any) -> Any:
    from gpttui.data.prepare import prepare

    return prepare(sources, name, **kw)


def _delete_dataset(name: str) -> None:
    from gpttui.data.manage import delete_dataset

    delete_dataset(name)


def _list_presets() -> list[Any]:
    from gpttui.presets import list_presets

    return list_presets()


def _prepare_pilot(preset: str, tries: list[str], values: dict[str, Any] | None) -> Any:
    from gpttui.train.pilot import prepare

    return prepare(preset, tries, values)


def _new_pilot(preset: str, values: dict[str, Any], candidates: list[Any], budget_s: float,
               on_update: Callable[[Any], None]) -> Any:
    from gpttui.train.pilot import Pilot

    return Pilot(preset, values, candidates, budget_s, on_update)


@dataclass
class Services:
    """The domain calls the app makes; every field can be replaced by a fake."""

    clock: Callable[[], float] = time.time
    detect_device: Callable[[], Any] = _detect_device
    estimate: Callable[..., Any] = _estimate  # (cfg, device, peaks: PeakCache | None)
    measure_peak: Callable[[str, str], float] = measure_matmul  # (device, dtype) -> TFLOPS
    new_session: Callable[[TrainConfig, str, Listener], TrainSession] = field(
        default=lambda cfg, preset, listener: RealSession(cfg, preset, listener))
    resume_session: Callable[[str, Listener], TrainSession] = field(
        default=lambda run_id, listener: RealSession(None, "", listener, resume=run_id))
    list_presets: Callable[[], list[Any]] = _list_presets
    list_runs: Callable[[], list[Any]] = _list_runs
    get_run: Callable[[str], Any] = _get_run
    delete_run: Callable[[str], None] = _delete_run
    stream_sample: Callable[..., Iterator[str]] = _stream_sample
    save_sample: Callable[..., Path] = _save_sample
    list_datasets: Callable[[], list[Any]] = _list_datasets
    prepare_dataset: Callable[..., Any] = _prepare_dataset  # (sources, name, text_column=, progress=)
    delete_dataset: Callable[[str], None] = _delete_dataset
    prepare_pilot: Callable[..., Any] = _prepare_pilot  # (preset, tries, values | None) -> (name, values, candidates)
    new_pilot: Callable[..., Any] = _new_pilot  # (preset, values, candidates, budget_s, on_update) -> Pilot
    follow_interval_s: float = 0.5
