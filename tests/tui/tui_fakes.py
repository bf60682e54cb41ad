"""Fakes for TUI tests: a fixed clock and device, a scripted trainer, run folders on disk."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from gpttui import events as E
from gpttui.plan.hardware import DeviceInfo, lookup_gpu
from gpttui.tui.services import Services

NOW = 1_700_000_000.0  # fixed clock: 2023-11-14 22:13 UTC

TINY_PRESET = """\
description = "tiny test preset"
dataset = "tiny-ds"
data_source = "builtin:pystdlib"
val_fraction = 0.1
n_layer = 2
n_head = 2
n_embd = 32
block_size = 32
batch_size = 4
gradient_accumulation_steps = 1
learning_rate = 1e-3
min_lr = 1e-4
max_iters = 40
warmup_iters = 2
lr_decay_iters = 40
eval_interval = 10
eval_iters = 2
log_interval = 1
device = "cpu"
compile = false
"""

BIG_PRESET = TINY_PRESET.replace('"tiny test preset"', '"a 124M GPT-2 for the snapshot"').replace(
    "n_layer = 2\nn_head = 2\nn_embd = 32\nblock_size = 32\nbatch_size = 4", "n_layer = 12\nn_head = 12\nn_embd = 768\nblock_size = 1024\nbatch_size = 12"
).replace("max_iters = 40", "max_iters = 5000").replace("lr_decay_iters = 40", "lr_decay_iters = 5000").replace(
    'device = "cpu"\ncompile = false\n', "")


def fake_device() -> DeviceInfo:
    spec = lookup_gpu("RTX 4070")
    return DeviceInfo(kind="cuda", name="NVIDIA GeForce RTX 4070", index=0, memory_bytes=12 * 2**30, spec=spec,
                      peak_tflops=58.3, peak_basis="RTX 4070 bf16 dense peak (table)", board_power_w=200.0)


def write_presets(conf_dir: Path) -> None:
    d = conf_dir / "presets"
    d.mkdir(parents=True, exist_ok=True)
    (d / "tiny.toml").write_text(TINY_PRESET)
    (d / "gpt2-small.toml").write_text(BIG_PRESET)


def user_presets() -> list[Any]:
    from gpttui.presets import list_presets

    return [p for p in list_presets() if p.source == "user"]


def step(run_id: str, i: int, max_iters: int = 40, **kw: Any) -> E.StepMetrics:
    """A deterministic StepMetrics for iteration i."""
    loss = 10.0 / (1 + i / 10)
    base = dict(iter=i, max_iters=max_iters, loss=loss, lr=1e-3, grad_norm=0.5, step_time_s=0.25,
                tokens_per_s=512.0, tokens_seen=128 * i, elapsed_s=0.25 * i, eta_s=0.25 * (max_iters - i),
                mfu=0.41, peak_tflops=58.3, peak_basis="RTX 4070 bf16 dense peak (table)",
                vram_used=5 * 2**30, vram_peak=6 * 2**30, vram_total=12 * 2**30, power_w=180.0,
                energy_kwh=0.0125,
                time=NOW)
    base.update(kw)
    return E.StepMetrics(run_id, **base)


def script(run_id: str, upto: int = 20, max_iters: int = 40) -> list[E.Event]:
    """The events of a run trained to `upto` of `max_iters` iterations."""
    evs: list[E.Event] = [E.StatusChanged(run_id, state=E.TRAINING, time=NOW)]
    for i in range(1, upto + 1):
        evs.append(step(run_id, i, max_iters))
        if i % 10 == 0:
            evs.append(E.EvalResult(run_id, iter=i, train_loss=10 / (1 + i / 10), val_loss=10.5 / (1 + i / 10),
                                    best_val_loss=10.5 / (1 + i / 10), tokens_seen=128 * i, time=NOW))
            evs.append(E.CheckpointSaved(run_id, iter=i, path="ckpt.pt", reason="eval", time=NOW))
    return evs


class FakeSession:
    """A TrainSession that emits scripted events and obeys pause/stop/save."""

    instances: list[FakeSession] = []

    def __init__(self, cfg: Any, preset: str, listener: Any, run_id: str = "20231114-tiny", upto: int = 20) -> None:
        self.cfg, self.preset, self.listener = cfg, preset, listener
        self.run_id: str | None = run_id
        self.upto = upto
        self.calls: list[str] = []
        self.alive = False
        self.iter = 0
        self._lock = threading.Lock()
        FakeSession.instances.append(self)

    def _emit(self, ev: E.Event) -> None:
        self.listener(ev)

    def start(self) -> None:
        self.calls.append("start")
        self.alive = True
        for ev in script(self.run_id, self.upto):
            self._emit(ev)
        self.iter = self.upto

    def pause(self) -> None:
        self.calls.append("pause")
        self._emit(E.StatusChanged(self.run_id, state=E.PAUSED, message="paused by user", time=NOW))

    def resume(self) -> None:
        self.calls.append("resume")
        self._emit(E.StatusChanged(self.run_id, state=E.TRAINING, time=NOW))

    def save_now(self) -> None:
        self.calls.append("save")
        self._emit(E.CheckpointSaved(self.run_id, iter=self.iter, path="ckpt.pt", reason="manual", time=NOW))

    def stop(self) -> None:
        self.calls.append("stop")
        self._emit(E.CheckpointSaved(self.run_id, iter=self.iter, path="ckpt.pt", reason="stop", time=NOW))
        self._emit(E.Finished(self.run_id, state=E.STOPPED, iter=self.iter, best_val_loss=3.5,
                              tokens_seen=128 * self.iter, elapsed_s=5.0, time=NOW))
        self.alive = False

    def is_alive(self) -> bool:
        return self.alive

    def join(self, timeout: float | None = None) -> None:
        self.calls.append("join")


def write_run(data_dir: Path, run_id: str, preset: str, events: list[E.Event], state: str = E.FINISHED,
              iters: int = 20) -> Path:
    """A run folder as runs.py writes it: run.json, status.json, config.toml, metrics.jsonl."""
    from gpttui import config as C
    from gpttui.presets import get

    path = data_dir / "runs" / run_id
    path.mkdir(parents=True)
    cfg = get(preset).config() if preset != "none" else C.TrainConfig()
    (path / "config.toml").write_text(C.to_toml(cfg, only_changed=False))
    (path / "run.json").write_text(json.dumps({"preset": preset, "created": NOW, "params": 123456, "host": "test"}))
    (path / "status.json").write_text(json.dumps({
        "state": state, "pid": 0, "host": "test", "iter": iters, "max_iters": 40, "tokens_seen": 128 * iters,
        "best_val_loss": 3.5, "tokens_per_s": 512.0, "mfu": 0.41, "started": NOW, "updated": NOW + 60, "elapsed_s": 60.0}))
    with open(path / "metrics.jsonl", "w") as f:
        for ev in events:
            f.write(json.dumps(ev.to_json()) + "\n")
    return path


def services(**kw: Any) -> Services:
    """Services with the fixed clock, device and CPU peak, fixed presets and the fake trainer."""
    s = Services(clock=lambda: NOW, detect_device=fake_device, list_presets=user_presets,
                 measure_peak=lambda device, dtype: 0.125,  # a fixed "measured" CPU peak, no torch
                 new_session=lambda cfg, preset, listener: FakeSession(cfg, preset, listener),
                 resume_session=lambda run_id, listener: FakeSession(None, "", listener, run_id=run_id),
                 follow_interval_s=0.2)
    for k, v in kw.items():
        setattr(s, k, v)
    return s
