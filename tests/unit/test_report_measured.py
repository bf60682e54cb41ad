"""The estimate takes a measured throughput from a past run of the same shape on the same
device, and only then."""

from __future__ import annotations

from gpttui import presets
from gpttui.plan import report
from gpttui.runs import store as runs


def _past_run(cfg, device: str, tps: float, world_size: int = 1) -> str:
    run = runs.create_run(cfg, "seed-000", name=f"past-{abs(hash((device, world_size))) % 1000}")
    run.write_status(state="finished", device=device, device_type="cuda", world_size=world_size,
                     tokens_per_s=tps, iter=10, tokens_seen=10)
    return run.id


def _tps_figure(cfg):
    est, _ = report.build_estimate(cfg, "RTX 4070")
    return est.tokens_per_s


def test_same_shape_same_gpu_uses_the_measured_throughput():
    cfg = presets.get("seed-000").config()
    run_id = _past_run(cfg, "NVIDIA GeForce RTX 4070", 56_000.0)
    fig = _tps_figure(cfg)
    assert fig.value == 56_000.0
    assert f"measured in run {run_id}" in fig.basis


def test_other_gpu_other_shape_or_ddp_runs_are_not_used():
    cfg = presets.get("seed-000").config()
    _past_run(cfg, "NVIDIA H100 80GB HBM3", 900_000.0)  # another card
    _past_run(cfg, "NVIDIA GeForce RTX 4070", 100_000.0, world_size=2)  # two processes
    _past_run(cfg.replace(n_layer=6), "NVIDIA GeForce RTX 4070", 99_000.0)  # another shape
    fig = _tps_figure(cfg)
    assert "measured" not in fig.basis
    assert fig.value != 900_000.0 and fig.value != 100_000.0 and fig.value != 99_000.0
