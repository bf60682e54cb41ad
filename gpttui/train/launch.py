"""Starting and resuming a run: the one home that headless mode and the TUI both call.

`start` and `resume` each return a `Trainer` that is ready to `.start()` (or `.run()`):
under torchrun the process group is joined first (the config decides the device), rank 0
makes the dataset ready (prepared from `data_source` on first use; `progress_for(cfg)`
gives the listener of its PrepareProgress events) while the other ranks wait, rank 0 creates the run folder, and the Trainer is built
with its `DistInfo`. `leave(trainer)` leaves the process group once training is over.

A resume takes the config the run was started with (config.toml, or its checkpoint's copy
when that file is damaged), refuses a run with nothing to resume or already at its goal,
and prepares a dataset that has gone missing since, exactly as a new run would.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from gpttui import events as E
from gpttui.config import TrainConfig, to_dict
from gpttui.errors import GpttuiError, RunError

Listener = Callable[[E.Event], None]
Progress = Callable[[E.PrepareProgress], None]
ProgressFor = Callable[[TrainConfig], Progress | None]  # the config being launched -> its progress listener


def start(cfg: TrainConfig, preset: str, *, name: str | None = None, listeners: Iterable[Listener] = (),
          progress_for: ProgressFor | None = None, cancelled: Callable[[], bool] = lambda: False,
          check_memory: bool = True) -> Any:
    """A Trainer for a new run of `cfg` (run folder created on rank 0), or None when
    `cancelled()` turned true while the dataset was being prepared. A config whose estimate
    cannot fit the device is refused first (`gpttui.plan.fits`) unless not `check_memory`."""
    from gpttui.runs import store as runs
    from gpttui.weights.pretrained import check_available

    check_available(cfg.init_from)  # GPT-2 weights not in the local cache: before a dataset is prepared
    if check_memory:
        from gpttui.plan.fits import check_fits

        check_fits(cfg)  # before a dataset is prepared or a run folder made
    dist = join(cfg)
    try:
        if dist.is_master:
            _ensure_dataset(cfg, progress_for)
        _barrier(dist)
        if cancelled():
            _leave(dist)
            return None
        run = runs.create_run(cfg, preset, name) if dist.is_master else None
        return _trainer(cfg, run, listeners, resume=False, dist=dist)
    except BaseException:
        _leave(dist)
        raise


def resume(run_ref: Any, *, overrides: Iterable[str] = (), listeners: Iterable[Listener] = (),
           progress_for: ProgressFor | None = None, check_memory: bool = True) -> Any:
    """A Trainer continuing the run `run_ref` (id, path or `Run`) from its ckpt.pt: model,
    optimizer, RNG and data order restored; its dataset prepared first if it went missing."""
    from gpttui.runs import store as runs

    run = runs.get_run(run_ref) if isinstance(run_ref, (str, os.PathLike)) else run_ref
    cfg = resume_config(run, overrides)
    if check_memory:
        from gpttui.plan.fits import check_fits

        check_fits(cfg)
    dist = join(cfg)
    try:
        if dist.is_master:
            _ensure_dataset(cfg, progress_for)
        _barrier(dist)
        return _trainer(cfg, run, listeners, resume=True, dist=dist)
    except BaseException:
        _leave(dist)
        raise


def leave(trainer: Any) -> None:
    """Leave the torchrun process group once `trainer` is done (a no-op on one process)."""
    _leave(trainer.dist)


def join(cfg: TrainConfig) -> Any:
    """This process's `DistInfo`; under torchrun the process group is joined here, early,
    because dataset preparation on rank 0 is waited for at a barrier."""
    from gpttui.train import ddp

    dist = ddp.from_env()
    if dist.enabled:
        from gpttui.train.setup import resolve_env

        env = resolve_env(cfg, dist.local_rank, True)
        accum = cfg.gradient_accumulation_steps if isinstance(cfg.gradient_accumulation_steps, int) else 1
        ddp.split_accumulation(accum, dist.world_size)
        ddp.init(dist, env.device_type)
    return dist


def resume_config(run: Any, overrides: Iterable[str] = ()) -> TrainConfig:
    """The config a resume of `run` trains with: the run's own, `overrides` applied; a
    RunError when there is no checkpoint or the run already reached its goal."""
    try:
        st = run.status()
    except RunError:  # damaged: the checkpoint is the truth, a new status.json is written
        st = {}
    if run.latest_checkpoint() is None:
        if run.lock_held():  # still setting up (or before its first checkpoint): not free
            raise run.busy_error("; it has no checkpoint yet")
        raise RunError(f"run {run.id} has no checkpoint to resume from", "start it again with `gpttui --run`")
    cfg = _run_config(run)
    overrides = list(overrides)
    if overrides:
        from gpttui.config import build

        cfg = build(to_dict(cfg), overrides, source=f"run {run.id}")
    if st.get("state") == E.FINISHED and int(st.get("iter", 0)) >= cfg.max_iters:
        raise RunError(f"run {run.id} already finished its {cfg.max_iters} iterations",
                       "raise the goal to continue, e.g. --set max_iters=" + str(2 * cfg.max_iters))
    return cfg


def _run_config(run: Any) -> TrainConfig:
    """The run's config.toml, or, if that file is damaged or gone, the config its checkpoint
    was saved with (every checkpoint carries the resolved config); config.toml is rewritten."""
    try:
        return run.config()
    except GpttuiError as e:
        from gpttui import config as C
        from gpttui.fsutil import atomic_write_text
        from gpttui.weights.checkpoint import load_checkpoint

        saved = load_checkpoint(run.checkpoint_path).get("config")
        if not isinstance(saved, dict):
            raise RunError(f"{e.args[0]}; its checkpoint holds no config either",
                           "restore config.toml from a copy or start the run again") from None
        known = set(C.TrainConfig.__dataclass_fields__)
        cfg = C.build({k: v for k, v in saved.items() if k in known}, source=f"run {run.id} checkpoint", pretrained=False)
        bad = run.path / "config.toml"
        if bad.exists():
            os.replace(bad, bad.with_name("config.toml.damaged"))  # kept for a look, not read again
        atomic_write_text(bad, C.to_toml(cfg, only_changed=False))
        return cfg


def _ensure_dataset(cfg: TrainConfig, progress_for: ProgressFor | None) -> None:
    from gpttui.data.ensure import ensure_dataset

    ensure_dataset(cfg, progress_for(cfg) if progress_for is not None else None)


def _trainer(cfg: TrainConfig, run: Any, listeners: Iterable[Listener], *, resume: bool, dist: Any) -> Any:
    from gpttui.train.trainer import Trainer

    return Trainer(cfg, run, listeners, resume=resume, dist=dist)


def _barrier(dist: Any) -> None:
    if dist.enabled:
        from gpttui.train import ddp

        ddp.barrier()


def _leave(dist: Any) -> None:
    if dist.enabled:
        from gpttui.train import ddp

        ddp.shutdown()
