"""`weight_decay` has one meaning across recipes (issue #20): AdamW's decoupled decay on the
2-D weights AdamW trains. Muon's hidden matrices (recipe "modern") take `muon_weight_decay`,
applied at Muon's learning rate: the same 0.1 there decayed them ~30-50x harder."""

from __future__ import annotations

import torch
from trainutil import tiny_cfg

from gpttui import presets
from gpttui.config import TrainConfig
from gpttui.model.recipes import build_model, build_optimizer


def _wd(cfg, **kw):
    torch.manual_seed(0)
    opt = build_optimizer(build_model(cfg), cfg, "cpu", **kw)
    return [(g.get("kind", "adamw"), g["weight_decay"], any(p.dim() == 2 for p in g["params"])) for g in opt.param_groups]


def test_weight_decay_is_adamws_and_muon_has_its_own_key():
    gpt2 = _wd(tiny_cfg(weight_decay=0.1, muon_weight_decay=0.5))
    assert sorted(wd for _, wd, _ in gpt2) == [0.0, 0.1]  # muon_weight_decay means nothing here
    modern = _wd(tiny_cfg(recipe="modern", weight_decay=0.1, muon_weight_decay=0.01))
    assert [(k, wd) for k, wd, _ in modern if k == "muon"] == [("muon", 0.01)]
    assert {wd for k, wd, _ in modern if k == "adamw"} == {0.0}
    ablation = _wd(tiny_cfg(recipe="modern", weight_decay=0.1, muon_weight_decay=0.01), muon=False)
    assert ablation[0] == ("adamw", 0.1, True)  # hidden matrices under AdamW: AdamW's decay


def test_muon_decay_is_applied_at_muons_lr():
    from gpttui.model.optim import MuonAdamW

    w = torch.nn.Parameter(torch.ones(4, 4))
    opt = MuonAdamW([{"params": [w], "kind": "muon", "lr": 0.02, "weight_decay": 0.5}])
    w.grad = torch.zeros(4, 4)
    opt.step()
    assert torch.allclose(w.detach(), torch.full((4, 4), 1 - 0.02 * 0.5))


def test_help_and_presets_say_which():
    f = TrainConfig.__dataclass_fields__
    assert "muon_weight_decay" in f["weight_decay"].metadata["help"]
    assert "muon_lr" in f["muon_weight_decay"].metadata["help"]
    for name in ("seed-000-modern", "demo-modern"):
        values = presets.get(name).values
        assert "muon_weight_decay" in dict(values), name


def test_a_modern_run_from_before_the_key_keeps_its_muon_decay():
    """A modern run's config.toml written before muon_weight_decay existed: Muon's matrices
    decayed by weight_decay then, and a resume must not silently drop that decay."""
    from gpttui import config as C
    from gpttui.runs import store as runs

    cfg = tiny_cfg(recipe="modern", weight_decay=0.1)
    run = runs.create_run(cfg, "tiny", name="old-modern")
    path = run.path / "config.toml"
    text = "\n".join(ln for ln in path.read_text().splitlines() if not ln.startswith("muon_weight_decay"))
    path.write_text(text + "\n")
    assert "muon_weight_decay" not in C.read_toml(path)
    assert run.config().muon_weight_decay == 0.1
    gpt2 = runs.create_run(tiny_cfg(weight_decay=0.1), "tiny", name="old-gpt2")
    p2 = gpt2.path / "config.toml"
    p2.write_text("\n".join(ln for ln in p2.read_text().splitlines() if not ln.startswith("muon_weight_decay")) + "\n")
    assert gpt2.config().muon_weight_decay == C.TrainConfig().muon_weight_decay
