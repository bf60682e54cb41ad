"""The run store: folders, status, lock, listing (interrupted runs), incremental follow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from trainutil import tiny_cfg

from gpttui import events as E
from gpttui.errors import RunError
from gpttui.runs import store as runs
from gpttui.runs import writer as runwriter


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_create_run_writes_config_run_and_status(isolated_dirs):
    cfg = tiny_cfg()
    run = runs.create_run(cfg, "tiny", params=123)
    assert run.path.parent == isolated_dirs[0] / "runs"
    assert run.id.endswith("-tiny") and run.id[:8].isdigit()
    assert run.config() == cfg
    assert run.info()["preset"] == "tiny" and run.info()["params"] == 123
    st = run.status()
    assert st["state"] == E.PREPARING and st["pid"] == os.getpid() and st["max_iters"] == cfg.max_iters
    assert (run.path / "samples").is_dir()
    second = runs.create_run(cfg, "tiny")  # same second: a distinct folder
    assert second.id != run.id
    named = runs.create_run(cfg, "tiny", name="mine")
    assert runs.get_run("mine").path == named.path
    assert runs.get_run(str(named.path)).id == "mine"
    with pytest.raises(RunError, match="already exists"):
        runs.create_run(cfg, "tiny", name="mine")
    with pytest.raises(RunError, match="no run 'nope'"):
        runs.get_run("nope")


def test_lock_excludes_a_second_trainer_and_a_dead_holder_is_taken_over():
    run = runs.create_run(tiny_cfg(), "tiny", name="locked")
    with run.lock():
        with pytest.raises(RunError, match=rf"another process is training this run \(locked: pid {os.getpid()}"):
            runs.Run(run.path).acquire_lock()
    # a lock file left by a dead process (no flock held) does not block
    (run.path / "lock").write_text(json.dumps({"pid": _dead_pid(), "host": runs.host()}))
    with runs.Run(run.path).lock():
        assert json.loads((run.path / "lock").read_text())["pid"] == os.getpid()


def test_active_run_with_dead_pid_is_listed_interrupted():
    cfg = tiny_cfg()
    live = runs.create_run(cfg, "tiny", name="live")
    live.write_status(state=E.TRAINING, iter=3)
    dead = runs.create_run(cfg, "tiny", name="dead")
    dead.write_status(state=E.TRAINING, pid=_dead_pid(), iter=5, tokens_seen=640, best_val_loss=4.5)
    by_id = {s.id: s for s in runs.list_runs()}
    assert by_id["live"].state == E.TRAINING and by_id["live"].alive
    d = by_id["dead"]
    assert d.state == runs.INTERRUPTED and not d.alive and d.resumable
    assert (d.iter, d.tokens_seen, d.best_val_loss) == (5, 640, 4.5)
    runs.delete_run("dead")
    assert "dead" not in {s.id for s in runs.list_runs()}


def test_follow_returns_complete_lines_only():
    run = runs.create_run(tiny_cfg(), "tiny")
    writer = runwriter.MetricsWriter(run)
    writer(E.LogMessage(run.id, level="info", text="one"))
    evs, off = run.follow(0)
    assert [e.text for e in evs] == ["one"]
    line = json.dumps(E.LogMessage(run.id, level="info", text="two").to_json()) + "\n"
    with open(run.metrics_path, "a") as f:  # a line half written
        f.write(line[:10])
    assert run.follow(off) == ([], off)
    with open(run.metrics_path, "a") as f:
        f.write(line[10:])
    evs, off2 = run.follow(off)
    assert [e.text for e in evs] == ["two"] and off2 == run.metrics_path.stat().st_size


def test_metrics_writer_keeps_status_current():
    run = runs.create_run(tiny_cfg(), "tiny")
    w = runwriter.MetricsWriter(run)
    w(E.StatusChanged(run.id, state=E.TRAINING))
    w(E.EvalResult(run.id, iter=4, train_loss=5.0, val_loss=5.5, best_val_loss=5.5, tokens_seen=256))
    w(E.Finished(run.id, state=E.FINISHED, iter=8, best_val_loss=5.5, tokens_seen=512, elapsed_s=3.0))
    st = run.status()
    assert (st["state"], st["iter"], st["best_val_loss"], st["tokens_seen"]) == (E.FINISHED, 8, 5.5, 512)
    assert [type(e) for e in run.events()] == [E.StatusChanged, E.EvalResult, E.Finished]


def test_a_new_run_records_its_parameter_count():
    """Runs started from the TUI showed '–' params: create_run now counts them itself."""
    from trainutil import tiny_cfg

    from gpttui.plan.estimate import count_params

    cfg = tiny_cfg()
    run = runs.create_run(cfg, "tiny")
    assert run.summary().params == count_params(cfg).total > 0


def test_a_zombie_pid_is_not_alive():
    """kill -9 leaves a zombie until the parent reaps it; `gpttui runs` must already call the
    run interrupted, not training."""
    import subprocess
    import sys

    from gpttui.runs.store import pid_alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(child.pid)
        child.kill()
        import time

        deadline = time.monotonic() + 10
        while pid_alive(child.pid):  # not reaped: still a zombie of this process
            assert time.monotonic() < deadline, "a zombie counted as alive"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
