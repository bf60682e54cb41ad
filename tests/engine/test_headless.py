"""`gpttui --run/--resume/runs` in subprocesses: exit codes, plain lines, signals, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from trainutil import TINY, write_dataset

from gpttui.paths import runs_dir
from gpttui.weights.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def preset(tmp_path):
    write_dataset()
    values = {**TINY, "data_source": ""}
    lines = [f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}" for k, v in values.items()]
    path = tmp_path / "tiny.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def gpttui(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "gpttui", *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "gpttui", *args], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(pred, timeout=90.0):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def steps_logged(name):
    path = runs_dir() / name / "metrics.jsonl"
    return path.is_file() and '"type":"step"' in path.read_text()


def test_finished_run_exits_0_with_plain_lines_and_is_listed(preset):
    r = gpttui("--run", str(preset), "--name", "h1", "--set", "max_iters=4", "--set", "lr_decay_iters=4")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "iter 4/4 loss " in out and " tok/s | mfu " in out and "| eta " in out
    assert "finished at iter 4" in out
    listed = json.loads(gpttui("runs", "--json").stdout)
    assert [(x["id"], x["state"], x["iter"]) for x in listed] == [("h1", "finished", 4)]


def test_bad_config_exits_2_and_failure_exits_1(preset):
    r = gpttui("--run", str(preset), "--set", "n_layer=0")
    assert r.returncode == 2 and r.stderr.startswith("gpttui: error:") and r.stderr.count("\n") == 1
    r = gpttui("--run", str(preset), "--set", "dataset=absent")  # nothing to prepare it from
    assert r.returncode == 2 and "dataset 'absent' does not exist" in r.stderr
    write_dataset("short", val_tokens=10)  # fails inside the trainer: exit 1, reason + hint
    r = gpttui("--run", str(preset), "--name", "f1", "--set", "dataset=short")
    assert r.returncode == 1
    assert "gpttui: error: run f1 failed at iter 0: dataset short: val.bin holds 10 tokens" in r.stderr
    assert "lower block_size" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_checkpoints_and_exits(preset, sig, code):
    p = start("--run", str(preset), "--name", "s1", "--set", "max_iters=100000", "--set", "lr_decay_iters=100000",
              "--set", "eval_interval=100000")
    try:
        wait_until(lambda: steps_logged("s1"))
        if sig == signal.SIGTERM:  # SIGHUP first: an SSH drop must not end the run
            p.send_signal(signal.SIGHUP)
            n = (runs_dir() / "s1" / "metrics.jsonl").read_text().count('"type":"step"')
            wait_until(lambda: (runs_dir() / "s1" / "metrics.jsonl").read_text().count('"type":"step"') > n + 2)
            assert p.poll() is None
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == code, err
    ck = load_checkpoint(runs_dir() / "s1" / "ckpt.pt")
    assert ck["iter_num"] >= 1
    status = json.loads((runs_dir() / "s1" / "status.json").read_text())
    assert status["state"] == "stopped" and status["iter"] == ck["iter_num"]


def test_kill_9_during_saves_leaves_a_loadable_checkpoint(preset):
    """Checkpoint after every step, kill -9 at arbitrary moments, load what is there."""
    args = ["--set", "max_iters=100000", "--set", "lr_decay_iters=100000", "--set", "eval_interval=100000",
            "--set", "checkpoint_interval_s=0.001", "--set", "log_interval=1"]
    ck_path = runs_dir() / "k9" / "ckpt.pt"
    seen = 0
    for attempt in range(2):
        p = start(*(["--run", str(preset), "--name", "k9"] if attempt == 0 else ["--resume", "k9"]), *args)
        try:
            wait_until(lambda seen=seen: ck_path.is_file() and load_checkpoint(ck_path)["iter_num"] > seen)
            time.sleep(0.15 + 0.2 * attempt)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
        ck = load_checkpoint(ck_path)  # whole, whichever save the kill interrupted
        assert ck["iter_num"] >= max(1, seen)
        seen = ck["iter_num"]
    listed = {x["id"]: x for x in json.loads(gpttui("runs", "--json").stdout)}
    assert listed["k9"]["state"] == "interrupted" and listed["k9"]["resumable"]
