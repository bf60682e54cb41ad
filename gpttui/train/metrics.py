"""Live training numbers a user can trust: throughput, MFU, ETA, memory, power.

Throughput is measured over each log window (wall time after a device sync, minus time
spent in evals, checkpoints and pauses), MFU is against the device's own peak with its
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
from typing import Any

import torch

from gpttui import events as E
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
        self._pending: list[torch.Tensor] = []  # step losses not yet read back from the device
        self._window_losses: list[float] = []
        self._grad_norm: torch.Tensor | None = None
        self._window_t0 = clock()
        self._window_steps = 0
        self._excluded = 0.0
        self._step_times: deque[float] = deque(maxlen=ETA_WINDOWS)
        self._eval_times: deque[float] = deque(maxlen=5)
        self.steps_done = 0  # steps since this process started (for warm-up)
        self.last_tokens_per_s: float | None = None
        self.last_mfu: float | None = None
        self._nvml: Any = None
        self._nvml_last: Any = None
        self._nvml_t = -math.inf
        self._energy0: float | None = None
        self._energy_integrated = 0.0
        if env.device_type == "cuda":
            from gpttui.hardware import NvmlSampler

            self._nvml = NvmlSampler(nvml_index(torch.device(env.device).index or 0))

    # -- per step ----------------------------------------------------------------------------
    def add_step(self, loss: torch.Tensor, grad_norm: torch.Tensor | None) -> None:
        """Record one optimizer step (no device sync: tensors are read at the next flush)."""
        self._pending.append(loss)
        self._grad_norm = grad_norm
        self._window_steps += 1
        self.steps_done += 1
        if self.steps_done == self.warmup_steps:  # throughput and ETA start after warm-up
            self.restart_window()

    def flush(self, iter_num: int) -> list[float]:
        """Read pending losses back (one sync); NonFiniteLoss if any is NaN/inf."""
        if self._pending:
            values = torch.stack(self._pending).float().tolist()
            self._pending.clear()
            self._window_losses.extend(values)
            for v in values:
                if not math.isfinite(v):
                    raise NonFiniteLoss(iter_num, v)
        return self._window_losses

    def exclude(self, seconds: float) -> None:
        """Time inside the window that was not training (eval, checkpoint, pause)."""
        self._excluded += seconds

    def note_eval(self, seconds: float) -> None:
        self._eval_times.append(seconds)
        self.exclude(seconds)

    def restart_window(self) -> None:
        self._window_t0 = self.clock()
        self._window_steps = 0
        self._excluded = 0.0

    @property
    def warming_up(self) -> bool:
        return self.steps_done < self.warmup_steps

    # -- the event -----------------------------------------------------------------------------
    def build(self, run_id: str, iter_num: int, max_iters: int, lr: float, losses: list[float],
              tokens_seen: int, elapsed_s: float, eval_every: int, compiling: bool) -> E.StepMetrics:
        """StepMetrics for the window that ends now; `losses` are its (rank-averaged) losses."""
        now = self.clock()
        dur = max(1e-9, now - self._window_t0 - self._excluded)
        steps = self._window_steps
        step_time = dur / steps if steps else 0.0
        tps = self.tokens_per_iter * steps / dur if steps else (self.last_tokens_per_s or 0.0)
        if steps and not self.warming_up:
            self._step_times.append(step_time)
        self.recent.extend(losses)
        self.last_tokens_per_s = tps
        self.last_mfu = mfu = self._mfu(tps)
        grad_norm = float(self._grad_norm) if self._grad_norm is not None else None
        mem = self._memory()
        ev = E.StepMetrics(
            run_id, iter=iter_num, max_iters=max_iters, loss=sum(losses) / max(1, len(losses)), lr=lr,
            grad_norm=grad_norm, step_time_s=step_time, tokens_per_s=tps, tokens_seen=tokens_seen,
            elapsed_s=elapsed_s, eta_s=self._eta(iter_num, max_iters, eval_every), mfu=mfu,
            peak_tflops=self.peak_tflops, peak_basis=self.peak_basis, compiling=compiling,
            recent_losses=tuple(self.recent), **mem,
        )
        self._window_losses = []
        self.restart_window()
        return ev

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
        """torch allocator figures and NVML's device view (rate-limited), CUDA only."""
        if self.env.device_type != "cuda":
            return {}
        dev = self.env.device
        out: dict[str, Any] = {
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
