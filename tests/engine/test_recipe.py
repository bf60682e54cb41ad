"""The modern recipe: trains, evaluates, checkpoints, resumes exactly, samples with and
without the KV cache alike, is refused clearly where nanoGPT's GPT is expected; the
estimator counts its parameters and optimizer state as instantiated."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from trainutil import one_thread, tiny_cfg, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui import events as E
from gpttui.config import TrainConfig
from gpttui.errors import ConfigError, RunError
from gpttui.model import recipes
from gpttui.model.modern import ModernConfig, ModernGPT
from gpttui.model.optim import MuonAdamW, orthogonalize
from gpttui.plan import estimate
from gpttui.runs import store as runs
from gpttui.train import launch
from gpttui.train.trainer import Trainer
from gpttui.weights import checkpoint as ck
from gpttui.weights import sample

MODERN = dict(recipe="modern", learning_rate=0.01, embed_lr=0.2, muon_lr=0.03, min_lr=0.0, grad_clip=0.0)


@pytest.fixture
def dataset(one_thread):  # noqa: F811 - the imported fixture, requested by name
    write_dataset()


def _train(cfg: TrainConfig, name: str = "r") -> tuple[runs.Run, E.Event, list[E.Event]]:
    run = runs.create_run(cfg, "tiny", name=name)
    got: list[E.Event] = []
    return run, Trainer(cfg, run, [got.append]).run(), got


def _of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def small_model(**pieces) -> ModernGPT:
    torch.manual_seed(0)
    return ModernGPT(ModernConfig(block_size=16, vocab_size=50304, n_layer=2, n_head=2, n_embd=32, **pieces))


@pytest.mark.usefixtures("dataset")
def test_modern_trains_evaluates_and_checkpoints_its_recipe():
    cfg = tiny_cfg(**MODERN, max_iters=24, lr_decay_iters=24, eval_interval=12, log_interval=4)
    run, res, got = _train(cfg)
    assert isinstance(res, E.Finished) and res.state == E.FINISHED
    evals = _of(got, E.EvalResult)
    assert [e.iter for e in evals] == [0, 12, 24]
    assert evals[0].val_loss > 10.0 and evals[-1].val_loss < evals[0].val_loss - 3.0
    c = ck.load_checkpoint(run.checkpoint_path)
    assert c["recipe"] == "modern" == ck.checkpoint_recipe(c) and c["model_args"]["recipe"] == "modern"
    assert "transformer.wpe.weight" not in c["model"] and "lm_head.weight" in c["model"]
    model, _ = ck.load_model(run.checkpoint_path)
    assert isinstance(model, ModernGPT)
    with pytest.raises(RunError, match="'modern' recipe, not nanoGPT's GPT-2") as e:
        ck.load_model(run.checkpoint_path, recipe="gpt2")
    assert "\n" not in str(e.value)
    # a run restarted with the other recipe is refused in one line, not a state-dict dump
    got2: list[E.Event] = []
    res2 = Trainer(cfg.replace(recipe="gpt2", max_iters=30, lr_decay_iters=30), run, [got2.append], resume=True).run()
    assert isinstance(res2, E.Failed) and "'modern' recipe, the config says 'gpt2'" in res2.reason


@pytest.mark.usefixtures("dataset")
def test_modern_resume_gives_exactly_the_uninterrupted_losses():
    cfg = tiny_cfg(**MODERN, max_iters=8, lr_decay_iters=8, eval_interval=100, log_interval=1)
    _, full, got_full = _train(cfg, name="full")
    losses_full = {s.iter: s.loss for s in _of(got_full, E.StepMetrics)}
    run = runs.create_run(cfg, "tiny", name="split")
    tr = Trainer(cfg, run, [])
    tr.add_listener(lambda ev: tr.stop() if isinstance(ev, E.StepMetrics) and ev.iter == 4 else None)
    assert tr.run().iter == 4
    got2: list[E.Event] = []
    second = launch.resume("split", listeners=[got2.append]).run()
    resumed = {s.iter: s.loss for s in _of(got2, E.StepMetrics)}
    assert sorted(resumed) == [5, 6, 7, 8] and second.iter == 8
    for it, loss in resumed.items():
        assert loss == pytest.approx(losses_full[it], abs=1e-6), it
    assert len({round(v, 4) for v in losses_full.values()}) > 4


def test_default_recipe_checkpoint_keeps_nanogpt_keys():
    cfg = tiny_cfg()
    model = recipes.build_model(cfg)
    state = ck.build_checkpoint(model, None, None, model.config.to_dict(), 1, 9.0, {}, None, 0, 0.0)
    assert state["recipe"] == "gpt2" and "recipe" not in state["model_args"]
    assert "transformer.wpe.weight" in state["model"] and "transformer.h.0.attn.c_attn.weight" in state["model"]
    ck.require_recipe(state, "gpt2", "export")  # no error
    with pytest.raises(RunError, match="config says 'modern'"):
        ck.require_recipe(state, "modern", "resume")


def test_loss_equals_plain_cross_entropy_of_capped_logits():
    m = small_model(logit_softcap=15.0)
    x = torch.randint(0, 50257, (2, 16))
    torch.nn.init.normal_(m.lm_head.weight, std=0.5)  # logits large enough for the cap to matter
    _, loss = m(x, x)
    z = m.logits(m.hidden(x))
    assert z.abs().max() < 15.0
    assert loss.item() == pytest.approx(F.cross_entropy(z.view(-1, z.size(-1)).float(), x.view(-1)).item(), rel=1e-5)


@pytest.mark.parametrize("pieces", [{}, {"rotary": False, "untied": False}])
def test_cached_greedy_generation_equals_full_recompute(pieces):
    m = small_model(**pieces)
    with torch.no_grad():  # random weights give flat logits; spread them so argmax is robust
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    m.eval()
    prompt = torch.randint(0, 50257, (1, 3))
    cached = m.generate(prompt, 12, temperature=0.0)
    ctx = prompt
    for _ in range(12):  # no cache: the whole context through the model each step
        logits = m.logits(m.hidden(ctx))[:, -1, :]
        ctx = torch.cat((ctx, logits.argmax(-1, keepdim=True)), dim=1)
    assert torch.equal(cached, ctx)
    assert m.generate(prompt, 40, temperature=0.0).shape == (1, 43)  # past block_size: slides


def test_stream_sample_builds_the_modern_model(isolated_dirs):
    data, _ = isolated_dirs
    m = small_model()
    folder = data / "runs" / "20250101-000000-modern"
    ck.save_checkpoint(folder / "ckpt.pt", ck.build_checkpoint(m, None, None, m.config.to_dict(), 1, 9.0, {}, None, 0, 0.0))
    a = "".join(sample.stream_sample(folder, "def ", 10, 0.0, None, 1, "cpu"))
    b = "".join(sample.stream_sample(folder, "def ", 10, 0.0, None, 2, "cpu"))
    assert a and a == b


@pytest.mark.parametrize("tie_head", [False, True])
def test_estimator_counts_the_instantiated_modern_model(tie_head):
    for shape in (dict(n_layer=2, n_head=2, n_embd=32, block_size=16), dict(n_layer=3, n_head=4, n_embd=64, block_size=8)):
        cfg = tiny_cfg(**MODERN, **shape, tie_head=tie_head)
        model = recipes.build_model(cfg)
        pc = estimate.count_params(cfg)
        assert pc.total == sum(p.numel() for p in model.parameters())
        assert pc.nanogpt == model.get_num_params()
        opt = recipes.build_optimizer(model, cfg, "cpu")
        _, loss = model(torch.randint(0, 50257, (1, 8)), torch.randint(0, 50257, (1, 8)))
        loss.backward()
        opt.step()
        state = sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values() if t.dim() > 0)
        assert estimate.optimizer_bytes(cfg, pc.total)[0] == state


def test_muon_keeps_one_buffer_and_orthogonal_updates():
    m = small_model()
    cfg = tiny_cfg(**MODERN)
    opt = recipes.build_optimizer(m, cfg, "cpu")
    assert isinstance(opt, MuonAdamW)
    kinds = {g["kind"]: len(g["params"]) for g in opt.param_groups}
    assert kinds["muon"] == 2 * 6  # q, k, v, proj, fc, proj per block
    x = torch.randint(0, 50257, (2, 16))
    m(x, x)[1].backward()
    before = m.transformer.h[0].mlp.c_fc.weight.detach().clone()
    recipes.apply_lr(opt, cfg, 0)
    opt.step()
    assert not torch.equal(before, m.transformer.h[0].mlp.c_fc.weight)
    # Newton–Schulz (5 steps) maps a full-rank matrix's singular values into ~[0.7, 1.2]
    g = torch.randn(3, 64, 256) * torch.logspace(-2, 1, 256)  # badly conditioned columns
    s = torch.linalg.svdvals(orthogonalize(g))
    assert s.min() > 0.5 and s.max() < 1.3
    muon_state = opt.state[m.transformer.h[0].mlp.c_fc.weight]
    assert set(muon_state) == {"momentum_buffer"}


def test_wsd_schedule_and_lr_per_group():
    cfg = tiny_cfg(**MODERN, max_iters=100, warmup_iters=10, warmdown_frac=0.4, lr_decay_iters=100)
    mult = [recipes.lr_multiplier(cfg, i) for i in range(100)]
    assert mult[0] < mult[9] < 1.0 and mult[10] == mult[59] == 1.0
    assert mult[60] == 1.0 and mult[80] == pytest.approx(0.5) and mult[99] < 0.05
    opt = recipes.build_optimizer(small_model(), cfg, "cpu")
    lr = recipes.apply_lr(opt, cfg, 80)
    assert lr == pytest.approx(0.005)
    assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx([0.005, 0.015, 0.1])


def test_a_tied_head_trains_at_the_heads_lr_not_the_embeddings():
    """The ablation's tied row: the one matrix is the output head, so it takes the head's lr
    (or the bench's tied_lr), never embed_lr (issue 18: the old row's confound)."""
    cfg = tiny_cfg(**MODERN)

    def lr_of(model, p, **kw):
        opt = recipes.build_optimizer(model, cfg, "cpu", **kw)
        return [g["lr"] for g in opt.param_groups if any(q is p for q in g["params"])]

    tied = small_model(untied=False)
    assert tied.lm_head.weight is tied.transformer.wte.weight
    assert lr_of(tied, tied.lm_head.weight) == [cfg.learning_rate]
    assert lr_of(tied, tied.lm_head.weight, tied_lr=0.03) == [0.03]
    untied = small_model()
    assert lr_of(untied, untied.transformer.wte.weight) == [cfg.embed_lr]
    assert lr_of(untied, untied.lm_head.weight, tied_lr=0.03) == [cfg.learning_rate]


@pytest.mark.usefixtures("dataset")
def test_tie_head_trains_one_matrix_checkpoints_it_and_resumes():
    """tie_head = true: the head IS the embedding (V·d fewer parameters), trained at the
    head's lr; the checkpoint keeps the sharing, so a resumed run and a sample see one matrix."""
    cfg = tiny_cfg(**MODERN, tie_head=True, max_iters=12, lr_decay_iters=12, eval_interval=6, log_interval=3)
    model = recipes.build_model(cfg)
    assert model.lm_head.weight is model.transformer.wte.weight
    assert estimate.count_params(cfg).total == sum(p.numel() for p in model.parameters())
    assert estimate.count_params(cfg).total == estimate.count_params(cfg.replace(tie_head=False)).total - 50304 * cfg.n_embd
    run, res, _ = _train(cfg, name="tied")
    assert isinstance(res, E.Finished) and res.state == E.FINISHED
    loaded, _ = ck.load_model(run.checkpoint_path)
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    res2 = Trainer(cfg.replace(max_iters=18, lr_decay_iters=18), run, [], resume=True).run()
    assert isinstance(res2, E.Finished) and res2.iter == 18


@pytest.mark.parametrize("change, match", [
    ({"recipe": "llama"}, "recipe"), ({"muon_lr": 0.0}, "muon_lr"), ({"muon_momentum": 1.0}, "muon_momentum"),
    ({"warmdown_frac": 1.5}, "warmdown_frac"), ({"logit_softcap": -1.0}, "logit_softcap"),
    ({"recipe": "modern", "n_head": 2, "n_embd": 6}, "odd head size"), ({"recipe": "modern", "bias": True}, "bias"),
    ({"tie_head": True}, "tie_head. = True only applies to the modern recipe"),
])
def test_modern_knobs_are_validated_in_one_line(change, match):
    with pytest.raises(ConfigError, match=match) as e:
        tiny_cfg(**change)
    assert "\n" not in str(e.value)
