"""The pilot's calibration: for each candidate shape, the fastest micro-batch that fits.

A few real steps (a `Trainer` with no run folder, compile off) at each micro-batch that
splits the step's sequences, largest first. CUDA: a step that runs out of memory, or whose
peak allocation is above AUTO_MEMORY_FRACTION of the card, does not fit; CPU: a resident set
above 80 % of the host's RAM. Halving stops when a smaller micro-batch is slower, and no more
are tried once CAL_BUDGET_FRACTION of the pilot's budget is spent. `Pilot` mixes this in.
"""

from __future__ import annotations

import statistics
from typing import Any

from gpttui import config as C
from gpttui import events as E
from gpttui.errors import RunError
from gpttui.train import pilotplan as P

CAL_STEPS_CPU, CAL_STEPS_CUDA = 2, 4  # timed after the first (warm-up) step
CAL_BUDGET_FRACTION = 0.15  # calibration stops trying more micro-batches past this share of the budget
CPU_RAM_FRACTION = 0.8
MAX_MICRO_TRIES = 3  # micro-batches timed per shape: the largest that fits and two halvings


class Calibration:
    """Needs from its host: state, configs, stopped, _shape_key, _elapsed, _say, _update, _drive."""

    state: Any
    configs: dict[str, C.TrainConfig]

    def calibrate(self) -> None:
        """The fastest micro-batch that fits, per shape (measured), for every candidate."""
        done: dict[tuple, P.Batching] = {}
        for cand in self.state.candidates:
            key = self._shape_key(cand.label)
            if key not in done and not self.stopped:
                done[key] = self._calibrate(self.configs[cand.label], cand.label)
            if key in done:
                self.state.batching[cand.label] = done[key]
                self._update()

    def _calibrate(self, cfg: C.TrainConfig, label: str) -> P.Batching:
        from gpttui.plan.estimate import AUTO_MAX_BATCH
        from gpttui.train.setup import AUTO_REFERENCE_BATCH

        seqs, sizes = P.micro_batches(cfg, AUTO_MAX_BATCH, AUTO_REFERENCE_BATCH)
        best: P.Batching | None = None
        tried = 0
        for mb in sizes:
            if tried >= MAX_MICRO_TRIES or self.stopped:
                break
            if best is not None and self._elapsed() > CAL_BUDGET_FRACTION * self.state.budget_s:
                self._say(f"{label}: no time for more micro-batches (calibration keeps to "
                          f"{CAL_BUDGET_FRACTION:.0%} of the budget)")
                break
            got = self._time_steps(cfg, mb, seqs // mb)
            if got is None:  # does not fit: try the next smaller
                self._say(f"{label}: micro-batch {mb} does not fit")
                continue
            tried += 1
            self._say(f"{label}: micro-batch {mb} x {seqs // mb}: {got.tokens_per_s:,.0f} tok/s (measured)")
            if best is not None and got.tokens_per_s <= best.tokens_per_s:
                break  # smaller got slower: stop halving
            best = got
        if best is None:
            raise RunError(f"{label}: not even a micro-batch of 1 fits", "lower block_size, n_layer or n_embd")
        return P.Batching(best.batch_size, best.accum, best.tokens_per_s, best.peak_bytes, best.mfu,
                          f"fastest of {tried} micro-batches that fit (measured)")

    def _time_steps(self, cfg: C.TrainConfig, mb: int, accum: int) -> P.Batching | None:
        """A few real steps of `cfg` at micro-batch `mb` (no run folder): tokens/s, peak."""
        from gpttui.train.setup import resolve_env
        from gpttui.train.trainer import Trainer

        cuda = resolve_env(cfg).device_type == "cuda"
        steps = (CAL_STEPS_CUDA if cuda else CAL_STEPS_CPU) + 1
        c = cfg.replace(batch_size=mb, gradient_accumulation_steps=accum, max_iters=steps, warmup_iters=1,
                        lr_decay_iters=steps, eval_iters=1, eval_interval=steps, log_interval=1, compile=False,
                        **P.TRIAL_FIXED)
        reset_peak(cuda)
        got: list[E.StepMetrics] = []
        trainer = Trainer(c, None, [lambda ev: got.append(ev) if isinstance(ev, E.StepMetrics) else None])
        res = self._drive(trainer)
        if isinstance(res, E.Failed):
            if "out of GPU memory" in res.reason:
                return None
            raise RunError(f"calibration failed: {res.reason}", res.hint)
        timed = [ev for ev in got[1:] if ev.tokens_per_s > 0] or got
        if not timed:
            raise RunError("calibration: no step was measured", "try again with a larger --minutes")
        peak = timed[-1].vram_peak if cuda else timed[-1].ram_used
        total = timed[-1].vram_total if cuda else timed[-1].ram_total
        limit = fit_fraction(cuda) * total if total else None
        if peak is not None and limit is not None and peak > limit:
            return None
        return P.Batching(mb, accum, statistics.median(ev.tokens_per_s for ev in timed), peak, timed[-1].mfu)


def fit_fraction(cuda: bool) -> float:
    if cuda:
        from gpttui.plan.estimate import AUTO_MEMORY_FRACTION

        return AUTO_MEMORY_FRACTION
    return CPU_RAM_FRACTION


def reset_peak(cuda: bool) -> None:
    if not cuda:
        return
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
