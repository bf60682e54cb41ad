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
    assert control.take(tmp_path) == "stop" and control.take(tmp_path) is None
    (tmp_path / "control").write_text("explode\n")
    assert control.take(tmp_path) is None
    with pytest.raises(ValueError):
        control.request(tmp_path, "explode")


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
