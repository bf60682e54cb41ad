"""Steering a headless run from another process through its `control` file (what a
`gpttui serve` tab's keys do): pause, resume, save now, stop, stale requests ignored."""

from __future__ import annotations

import json
import threading
import time

import pytest
from trainutil import TINY, one_thread, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui.cli.main import main
from gpttui.paths import runs_dir
from gpttui.runs import control


@pytest.fixture(autouse=True)
def dataset(one_thread):  # noqa: F811 - the imported fixture, requested by name
    return write_dataset()


def _status(timeout: float, ok) -> dict:
    end = time.monotonic() + timeout
    st: dict = {}
    while time.monotonic() < end:
        for f in runs_dir().glob("*/status.json"):
            try:
                st = {**json.loads(f.read_text()), "_path": f.parent}
            except ValueError:
                continue
            if ok(st):
                return st
        time.sleep(0.05)
    raise AssertionError(f"status never matched: {st}")


def test_pause_resume_save_and_stop_reach_a_headless_run(tmp_path):
    import tomli_w

    values = {**TINY, "max_iters": 100000, "lr_decay_iters": 100000, "eval_interval": 100000}
    (tmp_path / "long.toml").write_text(tomli_w.dumps(values))
    seen: dict = {}
    errors: list[BaseException] = []

    def steer() -> None:
        try:
            st = _status(60, lambda s: s.get("iter", 0) >= 3)
            run = st["_path"]
            control.request(run, "pause")
            seen["paused"] = _status(30, lambda s: s["state"] == "paused")["iter"]
            time.sleep(0.5)
            seen["still"] = _status(1, lambda s: True)["iter"]
            control.request(run, "resume")
            _status(30, lambda s: s["state"] == "training" and s["iter"] > seen["still"])
            control.request(run, "save")
            _status(30, lambda s: (run / "ckpt.pt").is_file())
            control.request(run, "stop")
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            errors.append(e)

    (runs_dir()).mkdir(parents=True, exist_ok=True)
    t = threading.Thread(target=steer, daemon=True)
    t.start()
    rc = main(["--run", str(tmp_path / "long.toml"), "--plain"])  # the main thread: signals work
    t.join(5)
    assert not errors, errors
    assert seen["paused"] == seen["still"]  # paused means no step
    final = _status(1, lambda s: True)
    assert rc == 0 and final["state"] == "stopped"
    events = [json.loads(x) for x in (final["_path"] / "metrics.jsonl").read_text().splitlines()]
    assert any(e["type"] == "checkpoint" and e["reason"] == "manual" for e in events)


def test_a_stale_request_is_dropped_and_unknown_ones_ignored(tmp_path):
    control.request(tmp_path, "stop")
    assert control.take(tmp_path) == ["stop"] and control.take(tmp_path) == []
    (tmp_path / "control").write_text("explode\n")  # a hand-written request file
    warned: list[str] = []
    assert control.take(tmp_path, warn=warned.append) == []
    assert len(warned) == 1 and "'explode'" in warned[0] and "pause, resume, save, stop" in warned[0]
    assert [p.name for p in tmp_path.iterdir() if "control" in p.name] == []  # consumed, not left to warn again
    with pytest.raises(ValueError):
        control.request(tmp_path, "explode")


def test_bytes_that_are_not_utf8_are_ignored_and_reported(tmp_path):
    (tmp_path / "control").write_bytes(b"\xff\xfe\x00st\x80op")
    control.request(tmp_path, "pause")
    warned: list[str] = []
    assert control.take(tmp_path, warn=warned.append) == ["pause"]
    assert len(warned) == 1 and "not UTF-8" in warned[0]


class _FakeTrainer:
    def __init__(self):
        self.calls: list[str] = []

    def log(self, text, level="info"):
        self.calls.append(f"{level}: {text}")

    def pause(self):
        self.calls.append("pause")

    def resume(self):
        self.calls.append("resume")

    def save_now(self):
        self.calls.append("save")

    def stop(self):
        self.calls.append("stop")


def test_obey_applies_every_request_in_order_and_logs_the_rest(tmp_path):
    control.request(tmp_path, "pause")
    time.sleep(0.01)
    (tmp_path / "control").write_text("bogus")
    time.sleep(0.01)
    control.request(tmp_path, "save")
    tr = _FakeTrainer()
    assert control.obey(tmp_path, tr) == ["pause", "save"]
    assert [c for c in tr.calls if not c.startswith("warning")] == ["pause", "save"]
    assert any(c.startswith("warning: control file control: ignored 'bogus'") for c in tr.calls)


_WRITER = """
import sys
from gpttui.runs import control
for i in range(int(sys.argv[2])):
    control.request(sys.argv[1], ("pause", "resume", "save")[i % 3])
"""


def test_concurrent_requests_from_threads_and_processes_are_never_lost(tmp_path):
    """Writers in 4 threads and 2 processes while a taker polls: every request is taken once.
    (Before: one `control` file, read then deleted; requests overwrote each other and one
    written between the read and the delete vanished.)"""
    import os
    import subprocess
    import sys

    per = 60
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(per)], env=env) for _ in range(2)]
    taken: list[str] = []
    done = threading.Event()

    def taker():
        while not done.is_set():
            taken.extend(control.take(tmp_path))
        taken.extend(control.take(tmp_path))

    def writer():
        for i in range(per):
            control.request(tmp_path, ("pause", "resume", "save")[i % 3])

    takers = [threading.Thread(target=taker) for _ in range(2)]  # two takers race to claim
    writers = [threading.Thread(target=writer) for _ in range(4)]
    for t in takers + writers:
        t.start()
    for t in writers:
        t.join()
    assert all(p.wait(120) == 0 for p in procs)
    done.set()
    for t in takers:
        t.join()
    assert len(taken) == 6 * per
    assert sorted(taken) == sorted(["pause", "resume", "save"] * (2 * per))
    assert [p.name for p in tmp_path.iterdir() if "control" in p.name] == []


def test_garbage_in_the_control_file_does_not_kill_a_headless_run(tmp_path):
    """Non-UTF-8 bytes and an unknown word reach a real headless trainer: it goes on, says so
    in its log, and still obeys the stop that follows (before: exit 134)."""
    import tomli_w

    values = {**TINY, "max_iters": 100000, "lr_decay_iters": 100000, "eval_interval": 100000}
    (tmp_path / "long.toml").write_text(tomli_w.dumps(values))
    errors: list[BaseException] = []

    def steer() -> None:
        try:
            run = _status(60, lambda s: s.get("iter", 0) >= 2)["_path"]
            (run / "control").write_bytes(b"\xff\xfe garbage \x80")
            _status(30, lambda s: not (run / "control").exists())
            (run / "control").write_text("explode\n")
            _status(30, lambda s: not (run / "control").exists())
            control.request(run, "stop")
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            errors.append(e)

    runs_dir().mkdir(parents=True, exist_ok=True)
    t = threading.Thread(target=steer, daemon=True)
    t.start()
    rc = main(["--run", str(tmp_path / "long.toml"), "--plain"])
    t.join(5)
    assert not errors, errors
    final = _status(1, lambda s: True)
    assert rc == 0 and final["state"] == "stopped"
    logs = [e["text"] for e in map(json.loads, (final["_path"] / "metrics.jsonl").read_text().splitlines())
            if e.get("type") == "log" and e.get("level") == "warning"]
    assert any("not UTF-8" in x for x in logs) and any("'explode'" in x for x in logs), logs


def test_a_detached_session_trains_elsewhere_and_is_followed_from_files():
    """What a `gpttui serve` tab does, without the browser: the run trains in its own process,
    the session replays its events from metrics.jsonl, and stop reaches it through `control`."""
    from gpttui import config as C
    from gpttui import events as E
    from gpttui.tui.detached import DetachedSession

    cfg = C.build({**TINY, "max_iters": 100000, "lr_decay_iters": 100000, "eval_interval": 100000}, source="test")
    got: list = []
    s = DetachedSession(cfg, "tiny", got.append, poll_s=0.1)
    s.start()
    try:
        _status(90, lambda st: st.get("iter", 0) >= 3)
        assert s.is_alive() and s.proc.pid != __import__("os").getpid()
        s.stop()
        s.join(60)
        assert not s.is_alive()
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
    kinds = [type(e).__name__ for e in got]
    assert "StepMetrics" in kinds and isinstance(got[-1], E.Finished) and got[-1].state == "stopped"
    assert (runs_dir() / s.run_id / "ckpt.pt").is_file()
    assert "detached process" in got[0].text
