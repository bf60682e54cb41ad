"""The training loop proper, for one Trainer: steps, evals, checkpoints, endings.

nanoGPT's `train.py` restructured as an object so the Trainer can drive and observe it.
Set-up is `train/build.py` (one frozen `Built`); the loop talks to its owner only through
`train/owner.py` (`Job` in, `LoopOwner` calls out). The sampler state saved with a
checkpoint is the one from *before* the already-prefetched batch, so a resumed run fetches
that batch again (exact resume).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from gpttui import events as E
from gpttui.config import TrainConfig, to_dict
from gpttui.errors import first_line
from gpttui.evals.inloop import LoopTask
from gpttui.faults import pause_point
from gpttui.model import recipes
from gpttui.plan import hostmem
from gpttui.train.build import Built, build
from gpttui.train.metrics import MetricsTracker, NonFiniteLoss
from gpttui.train.monitor import RunMonitor, past_evals, resolve_reference
from gpttui.train.owner import Job, LoopOwner
from gpttui.train.samples import eval_sample


class StopStep(Exception):
    """A stop request seen mid-step: the partial step is dropped."""


class Loop:
    def __init__(self, job: Job, owner: LoopOwner):
        self.job, self.t = job, owner
        self.cfg: TrainConfig = job.cfg  # the config as trained, once set-up resolved it
        self.dist = job.dist
        self.run_id = job.run_id
        self.b: Built | None = None  # what set-up built
        self.iter_num = 0
        self.best_val = float("inf")
        self.tokens_seen = 0
        self.elapsed0 = 0.0
        self.last_saved_iter = -1
        self.metrics: MetricsTracker | None = None
        self.monitor: RunMonitor | None = None
        self.task: LoopTask | None = None
        self._paused_s = 0.0
        self.t_start = 0.0  # perf_counter when training began
        self.last_ckpt_t = 0.0  # monotonic time of the last checkpoint
        self.sampler_train: Any = None  # the train stream's state before the prefetched batch
        self.dist_stop = False  # under DDP: all ranks agreed to stop (see log_step)
        # Read losses back one step late (CUDA: the device never waits for the host to log).
        self.async_readback = False
        self._deferred_log: tuple[int, float, int] | None = None
        self._last_point: tuple[int, float, int] | None = None  # (iter, lr, tokens seen) of the last step
        self._progress_t = 0.0  # monotonic time the next Progress event is due
        self.stop_reason = ""  # set when the monitor stops the run early (plateau)

    # -- set-up ---------------------------------------------------------------------------------
    def setup(self) -> None:
        t = self.t
        b = self.b = build(self.job, t.log)
        cfg = self.cfg = b.cfg
        r = b.resumed
        self.iter_num, self.best_val, self.tokens_seen, self.elapsed0 = r.iter_num, r.best_val, r.tokens_seen, r.elapsed_s
        if self.job.resume:
            self.last_saved_iter = r.iter_num
        env = b.env
        self.metrics = MetricsTracker(env, b.tokens_per_iter, b.flops_per_token, *b.peak, self.dist.world_size,
                                      warmup_steps=3 if env.compile else 1)
        self.metrics.start_energy()
        self.metrics.recent.extend(r.recent_losses)
        self.async_readback = env.device_type == "cuda"
        past = past_evals(self.job.run, r.iter_num) if self.job.resume and self.job.run is not None else []
        self.monitor = RunMonitor(cfg, self.run_id, t.emit, best_val=self.best_val, best_iter=self.iter_num,
                                  evals=past, reference=resolve_reference(cfg, self.run_id))
        self.task = LoopTask(cfg, t.log)  # HellaSwag's fixed subset at evaluations (rank 0)
        if self.job.run is not None and self.dist.is_master:  # for estimates from measured runs
            self.job.run.write_status(device=env.device_name, device_type=env.device_type,
                                      world_size=self.dist.world_size)
        t.log(f"{b.raw.get_num_params() / 1e6:.2f}M parameters on {env.device} ({env.dtype}"
              f"{', compiled' if env.compile else ''}); {b.tokens_per_iter:,} tokens/iter"
              f" = {cfg.batch_size} x {cfg.block_size} x {cfg.gradient_accumulation_steps}"
              f"{f' over {self.dist.world_size} processes' if self.dist.enabled else ''}")
        t.log("loss: chunked, without the full logits (chunked_loss = true)" if cfg.chunked_loss
              else "loss: plain, all logits at once (chunked_loss = false)")

    @property
    def env(self) -> Any:
        return self.b.env

    # -- compile ------------------------------------------------------------------------------
    def warm_compile(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Compile with one forward/backward on the first batch (its gradients discarded);
        if compilation fails, warn and go on eager."""
        if self.b.compiled is None:
            return
        t = self.t
        t.set_state(E.COMPILING, "torch.compile: the first steps take longer")
        t0 = time.perf_counter()
        try:
            with self.env.autocast():
                _, loss = self.b.train_model(x, y)
            self.b.scaler.scale(loss).backward()
            t.log(f"torch.compile: compiled in {time.perf_counter() - t0:.0f} s")
        except torch.OutOfMemoryError:
            raise
        except Exception as e:
            first = first_line(e)
            t.log(f"torch.compile failed ({type(e).__name__}: {first}); training eager (slower, same results)", "warning")
            self.b = self.b.eager(self.dist)
        finally:
            self.b.optimizer.zero_grad(set_to_none=True)

    # -- the loop -----------------------------------------------------------------------------
    def train(self) -> E.Event:
        t = self.t
        self.setup()
        cfg = self.cfg
        self.t_start = time.perf_counter()
        self.last_ckpt_t = time.monotonic()
        self.sampler_train = self.b.reader.state_dict()["streams"]["train"]
        x, y = self.b.reader.get_batch("train")
        if not cfg.eval_only:  # an evaluation only: no backward pass to compile
            self.warm_compile(x, y)
        if cfg.eval_only or (self.iter_num == 0 and not self.job.resume):
            self.evaluate(save=False)  # the starting point every later val loss is compared with
            if cfg.eval_only:
                return self.finish(E.FINISHED)
        t.set_state(E.TRAINING, f"training to iteration {cfg.max_iters}")
        hostmem.freeze_heap()  # compiled graphs made a huge heap; keep collections from walking it each time
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
        cfg, env, model = self.cfg, self.env, self.b.train_model
        lr = recipes.apply_lr(self.b.optimizer, cfg, self.iter_num)
        rng = torch.get_rng_state()
        loss_sum = torch.zeros((), device=env.device)
        for micro in range(self.b.accum):
            if time.monotonic() >= self._progress_t:  # host clock only: never waits for the device
                self.emit_progress(micro)
            if micro:
                self._check_pause()
            if micro and self._stop_now():
                torch.set_rng_state(rng)  # the saved RNG must be the one this step started with
                self.b.optimizer.zero_grad(set_to_none=True)
                raise StopStep
            if self.dist.enabled:
                model.require_backward_grad_sync = micro == self.b.accum - 1
            with env.autocast():
                _, loss = model(x, y)
                loss = loss / self.b.accum
            if micro == self.b.accum - 1:
                self.sampler_train = self.b.reader.state_dict()["streams"]["train"]
            x, y = self.b.reader.get_batch("train")  # prefetch while the device works
            pause_point("step")
            self.b.scaler.scale(loss).backward()
            loss_sum += loss.detach()
        grad_norm = None
        if cfg.grad_clip > 0:
            self.b.scaler.unscale_(self.b.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        self.b.scaler.step(self.b.optimizer)
        self.b.scaler.update()
        self.b.optimizer.zero_grad(set_to_none=True)
        self.iter_num += 1
        self.tokens_seen += self.b.tokens_per_iter
        self._last_point = (self.iter_num, lr, self.tokens_seen)
        self.metrics.add_step(self.iter_num, loss_sum, grad_norm)
        return x, y

    def emit_progress(self, micro: int, eval_done: int = 0, eval_total: int = 0) -> None:
        """Where the run is inside a long step (micro-steps queued) or an evaluation
        (batches done), at most once a second."""
        self._progress_t = time.monotonic() + 1.0
        self.t.emit(E.Progress(self.run_id, iter=self.iter_num, max_iters=self.cfg.max_iters, micro=micro,
                               accum=self.b.accum, tokens_seen=self.tokens_seen + self.b.tokens_per_iter * micro // self.b.accum,
                               elapsed_s=self.elapsed(), eval_done=eval_done, eval_total=eval_total))

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
        ev = m.build(self.run_id, it, self.cfg.max_iters, lr, losses, seen,
                     self.elapsed(), self.cfg.eval_interval, compiling=m.warming_up and self.b.compiled is not None)
        self.t.emit(ev)
        self.monitor.on_step(ev)

    def elapsed(self) -> float:
        return self.elapsed0 + time.perf_counter() - self.t_start - self._paused_s

    @torch.no_grad()
    def estimate_loss(self) -> dict[str, float]:
        """Mean loss over eval_iters batches of each split (eval stream: never moves the
        training data order)."""
        out = {}
        model = self.b.eval_model
        model.eval()
        total = 2 * self.cfg.eval_iters
        try:
            for n, split in enumerate(("train", "val")):
                fixed = self.b.reader.fixed_batches(split) if self.cfg.eval_fixed else None
                losses = torch.zeros(self.cfg.eval_iters)
                for k in range(self.cfg.eval_iters):
                    if time.monotonic() >= self._progress_t:  # a long eval moves on screen too
                        self.emit_progress(0, n * self.cfg.eval_iters + k, total)
                    x, y = fixed.get_batch() if fixed else self.b.reader.get_batch(split, stream="eval")
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
        ev = E.EvalResult(self.run_id, iter=self.iter_num, train_loss=losses["train"], val_loss=val,
                          best_val_loss=self.best_val, tokens_seen=self.tokens_seen)
        self.t.emit(ev)
        if not math.isfinite(val):  # the weights are gone; keep the last good checkpoint
            raise NonFiniteLoss(self.iter_num, val)
        self._sample_and_watch(ev, t0)
        self._task_eval()
        if save and self.iter_num > 0 and (improved or self.cfg.always_save_checkpoint):
            self.checkpoint("best" if improved else "eval")
        self.t.set_state(prev if prev != E.PREPARING else E.TRAINING)

    def _sample_and_watch(self, ev: E.EvalResult, t0: float) -> None:
        """The evaluation's sample (its time off the throughput clock) and the monitor's checks."""
        t1 = time.perf_counter()
        sample = eval_sample(self.b.raw, self.cfg, self.env, self.run_id, self.iter_num, ev.val_loss)
        if sample is not None:
            self.t.emit(sample)
            if self.metrics is not None:
                self.metrics.exclude(time.perf_counter() - t1)
        self.stop_reason = self.monitor.on_eval(ev) or self.stop_reason

    def _task_eval(self) -> None:
        """HellaSwag on the fixed subset when due (its time off the throughput clock)."""
        t1 = time.perf_counter()
        ev = self.task.run(self.b.raw, self.env, self.run_id, self.iter_num, self.tokens_seen,
                           lambda: self.t.stop_requested)
        if ev is not None:
            self.t.emit(ev)
        if self.metrics is not None:
            self.metrics.exclude(time.perf_counter() - t1)

    def checkpoint(self, reason: str) -> None:
        """Save ckpt.pt atomically (rank 0 with a run only); the losses are checked first so a
        NaN step never overwrites the last good checkpoint."""
        run = self.job.run
        if run is None or not self.dist.is_master:
            return
        from gpttui.weights.checkpoint import build_checkpoint, save_checkpoint

        t0 = time.perf_counter()
        self.metrics.flush()
        prev = self.t.state
        self.t.set_state(E.SAVING)
        sampler = self.b.reader.state_dict()
        sampler["streams"]["train"] = self.sampler_train
        state = build_checkpoint(self.b.raw, self.b.optimizer, self.b.scaler, self.b.raw.config.to_dict(), self.iter_num,
                                 self.best_val, to_dict(self.cfg), sampler, self.tokens_seen, self.elapsed())
        state["recent_losses"] = self.metrics.recent_losses()  # the resumed run's sparkline continues
        path = save_checkpoint(run.checkpoint_path, state)
        del state
        if reason == "best":  # best.pt beside ckpt.pt: a later, worse save keeps it
            from gpttui.weights.checkpoint import keep_best

            keep_best(path)
        self.last_saved_iter = self.iter_num
        self.last_ckpt_t = time.monotonic()
        self.t.emit(E.CheckpointSaved(self.run_id, iter=self.iter_num, path=str(path), reason=reason,
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
        ev = E.Finished(self.run_id, state=state, iter=self.iter_num, best_val_loss=best,
                        tokens_seen=self.tokens_seen, elapsed_s=self.elapsed(), reason=self.stop_reason)
        self.t.end_state(state)
        self.t.emit(ev)
        return ev

    def close(self) -> None:
        hostmem.thaw_heap()  # what set-up built may be freed again once the run is over
        if self.metrics is not None:
            self.metrics.close()
        if self.b is not None and self.b.env.device_type == "cuda":
            torch.cuda.empty_cache()
