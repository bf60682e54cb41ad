"""Two failures of the hostile trial (issue #20): random bytes given as a checkpoint are
called what they are (not a checkpoint), and resuming a run another process is still
setting up says that process holds it, not that there is no checkpoint."""

from __future__ import annotations

import os

import pytest
import tomli_w
from trainutil import TINY, one_thread, tiny_cfg, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui.cli.main import main
from gpttui.errors import RunError
from gpttui.runs import store as runs
from gpttui.weights.checkpoint import load_checkpoint


@pytest.fixture(autouse=True)
def dataset(one_thread):  # noqa: F811 - the imported fixture, requested by name
    return write_dataset()


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    bad = tmp_path / "rand.pt"
    bad.write_bytes(os.urandom(8192))
    with pytest.raises(RunError) as e:
        load_checkpoint(bad)
    msg = str(e.value)
    assert "not a readable checkpoint" in msg and "not a torch checkpoint" in msg
    assert "Python objects" not in msg and "\n" not in msg


def test_init_from_random_bytes_is_one_line_saying_so(tmp_path, capsys):
    bad = tmp_path / "rand.pt"
    bad.write_bytes(os.urandom(8192))
    (tmp_path / "t.toml").write_text(tomli_w.dumps({**TINY, "max_iters": 2, "lr_decay_iters": 2}))
    rc = main(["--run", str(tmp_path / "t.toml"), "--set", f"init_from={bad}", "--plain"])
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err
    line = next(x for x in err.splitlines() if x.startswith("gpttui: error:"))
    assert "not a readable checkpoint" in line and "Python objects" not in line


def test_resume_of_a_run_held_by_another_process_names_it(capsys):
    run = runs.create_run(tiny_cfg(), "tiny", name="busy")  # set up, no checkpoint yet
    holder = runs.get_run("busy")  # another Run object: its own lock file description
    holder.acquire_lock()
    try:
        rc = main(["--resume", run.id, "--plain"])
    finally:
        holder.release_lock()
    err = capsys.readouterr().err
    assert rc != 0
    assert "another process is training this run (busy: pid" in err and "no checkpoint yet" in err
    assert "has no checkpoint to resume from" not in err
    rc = main(["--resume", run.id, "--plain"])  # freed: now the plain truth
    assert rc != 0 and "has no checkpoint to resume from" in capsys.readouterr().err
