"""End to end: the real `gpttui` TUI in tmux — pick a tiny preset, start it, watch the
iteration counter advance on the captured screen, stop it, find it on the Runs screen."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")]
ROOT = Path(__file__).resolve().parents[2]
PRESET = """\
description = "e2e tiny"
dataset = "e2e-ds"
n_layer = 2
n_head = 2
n_embd = 32
block_size = 32
batch_size = 4
gradient_accumulation_steps = 1
max_iters = 100000
warmup_iters = 2
lr_decay_iters = 100000
learning_rate = 1e-3
min_lr = 1e-4
eval_interval = 100000
eval_iters = 2
log_interval = 1
device = "cpu"
compile = false
"""


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def wait_screen(session: str, pattern: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        screen = tmux("capture-pane", "-p", "-t", session)
        if re.search(pattern, screen):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern!r} not on screen:\n{screen}")
        time.sleep(0.3)


def make_env(tmp_path: Path, preset: str = PRESET) -> tuple[Path, str]:
    """Private data/config dirs with the e2etiny preset and its dataset (written directly,
    no `prepare`); returns the data dir and the `env ...` assignments for the command."""
    data, conf = tmp_path / "data", tmp_path / "config"
    (conf / "presets").mkdir(parents=True)
    (conf / "presets" / "e2etiny.toml").write_text(preset)
    ds = data / "datasets" / "e2e-ds"
    ds.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 20000), ("val", 2000)):
        rng.integers(0, 500, n, dtype=np.uint16).tofile(ds / f"{split}.bin")
    (ds / "meta.json").write_text(json.dumps({"format_version": 1, "tokenizer": "gpt2", "vocab_size": 50257, "dtype": "uint16",
                                             "splits": {"train": {"tokens": 20000, "documents": 1}, "val": {"tokens": 2000, "documents": 1}}}))
    env = f"GPTTUI_DATA_DIR={data} GPTTUI_CONFIG_DIR={conf} OMP_NUM_THREADS=1 PYTHONPATH={ROOT} TERM=xterm-256color"
    return data, env


def start_tui(session: str, env: str, cmd: str = "") -> None:
    """`gpttui` in a detached 120x40 tmux session; `cmd` wraps it (e.g. to record its pid)."""
    tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", session,
         f"cd {ROOT} && {cmd}env {env} {sys.executable} -m gpttui")


def select_and_run(session: str, max_iters: str = "100,000") -> int:
    """Filter to e2etiny, start it with `r`; returns the first iteration seen on screen."""
    wait_screen(session, r"e2etiny")
    time.sleep(1.0)  # let the first estimates land
    tmux("send-keys", "-t", session, "/")
    time.sleep(0.5)
    tmux("send-keys", "-t", session, "e2etiny", "Enter")
    time.sleep(0.5)
    tmux("send-keys", "-t", session, "r")
    pattern = rf"iter ([\d,]+)/{max_iters}"
    return int(re.search(pattern, wait_screen(session, pattern, 90)).group(1).replace(",", ""))


def test_tui_in_tmux(tmp_path: Path) -> None:
    data, env = make_env(tmp_path)
    session = f"gpttui-e2e-{os.getpid()}"
    start_tui(session, env)
    try:
        first = select_and_run(session)
        deadline = time.monotonic() + 60
        while True:
            m = re.search(r"iter ([\d,]+)/100,000", tmux("capture-pane", "-p", "-t", session))
            if m and int(m.group(1).replace(",", "")) > first:
                break
            assert time.monotonic() < deadline, "iteration counter did not advance"
            time.sleep(0.3)
        tmux("send-keys", "-t", session, "x")
        wait_screen(session, r"Stop this run")
        tmux("send-keys", "-t", session, "Enter")
        wait_screen(session, r"STOPPED", 60)
        tmux("send-keys", "-t", session, "Escape")
        time.sleep(0.5)
        tmux("send-keys", "-t", session, "u")
        screen = wait_screen(session, r"stopped\s+e2etiny")
        assert "e2etiny" in screen
        tmux("send-keys", "-t", session, "q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def read_status(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def test_sighup_keeps_training(tmp_path: Path) -> None:
    """Kill the tmux session (the terminal goes away: SIGHUP) while a run trains; the run
    must carry on to "finished", and the gpttui process then exit on its own."""
    iters = 600  # alive at the kill, finished within the timeout on a loaded 2-core box
    data, env = make_env(tmp_path, PRESET.replace("max_iters = 100000", f"max_iters = {iters}")
                         .replace("lr_decay_iters = 100000", f"lr_decay_iters = {iters}")
                         .replace("eval_interval = 100000", "eval_interval = 200"))
    session = f"gpttui-hup-{os.getpid()}"
    pidfile = tmp_path / "pid"
    start_tui(session, env, cmd=f"echo $$ > {pidfile} && exec ")
    try:
        select_and_run(session, f"{iters:,}")
        runs = list((data / "runs").iterdir())
        assert len(runs) == 1
        run_dir = runs[0]
        deadline = time.monotonic() + 30
        while read_status(run_dir).get("state") != "training":
            assert time.monotonic() < deadline, read_status(run_dir)
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    pid = int(pidfile.read_text())
    try:
        at_kill = read_status(run_dir)
        assert at_kill["iter"] < iters, "the run ended before the terminal was lost: raise iters"
        deadline = time.monotonic() + 300
        while read_status(run_dir).get("state") != "finished":
            st = read_status(run_dir)
            assert st.get("state") in ("training", "evaluating", "saving"), f"run did not carry on: {st}"
            assert time.monotonic() < deadline, f"not finished in time: {st}"
            time.sleep(0.5)
        assert read_status(run_dir)["iter"] == iters
        assert (run_dir / "ckpt.pt").is_file()
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists():
            assert time.monotonic() < deadline, "gpttui did not exit after its run finished"
            time.sleep(0.2)
    finally:  # never leave a training process behind to load the rest of the suite
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_prepare_from_the_datasets_screen_then_train_and_see_a_sample(tmp_path: Path) -> None:
    """Datasets screen: prepare a small parquet folder with live progress; a preset trains on
    it and the samples panel shows the first evaluation's completion."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "pq"
    src.mkdir()
    for i in range(2):
        texts = [f"def f{i}_{j}(x):\n    return x * {j} + {i}\n" for j in range(300)]
        pq.write_table(pa.table({"text": texts}), src / f"part-{i}.parquet")
    preset = (PRESET.replace('dataset = "e2e-ds"', 'dataset = "pq-ds"\nval_fraction = 0.05\nsample_tokens = 8')
              .replace("eval_interval = 100000", "eval_interval = 400"))  # the iter-0 sample stays up for seconds
    data, env = make_env(tmp_path, preset)
    session = f"gpttui-ds-{os.getpid()}"
    start_tui(session, env)
    try:
        wait_screen(session, r"e2etiny")
        time.sleep(1.0)
        tmux("send-keys", "-t", session, "d")
        wait_screen(session, r"prepared datasets")
        tmux("send-keys", "-t", session, "n")
        wait_screen(session, r"Prepare a dataset")
        for keys in (["-l", f"{src}/*.parquet"], ["Enter"], ["-l", "pq-ds"], ["Enter"]):  # Enter: on to the name
            tmux("send-keys", "-t", session, *keys)
            time.sleep(0.5)
        wait_screen(session, r"prepared pq-ds: [\d.]+k tokens", 120)
        wait_screen(session, r"pq-ds\s+ready\s+[\d.]+k\s+[\d.]+ KiB\s+600\s", 30)  # listed: ready, tokens, size, 600 documents
        tmux("send-keys", "-t", session, "Escape")
        first = select_and_run(session)
        assert first >= 0
        wait_screen(session, r"sample \d+/\d+ @ iter 0", 120)
        tmux("send-keys", "-t", session, "x")
        wait_screen(session, r"Stop this run")
        tmux("send-keys", "-t", session, "Enter")
        wait_screen(session, r"STOPPED", 60)
        assert (data / "datasets" / "pq-ds" / "train.bin").is_file()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
