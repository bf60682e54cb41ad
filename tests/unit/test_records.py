"""Step records in metrics.jsonl: small, not growing with history, read back whole."""

from __future__ import annotations

import json

from gpttui import events as E
from gpttui.config import TrainConfig
from gpttui.runs import records
from gpttui.runs import store as runs
from gpttui.runs import writer as runwriter
from gpttui.runs.records import StepDecoder, StepEncoder, _round


def gpu_step(i: int) -> E.StepMetrics:
    """A step as a long GPU run reports it: every field set, most of them steady."""
    return E.StepMetrics(
        "20261130-120000-gpt2-124m", iter=i, max_iters=600_000, loss=3.0 + 1 / (1 + i), lr=6e-4 * (1 - i / 6e5),
        grad_norm=0.3 + (i % 7) / 100, step_time_s=0.4 + (i % 3) / 1000, tokens_per_s=1_310_720 + i % 997,
        tokens_seen=524_288 * i, elapsed_s=0.4 * i, eta_s=0.4 * (600_000 - i), mfu=0.41 + (i % 5) / 1000,
        peak_tflops=58.3, peak_basis="NVIDIA GeForce RTX 4070 bf16 dense peak 58.3 TFLOPS (table)",
        vram_used=9_123_456_789, vram_peak=10_987_654_321, vram_reserved=11_811_160_064, vram_total=12_878_086_144,
        vram_nvml_used=12_100_000_000 + i % 3, power_w=190.0 + i % 11, energy_kwh=0.00005 * i)


def test_step_records_stay_small_and_round_trip():
    enc, dec = StepEncoder(), StepDecoder()
    sizes = []
    for i in range(10, 100_000, 997):
        ev = gpu_step(i)
        line = json.dumps(enc.encode(ev.to_json()), separators=(",", ":"))
        sizes.append(len(line))
        back = E.from_json(dec.decode(json.loads(line)))
        assert back.to_json() == {k: _round(k, v) for k, v in ev.to_json().items()}
    assert sizes[0] > 300  # the first record of a writer is whole
    assert max(sizes[1:]) <= 300 and sizes[-1] <= sizes[1] + 10  # the rest: small, not growing


def test_follow_from_an_offset_with_a_fresh_run_expands_steps(tmp_path):
    run = runs.create_run(TrainConfig(), "t", name="f", params=1)
    w = runwriter.MetricsWriter(run)
    for i in range(1, 6):
        w(gpu_step(i))
    w.close()
    first, offset = run.follow(0)
    records._PARKED.clear()  # another process / a new screen: no decoder left at that offset
    with open(run.metrics_path, "a") as f:
        f.write('{"run_id":"f","time":1.0,"iter":6,"lo')  # torn by a kill -9
    w = runwriter.MetricsWriter(run)  # a resumed writer starts on a fresh line, with a full record
    w(gpu_step(7))
    w(gpu_step(8))
    w.close()
    later, _ = runs.Run(run.path).follow(offset)
    assert [e.iter for e in first] == [1, 2, 3, 4, 5] and [e.iter for e in later] == [7, 8]
    assert later[-1].peak_basis.startswith("NVIDIA") and later[-1].vram_total == 12_878_086_144
    assert [e.iter for e in run.events()] == [1, 2, 3, 4, 5, 7, 8]


def test_live_loss_history_is_bounded_and_keeps_the_newest_whole():
    from gpttui.tui.live import KEEP_RECENT, MAX_POINTS, LiveRun

    live = LiveRun("r")
    n = 200_000  # 20 hours at ~3 logs/s
    for i in range(1, n + 1):
        live.apply(E.StepMetrics("r", iter=i, max_iters=n, loss=1.0 + 1 / i, lr=1e-3, grad_norm=None, step_time_s=0.1,
                                 tokens_per_s=1.0, tokens_seen=i, elapsed_s=i, eta_s=None, mfu=None,
                                 peak_tflops=None, peak_basis=""))
    iters = [i for i, _ in live.losses]
    assert len(iters) <= MAX_POINTS and iters[0] == 1 and iters[-1] == n
    assert iters[-KEEP_RECENT:] == list(range(n - KEEP_RECENT + 1, n + 1))
    assert iters == sorted(set(iters))
