"""Live training numbers a user can trust: throughput, MFU, ETA, memory, power.

Throughput is measured over each log window (on CUDA between the step-end events of its
first and last step on the device timeline, elsewhere wall time; minus time spent in evals,
checkpoints and pauses), MFU is against the device's own peak with its
basis, and the ETA is the median of recent window step times (so one slow step or an eval
does not swing it) that leaves out the first steps, which compile and warm up.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from gpttui import events as E
from gpttui.plan.hostmem import host_memory
from gpttui.train.setup import Env

RECENT_LOSSES = 200  # losses carried by each StepMetrics (the UI's sparkline / chart)
ETA_WINDOWS = 50  # window step times the ETA median is taken over
NVML_MIN_INTERVAL_S = 1.0  # NVML reads cost ~ms; never more than once a second


class NonFiniteLoss(Exception):
    """A step's loss was NaN or inf; carries the iteration it was seen at."""

    def __init__(self, iter_num: int, value: float):
        super().__init__(f"loss became {value} at iteration {iter_num}")
        self.iter_num = iter_num
        self.value = value


def nvml_index(local_index: int) -> int:
    """NVML's index of torch's cuda:local_index (they differ under CUDA_VISIBLE_DEVICES)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    ids = [p.strip() for p in visible.split(",") if p.strip()]
    if local_index < len(ids) and ids[local_index].isdigit():
        return int(ids[local_index])
    return local_index


@dataclass
class _Pending:
    """A step whose [loss, grad norm] may still be on its way from the device."""

    iter: int
    values: torch.Tensor  # host tensor once `event` has completed (no event: readable now)
    event: Any
    timed: bool  # after warm-up: counts towards tokens/s and the ETA


@dataclass
class _Read:
    iter: int
    loss: float
    grad_norm: float | None
    timed: bool
    event: Any  # the step's end on the device timeline (CUDA), or None


class MetricsTracker:
    """Accumulates per-step values on the training thread and builds StepMetrics events."""

    def __init__(
        self, env: Env, tokens_per_iter: int, flops_per_token: int, peak_tflops: float | None,
        peak_basis: str, world_size: int, warmup_steps: int, clock: Callable[[], float] = time.perf_counter,
    ):
        self.env = env
        self.tokens_per_iter = tokens_per_iter
        self.fpt = flops_per_token
        self.peak_tflops, self.peak_basis = peak_tflops, peak_basis
        self.world_size = world_size
        self.warmup_steps = warmup_steps
        self.clock = clock
        self.recent: deque[float] = deque(maxlen=RECENT_LOSSES)
        self._pending: list[_Pending] = []  # steps not yet read back from the device
        self._read: list[_Read] = []  # steps read back, not yet reported
        self._window_t0 = clock()
        self._window_event: Any = None
        # Step-end markers on the device timeline (CUDA); tests may pass a fake.
        self.new_event: Callable[[], Any] | None = (
            (lambda: torch.cuda.Event(enable_timing=True)) if env.device_type == "cuda" else None)
        self._excluded = 0.0
        self._step_times: deque[float] = deque(maxlen=ETA_WINDOWS)
        self._eval_times: deque[float] = deque(maxlen=5)
        self.steps_done = 0  # steps since this process started (for warm-up)
        self.last_tokens_per_s: float | None = None
        self._nvml: Any = None
        self._nvml_last: Any = None
        self._nvml_t = -math.inf
        self._energy0: float | None = None
        self._energy_integrated = 0.0
        if env.device_type == "cuda":
            from gpttui.plan.hardware import NvmlSampler

            self._nvml = NvmlSampler(nvml_index(torch.device(env.device).index or 0))

    # -- per step ----------------------------------------------------------------------------
    def add_step(self, iter_num: int, loss: torch.Tensor, grad_norm: torch.Tensor | None) -> None:
        """Record optimizer step `iter_num` without a device sync: on CUDA its loss and grad
        norm are copied to pinned host memory behind an event, so a later `flush` waits for
        this step only, not for the steps queued after it."""
        gn = grad_norm.detach().float() if grad_norm is not None else torch.full((), math.nan, device=loss.device)
        values = torch.stack((loss.detach().float(), gn))
        if values.is_cuda:
            host = torch.empty(2, dtype=torch.float32, pin_memory=True)
            host.copy_(values, non_blocking=True)
            values = host
        event = self.new_event() if self.new_event is not None else None
        if event is not None:
            event.record()
        self.steps_done += 1
        self._pending.append(_Pending(iter_num, values, event, timed=self.steps_done > self.warmup_steps))
        if self.steps_done == self.warmup_steps:  # throughput and ETA start after warm-up
            self.restart_window(event)

    def flush(self, upto: int | None = None) -> list[float]:
        """Read back the pending steps up to iteration `upto` (all if None) with one wait;
        returns the open window's losses up to `upto`. NonFiniteLoss if one is NaN/inf."""
        n = len(self._pending) if upto is None else sum(1 for p in self._pending if p.iter <= upto)
        taken, self._pending = self._pending[:n], self._pending[n:]
        if taken and taken[-1].event is not None:
            taken[-1].event.synchronize()  # one stream: the earlier copies are done too
        for p in taken:
            loss, gn = p.values.tolist()
            self._read.append(_Read(p.iter, loss, None if math.isnan(gn) else gn, p.timed, p.event))
            if not math.isfinite(loss):
                raise NonFiniteLoss(p.iter, loss)
        return [r.loss for r in self._read if upto is None or r.iter <= upto]

    def recent_losses(self) -> list[float]:
        """The newest step losses, reported or read back (call `flush` first)."""
        return [*self.recent, *(r.loss for r in self._read)][-RECENT_LOSSES:]

    @property
    def unreported(self) -> bool:
        """Steps taken that no StepMetrics has reported yet."""
        return bool(self._pending or self._read)

    def exclude(self, seconds: float) -> None:
        """Time inside the window that was not training (eval, checkpoint, pause)."""
        self._excluded += seconds

    def note_eval(self, seconds: float) -> None:
        self._eval_times.append(seconds)
        self.exclude(seconds)

    def restart_window(self, event: Any = None) -> None:
        """A new window starts now; on CUDA at `event`, the end of its previous step."""
        self._window_t0 = self.clock()
        self._window_event = event
        self._excluded = 0.0

    @property
    def warming_up(self) -> bool:
        return self.steps_done < self.warmup_steps

    # -- the event -----------------------------------------------------------------------------
    def build(self, run_id: str, iter_num: int, max_iters: int, lr: float, losses: list[float],
              tokens_seen: int, elapsed_s: float, eval_every: int, compiling: bool) -> E.StepMetrics:
        """StepMetrics for the window that ends with step `iter_num` (read back by `flush`);
        `losses` are its (rank-averaged) losses. Steps after it stay in the next window."""
        now = self.clock()
        window = [r for r in self._read if r.iter <= iter_num]
        self._read = [r for r in self._read if r.iter > iter_num]
        dur = max(1e-9, self._window_seconds(now, window[-1].event if window else None) - self._excluded)
        steps = sum(r.timed for r in window)
        step_time = dur / steps if steps else 0.0
        tps = self.tokens_per_iter * steps / dur if steps else (self.last_tokens_per_s or 0.0)
        if steps:
            self._step_times.append(step_time)
        self.recent.extend(losses)
        self.last_tokens_per_s = tps
        mfu = self._mfu(tps)
        grad_norm = window[-1].grad_norm if window else None
        mem = self._memory()
        ev = E.StepMetrics(
            run_id, iter=iter_num, max_iters=max_iters, loss=sum(losses) / max(1, len(losses)), lr=lr,
            grad_norm=grad_norm, step_time_s=step_time, tokens_per_s=tps, tokens_seen=tokens_seen,
            elapsed_s=elapsed_s, eta_s=self._eta(iter_num, max_iters, eval_every), mfu=mfu,
            peak_tflops=self.peak_tflops, peak_basis=self.peak_basis, compiling=compiling,
            **mem,
        )
        self.restart_window(window[-1].event if window else None)
        return ev

    def _window_seconds(self, now: float, end_event: Any) -> float:
        """The window's length: on CUDA between two step-end events on the device timeline
        (host clocks would be off when logs are deferred and the host lags the device)."""
        if self._window_event is not None and end_event is not None:
            return self._window_event.elapsed_time(end_event) / 1000.0
        return now - self._window_t0

    def _mfu(self, tokens_per_s: float) -> float | None:
        if not self.peak_tflops or not tokens_per_s:
            return None
        return tokens_per_s / self.world_size * self.fpt / (self.peak_tflops * 1e12)

    def _eta(self, iter_num: int, max_iters: int, eval_every: int) -> float | None:
        if not self._step_times:
            return None
        left = max(0, max_iters - iter_num)
        evals = left // eval_every + (1 if left else 0)
        eval_s = statistics.median(self._eval_times) if self._eval_times else 0.0
        return statistics.median(self._step_times) * left + evals * eval_s

    def _memory(self) -> dict[str, Any]:
        """Host RAM; on CUDA torch allocator figures and NVML's device view (rate-limited)."""
        ram = host_memory()
        if self.env.device_type != "cuda":
            return ram
        dev = self.env.device
        out: dict[str, Any] = {
            **ram,
            "vram_used": torch.cuda.memory_allocated(dev),
            "vram_peak": torch.cuda.max_memory_allocated(dev),
            "vram_reserved": torch.cuda.memory_reserved(dev),
            "vram_total": torch.cuda.get_device_properties(dev).total_memory,
        }
        s = self._sample_nvml()
        if s is not None:
            out["vram_nvml_used"] = s.used_bytes
            out["power_w"] = s.power_w
            if s.energy_j is not None and self._energy0 is not None:
                out["energy_kwh"] = (s.energy_j - self._energy0) / 3.6e6
            elif s.energy_j is None and self._energy_integrated:
                out["energy_kwh"] = self._energy_integrated / 3.6e6
        return out

    def _sample_nvml(self) -> Any:
        if self._nvml is None or not self._nvml.available:
            return None
        now = time.monotonic()
        if now - self._nvml_t < NVML_MIN_INTERVAL_S:
            return self._nvml_last
        s = self._nvml.sample()
        if s is not None:
            if s.energy_j is not None and self._energy0 is None:
                self._energy0 = s.energy_j
            if s.energy_j is None and s.power_w is not None and math.isfinite(self._nvml_t):
                self._energy_integrated += s.power_w * (now - self._nvml_t)  # no energy counter
        self._nvml_t, self._nvml_last = now, s
        return s

    def start_energy(self) -> None:
        """Take NVML's energy counter now as the run's zero."""
        self._nvml_t = -math.inf
        self._sample_nvml()

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml.close()
