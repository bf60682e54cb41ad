"""The pilot: short real runs of several candidate configs, on this device and dataset,
compared at equal training time by successive halving; the best becomes `<preset>-pilot`.

`Pilot(...).run()` blocks (call it from a worker thread in the TUI): it calls
`on_update(state)` with a `PilotState` (plain data) whenever something changed.

1. Calibration: for each candidate shape (candidates that differ only in lrs share one), a
   few timed steps at each micro-batch that splits the step's sequences, largest first
   (CUDA: a step that runs out of memory, or peaks above AUTO_MEMORY_FRACTION, does not fit;
   CPU: above 80 % of the host's RAM): the fastest that fits is kept, with its tokens/s.
2. Rungs: n candidates, then the better half, ... down to two. Each rung gets an equal share
   of the time left; its trials get equal training seconds, which each turns into max_iters
   at its own measured tokens/s (a faster recipe takes more steps). The overhead of a trial
   (set-up, evals, checkpoint) is measured and taken off before the split.
3. A promoted candidate is trained again from scratch with the longer budget (a new run),
   not resumed: a loss is only comparable at the end of a decay, and GPT-2's cosine spans
   the whole run, so stretching it mid-way would give a schedule no real run has; every
   compared loss is the end of a complete warmup -> decay schedule of that length. The cost
   (the earlier rungs' steps are not reused) is at most the sum of the earlier rungs.

Every trial is a run in the Runs list (status.json `pilot`), resumable like any other, seeded
by the preset's seed (same data order) and scored on the same fixed validation batches
(eval_fixed = true).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from gpttui import config as C
from gpttui import events as E
from gpttui.errors import GpttuiError
from gpttui.train import pilotplan as P
from gpttui.train.pilotcal import Calibration, reset_peak
from gpttui.train.pilotplan import prepare  # noqa: F401 - the CLI's, the TUI's and the tests' entry

OVER_FRACTION = 1.1  # a trial that would end past budget x this is not started
EVAL_FRACTION = 0.15  # a trial's evals (start, end) cost about this share of its training time


@dataclass
class TrialState:
    """One trial (a candidate in one rung) as the table and chart show it."""

    label: str
    rung: int
    iters_planned: int
    eval_iters: int = 1  # x its micro-batch: the rung's fixed validation sequences
    run_id: str = ""
    state: str = "planned"  # planned, training, finished, failed, stopped
    iter: int = 0
    tokens_per_s: float | None = None  # measured: median of the step logs
    peak_bytes: int | None = None  # measured: CUDA max allocated / process resident memory
    mfu: float | None = None
    val_loss: float | None = None  # the last eval's (the end of the trial's decay)
    curve: list[tuple[float, float]] = field(default_factory=list)  # (training s, train loss)
    evals: list[tuple[float, float]] = field(default_factory=list)  # (training s, val loss)
    wall_s: float = 0.0
    error: str = ""


@dataclass
class PilotState:
    preset: str
    pilot_id: str
    budget_s: float
    candidates: list[P.Candidate]
    save_as: str = ""
    phase: str = "starting"
    elapsed_s: float = 0.0
    rung_sizes: list[int] = field(default_factory=list)
    batching: dict[str, P.Batching] = field(default_factory=dict)
    trials: list[TrialState] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    winner: str | None = None
    preset_path: str | None = None
    done: bool = False
    peak_is_vram: bool = False  # trials' peak_bytes are CUDA max allocated (else process RSS)

    @property
    def eta_s(self) -> float | None:
        """Time left by the plan (the rungs share what is left of the budget)."""
        return None if self.done else max(0.0, self.budget_s - self.elapsed_s)

    def candidate(self, label: str) -> P.Candidate:
        return next(c for c in self.candidates if c.label == label)


class Pilot(Calibration):
    def __init__(self, preset: str, values: dict[str, Any], candidates: list[P.Candidate], budget_s: float,
                 on_update: Callable[[PilotState], None] | None = None, save_as: str | None = None):
        self.values = dict(values)
        self.configs = {c.label: P.config_for(self.values, c, preset) for c in candidates}
        self.save_as = save_as or f"{preset}-pilot"
        self.state = PilotState(preset, f"{time.strftime('%Y%m%d-%H%M%S')}-{preset}-pilot", budget_s, candidates,
                                self.save_as, rung_sizes=P.rung_sizes(len(candidates)))
        self._on_update = on_update or (lambda s: None)
        self._stop = threading.Event()
        self._trainer: Any = None
        self._t0 = time.monotonic()
        self._overhead: dict[str, float] = {}  # shape key -> measured seconds a trial costs besides its steps
        self.out_of_time = False  # the budget (+10 %) had no room for the next trial

    # -- control (any thread) ----------------------------------------------------------------
    def stop(self) -> None:
        """Stop the trial in progress (it checkpoints: resumable) and end the pilot."""
        self._stop.set()
        t = self._trainer
        if t is not None:
            t.stop()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> PilotState:
        st = self.state
        self._t0 = time.monotonic()
        try:
            self._say(f"pilot {st.pilot_id}: {len(st.candidates)} candidates, rungs {' -> '.join(map(str, st.rung_sizes))}, "
                      f"budget {st.budget_s / 60:.1f} min")
            t_data = time.monotonic()
            self._ensure_data()
            if time.monotonic() - t_data > 1.0:  # a first use prepared it: not the trials' time
                self._say(f"dataset ready in {time.monotonic() - t_data:.0f} s (not counted in the budget)")
            self._t0 = time.monotonic()
            self._phase("calibrating")
            self.calibrate()
            labels = [c.label for c in st.candidates]
            best: str | None = None
            sizes = st.rung_sizes
            for r in range(len(sizes)):
                labs = labels[: sizes[r]]
                if self.stopped or (r and not self._rung_fits(r, labs)):
                    break
                last = r + 1 == len(sizes) or not self._fits(
                    self._min_need(labs) + self._min_need(labs[: sizes[r + 1]]))
                if last and r + 1 < len(sizes):
                    self._say(f"rung {r + 1} is the last: no time for {len(sizes) - r - 1} more at the speed measured")
                finished, top = self.run_rung(r, labs, last)
                if top is None:  # none of this rung finished (cut at the budget): the last rung's stands
                    break
                labels, best = finished, top
                if last or self.out_of_time:
                    break
            if not self.stopped and best is not None:
                self.recommend(best)
            elif not self.stopped:
                self._say("no trial finished inside the budget: no recommendation (give more --minutes)")
            self._phase("stopped" if self.stopped else "done")
        finally:
            st.done = True
            self._update()
        return st

    def _ensure_data(self) -> None:
        from gpttui.data.ensure import ensure_dataset

        ensure_dataset(next(iter(self.configs.values())))

    def _shape_key(self, label: str) -> tuple:
        lr = {"learning_rate", "min_lr", "muon_lr", "embed_lr"}
        return tuple(sorted((k, str(v)) for k, v in C.to_dict(self.configs[label]).items() if k not in lr))

    def _drive(self, trainer: Any, label: str = "") -> Any:
        """Run one trial to its end; past the budget (+10 %) it is stopped there (it keeps a
        checkpoint): a machine that slows mid-trial must not carry the pilot past its budget."""
        self._trainer = trainer
        try:
            if self.stopped:
                trainer.stop()
            trainer.start()
            cut = False
            while not trainer.join(0.2):
                if not cut and self._elapsed() > OVER_FRACTION * self.state.budget_s:
                    cut = self.out_of_time = True
                    trainer.stop()
                    self._say(f"{label}: stopped at the budget's end (+10 %): slower than measured "
                              "(a busier machine?); comparing the trials that finished")
            return trainer.result
        finally:
            self._trainer = None

    # -- rungs ---------------------------------------------------------------------------------------
    def run_rung(self, r: int, labels: list[str], last: bool = False) -> tuple[list[str], str | None]:
        """Train `labels` for an equal share of the time left; returns those that finished,
        best first, and the best (None if none finished)."""
        st = self.state
        left = st.budget_s - self._elapsed()
        rungs_left = 1 if last else len(st.rung_sizes) - r
        share = left / rungs_left * (0.95 if rungs_left == 1 else 1.0)
        eval_seqs = self._eval_seqs(labels, share / len(labels))
        overheads = [self._overhead_of(lb, eval_seqs) for lb in labels]
        train_s = max(1.0, (share - sum(overheads)) / len(labels))
        self._phase(f"rung {r + 1}/{len(st.rung_sizes)}{' (the last that fits)' if last and r + 1 < len(st.rung_sizes) else ''}: "
                    f"{len(labels)} trials x {train_s:.0f} s of training")
        if share < sum(overheads) + len(labels) * 1.0:
            self._say(f"rung {r + 1}: the {left:.0f} s left cannot pay the trials' set-up and evals "
                      f"({sum(overheads):.0f} s measured/estimated): the pilot will run over")
        trials = []
        for lb in labels:
            b = st.batching[lb]
            iters = P.iters_for(train_s, b, self.configs[lb].block_size)
            if iters < P.MIN_TRIAL_ITERS:
                self._say(f"{lb}: only {iters} steps fit rung {r + 1}: raise --minutes for a meaningful comparison")
            t = TrialState(lb, r + 1, iters, eval_iters=max(1, eval_seqs // b.batch_size))
            st.trials.append(t)
            trials.append(t)
        self._update()
        for t in trials:
            if self.stopped:
                break
            need = self._overhead_of(t.label, t.eval_iters * st.batching[t.label].batch_size) + train_s
            if self._elapsed() + need > OVER_FRACTION * st.budget_s:
                self.out_of_time = True
                for u in trials[trials.index(t):]:
                    u.state = "skipped"
                self._say(f"rung {r + 1}: no time left for {t.label} (needs ~{need:.0f} s): "
                          f"comparing the {trials.index(t)} trials that finished")
                break
            self.run_trial(t)
        losses = {t.label: t.val_loss if t.state == E.FINISHED else None for t in trials}
        ranked = P.rank(losses)
        keep = st.rung_sizes[r + 1] if r + 1 < len(st.rung_sizes) else 1
        self._say(f"rung {r + 1}: " + ", ".join(f"{lb} {_loss(losses[lb])}" for lb in ranked)
                  + (f"; keeping {', '.join(ranked[:keep])}" if r + 1 < len(st.rung_sizes) else ""))
        top = ranked[0] if ranked and losses[ranked[0]] is not None else None
        return [lb for lb in ranked if losses[lb] is not None], top

    def _min_need(self, labels: list[str]) -> float:
        """Seconds a rung of `labels` needs at least: each trial's set-up and evals and
        MIN_TRIAL_ITERS steps at its measured speed."""
        st = self.state
        eval_seqs = self._eval_seqs(labels, 1.0)
        return sum(self._overhead_of(lb, eval_seqs) + P.MIN_TRIAL_ITERS * self.configs[lb].block_size
                   * st.batching[lb].batch_size * st.batching[lb].accum / st.batching[lb].tokens_per_s for lb in labels)

    def _fits(self, need: float) -> bool:
        return self._elapsed() + need <= self.state.budget_s

    def _rung_fits(self, r: int, labels: list[str]) -> bool:
        """Whether rung r can still run inside the budget (+10 %); if not, the pilot ends
        with the last rung's best."""
        need = self._min_need(labels)
        if len(labels) >= 2 and self._elapsed() + need <= OVER_FRACTION * self.state.budget_s:
            return True
        self.out_of_time = len(labels) >= 2
        if self.out_of_time:
            self._say(f"no time for rung {r + 1} ({len(labels)} trials need ~{need:.0f} s): "
                      f"the recommendation is rung {r}'s best")
        return False

    def _eval_seqs(self, labels: list[str], slot_s: float) -> int:
        """Validation sequences per eval for this rung, the same for all its trials (so the
        same fixed tokens: the k-th batch of a fixed stream is its k-th run of sequences):
        a multiple of the largest micro-batch, at most the preset's eval_iters x micro-batch,
        costing about EVAL_FRACTION of the slot (2 evals x 2 splits, a forward ~1/3 step)."""
        st = self.state
        mbs = [st.batching[lb].batch_size for lb in labels]
        slowest = min(st.batching[lb].tokens_per_s for lb in labels)
        block = self.configs[labels[0]].block_size
        afford = EVAL_FRACTION * slot_s * slowest / block * 3 / 4
        most = max(self.configs[lb].eval_iters * st.batching[lb].batch_size for lb in labels)
        unit = max(mbs)
        return unit * max(1, min(int(afford // unit), most // unit))

    def _overhead_of(self, label: str, eval_seqs: int) -> float:
        """Seconds a trial of this shape costs besides its steps: set-up measured once one
        ran (else 3 s), plus its two evals (2 splits each; a forward ~1/3 of a step)."""
        b, cfg = self.state.batching[label], self.configs[label]
        evals = 2 * 2 * eval_seqs * cfg.block_size / b.tokens_per_s / 3
        return self._overhead.get(self._shape_key(label), 3.0) + evals

    def run_trial(self, t: TrialState) -> None:
        from gpttui.train import launch

        st, cfg0, b = self.state, self.configs[t.label], self.state.batching[t.label]
        cfg = cfg0.replace(batch_size=b.batch_size, gradient_accumulation_steps=b.accum, eval_iters=t.eval_iters,
                           **P.trial_schedule(cfg0, t.iters_planned), **P.TRIAL_FIXED)
        t0 = time.monotonic()
        t.state = E.TRAINING
        reset_peak(cfg.device.startswith("cuda") or cfg.device == "auto")
        try:
            trainer = launch.start(cfg, st.preset, name=f"{st.pilot_id}-r{t.rung}-c{_index(st, t.label)}")
        except GpttuiError as e:
            t.state, t.error = E.FAILED, str(e)
            self._update()
            return
        t.run_id = trainer.run_obj.id
        trainer.run_obj.write_status(pilot=f"{st.pilot_id} · {t.label} · rung {t.rung}")
        trainer.add_listener(lambda ev: self._on_event(t, ev))
        self._update()
        res = self._drive(trainer, t.label)
        t.wall_s = time.monotonic() - t0
        if isinstance(res, E.Failed):
            t.state, t.error = E.FAILED, res.reason
        else:
            t.state = res.state if res is not None else E.FAILED
            if t.tokens_per_s and t.iter > 2:  # the next rung plans with the trial's own speed
                st.batching[t.label] = replace(b, tokens_per_s=t.tokens_per_s, note=b.note)
            if t.tokens_per_s:  # what the trial cost besides its steps and evals: its set-up
                steps_s = t.iter * cfg.tokens_per_iter / t.tokens_per_s
                evals_s = self._overhead_of(t.label, t.eval_iters * b.batch_size) - self._overhead.get(
                    self._shape_key(t.label), 3.0)
                self._overhead[self._shape_key(t.label)] = max(0.0, t.wall_s - steps_s - evals_s)
        self._say(f"{t.label} (rung {t.rung}): {t.state} at iter {t.iter}, val {_loss(t.val_loss)}, "
                  f"{t.wall_s:.0f} s ({t.run_id})")

    def _on_event(self, t: TrialState, ev: E.Event) -> None:
        if isinstance(ev, E.StepMetrics):
            t.iter = ev.iter
            t.curve.append((ev.elapsed_s, ev.loss))
            if not ev.compiling and ev.tokens_per_s > 0:
                t.tokens_per_s = ev.tokens_per_s if t.tokens_per_s is None else 0.7 * t.tokens_per_s + 0.3 * ev.tokens_per_s
            t.peak_bytes = max(t.peak_bytes or 0, (ev.vram_peak if ev.vram_peak is not None else ev.ram_used) or 0) or None
            self.state.peak_is_vram = self.state.peak_is_vram or ev.vram_peak is not None
            t.mfu = ev.mfu if ev.mfu is not None else t.mfu
        elif isinstance(ev, E.EvalResult):
            t.val_loss = ev.val_loss
            t.evals.append((t.curve[-1][0] if t.curve else 0.0, ev.val_loss))
        else:
            return
        self._update()

    # -- the result ------------------------------------------------------------------------------------
    def recommend(self, label: str) -> None:
        """Save the winner as the user preset `save_as`, comments saying where values came from."""
        from gpttui.presets import save_user_preset
        from gpttui.train.pilotreport import evidence_header

        st = self.state
        st.winner = label
        cand, b = st.candidate(label), st.batching.get(label)
        values = P.recommendation_values(self.values, cand, b)
        values["description"] = f"{self.values.get('description', st.preset)} — pilot {st.pilot_id}: {label}"
        cfg = C.build(values, source=self.save_as)
        comments = {k: f"pilot: {cand.note_of(k)}" for k in cand.values}
        if b is not None:
            comments["batch_size"] = f"pilot: {b.note}, {b.tokens_per_s:,.0f} tok/s"
            comments["gradient_accumulation_steps"] = "pilot: keeps the preset's sequences per step"
        path = save_user_preset(self.save_as, cfg, header=evidence_header(st), comments=comments)
        st.preset_path = str(path)
        self._say(f"recommendation: {label}; saved as preset '{self.save_as}' ({path})")
        _save_record(st)

    # -- plumbing ----------------------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return time.monotonic() - self._t0

    def _phase(self, text: str) -> None:
        self.state.phase = text
        self._update()

    def _say(self, text: str) -> None:
        self.state.log.append(text)
        self._update()

    def _update(self) -> None:
        self.state.elapsed_s = self._elapsed()
        self._on_update(self.state)


def _save_record(st: PilotState) -> None:
    """pilots/<id>.json in the data dir: the evidence, for later looks."""
    from gpttui.fsutil import atomic_write_text
    from gpttui.paths import data_dir

    folder = data_dir() / "pilots"
    folder.mkdir(parents=True, exist_ok=True)
    d = asdict(st)
    d["candidates"] = [asdict(c) for c in st.candidates]
    atomic_write_text(folder / f"{st.pilot_id}.json", json.dumps(d, indent=1, default=str) + "\n")


def _index(st: PilotState, label: str) -> int:
    return next(i for i, c in enumerate(st.candidates) if c.label == label)


def _loss(v: float | None) -> str:  # (pilotreport.loss_text)
    return f"{v:.4f}" if v is not None and math.isfinite(v) else "-"
