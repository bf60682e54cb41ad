"""Losses read back one step late: the MetricsTracker's windows and the Loop's deferred log.

On CUDA the loop emits step k's StepMetrics only after step k+1 is queued, so the device
never idles while listeners (the metrics file, a TUI on another thread) run. The deferral is
device-independent logic, so these tests force it on CPU (`Loop.async_readback`)."""

from __future__ import annotations

import math

import pytest
import torch
from trainutil import one_thread, tiny_cfg, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui import events as E
from gpttui.runs import store as runs
from gpttui.train import loop as L
from gpttui.train.metrics import MetricsTracker, NonFiniteLoss
from gpttui.train.setup import Env
from gpttui.train.trainer import Trainer

CPU = Env(device="cpu", device_type="cpu", dtype="float32", use_scaler=False, compile=False, device_name="cpu")


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _tracker(clock: FakeClock, warmup: int = 1) -> MetricsTracker:
    return MetricsTracker(CPU, tokens_per_iter=1000, flops_per_token=6, peak_tflops=None, peak_basis="none",
                          world_size=1, warmup_steps=warmup, clock=clock)


def _step(m: MetricsTracker, it: int, loss: float, gn: float | None = None) -> None:
    m.add_step(it, torch.tensor(loss), None if gn is None else torch.tensor(gn))


def test_a_window_ends_at_its_step_and_later_steps_carry_over():
    clock = FakeClock()
    m = _tracker(clock, warmup=1)
    _step(m, 1, 5.0, 1.5)  # warm-up: its loss is reported, its time is not counted
    clock.t += 10.0
    _step(m, 2, 4.0, 1.0)
    clock.t += 1.0
    _step(m, 3, 3.0, 0.5)
    clock.t += 1.0
    _step(m, 4, 2.0)  # queued after the log point: belongs to the next window
    assert m.flush(3) == [5.0, 4.0, 3.0]
    ev = m.build("r", 3, 10, 1e-3, [5.0, 4.0, 3.0], 3000, 12.0, 100, compiling=False)
    assert ev.iter == 3 and ev.loss == pytest.approx(4.0) and ev.grad_norm == 0.5
    assert ev.step_time_s == pytest.approx(12.0 / 2) and ev.tokens_per_s == pytest.approx(2000 / 12.0)
    clock.t += 2.0
    assert m.flush(4) == [2.0]
    ev = m.build("r", 4, 10, 1e-3, [2.0], 4000, 14.0, 100, compiling=False)
    assert ev.grad_norm is None and ev.step_time_s == pytest.approx(2.0)
    assert m.recent_losses() == [5.0, 4.0, 3.0, 2.0]  # kept for the checkpoint, not sent
    assert not any(isinstance(v, (list, tuple)) for v in ev.to_json().values())  # no history in the event


def test_a_full_flush_then_a_build_for_an_earlier_step_keeps_the_rest():
    """A checkpoint reads everything back; a deferred log for step k still reports only up to k."""
    clock = FakeClock()
    m = _tracker(clock, warmup=0)
    for it, loss in ((1, 3.0), (2, 2.0)):
        _step(m, it, loss)
        clock.t += 1.0
    assert m.flush() == [3.0, 2.0]
    assert m.flush(1) == [3.0]
    ev = m.build("r", 1, 10, 1e-3, [3.0], 1000, 2.0, 100, compiling=False)
    assert ev.loss == 3.0 and ev.tokens_per_s == pytest.approx(1000 / 2.0)
    assert m.flush(2) == [2.0]


class FakeEvent:
    """A CUDA event stand-in: recorded at the fake device clock's time."""

    def __init__(self, device_clock: FakeClock) -> None:
        self.clock, self.t = device_clock, None

    def record(self) -> None:
        self.t = self.clock.t

    def synchronize(self) -> None: ...

    def elapsed_time(self, end: FakeEvent) -> float:
        return 1000.0 * (end.t - self.t)


def test_on_a_device_windows_are_timed_on_its_timeline_not_the_lagging_host_clock():
    """Deferred logs read step k after queuing k+1; the host clock then runs late by a
    varying amount (once the last step of a run is logged without deferral, by less), which
    made the final window of an H100 run report 1.1 M tok/s among 0.94 M ones."""
    host, device = FakeClock(), FakeClock()
    m = _tracker(host, warmup=1)
    m.new_event = lambda: FakeEvent(device)
    for it in range(1, 7):
        device.t += 0.5  # each step takes 0.5 s on the device
        _step(m, it, 1.0)
        host.t += 0.3 if it < 6 else 0.0  # the host lags, except for the final step
        if it in (3, 6):
            m.flush(it)
            ev = m.build("r", it, 6, 1e-3, [1.0], 1000 * it, 3.0, 100, compiling=False)
            assert ev.step_time_s == pytest.approx(0.5), it
            assert ev.tokens_per_s == pytest.approx(2000.0), it


def test_a_non_finite_loss_names_its_own_iteration():
    m = _tracker(FakeClock())
    _step(m, 7, 2.0)
    _step(m, 8, math.nan)
    with pytest.raises(NonFiniteLoss) as err:
        m.flush()
    assert err.value.iter_num == 8


@pytest.fixture
def deferred(monkeypatch):
    """Every Loop reads back one step late, as on CUDA."""
    real = L.Loop.setup

    def setup(self):
        real(self)
        self.async_readback = True

    monkeypatch.setattr(L.Loop, "setup", setup)


def _train(cfg, name, listeners=()):
    run = runs.create_run(cfg, "tiny", name=name)
    got: list[E.Event] = []
    tr = Trainer(cfg, run, [got.append, *listeners])
    return tr, tr.run(), got


@pytest.mark.usefixtures("one_thread")
def test_deferred_logs_equal_immediate_ones_and_arrive_one_step_late(monkeypatch):
    write_dataset()
    cfg = tiny_cfg(max_iters=10, lr_decay_iters=10, eval_interval=5, log_interval=1)
    _, res_now, now = _train(cfg, "now")
    real = L.Loop.setup

    def setup(self):
        real(self)
        self.async_readback = True

    monkeypatch.setattr(L.Loop, "setup", setup)
    queued_at: dict[int, int] = {}
    tr_box: list[Trainer] = []

    def when(ev):
        if isinstance(ev, E.StepMetrics):
            queued_at[ev.iter] = tr_box[0].iter_num

    run = runs.create_run(cfg, "tiny", name="late")
    late: list[E.Event] = []
    tr = Trainer(cfg, run, [late.append, when])
    tr_box.append(tr)
    res_late = tr.run()
    assert res_now.state == res_late.state == E.FINISHED
    a = [(s.iter, s.loss, s.grad_norm, s.tokens_seen) for s in now if isinstance(s, E.StepMetrics)]
    b = [(s.iter, s.loss, s.grad_norm, s.tokens_seen) for s in late if isinstance(s, E.StepMetrics)]
    assert [x[0] for x in b] == list(range(1, 11))
    for x, y in zip(a, b, strict=True):
        assert x[0] == y[0] and x[3] == y[3]
        assert y[1] == pytest.approx(x[1], abs=1e-6) and y[2] == pytest.approx(x[2], abs=1e-6)
    # evaluation points (5, 10) log at once; the others once the next step is queued
    assert queued_at == {i: i if i in (5, 10) else i + 1 for i in range(1, 11)}
    # order of the file is the order of events: a step's metrics precede the next eval
    kinds = [(type(e).__name__, getattr(e, "iter", None)) for e in late if isinstance(e, (E.StepMetrics, E.EvalResult))]
    assert kinds.index(("StepMetrics", 5)) < kinds.index(("EvalResult", 5))


@pytest.mark.usefixtures("one_thread", "deferred")
def test_a_stop_or_a_pause_emits_the_deferred_log_first():
    write_dataset()
    cfg = tiny_cfg(max_iters=1000, lr_decay_iters=1000, eval_interval=1000, log_interval=1)
    run = runs.create_run(cfg, "tiny", name="stop")
    got: list[E.Event] = []
    tr = Trainer(cfg, run, [got.append])
    paused_seen: list[int] = []

    def control(ev):
        if isinstance(ev, E.StepMetrics) and ev.iter == 3:
            tr.pause()
        elif isinstance(ev, E.StatusChanged) and ev.state == E.PAUSED:
            tr.stop()
            tr.resume()
            steps = [e.iter for e in got if isinstance(e, E.StepMetrics)]
            paused_seen.append((steps[-1], tr.iter_num))

    tr.add_listener(control)
    res = tr.run()
    assert isinstance(res, E.Finished) and res.state == E.STOPPED
    assert paused_seen == [(4, 4)]  # the paused screen shows the last step taken
    steps = [e.iter for e in got if isinstance(e, E.StepMetrics)]
    assert steps == [1, 2, 3, 4] and res.iter == 4


@pytest.mark.usefixtures("one_thread")
def test_pause_and_stop_report_the_steps_since_the_last_log():
    """log_interval 10, paused at ~13 and stopped a few steps later: the screen must say
    where the run is, not 10."""
    import time

    write_dataset()
    cfg = tiny_cfg(max_iters=100_000, lr_decay_iters=100_000, eval_interval=100_000, log_interval=10)
    run = runs.create_run(cfg, "tiny", name="partial")
    got: list[E.Event] = []
    tr = Trainer(cfg, run, [got.append])

    def wait_for(pred, timeout=30.0):
        end = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < end, "timed out"
            time.sleep(0.002)

    def last_logged() -> int:
        return [e.iter for e in got if isinstance(e, E.StepMetrics)][-1]

    tr.start()
    wait_for(lambda: tr.iter_num >= 13)
    tr.pause()
    wait_for(lambda: tr.state == E.PAUSED)
    paused_at = tr.iter_num
    assert last_logged() == paused_at
    tr.resume()
    wait_for(lambda: tr.iter_num >= paused_at + 3)
    tr.stop()
    assert tr.join(30)
    res = tr.result
    assert res.state == E.STOPPED and last_logged() == res.iter
    step = [e for e in got if isinstance(e, E.StepMetrics)][-1]
    assert step.tokens_seen == res.tokens_seen and step.tokens_per_s > 0
