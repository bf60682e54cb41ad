"""`python -m gpttui prepare/datasets` in a subprocess, and a prepare killed with SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from data_helpers import sentence_text, write_parquet

from gpttui.data.prepare import prepare
from gpttui.data.store import get_dataset, list_datasets
from gpttui.paths import datasets_dir

REPO = Path(__file__).resolve().parents[2]


def gpttui(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "gpttui", *args], capture_output=True, text=True, env=env, timeout=120, **kw)


def test_prepare_and_datasets_commands(text_folder):
    root, _ = text_folder
    r = gpttui("prepare", str(root), "--name", "texts", "--plain")
    assert r.returncode == 0, r.stderr
    assert "dataset texts: train" in r.stdout and "skipped: 1 empty, 2 undecodable bytes" in r.stdout
    r = gpttui("prepare", str(root), "--name", "texts")  # not a TTY: plain lines too
    assert r.returncode == 0 and "up to date" in r.stdout
    r = gpttui("datasets", "--json")
    assert r.returncode == 0
    [d] = json.loads(r.stdout)
    assert d["name"] == "texts" and d["ready"] and d["train_tokens"] > 0 and d["sources"] == [str(root)]
    r = gpttui("datasets")
    assert r.returncode == 0 and "texts" in r.stdout and "yes" in r.stdout


def test_prepare_errors_exit_nonzero_with_one_line(tmp_path):
    for args in (["prepare", str(tmp_path / "missing"), "--name", "x"],
                 ["prepare", str(tmp_path), "--name", "../up"]):
        r = gpttui(*args)
        assert r.returncode == 2
        assert r.stderr.startswith("gpttui: error: ") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not datasets_dir().exists() or not any(datasets_dir().iterdir())


def test_data_modules_import_no_torch_or_textual():
    code = ("import sys, gpttui.cli.data, gpttui.data.prepare, gpttui.data.store; "
            "bad = [m for m in ('torch', 'textual') if m in sys.modules]; assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def big_parquet(path: Path) -> Path:
    rng = random.Random(0)
    base = [sentence_text(rng, rng.randint(200, 900)) for _ in range(200)]
    texts = [f"{i} {base[i % len(base)]}" for i in range(6000)]  # ~25 MB of text
    return write_parquet(path, texts, row_group_size=500)


def test_killed_prepare_leaves_nothing_ready_then_prepares_again(tmp_path, fineweb):
    old = prepare([str(fineweb[0])], "crash", workers=1)
    big = big_parquet(tmp_path / "big.parquet")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "gpttui", "prepare", str(big), "--name", "crash",
                             "--workers", "1", "--plain"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root, deadline, tmp = datasets_dir(), time.monotonic() + 60, None
    while time.monotonic() < deadline and proc.poll() is None:
        tmps = [p for p in root.iterdir() if p.name.startswith(".crash.tmp-")]
        if tmps and (tmps[0] / "train.bin").exists() and (tmps[0] / "train.bin").stat().st_size > 1 << 20:
            tmp = tmps[0]
            break
        time.sleep(0.01)
    assert tmp is not None and proc.poll() is None, "prepare finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tmp.exists() and not (tmp / "meta.json").exists()
    infos = list_datasets()
    assert [i.name for i in infos] == ["crash"] and infos[0] == old  # the old dataset, untouched
    new = prepare([str(big)], "crash", workers=1)
    assert new.ready and new.train_tokens > 10 * old.train_tokens
    assert not tmp.exists() and [p.name for p in root.iterdir()] == ["crash"]
    assert get_dataset("crash") == new


def test_a_killed_prepare_leaves_no_resource_tracker_noise(tmp_path):
    """#22: after kill -9 mid-prepare the tracker printed "leaked semaphore objects"."""
    import subprocess
    import sys

    code = ("import os, multiprocessing as mp\n"
            "from gpttui.data.tokenize import _ensure_resource_tracker\n"
            "_ensure_resource_tracker()\n"
            "locks = [mp.get_context('spawn').Lock() for _ in range(3)]\n"
            "os.kill(os.getpid(), 9)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env={**__import__("os").environ,
                                          "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])})
    assert r.returncode == -9
    assert "leaked" not in r.stderr and "resource_tracker" not in r.stderr, r.stderr
