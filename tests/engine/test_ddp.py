"""torchrun with 2 gloo processes on CPU trains one run; only rank 0 writes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trainutil import TINY, write_dataset

from gpttui.paths import runs_dir

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def torchrun(preset, *args):
    # `--` keeps torchrun's parser from reading gpttui's `--run` as an abbreviation of its
    # own `--run-path` ("ambiguous option"); torchrun drops the `--` before starting gpttui.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "gpttui", "--", "--run", str(preset), "--plain", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def test_two_gloo_processes_train_one_run(tmp_path):
    write_dataset()
    values = {**TINY, "data_source": "", "max_iters": 4, "lr_decay_iters": 4, "log_interval": 1}
    preset = tmp_path / "tiny.toml"
    preset.write_text("\n".join(f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}"
                                for k, v in values.items()) + "\n")
    r = torchrun(preset, "--name", "ddp")
    assert r.returncode == 0, r.stderr[-3000:]
    assert [p.name for p in runs_dir().iterdir()] == ["ddp"]
    events = [json.loads(line) for line in (runs_dir() / "ddp" / "metrics.jsonl").read_text().splitlines()]
    steps = [e for e in events if e["type"] == "step"]
    assert [s["iter"] for s in steps] == [1, 2, 3, 4]  # logged once, by rank 0
    assert steps[-1]["tokens_seen"] == 4 * 2 * 16 * 2  # accumulation split over 2 ranks, tokens/iter kept
    assert [e["state"] for e in events if e["type"] == "finished"] == ["finished"]
    assert "over 2 processes" in r.stdout and r.stdout.count("finished at iter 4") == 1
    bad = torchrun(preset, "--name", "odd", "--set", "gradient_accumulation_steps=3")
    assert bad.returncode != 0 and "does not divide by 2 processes" in bad.stderr
