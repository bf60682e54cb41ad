"""The two training recipes behind `TrainConfig.recipe`: which model, optimizer, schedule.

- "gpt2": nanoGPT's recipe exactly — `gpttui.model.gpt.GPT` (nanoGPT's keys), AdamW with
  nanoGPT's decay groups, linear warmup + cosine decay (`train.setup.get_lr`).
- "modern": `gpttui.model.modern.ModernGPT`, Muon on the hidden matrices and AdamW on the
  embedding and head (`gpttui.model.optim.MuonAdamW`), warmup–stable–decay schedule: linear
  warmup over warmup_iters, flat at the peak, then a linear decay to min_lr over the last
  `warmdown_frac` of max_iters.

The loop calls only `build_model`, `build_optimizer` and `apply_lr`; the bench calls the
same functions (with ablation switches), so what is measured is what ships.
"""

from __future__ import annotations

from typing import Any

import torch

RECIPES = ("gpt2", "modern")


def build_model(cfg: Any, **pieces: Any) -> torch.nn.Module:
    """The model of cfg.recipe (on the CPU, initialised from torch's current RNG).
    `pieces` switch parts of the modern model off (ablations: rotary=False, ...)."""
    if cfg.recipe == "modern":
        from gpttui.model.modern import ModernConfig, ModernGPT

        return ModernGPT(ModernConfig.from_train_config(cfg, **pieces))
    from gpttui.model.gpt import GPT, GPTConfig

    return GPT(GPTConfig.from_train_config(cfg))


def build_optimizer(model: torch.nn.Module, cfg: Any, device_type: str, muon: bool = True,
                    adamw_lr: float | None = None, tied_lr: float | None = None) -> torch.optim.Optimizer:
    """nanoGPT's AdamW for "gpt2"; for "modern", MuonAdamW with these groups:
    hidden 2-D weights → Muon (muon_lr, muon_momentum, muon_weight_decay); embedding → AdamW
    (embed_lr); head and anything else → AdamW (learning_rate). AdamW groups take
    (beta1, beta2) and no weight decay. `muon=False` (ablation) puts the hidden matrices
    in an AdamW group at `adamw_lr` (default learning_rate) with weight_decay, as GPT-2's
    recipe does. A tied head (ablation: the embedding IS the head) trains at `tied_lr`,
    default the head's learning_rate: embed_lr is sized for an N(0, 1) lookup table with
    sparse row gradients, far too large for a dense output matrix initialised at 0.02."""
    if cfg.recipe != "modern":
        return model.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2), device_type)
    from gpttui.model.optim import MuonAdamW

    hidden, embed, shared, rest = [], [], [], []
    wte = model.transformer.wte.weight
    tied = getattr(model, "lm_head", None) is not None and model.lm_head.weight is wte
    for name, p in model.named_parameters():
        if p is wte:
            (shared if tied else embed).append(p)
        elif name.startswith("transformer.h.") and p.dim() == 2:
            hidden.append(p)
        else:
            rest.append(p)
    betas = (cfg.beta1, cfg.beta2)
    if muon:
        hidden_group = {"params": hidden, "kind": "muon", "lr": cfg.muon_lr, "momentum": cfg.muon_momentum,
                        "weight_decay": cfg.muon_weight_decay}
    else:
        hidden_group = {"params": hidden, "kind": "adamw", "lr": adamw_lr or cfg.learning_rate, "betas": betas,
                        "weight_decay": cfg.weight_decay}
    groups = [hidden_group,
              {"params": embed, "kind": "adamw", "lr": cfg.embed_lr, "betas": betas, "weight_decay": 0.0},
              {"params": shared, "kind": "adamw", "lr": tied_lr or cfg.learning_rate, "betas": betas,
               "weight_decay": 0.0},
              {"params": rest, "kind": "adamw", "lr": cfg.learning_rate, "betas": betas, "weight_decay": 0.0}]
    return MuonAdamW([g for g in groups if g["params"]])


def lr_multiplier(cfg: Any, it: int) -> float:
    """The modern schedule at step `it`, as a fraction of each group's peak lr."""
    if not cfg.decay_lr:
        return 1.0
    if it < cfg.warmup_iters:
        return (it + 1) / (cfg.warmup_iters + 1)
    floor = cfg.min_lr / cfg.learning_rate
    decay_start = cfg.max_iters * (1.0 - cfg.warmdown_frac)
    if it < decay_start or cfg.warmdown_frac <= 0:
        return 1.0
    frac = min(1.0, (it - decay_start) / max(1.0, cfg.max_iters - decay_start))
    return 1.0 - frac * (1.0 - floor)


def apply_lr(optimizer: torch.optim.Optimizer, cfg: Any, it: int) -> float:
    """Set every group's lr for step `it`; returns the lr to report (learning_rate's)."""
    if cfg.recipe != "modern":
        from gpttui.train.setup import get_lr

        lr = get_lr(cfg, it)
        for g in optimizer.param_groups:
            g["lr"] = lr
        return lr
    mult = lr_multiplier(cfg, it)
    for g in optimizer.param_groups:
        g["lr"] = g["base_lr"] * mult
    return cfg.learning_rate * mult


def optimizer_state_bytes_per_param(kind: str) -> int:
    """fp32 state a parameter carries: AdamW exp_avg + exp_avg_sq, Muon one momentum."""
    return 4 if kind == "muon" else 8

