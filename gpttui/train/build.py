"""What a run's set-up builds, once, as one frozen object: device, model, optimizer, data.

`build(job, log)` resolves the device and precision, joins the torchrun group, restores a
resumed run's weights, optimizer, scaler, RNG and data order from its checkpoint (or loads
pretrained weights), picks an automatic batch size, compiles and wraps for DDP. Exact
resume: the model is built from the seed before the checkpoint is loaded, so a CPU run
resumed at iteration k logs the same losses as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from gpttui.config import TrainConfig
from gpttui.errors import RunError
from gpttui.faults import pause_point
from gpttui.model import recipes
from gpttui.train import ddp
from gpttui.train import setup as S
from gpttui.train.owner import Job
from gpttui.weights import pretrained

Log = Callable[..., None]  # (text, level="info")


@dataclass(frozen=True)
class Resumed:
    """The counters a resumed run continues from (a new run: all zero)."""

    iter_num: int = 0
    best_val: float = math.inf
    tokens_seen: int = 0
    elapsed_s: float = 0.0
    recent_losses: tuple[float, ...] = ()


@dataclass(frozen=True)
class Built:
    """Everything the loop trains with. The modules inside change as they train; which
    modules, devices and sizes they are does not (a failed compile gives `eager()`)."""

    cfg: TrainConfig  # as trained: batch_size 'auto' resolved, a resume's geometry kept
    env: S.Env
    raw: torch.nn.Module  # the plain model: checkpoints and samples
    compiled: torch.nn.Module | None
    train_model: torch.nn.Module  # compiled and/or DDP-wrapped
    eval_model: torch.nn.Module  # compiled, never DDP-wrapped
    optimizer: Any
    scaler: Any
    reader: Any  # gpttui.data.reader.BatchReader
    accum: int  # micro-steps per optimizer step on this rank
    tokens_per_iter: int
    flops_per_token: int
    peak: tuple[float | None, str]  # (TFLOPS, basis) for MFU
    resumed: Resumed

    def eager(self, dist: ddp.DistInfo) -> Built:
        """The same set-up without torch.compile (after compilation failed)."""
        train_model, eval_model = _wrap(self.raw, self.env, dist)
        return replace(self, env=replace(self.env, compile=False), compiled=None,
                       train_model=train_model, eval_model=eval_model)


def build(job: Job, log: Log) -> Built:
    """Set up `job` on this machine (see the module docstring); `log` speaks to the user."""
    from gpttui.data.reader import BatchReader
    from gpttui.data.store import require_ready
    from gpttui.weights.checkpoint import load_checkpoint, require_recipe

    cfg, dist = job.cfg, job.dist
    env = S.resolve_env(cfg, dist.local_rank, dist.enabled)
    ddp.init(dist, env.device_type)
    if env.device_type == "cuda":
        S.enable_tf32()
    ckpt = None
    if job.resume and job.run is not None:
        ckpt = load_checkpoint(job.run.checkpoint_path, map_location=env.device)
        require_recipe(ckpt, cfg.recipe, "resume")
        cfg = _geometry_from_checkpoint(cfg, ckpt)
    data_dir = require_ready(cfg.dataset).path
    torch.manual_seed(cfg.seed + dist.rank)
    pause_point("model-build")  # a test stops the process here, in set-up
    model = recipes.build_model(cfg)
    model.chunked_loss = cfg.chunked_loss  # training, eval and the auto-batch probe
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    elif pretrained.wants_weights(cfg.init_from):
        pretrained.load_weights(model, cfg, log)
    model.to(env.device)
    scaler = torch.amp.GradScaler(env.device_type, enabled=env.use_scaler)
    optimizer = recipes.build_optimizer(model, cfg, env.device_type)
    if cfg.batch_size == "auto":
        cfg = _auto_batch(cfg, env, model, optimizer, scaler, dist.world_size, log)
    accum = ddp.split_accumulation(cfg.gradient_accumulation_steps, dist.world_size)
    tokens_per_iter = cfg.batch_size * cfg.block_size * cfg.gradient_accumulation_steps
    reader = BatchReader(data_dir, cfg.block_size, cfg.batch_size, env.device, cfg.seed, dist.rank, dist.world_size)
    resumed = Resumed()
    if ckpt is not None:
        resumed = _restore(ckpt, optimizer, scaler, reader, tokens_per_iter, dist, log)
        del ckpt  # free the (possibly large) state dicts before compiling
    compiled = torch.compile(model) if env.compile else None
    train_model, eval_model = _wrap(compiled if compiled is not None else model, env, dist)  # no `or`: bool() of a compiled module calls len()
    return Built(cfg, env, model, compiled, train_model, eval_model, optimizer, scaler, reader, accum,
                 tokens_per_iter, S.flops_per_token(model, cfg), _peak(env), resumed)


def _geometry_from_checkpoint(cfg: TrainConfig, ckpt: dict[str, Any]) -> TrainConfig:
    """Continue with the batch geometry the checkpoint trained with when the run's config
    says 'auto' (the probe could pick another size after a restart)."""
    saved = ckpt.get("config") or {}
    if cfg.batch_size == "auto" and isinstance(saved.get("batch_size"), int):
        cfg = cfg.replace(batch_size=saved["batch_size"],
                          gradient_accumulation_steps=int(saved.get("gradient_accumulation_steps", cfg.gradient_accumulation_steps)))
    return cfg


def _restore(ck: dict[str, Any], optimizer: Any, scaler: Any, reader: Any, tokens_per_iter: int,
             dist: ddp.DistInfo, log: Log) -> Resumed:
    """Optimizer, scaler, data order and RNG from checkpoint `ck`; the counters it saved."""
    from gpttui.weights.checkpoint import restore_rng

    # The config's hyperparameters (learning rates, betas, weight decay, momentum: what a
    # resume's --set may change) as the fresh optimizer holds them; load_state_dict brings
    # back the saved ones, so they are put back after it: the moments resume, the config rules.
    hyper = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    try:
        optimizer.load_state_dict(ck["optimizer"])
    except (ValueError, KeyError, TypeError) as e:
        raise RunError(f"checkpoint optimizer state does not fit this model ({e})",
                       "resume with the config the run was started with") from None
    for group, h in zip(optimizer.param_groups, hyper, strict=True):
        group.update(h)
    if ck.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(ck["scaler"])
    it = int(ck.get("iter_num", 0))
    resumed = Resumed(iter_num=it, best_val=float(ck.get("best_val_loss", math.inf)),
                      tokens_seen=int(ck.get("tokens_seen", it * tokens_per_iter)),
                      elapsed_s=float(ck.get("elapsed_s", 0.0)),
                      recent_losses=tuple(float(v) for v in ck.get("recent_losses") or []))
    sampler = ck.get("sampler")
    if sampler and dist.is_master:
        reader.load_state_dict(sampler)
    else:  # other ranks (or a nanoGPT checkpoint): fresh streams past this iteration
        reader.reseed(it)
    if dist.is_master:
        restore_rng(ck)
    log(f"resumed at iteration {it} ({resumed.tokens_seen:,} tokens seen)")
    return resumed


def _auto_batch(cfg: TrainConfig, env: S.Env, model: Any, optimizer: Any, scaler: Any, world_size: int,
                log: Log) -> TrainConfig:
    def try_batch(b: int) -> None:
        x = torch.randint(0, cfg.vocab_size, (b, cfg.block_size), device=env.device)
        try:
            with env.autocast():
                _, loss = model(x, x)
            scaler.scale(loss).backward()
            for g in optimizer.param_groups:
                g["lr"] = 0.0  # allocate AdamW's state without moving the weights
            optimizer.step()
        finally:
            optimizer.zero_grad(set_to_none=True)
            optimizer.state.clear()  # fresh optimizer, as if never stepped

    b = S.find_micro_batch(try_batch, env, cfg.block_size, log)
    accum = S.accumulation_for(b, cfg, world_size)
    if env.device_type == "cuda":
        torch.cuda.empty_cache()
    log(f"batch_size auto: {b}, gradient_accumulation_steps {accum} "
        f"({b * accum * cfg.block_size:,} tokens/iter, reference {S.AUTO_REFERENCE_BATCH} x "
        f"{cfg.gradient_accumulation_steps} x {cfg.block_size})")
    return cfg.replace(batch_size=b, gradient_accumulation_steps=accum)


def _wrap(module: torch.nn.Module, env: S.Env, dist: ddp.DistInfo) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(train model, eval model): DDP-wrapped for training under torchrun, plain for eval."""
    if not dist.enabled:
        return module, module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [dist.local_rank] if env.device_type == "cuda" else None
    return DDP(module, device_ids=ids), module


def _peak(env: S.Env) -> tuple[float | None, str]:
    from gpttui.plan.hardware import peak_for

    try:
        return peak_for(env.device_name, env.dtype)
    except Exception as e:  # a missing peak must never stop a run
        return None, f"no peak known for {env.device_name} ({type(e).__name__})"
