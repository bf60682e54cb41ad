"""Fault injection: a real tiny CPU run killed (SIGKILL) mid-step, mid-eval, mid-checkpoint
and mid-status-write, then resumed to the end; a second Ctrl-C; a locked run; kill -9 of
`gpttui prepare`.

Kills are deterministic: `GPTTUI_TEST_PAUSE=<point>` makes the process block at that point
(`gpttui.faults.pause_point`) and write a marker file; the test then kills it there.
"""

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
from gpttui.proc import pid_alive
from gpttui.weights.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
FAST = ["--set", "max_iters=10", "--set", "lr_decay_iters=10", "--set", "eval_interval=4",
        "--set", "log_interval=1", "--set", "checkpoint_interval_s=0"]


@pytest.fixture
def preset(tmp_path):
    write_dataset()
    values = {**TINY, "data_source": "", "always_save_checkpoint": True}
    lines = [f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}" for k, v in values.items()]
    path = tmp_path / "tiny.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def gpttui(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpttui", *args], cwd=ROOT, env=_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def start(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gpttui", *args], cwd=ROOT, env=_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, p: subprocess.Popen, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if p.poll() is not None:
            raise AssertionError(f"exited {p.returncode} before the pause point: {p.stderr.read()}")
        assert time.monotonic() < end, "timed out waiting for the pause point"
        time.sleep(0.05)


def listed(name: str) -> dict:
    return {x["id"]: x for x in json.loads(gpttui("runs", "--json").stdout)}[name]


# point, visit to pause at, the checkpoint iteration the resume must continue from
KILLS = [
    ("step", 11, 4),  # inside iteration 6's step (2 micro-steps each): ckpt.pt of iteration 4
    ("eval", 5, 4),  # the third eval (iteration 8), 2 batches per eval with eval_iters=1
    ("checkpoint-write", 2, 4),  # the second save (iteration 8), written but not renamed
    ("status-write", 12, None),  # some status write after training began
]


@pytest.mark.parametrize("point, after, ckpt_iter", KILLS, ids=[k[0] for k in KILLS])
def test_sigkill_at_a_point_then_resume_finishes(preset, tmp_path, point, after, ckpt_iter):
    name = f"k-{point}"
    marker = tmp_path / "paused"
    p = start("--run", str(preset), "--name", name, "--plain", *FAST, GPTTUI_TEST_PAUSE=point,
              GPTTUI_TEST_PAUSE_AFTER=str(after), GPTTUI_TEST_PAUSE_FILE=str(marker))
    try:
        wait_for(marker, p)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    folder = runs_dir() / name
    has_ckpt = (folder / "ckpt.pt").is_file()
    saved = load_checkpoint(folder / "ckpt.pt")["iter_num"] if has_ckpt else None  # whole, never half
    if ckpt_iter is not None:
        assert saved == ckpt_iter
    row = listed(name)
    assert row["state"] == "interrupted" and row["resumable"] == has_ckpt and not row["damaged"]
    if not has_ckpt:
        return  # killed before the first checkpoint: nothing to resume, `--run` again
    r = gpttui("--resume", name, "--plain")
    assert r.returncode == 0, r.stderr
    assert f"resumed at iteration {saved}" in r.stdout and "finished at iter 10" in r.stdout
    assert "Traceback" not in r.stderr
    assert not list(folder.glob(".*.tmp"))  # what the kill left half-written is gone
    assert load_checkpoint(folder / "ckpt.pt")["iter_num"] == 10
    row = listed(name)
    assert row["state"] == "finished" and row["iter"] == 10


def test_second_ctrl_c_exits_130_and_records_interrupted(preset, tmp_path):
    marker = tmp_path / "paused"
    # block inside a checkpoint write: the first SIGINT's stop cannot finish, the second must
    p = start("--run", str(preset), "--name", "cc", "--plain", *FAST, GPTTUI_TEST_PAUSE="checkpoint-write",
              GPTTUI_TEST_PAUSE_AFTER="2", GPTTUI_TEST_PAUSE_FILE=str(marker))
    try:
        wait_for(marker, p)
        p.send_signal(signal.SIGINT)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "interrupted at iter 8 without a final checkpoint — resume from iter 4 with `gpttui --resume cc`" in err
    assert "terminate called" not in err and "Traceback" not in err
    st = json.loads((runs_dir() / "cc" / "status.json").read_text())
    assert st["state"] == "interrupted" and "resume continues from iter 4" in st["message"]
    row = listed("cc")
    assert row["state"] == "interrupted" and row["resumable"]


def test_a_locked_run_is_refused_as_trained_by_another_process(preset, tmp_path):
    marker = tmp_path / "paused"
    p = start("--run", str(preset), "--name", "busy", "--plain", *FAST, GPTTUI_TEST_PAUSE="step",
              GPTTUI_TEST_PAUSE_AFTER="11", GPTTUI_TEST_PAUSE_FILE=str(marker))
    try:
        wait_for(marker, p)
        r = gpttui("--resume", "busy", "--plain")
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert r.returncode == 2
    assert r.stderr.startswith(f"gpttui: error: another process is training this run (busy: pid {p.pid}")
    assert "failed at iter" not in r.stderr


def test_truncated_checkpoint_names_the_runs_iteration(preset):
    assert gpttui("--run", str(preset), "--name", "tr", "--plain", *FAST, "--set", "max_iters=4").returncode == 0
    ck = runs_dir() / "tr" / "ckpt.pt"
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    r = gpttui("--resume", "tr", "--plain", "--set", "max_iters=8")
    assert r.returncode == 1
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("gpttui: error: run tr failed at iter 4: ") and "truncated or damaged" in line
    reason, _, hint = line.partition(" — ")
    assert reason.endswith(")") and "best.pt beside it" in hint and "Traceback" not in r.stderr


def test_kill_9_of_prepare_ends_its_workers_and_resource_tracker():
    p = start("prepare", "builtin:pystdlib", "--name", "p9", "--workers", "2", "--plain")
    try:
        children: list[int] = []
        end = time.monotonic() + 60
        while len(children) < 3:  # two tokenizer workers and the resource tracker
            assert p.poll() is None and time.monotonic() < end, "no workers appeared"
            children = _children(p.pid)
            time.sleep(0.1)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    end = time.monotonic() + 10
    while any(pid_alive(c) for c in children):
        assert time.monotonic() < end, f"orphans left: {[c for c in children if pid_alive(c)]}"
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_set_up_stops_at_once_with_nothing_to_save(preset, tmp_path, sig, code):
    """Before: "saving a checkpoint, then stopping", then set-up went on (n_layer=100000
    allocated for minutes) until SIGKILL. Set-up is held here at the model build."""
    marker = tmp_path / "paused"
    name = f"setup-{sig.name}"
    p = start("--run", str(preset), "--name", name, "--plain", *FAST, GPTTUI_TEST_PAUSE="model-build",
              GPTTUI_TEST_PAUSE_FILE=str(marker))
    try:
        wait_for(marker, p)
        p.send_signal(sig)
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == code, err
    assert "during set-up: stopping now, nothing to save yet" in err and "saving a checkpoint" not in err
    st = json.loads((runs_dir() / name / "status.json").read_text())
    assert st["state"] == "stopped" and "during set-up" in st["message"]
    assert not (runs_dir() / name / "ckpt.pt").exists()


def test_a_config_that_cannot_fit_is_refused_before_anything_starts(preset, tmp_path):
    """Before: estimated "likely OOM", yet `--run` allocated (8.2 GB RSS after 8 minutes)."""
    r = gpttui("--run", str(preset), "--name", "huge", "--plain", "--set", "n_layer=100000", "--set", "n_embd=1024",
               "--set", "n_head=8")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "this run cannot fit: its estimated peak is" in r.stderr and "--no-memory-check" in r.stderr
    assert not (runs_dir() / "huge").exists()
