"""The Trainer on CPU with a tiny model: learning, events, control API, failure paths,
compile fallback and exact resume."""

from __future__ import annotations

import math
import threading
import time

import pytest
import torch
from trainutil import one_thread, tiny_cfg, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui import events as E
from gpttui.runs import store as runs
from gpttui.train import launch
from gpttui.train import loop as L
from gpttui.train.trainer import Trainer
from gpttui.weights.checkpoint import load_checkpoint


@pytest.fixture(autouse=True)
def dataset(one_thread):  # noqa: F811 - the imported fixture, requested by name
    return write_dataset()


def _train(cfg, name=None, listeners=()):
    run = runs.create_run(cfg, "tiny", name=name)
    got: list[E.Event] = []
    tr = Trainer(cfg, run, [got.append, *listeners])
    res = tr.run()
    return run, tr, res, got


def _of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def _as_written(ev: E.Event) -> dict:
    """An event as metrics.jsonl gives it back: step records round floats (gpttui.runs.records)."""
    from gpttui.runs.records import _round

    d = ev.to_json()
    return {k: _round(k, v) for k, v in d.items()} if isinstance(ev, E.StepMetrics) else d


def test_loss_falls_and_events_and_metrics_file_agree():
    cfg = tiny_cfg(max_iters=24, lr_decay_iters=24, learning_rate=1e-2, min_lr=1e-3, eval_interval=12, log_interval=3)
    run, tr, res, got = _train(cfg)
    assert isinstance(res, E.Finished) and res.state == E.FINISHED and res.iter == 24
    evals = _of(got, E.EvalResult)
    assert [e.iter for e in evals] == [0, 12, 24]
    assert evals[0].val_loss > 10.5 and evals[-1].val_loss < evals[0].val_loss - 3.0
    steps = _of(got, E.StepMetrics)
    assert [s.iter for s in steps] == list(range(3, 25, 3))
    tpi = 2 * 16 * 2
    for s in steps:
        assert s.tokens_seen == s.iter * tpi and s.max_iters == 24
        assert s.tokens_per_s > 0 and s.step_time_s > 0 and s.grad_norm is not None and s.grad_norm > 0
        assert s.peak_basis and (s.mfu is None or 0 < s.mfu < 1)
        assert s.vram_used is None and not s.compiling  # CPU: no VRAM figures
    assert steps[-1].eta_s == 0 and steps[3].eta_s is not None
    lines = run.metrics_path.read_text().splitlines()
    step_lines = [ln for ln in lines if '"type":"step"' in ln]
    assert len(step_lines) == 8 and max(map(len, step_lines[1:])) <= 300  # no history in a step record
    assert [c.reason for c in _of(got, E.CheckpointSaved)] == ["best", "best"]
    assert got[-1] == res and isinstance(got[-2], E.StatusChanged) and got[-2].state == E.FINISHED
    # the file holds the same events but the transient Progress ones, in order, and
    # status.json says how it ended
    assert _of(got, E.Progress) and _of(got, E.Sample)
    assert [e.to_json() for e in run.events()] == [_as_written(e) for e in got if not isinstance(e, E.Progress)]
    st = run.status()
    assert st["state"] == E.FINISHED and st["iter"] == 24 and st["best_val_loss"] == evals[-1].best_val_loss
    assert load_checkpoint(run.checkpoint_path)["iter_num"] == 24
    assert not (run.path / "lock").read_text()  # lock released


def test_pause_resume_stop_and_save_now_from_another_thread():
    cfg = tiny_cfg(max_iters=100_000, lr_decay_iters=100_000, eval_interval=100_000)
    run = runs.create_run(cfg, "tiny")
    got: list[E.Event] = []
    tr = Trainer(cfg, run, [got.append])
    tr.start()

    def wait_for(pred, timeout=30.0):
        end = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < end, "timed out"
            time.sleep(0.02)

    wait_for(lambda: tr.iter_num >= 2)
    tr.pause()
    wait_for(lambda: tr.state == E.PAUSED)
    it = tr.iter_num
    time.sleep(0.4)
    assert tr.iter_num == it  # nothing trains while paused
    tr.resume()
    wait_for(lambda: tr.iter_num > it + 1)
    assert tr.state == E.TRAINING
    tr.save_now()
    wait_for(lambda: any(isinstance(e, E.CheckpointSaved) and e.reason == "manual" for e in got))
    manual = _of(got, E.CheckpointSaved)[-1].iter
    wait_for(lambda: tr.iter_num > manual)
    tr.stop()
    assert tr.join(30)
    res = tr.result
    assert isinstance(res, E.Finished) and res.state == E.STOPPED
    saved = _of(got, E.CheckpointSaved)[-1]
    assert saved.reason == "stop" and saved.iter == res.iter
    assert load_checkpoint(run.checkpoint_path)["iter_num"] == res.iter
    assert [e.state for e in _of(got, E.StatusChanged)].count(E.PAUSED) == 1
    assert run.summary().state == E.STOPPED and run.summary().resumable


def test_out_of_memory_fails_with_the_halve_double_hint(monkeypatch):
    def oom(self, x, y):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(L.Loop, "step", oom)
    run, tr, res, got = _train(tiny_cfg(batch_size=4))
    assert isinstance(res, E.Failed) and res.reason == "out of GPU memory"
    assert "halve batch_size to 2 and double gradient_accumulation_steps to 4" in res.hint
    assert "keeps tokens/iter at 128" in res.hint
    assert run.status()["state"] == E.FAILED and run.summary().state == E.FAILED


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(monkeypatch):
    cfg = tiny_cfg(max_iters=20, lr_decay_iters=20, eval_interval=3, log_interval=1)
    poison = threading.Event()
    from gpttui.model.gpt import GPT

    real = GPT.forward

    def forward(self, idx, targets=None, caches=None):
        logits, loss = real(self, idx, targets, caches)
        return logits, (loss * float("nan") if poison.is_set() and loss is not None else loss)

    monkeypatch.setattr(GPT, "forward", forward)

    def on(ev):
        if isinstance(ev, E.CheckpointSaved) and ev.iter == 3:
            poison.set()

    run, tr, res, got = _train(cfg, listeners=[on])
    assert isinstance(res, E.Failed) and "loss became nan at iteration 4" in res.reason
    assert "lower learning_rate" in res.hint
    assert "the checkpoint of iter 3 is kept" in res.reason and res.hint.endswith("then resume")
    ck = load_checkpoint(run.checkpoint_path)
    assert ck["iter_num"] == 3
    assert all(torch.isfinite(v).all() for v in ck["model"].values())


def test_nan_loss_before_any_checkpoint_says_none_is_kept(monkeypatch):
    """Seen in the TUI (#22): "stopped, the last good checkpoint is kept" at iteration 3, when
    none had been written, and "set grad_clip = 1.0" when it already was."""
    from gpttui.model.gpt import GPT

    real = GPT.forward

    def forward(self, idx, targets=None, caches=None):
        logits, loss = real(self, idx, targets, caches)
        return logits, (loss * float("nan") if self.training and loss is not None else loss)

    monkeypatch.setattr(GPT, "forward", forward)
    run, tr, res, got = _train(tiny_cfg(max_iters=20, lr_decay_iters=20, eval_interval=10, log_interval=1, grad_clip=1.0))
    assert isinstance(res, E.Failed) and "no checkpoint had been written yet" in res.reason
    assert "grad_clip" not in res.hint and "start it again" in res.hint and "lower learning_rate" in res.hint


def test_a_nan_read_at_a_later_log_says_both_iterations_and_status_keeps_where_it_stopped(monkeypatch):
    """#22's walk: losses are read back at the log, so a nan at iteration 1 surfaced at
    iteration 5: Runs said "failed at iter 0/20" (nothing logged) beside "nan at iteration 1"."""
    from gpttui.model.gpt import GPT

    real = GPT.forward

    def forward(self, idx, targets=None, caches=None):
        logits, loss = real(self, idx, targets, caches)
        return logits, (loss * float("nan") if self.training and loss is not None else loss)

    monkeypatch.setattr(GPT, "forward", forward)
    run, tr, res, got = _train(tiny_cfg(max_iters=20, lr_decay_iters=20, eval_interval=10, log_interval=5))
    assert isinstance(res, E.Failed) and res.iter == 5, res
    assert "at iteration 1 (read at iteration 5's log)" in res.reason, res.reason
    assert run.status()["iter"] == 5 and run.status()["state"] == E.FAILED


def test_any_exception_becomes_failed_with_its_message(monkeypatch):
    from gpttui.data.reader import BatchReader

    def boom(self, split, stream=None):
        raise RuntimeError("disk fell off")

    monkeypatch.setattr(BatchReader, "get_batch", boom)
    run, tr, res, got = _train(tiny_cfg())
    assert isinstance(res, E.Failed) and "RuntimeError: disk fell off" in res.reason
    assert "disk fell off" in (run.path / "error.log").read_text()
    assert isinstance(got[-1], E.Failed)


def test_missing_dataset_fails_with_a_hint():
    run, tr, res, got = _train(tiny_cfg(dataset="absent"))
    assert isinstance(res, E.Failed) and "dataset 'absent' does not exist" in res.reason and "gpttui prepare" in res.hint


def test_compile_failure_falls_back_to_eager(monkeypatch):
    class Broken(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, *a, **k):
            raise RuntimeError("Cannot find a working triton installation")

    monkeypatch.setattr(torch, "compile", lambda m, **k: Broken(m))
    run, tr, res, got = _train(tiny_cfg(compile=True, max_iters=4, lr_decay_iters=4))
    assert isinstance(res, E.Finished) and res.iter == 4
    warn = [e.text for e in _of(got, E.LogMessage) if e.level == "warning"]
    assert any("torch.compile failed" in w and "triton" in w for w in warn)
    assert E.COMPILING in [e.state for e in _of(got, E.StatusChanged)]


def test_auto_batch_size_on_cpu_is_announced():
    run, tr, res, got = _train(tiny_cfg(batch_size="auto", max_iters=2, lr_decay_iters=2))
    assert isinstance(res, E.Finished)
    assert any("batch_size auto: 16" in e.text for e in _of(got, E.LogMessage))
    assert _of(got, E.StepMetrics)[-1].tokens_seen == 2 * 16 * 16 * 2


def test_resume_gives_exactly_the_uninterrupted_losses():
    cfg = tiny_cfg(max_iters=8, lr_decay_iters=8, eval_interval=100, dropout=0.1, log_interval=1)
    _, _, full, got_full = _train(cfg, name="full")
    assert isinstance(full, E.Finished)
    losses_full = {s.iter: s.loss for s in _of(got_full, E.StepMetrics)}

    run = runs.create_run(cfg, "tiny", name="split")
    got1: list[E.Event] = []
    tr = Trainer(cfg, run, [got1.append])
    tr.add_listener(lambda ev: tr.stop() if isinstance(ev, E.StepMetrics) and ev.iter == 4 else None)
    first = tr.run()
    assert isinstance(first, E.Finished) and first.state == E.STOPPED and first.iter == 4
    # the checkpoint keeps the step losses so far (a resumed run's sparkline continues)
    from gpttui.weights.checkpoint import load_checkpoint

    kept = load_checkpoint(run.checkpoint_path)["recent_losses"]
    assert kept == pytest.approx([losses_full[i] for i in (1, 2, 3, 4)], abs=1e-6)
    got2: list[E.Event] = []
    second = launch.resume("split", listeners=[got2.append]).run()
    assert isinstance(second, E.Finished) and second.state == E.FINISHED and second.iter == 8
    resumed = {s.iter: s.loss for s in _of(got2, E.StepMetrics)}
    assert sorted(resumed) == [5, 6, 7, 8]
    for it, loss in resumed.items():
        assert loss == pytest.approx(losses_full[it], abs=1e-6), it
    assert second.tokens_seen == full.tokens_seen
    assert not math.isclose(losses_full[5], losses_full[8])


@pytest.mark.usefixtures("one_thread")
def test_throughput_stays_sane_across_evals_and_checkpoints():
    """Eval and checkpoint time is taken off the window clock once, not twice: on the first
    GPU run the window after an eval+checkpoint reported 327 T tokens/s (MFU 10^10 %)."""
    import statistics

    from trainutil import tiny_cfg, write_dataset

    from gpttui import events as E
    from gpttui.runs import store as runs
    from gpttui.train.trainer import Trainer

    write_dataset()
    cfg = tiny_cfg(max_iters=12, lr_decay_iters=12, eval_interval=2, log_interval=1, always_save_checkpoint=True)
    run = runs.create_run(cfg, "tiny")
    seen: list[E.Event] = []
    assert Trainer(cfg, run, [seen.append]).run().kind == "finished"
    tps = [e.tokens_per_s for e in seen if isinstance(e, E.StepMetrics)][2:]
    assert sum(isinstance(e, E.CheckpointSaved) for e in seen) >= 5
    med = statistics.median(tps)
    assert max(tps) < 20 * med, (max(tps), med)


def test_eval_fixed_scores_every_eval_on_the_same_tokens():
    """At learning_rate 1e-12 the weights never change (below float32 resolution): fixed eval batches give one val loss at
    every eval, the random eval stream gives a different one each time."""
    frozen = dict(learning_rate=1e-12, min_lr=1e-13, max_iters=8, eval_interval=2, eval_iters=2)
    _, _, _, fixed = _train(tiny_cfg(eval_fixed=True, **frozen), name="fixed")
    _, _, _, drawn = _train(tiny_cfg(eval_fixed=False, **frozen), name="drawn")
    fixed_losses = {e.val_loss for e in _of(fixed, E.EvalResult)}
    drawn_losses = {e.val_loss for e in _of(drawn, E.EvalResult)}
    assert len(_of(fixed, E.EvalResult)) >= 4
    assert len(fixed_losses) == 1
    assert len(drawn_losses) > 1


def test_eval_only_evaluates_once_and_trains_nothing(monkeypatch):
    """nanoGPT's eval_gpt2.py: one evaluation, no step, no backward pass (not even the
    compile warm-up's), no checkpoint."""
    def no_backward(*_a, **_k):
        raise AssertionError("eval_only ran the compile warm-up's backward pass")

    monkeypatch.setattr(L.Loop, "warm_compile", no_backward)
    cfg = tiny_cfg(eval_only=True, max_iters=600_000, lr_decay_iters=600_000, eval_iters=3)
    run, tr, res, got = _train(cfg)
    assert isinstance(res, E.Finished) and res.state == E.FINISHED and res.iter == 0
    assert len(_of(got, E.EvalResult)) == 1 and not _of(got, E.StepMetrics)
    assert not run.checkpoint_path.exists()
