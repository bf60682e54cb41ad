"""The pilot's decisions, without training: which candidates, how each trial is scheduled,
how a rung's time becomes iterations, and what the recommendation preset says.

Pure functions on configs (no torch, no textual): `gpttui.train.pilot` runs what these
plan, the CLI and the TUI show it.

- Candidates: the preset as is, its learning rate x0.5 and x2, the other recipe (with the
  built-in `<preset>-modern` / `<base>` sibling's recipe keys when there is one, else generic
  defaults) and its lr x0.5 and x2. For the modern recipe the three peak lrs (Muon's
  `muon_lr`, the head's `learning_rate`, the embedding's `embed_lr`) scale together by one
  factor: they were tuned as a set (nanochat's ratios), and one factor keeps the pilot at
  two lr candidates per recipe. `min_lr` scales with them (GPT-2: it is lr/10).
- `--try KEY=V1,V2`: the preset as is plus one candidate per value (one factor at a time),
  instead of the default set.
- Trials: every one restarts with its own short schedule ending in its own decay (GPT-2:
  warmup + cosine to min_lr at max_iters; modern: warmup-stable-decay over the last
  warmdown_frac), so a trial's last val loss means "had the run ended here".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gpttui import config as C
from gpttui.errors import ConfigError

# The keys a recipe switch sets (the model and schedule shape stay the preset's).
RECIPE_KEYS = ("recipe", "bias", "dropout", "logit_softcap", "muon_lr", "muon_momentum", "learning_rate",
               "embed_lr", "beta1", "beta2", "weight_decay", "grad_clip", "warmdown_frac", "min_lr")
LR_KEYS = {"gpt2": ("learning_rate", "min_lr"), "modern": ("learning_rate", "muon_lr", "embed_lr", "min_lr")}
LR_FACTORS = (0.5, 2.0)
# Generic recipe keys when no sibling preset gives them: TrainConfig's defaults for GPT-2,
# nanochat's settings (as demo-modern / seed-000-modern) for modern.
GENERIC = {
    "gpt2": {"recipe": "gpt2", "learning_rate": 6e-4, "min_lr": 6e-5, "beta1": 0.9, "beta2": 0.95,
             "weight_decay": 0.1, "grad_clip": 1.0},
    "modern": {"recipe": "modern", "bias": False, "dropout": 0.0, "logit_softcap": 0.0, "muon_lr": 0.02,
               "muon_momentum": 0.95, "learning_rate": 0.004, "embed_lr": 0.2, "beta1": 0.8, "beta2": 0.95,
               "weight_decay": 0.0, "grad_clip": 0.0, "warmdown_frac": 0.2, "min_lr": 0.0},
}
MIN_TRIAL_ITERS = 6  # below this a trial's loss says nothing: the plan warns
WARMUP_FRAC_MAX = 0.1  # a trial warms up over the preset's fraction of the run, at most this


@dataclass(frozen=True)
class Candidate:
    """One configuration the pilot tries: `overrides` on top of the preset, and where they
    came from (shown in the table and written as comments into the recommendation)."""

    label: str
    overrides: tuple[tuple[str, Any], ...] = ()
    note: str = "the preset as is"
    key_notes: tuple[tuple[str, str], ...] = ()  # a key's own origin where it differs from `note`

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.overrides)

    def note_of(self, key: str) -> str:
        """Where this candidate's value of `key` came from (the preset's comment on it)."""
        return dict(self.key_notes).get(key, self.note)


@dataclass(frozen=True)
class Batching:
    """The micro-batch a candidate trains with (sequences per optimizer step unchanged)."""

    batch_size: int
    accum: int
    tokens_per_s: float  # measured over a few timed steps
    peak_bytes: int | None  # measured: CUDA max allocated, else the process's resident memory
    mfu: float | None
    note: str = ""


@dataclass
class TrialPlan:
    label: str
    rung: int
    iters: int
    train_s: float  # the rung's training seconds (equal for every trial of the rung)


@dataclass
class RungPlan:
    rung: int
    labels: list[str]
    train_s: float
    trials: list[TrialPlan] = field(default_factory=list)


def config_for(values: dict[str, Any], cand: Candidate, source: str) -> C.TrainConfig:
    """The preset's values with the candidate's applied, validated (one-line ConfigError)."""
    return C.build({**values, **cand.values}, source=f"{source} ({cand.label})")


def scale_lr(cfg: C.TrainConfig, factor: float) -> dict[str, Any]:
    """The recipe's peak lrs (and min_lr) times `factor`."""
    return {k: float(f"{getattr(cfg, k) * factor:.6g}") for k in LR_KEYS[cfg.recipe]}


def other_recipe(preset: str, cfg: C.TrainConfig, sibling: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    """The overrides that switch `cfg` to the other recipe, and where they came from: the
    sibling preset's recipe keys (demo <-> demo-modern) when given, else GENERIC."""
    target = "gpt2" if cfg.recipe == "modern" else "modern"
    if sibling is not None and sibling.get("recipe", "gpt2") == target:
        keys = {k: sibling[k] for k in RECIPE_KEYS if k in sibling}
        keys.setdefault("recipe", target)
        base = {**GENERIC[target], **keys}
        return base, "recipe keys from its sibling preset"
    return dict(GENERIC[target]), f"generic {target} recipe keys (no sibling preset)"


def sibling_name(preset: str, recipe: str) -> str:
    """`demo` -> `demo-modern`; `demo-modern` -> `demo`."""
    return preset[: -len("-modern")] if recipe == "modern" and preset.endswith("-modern") else f"{preset}-modern"


def default_candidates(preset: str, values: dict[str, Any], sibling: dict[str, Any] | None) -> list[Candidate]:
    """The preset, its lr x0.5/x2, the other recipe and its lr x0.5/x2."""
    base = C.build(values, source=preset)
    out = [Candidate(base.recipe, (), "the preset as is")]
    for f in LR_FACTORS:
        out.append(Candidate(f"{base.recipe} lr x{f:g}", tuple(scale_lr(base, f).items()),
                             f"the preset's peak lrs x{f:g}"))
    switch, where = other_recipe(preset, base, sibling)
    other = C.build({**values, **switch}, source=preset)
    out.append(Candidate(other.recipe, tuple(switch.items()), f"{other.recipe} recipe: {where}"))
    for f in LR_FACTORS:
        lrs = scale_lr(other, f)
        recipe_note = f"{other.recipe} recipe: {where}"
        out.append(Candidate(f"{other.recipe} lr x{f:g}", tuple({**switch, **lrs}.items()),
                             f"{other.recipe} recipe ({where}), peak lrs x{f:g}",
                             key_notes=tuple({**{k: recipe_note for k in switch},
                                              **{k: f"{recipe_note}, x{f:g}" for k in lrs}}.items())))
    return out


def parse_tries(preset: str, values: dict[str, Any], tries: list[str]) -> list[Candidate]:
    """The preset as is plus one candidate per `KEY=V1,V2` value, each validated through
    config.build; a bad key or value is a one-line ConfigError naming it."""
    base = C.build(values, source=preset)
    out = [Candidate(base.recipe if not tries else "preset", (), "the preset as is")]
    seen: set[tuple] = {()}
    for text in tries:
        if "=" not in text:
            raise ConfigError(f"--try {text!r}: expected KEY=V1,V2", "e.g. --try learning_rate=1e-3,3e-3")
        key, raw = (s.strip() for s in text.split("=", 1))
        for v in (s for s in raw.split(",") if s.strip()):
            value = C.parse_value(key, v, "--try")
            ov: tuple[tuple[str, Any], ...] = ((key, value),)
            if getattr(base, key, object()) == value or ov in seen:
                continue
            seen.add(ov)
            cand = Candidate(f"{key}={v.strip()}", ov, f"--try {key}={v.strip()}")
            config_for(values, cand, preset)  # raises the one-line error now, before any training
            out.append(cand)
    if len(out) < 2:
        raise ConfigError("--try gave no value different from the preset", "give at least one other value")
    return out


def rung_sizes(n: int) -> list[int]:
    """Successive halving: n, ceil(n/2), ... down to 2 (the last rung picks between two)."""
    sizes = [n]
    while sizes[-1] > 2:
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


def trial_schedule(cfg: C.TrainConfig, iters: int) -> dict[str, Any]:
    """A short schedule of `iters` that ends with its own decay, evaluated at 0 and at
    the end; logs about 20 points for the curve."""
    iters = max(1, int(iters))
    frac = min(WARMUP_FRAC_MAX, cfg.warmup_iters / max(1, cfg.max_iters))
    warm = min(iters - 1, max(1, round(iters * frac))) if iters > 1 else 0
    return {"max_iters": iters, "warmup_iters": warm, "lr_decay_iters": iters,
            "eval_interval": iters,  # evals at 0 and at the end: the curve is the train loss
            "log_interval": max(1, iters // 20)}


TRIAL_FIXED = {"eval_fixed": True, "sample_tokens": 0, "early_stop_patience": 0, "tensorboard_log": False,
               "wandb_log": False, "checkpoint_interval_s": 0.0, "always_save_checkpoint": False}


def iters_for(train_s: float, batching: Batching, block_size: int) -> int:
    """Optimizer steps that `train_s` seconds buy at the measured tokens/s."""
    tokens_per_iter = batching.batch_size * batching.accum * block_size
    return max(1, int(train_s * batching.tokens_per_s / tokens_per_iter))


def micro_batches(cfg: C.TrainConfig, max_batch: int, reference: int) -> tuple[int, list[int]]:
    """Sequences per optimizer step, and the micro-batches that split it exactly (largest
    first, up to `max_batch`); 'auto' counts as `reference` x accumulation."""
    seqs = (cfg.batch_size if isinstance(cfg.batch_size, int) else reference) * cfg.gradient_accumulation_steps
    sizes = [b for b in range(min(seqs, max_batch), 0, -1) if seqs % b == 0 and (b & (b - 1) == 0 or b == seqs)]
    return seqs, sizes


def rank(losses: dict[str, float | None]) -> list[str]:
    """Labels by final val loss, best first; a failed or non-finite trial last."""
    def key(label: str) -> float:
        v = losses.get(label)
        return v if v is not None and math.isfinite(v) else math.inf

    return sorted(losses, key=key)


def recommendation_values(values: dict[str, Any], cand: Candidate, batching: Batching | None) -> dict[str, Any]:
    """The full run's values: the preset's, the winner's overrides, its measured micro-batch."""
    out = {**values, **cand.values}
    if batching is not None:
        out["batch_size"], out["gradient_accumulation_steps"] = batching.batch_size, batching.accum
    if out.get("recipe", "gpt2") == "gpt2" and "max_iters" in out:
        out["lr_decay_iters"] = out["max_iters"]
    return out


def prepare(preset_ref: str, tries: list[str] | tuple[str, ...] = (), values: dict[str, Any] | None = None,
            overrides: list[str] | tuple[str, ...] = ()) -> tuple[str, dict[str, Any], list[Candidate]]:
    """The preset's name and values and the candidates: the defaults (with the other recipe's
    keys from a built-in sibling preset when there is one) or the `--try` ones. `values`
    (the editor's, unsaved) stand in for the preset file's."""
    from gpttui import presets

    if values is None:
        preset = presets.get(preset_ref)
        name, values = preset.name, dict(preset.values)
    else:
        name, values = preset_ref, dict(values)
    for text in overrides:  # --set: the preset changed for every candidate (dataset, device)
        key, value = C.parse_override(text)
        values[key] = value
    base = C.build(values, source=name)  # the preset itself must build (one-line error otherwise)
    if tries:
        return name, values, parse_tries(name, values, list(tries))
    sibling = None
    other = sibling_name(name, base.recipe)
    if other in presets.discover():
        try:
            sibling = dict(presets.get(other).values)
        except ConfigError:
            sibling = None
    return name, values, default_candidates(name, values, sibling)
