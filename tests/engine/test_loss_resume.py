"""The loss path a run uses is a TrainConfig key, not model state: checkpoints stay
nanoGPT's, and a run written before the key existed resumes on the path it trained with,
giving exactly the losses of an uninterrupted run."""

from __future__ import annotations

import torch
from trainutil import one_thread, tiny_cfg, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui import events as E
from gpttui.runs import store as runs
from gpttui.train import launch
from gpttui.train.trainer import Trainer
from gpttui.weights.checkpoint import load_checkpoint, save_checkpoint


def _run(cfg, name, stop_at=None):
    run = runs.create_run(cfg, "tiny", name=name)
    got: list[E.Event] = []
    tr = Trainer(cfg, run, [got.append])
    if stop_at:
        tr.add_listener(lambda ev: tr.stop() if isinstance(ev, E.StepMetrics) and ev.iter == stop_at else None)
    return run, tr.run(), got


def _losses(events):
    return {e.iter: e.loss for e in events if isinstance(e, E.StepMetrics)}


def _logs(events):
    return [e.text for e in events if isinstance(e, E.LogMessage)]


def _make_old(run) -> None:
    """Make a run look written before `chunked_loss` existed: no key in config.toml nor in
    the checkpoint's config (the model_args never had it)."""
    path = run.path / "config.toml"
    path.write_text("".join(line for line in path.read_text().splitlines(keepends=True)
                            if not line.startswith("chunked_loss")))
    ck = load_checkpoint(run.checkpoint_path)
    assert "chunked_loss" not in ck["model_args"]
    ck["config"].pop("chunked_loss")
    save_checkpoint(run.checkpoint_path, ck)


def test_old_run_resumes_exactly_on_the_plain_path(one_thread):  # noqa: F811
    write_dataset()
    cfg = tiny_cfg(max_iters=8, lr_decay_iters=8, eval_interval=100, chunked_loss=False)
    _, full, got_full = _run(cfg, "full")
    assert isinstance(full, E.Finished) and any("loss: plain" in t for t in _logs(got_full))
    run, first, _ = _run(cfg, "old", stop_at=4)
    assert first.state == E.STOPPED and first.iter == 4
    _make_old(run)
    assert runs.get_run("old").config().chunked_loss is False
    got: list[E.Event] = []
    second = launch.resume("old", listeners=[got.append]).run()
    assert second.state == E.FINISHED and second.iter == 8
    assert any("loss: plain" in t for t in _logs(got))
    resumed, expected = _losses(got), _losses(got_full)
    assert sorted(resumed) == [5, 6, 7, 8]
    assert all(resumed[i] == expected[i] for i in resumed), (resumed, expected)


def test_new_runs_default_to_the_chunked_loss_with_the_same_losses(one_thread):  # noqa: F811
    write_dataset()
    cfg = tiny_cfg(max_iters=4, lr_decay_iters=4, eval_interval=2)
    assert cfg.chunked_loss
    run, res, got = _run(cfg, "new")
    assert isinstance(res, E.Finished) and any("loss: chunked" in t for t in _logs(got))
    assert "chunked_loss = true" in (run.path / "config.toml").read_text()
    ck = load_checkpoint(run.checkpoint_path)
    assert "chunked_loss" not in ck["model_args"] and not any("chunked" in k for k in ck["model"])
    _, _, got_plain = _run(cfg.replace(chunked_loss=False), "plain")
    chunked, plain = _losses(got), _losses(got_plain)
    assert chunked.keys() == plain.keys()
    for i in chunked:
        assert abs(chunked[i] - plain[i]) < 1e-4, (i, chunked[i], plain[i])
    vals = [[e.val_loss for e in g if isinstance(e, E.EvalResult)] for g in (got, got_plain)]
    assert len(vals[0]) == len(vals[1]) > 0
    assert torch.allclose(torch.tensor(vals[0]), torch.tensor(vals[1]), atol=1e-4)
