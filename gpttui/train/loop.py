"""The training loop proper, for one Trainer: set-up, steps, evals, checkpoints.

nanoGPT's `train.py` restructured as an object so the Trainer can drive and observe it.
Exact resume: the model is built from the seed, then weights, optimizer, scaler, RNG states
and the data sampler's state are restored, so a CPU run resumed at iteration k logs the
same losses as an uninterrupted one. The sampler state saved with a checkpoint is the one
from *before* the already-prefetched batch, so the resumed run fetches that batch again.
"""

from __future__ import annotations

import gc
import math
import time
from typing import TYPE_CHECKING, Any

import torch

from gpttui import events as E
from gpttui import pretrained, recipes
from gpttui.config import TrainConfig, to_dict
from gpttui.errors import RunError
from gpttui.faults import pause_point
from gpttui.train import ddp
from gpttui.train import setup as S
from gpttui.train.metrics import MetricsTracker, NonFiniteLoss
from gpttui.train.monitor import RunMonitor
from gpttui.train.samples import eval_sample

if TYPE_CHECKING:
    from gpttui.trainer import Trainer


class StopStep(Exception):
    """A stop request seen mid-step: the partial step is dropped."""


class Loop:
    def __init__(self, trainer: Trainer):
        self.t = trainer
        self.cfg: TrainConfig = trainer.cfg
        self.dist = trainer.dist
        self.iter_num = 0
        self.best_val = float("inf")
        self.tokens_seen = 0
        self.elapsed0 = 0.0
        self.last_saved_iter = -1
        self.metrics: MetricsTracker | None = None
        self.ckpt: dict[str, Any] | None = None
        self._paused_s = 0.0
        self.dist_stop = False  # under DDP: all ranks agreed to stop (see log_step)
        # Read losses back one step late (CUDA: the device never waits for the host to log).
        self.async_readback = False
        self._deferred_log: tuple[int, float, int] | None = None
        self._resume_recent: list[float] = []  # step losses before the checkpoint resumed from
        self._last_point: tuple[int, float, int] | None = None  # (iter, lr, tokens seen) of the last step
        self._progress_t = 0.0  # monotonic time the next Progress event is due
        self.stop_reason = ""  # set when the monitor stops the run early (plateau)

    # -- set-up ---------------------------------------------------------------------------------
    def setup(self) -> None:
        t, cfg = self.t, self.cfg
        from gpttui.checkpoint import load_checkpoint, require_recipe
        from gpttui.data.reader import BatchReader
        from gpttui.data.store import require_ready

        self.env = env = S.resolve_env(cfg, self.dist.local_rank, self.dist.enabled)
        ddp.init(self.dist, env.device_type)
        if env.device_type == "cuda":
            S.enable_tf32()
        if t.resume_requested and t.run_obj is not None:
            self.ckpt = load_checkpoint(t.run_obj.checkpoint_path, map_location=env.device)
            require_recipe(self.ckpt, cfg.recipe, "resume")
            cfg = self._resolved_from_checkpoint(cfg)
        data_dir = require_ready(cfg.dataset).path
        torch.manual_seed(cfg.seed + self.dist.rank)
        self.model = recipes.build_model(cfg)
        self.model.chunked_loss = cfg.chunked_loss  # training, eval and the auto-batch probe
        if self.ckpt is not None:
            self.model.load_state_dict(self.ckpt["model"])
        elif pretrained.wants_weights(cfg.init_from):
            pretrained.load_weights(self.model, cfg, t.log)
        self.model.to(env.device)
        self.scaler = torch.amp.GradScaler(env.device_type, enabled=env.use_scaler)
        self.optimizer = recipes.build_optimizer(self.model, cfg, env.device_type)
        if cfg.batch_size == "auto":
            cfg = self._auto_batch(cfg)
        self.cfg = t.cfg = cfg
        self.accum = ddp.split_accumulation(cfg.gradient_accumulation_steps, self.dist.world_size)
        self.tokens_per_iter = cfg.batch_size * cfg.block_size * cfg.gradient_accumulation_steps
        self.reader = BatchReader(data_dir, cfg.block_size, cfg.batch_size, env.device, cfg.seed,
                                  self.dist.rank, self.dist.world_size)
        if self.ckpt is not None:
            self._restore_state()
        self._wrap_model()
        peak, basis = self._peak()
        self.metrics = MetricsTracker(env, self.tokens_per_iter, S.flops_per_token(self.model, cfg),
                                      peak, basis, self.dist.world_size, warmup_steps=3 if env.compile else 1)
        self.metrics.start_energy()
        self.metrics.recent.extend(self._resume_recent)
        self.async_readback = env.device_type == "cuda"
        self.monitor = RunMonitor(cfg, t.run_id, t.emit, best_val=self.best_val, best_iter=self.iter_num)
        if t.run_obj is not None and self.dist.is_master:  # for estimates from measured runs
            t.run_obj.write_status(device=env.device_name, device_type=env.device_type,
                                   world_size=self.dist.world_size)
        t.log(f"{self.model.get_num_params() / 1e6:.2f}M parameters on {env.device} ({env.dtype}"
              f"{', compiled' if env.compile else ''}); {self.tokens_per_iter:,} tokens/iter"
              f" = {cfg.batch_size} x {cfg.block_size} x {cfg.gradient_accumulation_steps}"
              f"{f' over {self.dist.world_size} processes' if self.dist.enabled else ''}")
        t.log("loss: chunked, without the full logits (chunked_loss = true)" if cfg.chunked_loss
              else "loss: plain, all logits at once (chunked_loss = false)")

    def _resolved_from_checkpoint(self, cfg: TrainConfig) -> TrainConfig:
        """Continue with the batch geometry the checkpoint trained with when the run's config
        says 'auto' (the probe could pick another size after a restart)."""
        saved = self.ckpt.get("config") or {}
        if cfg.batch_size == "auto" and isinstance(saved.get("batch_size"), int):
            cfg = cfg.replace(batch_size=saved["batch_size"],
                              gradient_accumulation_steps=int(saved.get("gradient_accumulation_steps", cfg.gradient_accumulation_steps)))
        return cfg

    def _restore_state(self) -> None:
        from gpttui.checkpoint import restore_rng

        ck = self.ckpt
        try:
            self.optimizer.load_state_dict(ck["optimizer"])
        except (ValueError, KeyError, TypeError) as e:
            raise RunError(f"checkpoint optimizer state does not fit this model ({e})",
                           "resume with the config the run was started with") from None
        if ck.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ck["scaler"])
        self.iter_num = self.last_saved_iter = int(ck.get("iter_num", 0))
        self.best_val = float(ck.get("best_val_loss", float("inf")))
        self.tokens_seen = int(ck.get("tokens_seen", self.iter_num * self.tokens_per_iter))
        self.elapsed0 = float(ck.get("elapsed_s", 0.0))
        self._resume_recent = [float(v) for v in ck.get("recent_losses") or []]
        sampler = ck.get("sampler")
        if sampler and self.dist.is_master:
            self.reader.load_state_dict(sampler)
        else:  # other ranks (or a nanoGPT checkpoint): fresh streams past this iteration
            self.reader.reseed(self.iter_num)
        if self.dist.is_master:
            restore_rng(ck)
        self.ckpt = None  # free the (possibly large) state dicts
        self.t.log(f"resumed at iteration {self.iter_num} ({self.tokens_seen:,} tokens seen)")

    def _auto_batch(self, cfg: TrainConfig) -> TrainConfig:
        env = self.env

        def try_batch(b: int) -> None:
            x = torch.randint(0, cfg.vocab_size, (b, cfg.block_size), device=env.device)
            try:
                with env.autocast():
                    _, loss = self.model(x, x)
                self.scaler.scale(loss).backward()
                for g in self.optimizer.param_groups:
                    g["lr"] = 0.0  # allocate AdamW's state without moving the weights
                self.optimizer.step()
            finally:
                self.optimizer.zero_grad(set_to_none=True)
                self.optimizer.state.clear()  # fresh optimizer, as if never stepped

        b = S.find_micro_batch(try_batch, env, cfg.block_size, self.t.log)
        accum = S.accumulation_for(b, cfg, self.dist.world_size)
        if env.device_type == "cuda":
            torch.cuda.empty_cache()
        self.t.log(f"batch_size auto: {b}, gradient_accumulation_steps {accum} "
                   f"({b * accum * cfg.block_size:,} tokens/iter, reference {S.AUTO_REFERENCE_BATCH} x "
                   f"{cfg.gradient_accumulation_steps} x {cfg.block_size})")
        return cfg.replace(batch_size=b, gradient_accumulation_steps=accum)

    def _wrap_model(self) -> None:
        """torch.compile (if asked) and DDP; `self.raw` stays the plain module."""
        self.raw = self.model
        self.compiled = None
        if self.env.compile:
            self.compiled = torch.compile(self.model)
        self._ddp_wrap(self.compiled if self.compiled is not None else self.raw)  # no `or`: bool() of a compiled module calls len()

    def _ddp_wrap(self, module: torch.nn.Module) -> None:
        self.eval_model = module
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.dist.local_rank] if self.env.device_type == "cuda" else None
            self.train_model: torch.nn.Module = DDP(module, device_ids=ids)
        else:
            self.train_model = module

    def _peak(self) -> tuple[float | None, str]:
        from gpttui.hardware import peak_for

        try:
            return peak_for(self.env.device_name, self.env.dtype)
        except Exception as e:  # a missing peak must never stop a run
            return None, f"no peak known for {self.env.device_name} ({type(e).__name__})"

    # -- compile ------------------------------------------------------------------------------
    def warm_compile(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Compile with one forward/backward on the first batch (its gradients discarded);
        if compilation fails, warn and go on eager."""
        if self.compiled is None:
            return
        t = self.t
        t.set_state(E.COMPILING, "torch.compile: the first steps take longer")
        t0 = time.perf_counter()
        try:
            with self.env.autocast():
                _, loss = self.train_model(x, y)
            self.scaler.scale(loss).backward()
            t.log(f"torch.compile: compiled in {time.perf_counter() - t0:.0f} s")
        except torch.OutOfMemoryError:
            raise
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            t.log(f"torch.compile failed ({type(e).__name__}: {first}); training eager (slower, same results)", "warning")
            self.compiled = None
            self.env = S.Env(**{**self.env.__dict__, "compile": False})
            self._ddp_wrap(self.raw)
        finally:
            self.optimizer.zero_grad(set_to_none=True)

    # -- the loop -----------------------------------------------------------------------------
    def train(self) -> E.Event:
        t, cfg = self.t, self.cfg
        self.setup()
        cfg = self.cfg
        self.t_start = time.perf_counter()
        self.last_ckpt_t = time.monotonic()
        self.sampler_train = self.reader.state_dict()["streams"]["train"]
        x, y = self.reader.get_batch("train")
        self.warm_compile(x, y)
        if cfg.eval_only or (self.iter_num == 0 and not t.resume_requested):
            self.evaluate(save=False)  # the starting point every later val loss is compared with
            if cfg.eval_only:
                return self.finish(E.FINISHED)
        t.set_state(E.TRAINING, f"training to iteration {cfg.max_iters}")
        gc.freeze()  # compiled graphs made a huge heap; keep collections from walking it each time
        while self.iter_num < cfg.max_iters:
            self._check_pause()
            if self._stop_now():
                return self.stop()
            try:
                x, y = self.step(x, y)
            except StopStep:
                return self.stop()
            self.after_step()
            if self.stop_reason and not self.dist.enabled:  # (under DDP: agreed on in log_step)
                return self.stop()
        if self._stop_now():  # asked during the last eval, which was skipped
            return self.stop()
        return self.finish(E.FINISHED)

    def _stop_now(self) -> bool:
        # Under DDP a local request only counts once all ranks agree (see `log_step`).
        return self.dist_stop if self.dist.enabled else self.t.stop_requested

    def _check_pause(self) -> None:
        if self.t.pause_requested:
            self.log_unreported()  # the paused screen shows the last step taken
        paused = self.t.wait_if_paused()
        if paused:
            self._paused_s += paused
            self.metrics.exclude(paused)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step over `accum` micro-batches; returns the prefetched next batch."""
        cfg, env, model = self.cfg, self.env, self.train_model
        lr = recipes.apply_lr(self.optimizer, cfg, self.iter_num)
        rng = torch.get_rng_state()
        loss_sum = torch.zeros((), device=env.device)
        for micro in range(self.accum):
            if time.monotonic() >= self._progress_t:  # host clock only: never waits for the device
                self.emit_progress(micro)
            if micro:
                self._check_pause()
            if micro and self._stop_now():
                torch.set_rng_state(rng)  # the saved RNG must be the one this step started with
                self.optimizer.zero_grad(set_to_none=True)
                raise StopStep
            if self.dist.enabled:
                model.require_backward_grad_sync = micro == self.accum - 1
            with env.autocast():
                _, loss = model(x, y)
                loss = loss / self.accum
            if micro == self.accum - 1:
                self.sampler_train = self.reader.state_dict()["streams"]["train"]
            x, y = self.reader.get_batch("train")  # prefetch while the device works
            pause_point("step")
            self.scaler.scale(loss).backward()
            loss_sum += loss.detach()
        grad_norm = None
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.iter_num += 1
        self.t.iter_num = self.iter_num
        self.tokens_seen += self.tokens_per_iter
        self._last_point = (self.iter_num, lr, self.tokens_seen)
        self.metrics.add_step(self.iter_num, loss_sum, grad_norm)
        return x, y

    def emit_progress(self, micro: int) -> None:
        """Where the run is inside a long step (micro-steps queued), at most once a second."""
        self._progress_t = time.monotonic() + 1.0
        self.t.emit(E.Progress(self.t.run_id, iter=self.iter_num, max_iters=self.cfg.max_iters, micro=micro,
                               accum=self.accum, tokens_seen=self.tokens_seen + self.tokens_per_iter * micro // self.accum,
                               elapsed_s=self.elapsed()))

    def after_step(self) -> None:
        """Log, evaluate and checkpoint as due after the step just queued. On CUDA a due
        log waits for the next step (see `emit_deferred_log`); the previous one goes first."""
        self.emit_deferred_log()
        cfg, it = self.cfg, self.iter_num
        last = it >= cfg.max_iters
        eval_due = it % cfg.eval_interval == 0 or last
        if it % cfg.log_interval == 0 or last:
            if self.async_readback and not eval_due and not self.dist.enabled:
                self._deferred_log = self._last_point
            else:
                self.log_step()
        if eval_due:
            self.evaluate(save=True)
        elif self.dist.is_master:
            if self.t.take_save_request():
                self.checkpoint("manual")
            elif cfg.checkpoint_interval_s and time.monotonic() - self.last_ckpt_t >= cfg.checkpoint_interval_s:
                self.checkpoint("interval")

    def emit_deferred_log(self) -> None:
        """Emit the log of an earlier step now that a later one is queued (or the loop is
        about to pause, stop or finish). Waiting for step k's loss while step k+1 is already
        on the device keeps it busy: listeners, the metrics file and a TUI redrawing on
        another thread (taking the GIL) run while the GPU works instead of between steps."""
        if self._deferred_log is not None:
            point, self._deferred_log = self._deferred_log, None
            self.log_step(point)

    def log_unreported(self) -> None:
        """Before a pause or a stop: the deferred log, and one for any steps taken since the
        last log, so the screen says where the run is, not where it last logged."""
        self.emit_deferred_log()
        if not self.dist.enabled and self.metrics is not None and self.metrics.unreported:
            self.log_step()

    def log_step(self, point: tuple[int, float, int] | None = None) -> None:
        """Read the window's losses back, average them over ranks, emit StepMetrics for
        `point` = (iteration, lr, tokens seen) (default: the step just taken)."""
        it, lr, seen = point or self._last_point
        m = self.metrics
        losses = m.flush(it)
        if self.dist.enabled:
            import torch.distributed as dist

            buf = torch.tensor([*losses, float(self.t.stop_requested or bool(self.stop_reason))],
                               dtype=torch.float64, device=self.env.device)
            dist.all_reduce(buf)
            values = buf.tolist()
            losses = [v / self.dist.world_size for v in values[:-1]]
            self.dist_stop = values[-1] > 0  # any rank asked (e.g. torchrun forwarded SIGTERM)
            bad = next((v for v in losses if not math.isfinite(v)), None)
            if bad is not None:
                raise NonFiniteLoss(it, bad)
        ev = m.build(self.t.run_id, it, self.cfg.max_iters, lr, losses, seen,
                     self.elapsed(), self.cfg.eval_interval, compiling=m.warming_up and self.compiled is not None)
        self.t.emit(ev)
        self.monitor.on_step(ev)

    def elapsed(self) -> float:
        return self.elapsed0 + time.perf_counter() - self.t_start - self._paused_s

    @torch.no_grad()
    def estimate_loss(self) -> dict[str, float]:
        """Mean loss over eval_iters batches of each split (eval stream: never moves the
        training data order)."""
        out = {}
        model = self.eval_model
        model.eval()
        try:
            for split in ("train", "val"):
                losses = torch.zeros(self.cfg.eval_iters)
                for k in range(self.cfg.eval_iters):
                    x, y = self.reader.get_batch(split, stream="eval")
                    with self.env.autocast():
                        _, loss = model(x, y)
                    losses[k] = loss.item()
                    pause_point("eval")
                    if self.t.stop_requested and not self.dist.enabled:
                        raise StopStep  # Ctrl-C mid-eval: drop it, the stop saves at once
                out[split] = losses.mean().item()
        finally:
            model.train()
        return out

    def evaluate(self, save: bool) -> None:
        """Train/val loss (rank 0), EvalResult, and a checkpoint if it is due."""
        if not self.dist.is_master:
            return
        t0 = time.perf_counter()
        prev = self.t.state
        self.t.set_state(E.EVALUATING)
        try:
            losses = self.estimate_loss()
        except StopStep:  # a stop asked during a long eval does not wait for it
            self.t.log(f"eval at iteration {self.iter_num} skipped: stopping")
            return
        if self.metrics is not None:  # the checkpoint below takes its own time off the clock
            self.metrics.note_eval(time.perf_counter() - t0)
        val = losses["val"]
        improved = val < self.best_val
        if improved:
            self.best_val = val
        ev = E.EvalResult(self.t.run_id, iter=self.iter_num, train_loss=losses["train"], val_loss=val,
                          best_val_loss=self.best_val, tokens_seen=self.tokens_seen)
        self.t.emit(ev)
        if not math.isfinite(val):  # the weights are gone; keep the last good checkpoint
            raise NonFiniteLoss(self.iter_num, val)
        self._sample_and_watch(ev, t0)
        if save and self.iter_num > 0 and (improved or self.cfg.always_save_checkpoint):
            self.checkpoint("best" if improved else "eval")
        self.t.set_state(prev if prev != E.PREPARING else E.TRAINING)

    def _sample_and_watch(self, ev: E.EvalResult, t0: float) -> None:
        """The evaluation's sample (its time off the throughput clock) and the monitor's checks."""
        t1 = time.perf_counter()
        sample = eval_sample(self.raw, self.cfg, self.env, self.t.run_id, self.iter_num, ev.val_loss)
        if sample is not None:
            self.t.emit(sample)
            if self.metrics is not None:
                self.metrics.exclude(time.perf_counter() - t1)
        self.stop_reason = self.monitor.on_eval(ev) or self.stop_reason

    def checkpoint(self, reason: str) -> None:
        """Save ckpt.pt atomically (rank 0 with a run only); the losses are checked first so a
        NaN step never overwrites the last good checkpoint."""
        run = self.t.run_obj
        if run is None or not self.dist.is_master:
            return
        from gpttui.checkpoint import build_checkpoint, save_checkpoint

        t0 = time.perf_counter()
        self.metrics.flush()
        prev = self.t.state
        self.t.set_state(E.SAVING)
        sampler = self.reader.state_dict()
        sampler["streams"]["train"] = self.sampler_train
        state = build_checkpoint(self.raw, self.optimizer, self.scaler, self.raw.config.to_dict(), self.iter_num,
                                 self.best_val, to_dict(self.cfg), sampler, self.tokens_seen, self.elapsed())
        state["recent_losses"] = self.metrics.recent_losses()  # the resumed run's sparkline continues
        path = save_checkpoint(run.checkpoint_path, state)
        del state
        if reason == "best":  # best.pt beside ckpt.pt: a later, worse save keeps it
            from gpttui.checkpoint import keep_best

            keep_best(path)
        self.last_saved_iter = self.iter_num
        self.last_ckpt_t = time.monotonic()
        self.t.emit(E.CheckpointSaved(self.t.run_id, iter=self.iter_num, path=str(path), reason=reason,
                                      best_val_loss=self.best_val if self.best_val < float("inf") else None))
        self.monitor.on_checkpoint(str(path), self.iter_num)
        self.t.set_state(prev)
        self.metrics.exclude(time.perf_counter() - t0)

    # -- endings --------------------------------------------------------------------------------
    def stop(self) -> E.Event:
        self.log_unreported()
        self.t.set_state(E.STOPPING, self.stop_reason or "saving a checkpoint, then stopping")
        if self.iter_num != self.last_saved_iter:
            self.checkpoint("stop")
        return self._end(E.STOPPED)

    def finish(self, state: str) -> E.Event:
        self.emit_deferred_log()
        if self.iter_num != self.last_saved_iter and not self.cfg.eval_only:
            self.checkpoint("final")
        return self._end(state)

    def _end(self, state: str) -> E.Event:
        best = self.best_val if self.best_val < float("inf") else None
        ev = E.Finished(self.t.run_id, state=state, iter=self.iter_num, best_val_loss=best,
                        tokens_seen=self.tokens_seen, elapsed_s=self.elapsed(), reason=self.stop_reason)
        self.t._state = state
        self.t.emit(E.StatusChanged(self.t.run_id, state=state))
        self.t.emit(ev)
        return ev

    def close(self) -> None:
        gc.unfreeze()  # what set-up built may be freed again once the run is over
        if self.metrics is not None:
            self.metrics.close()
        if getattr(self, "env", None) is not None and self.env.device_type == "cuda":
            torch.cuda.empty_cache()
