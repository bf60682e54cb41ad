"""TrainConfig: every knob of a run, with nanoGPT's names, typed and validated.

A config is built by `build` alone: defaults, then a preset (TOML, or a nanoGPT
`config/train_*.py` parsed without executing it), then `--set key=value` overrides, then
the shape pretrained weights impose. Typed-in text (`--set`, the editor's fields) is read
by `parse_value`. Every error is a one-line `ConfigError` that names the fix and carries
the offending key in `.key`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gpttui.errors import ConfigError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - 3.10
    import tomli as tomllib  # type: ignore[no-redef]

AUTO = "auto"
GROUPS = ("data", "model", "batching", "optimizer", "schedule", "eval", "system", "estimate", "compat")


def _f(default: Any, group: str, help: str, types: tuple = (), choices: tuple = ()) -> Any:
    """A dataclass field carrying its group, help text, accepted types and choices."""
    meta = {"group": group, "help": help, "types": types, "choices": choices}
    if isinstance(default, (list, dict)):
        raise TypeError("mutable defaults are not allowed in TrainConfig")
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """One training run's configuration. Frozen: derive a new one with `replace()`."""

    # -- shown in lists --------------------------------------------------------------------
    description: str = _f("", "data", "one line shown in preset lists")
    # -- data ------------------------------------------------------------------------------
    dataset: str = _f("demo-pystdlib", "data", "name of the prepared dataset in the data dir")
    data_source: str = _f(
        "", "data",
        "what to prepare if the dataset is missing: builtin:pystdlib, or paths/globs of "
        "parquet, .txt/.md, .jsonl or llm.c .bin shards, separated by ';' (empty: never "
        "prepare; a missing dataset is refused)",
    )
    text_column: str = _f("text", "data", "parquet column / JSONL field holding the text")
    val_fraction: float = _f(0.0005, "data", "fraction of documents held out for validation")
    dataset_tokens: int = _f(0, "data", "train tokens in the dataset, for epochs (0 = read from the prepared dataset)")
    # -- model (nanoGPT GPTConfig) ---------------------------------------------------------
    n_layer: int = _f(12, "model", "transformer blocks")
    n_head: int = _f(12, "model", "attention heads per block (n_embd must divide by it)")
    n_embd: int = _f(768, "model", "embedding / residual width")
    block_size: int = _f(1024, "model", "context length in tokens")
    vocab_size: int = _f(50304, "model", "GPT-2's 50,257 padded to a multiple of 64 for speed")
    dropout: float = _f(0.0, "model", "dropout probability; 0 for pretraining, 0.1+ if it overfits")
    bias: bool = _f(False, "model", "biases in Linear and LayerNorm (GPT-2 had them; False is a bit faster)")
    recipe: str = _f("gpt2", "model", "gpt2: nanoGPT's GPT-2 recipe, nanoGPT-compatible checkpoints; modern: Muon, rotary, ReLU², untied head, QK-norm, warmup-stable-decay (the GPT-2 recipe's loss in fewer tokens, see bench/RESULTS.md)", choices=("gpt2", "modern"))
    logit_softcap: float = _f(0.0, "model", "modern recipe: logits = cap·tanh(logits/cap), e.g. 15; 0 = off (on CPU it costs ~1.5x step time)")
    tie_head: bool = _f(False, "model", "modern recipe: one matrix for the token embedding and the output head, as the GPT-2 recipe always has (saves vocab_size x n_embd parameters and their optimizer state); no worse on toy CPU shapes (bench/RESULTS.md): compare on your card with `gpttui pilot PRESET --try tie_head=true`")
    # -- batching --------------------------------------------------------------------------
    batch_size: int | str = _f(12, "batching", "micro-batch sequences per forward pass, or 'auto' (CUDA: largest that fits)", types=(int, str), choices=(AUTO,))
    gradient_accumulation_steps: int = _f(40, "batching", "micro-batches per optimizer step (split across GPUs under torchrun)")
    # -- optimizer (AdamW) -----------------------------------------------------------------
    learning_rate: float = _f(6e-4, "optimizer", "peak learning rate")
    weight_decay: float = _f(0.1, "optimizer", "AdamW's decoupled weight decay (w -= lr·wd·w) on the 2-D weights AdamW trains: all of them under recipe gpt2; under modern none (its embedding and head take none; its hidden matrices: muon_weight_decay)")
    beta1: float = _f(0.9, "optimizer", "AdamW beta1")
    beta2: float = _f(0.95, "optimizer", "AdamW beta2 (0.99 for small batches)")
    grad_clip: float = _f(1.0, "optimizer", "clip gradient norm at this value (0 = off)")
    muon_lr: float = _f(0.02, "optimizer", "modern recipe: Muon learning rate of the hidden matrices (learning_rate is the head's AdamW lr)")
    muon_momentum: float = _f(0.95, "optimizer", "modern recipe: Muon's Nesterov momentum")
    muon_weight_decay: float = _f(0.0, "optimizer", "modern recipe: decoupled weight decay of Muon's hidden matrices, at Muon's lr (w -= muon_lr·wd·w: 0.1 here decays ~30-50x harder than weight_decay 0.1 does at AdamW's lr); nanochat uses 0")
    embed_lr: float = _f(0.2, "optimizer", "modern recipe: AdamW learning rate of the token embedding")
    # -- schedule --------------------------------------------------------------------------
    max_iters: int = _f(600000, "schedule", "optimizer steps in the run")
    decay_lr: bool = _f(True, "schedule", "cosine decay after warmup")
    warmup_iters: int = _f(2000, "schedule", "linear warmup steps")
    lr_decay_iters: int = _f(600000, "schedule", "step where the cosine reaches min_lr (~max_iters)")
    min_lr: float = _f(6e-5, "schedule", "floor of the schedule (~learning_rate / 10)")
    warmdown_frac: float = _f(0.2, "schedule", "modern recipe: lr decays linearly to min_lr over this last fraction of max_iters (warmup-stable-decay)")
    # -- eval and logging ------------------------------------------------------------------
    eval_interval: int = _f(2000, "eval", "steps between train/val evaluations")
    eval_iters: int = _f(200, "eval", "batches averaged per evaluation")
    eval_fixed: bool = _f(False, "eval", "evaluate on the same batches at every eval (seeded by `seed`), so a curve's steps are the model's, not the draw's; on in pilots and comparisons")
    log_interval: int = _f(1, "eval", "steps between metric events")
    always_save_checkpoint: bool = _f(True, "eval", "checkpoint at every eval, not only when val loss improves")
    checkpoint_interval_s: float = _f(1800.0, "eval", "also checkpoint at least this often (seconds, 0 = off)")
    tensorboard_log: bool = _f(False, "eval", "also write TensorBoard event files into the run folder (pip install 'gpttui[tensorboard]')")
    sample_tokens: int = _f(32, "eval", "tokens sampled from sample_prompt at each evaluation (seeded: reproducible; 0 = off)")
    sample_prompt: str = _f("", "eval", "the fixed prompt of those samples ('' = the start of a document)")
    hellaswag_every: int = _f(1, "eval", "score HellaSwag on a fixed, seeded subset at every k-th evaluation (by iteration: iter // eval_interval divisible by k; 0 = off; needs `gpttui eval --download` once, else skipped with a warning)")
    hellaswag_examples: int = _f(0, "eval", "examples in that subset (0 = auto: about 10% of an evaluation's compute, from the model's FLOPs per token)")
    early_stop_patience: int = _f(0, "eval", "stop (checkpoint first) after this many evaluations without val loss improving (0 = off)")
    early_stop_min_delta: float = _f(0.0, "eval", "how much lower val loss must get to count as improving (early_stop_patience, early_stop_reference)")
    early_stop_reference: str = _f("", "eval", "a run id: stop (checkpoint first) once this run's forecast, band included, cannot end below that run's best val loss minus early_stop_min_delta ('' = off)")
    # -- system ----------------------------------------------------------------------------
    device: str = _f(AUTO, "system", "auto, cpu, cuda, cuda:N or mps")
    dtype: str = _f(AUTO, "system", "auto (bf16 if supported, else fp16 on CUDA; fp32 on CPU)", choices=(AUTO, "float32", "bfloat16", "float16"))
    compile: bool | str = _f(AUTO, "system", "torch.compile the model (auto = on for CUDA)", types=(bool, str), choices=(AUTO,))
    seed: int = _f(1337, "system", "random seed (data sampling and init)")
    chunked_loss: bool = _f(True, "system", "loss over row chunks, never all batch x block x vocab logits at once (same result, far less memory); false = nanoGPT's plain path")
    # -- requirements estimate -------------------------------------------------------------
    gpu: str = _f("", "estimate", "GPU to estimate for (e.g. 'RTX 4070'); empty = the one detected")
    n_gpus: int = _f(1, "estimate", "GPUs the run is planned on (torchrun --nproc_per_node)")
    assumed_mfu: float = _f(0.35, "estimate", "model FLOPs utilisation assumed for time estimates until a run measures it")
    electricity_price: float = _f(0.30, "estimate", "price of a kWh, for the cost estimate")
    currency: str = _f("EUR", "estimate", "currency of electricity_price")
    # -- nanoGPT compatibility (nanoGPT's names; most are accepted and not used) --------------
    out_dir: str = _f("", "compat", "nanoGPT's output folder; gpttui keeps runs in its data dir")
    init_from: str = _f("scratch", "compat", "scratch; gpt2, gpt2-medium, gpt2-large, gpt2-xl (local Hugging Face cache); a Hugging Face GPT-2 folder or a ckpt.pt to fine-tune (sets the model's shape); resume: use `gpttui --resume RUN`")
    eval_only: bool = _f(False, "compat", "nanoGPT: evaluate once and exit")
    backend: str = _f("nccl", "compat", "DDP backend under torchrun (gloo on CPU)", choices=("nccl", "gloo"))
    wandb_log: bool = _f(False, "compat", "also log to Weights & Biases (pip install 'gpttui[wandb]'; WANDB_MODE=offline logs into the run folder)")
    wandb_project: str = _f("", "compat", "W&B project (empty = gpttui)")
    wandb_run_name: str = _f("", "compat", "W&B run name (empty = the run's id)")

    # -- derived ---------------------------------------------------------------------------
    @property
    def tokens_per_iter(self) -> int | None:
        """Tokens per optimizer step, or None while batch_size is 'auto'."""
        if not isinstance(self.batch_size, int):
            return None
        return self.batch_size * self.block_size * self.gradient_accumulation_steps

    @property
    def total_tokens(self) -> int | None:
        t = self.tokens_per_iter
        return None if t is None else t * self.max_iters

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with `changes` applied: only the changed keys are checked for
        type; a changed `init_from` that names weights brings their shape, as in `build`."""
        new = {k: coerce(k, v, "override") for k, v in changes.items()}
        if "init_from" in new:
            new = _shaped({**to_dict(self), **new})
        cfg = dataclasses.replace(self, **new)
        validate(cfg, "override")
        return cfg


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in fields(TrainConfig)}

# Keys whose default is nanoGPT train.py's own (GPT-2 124M on 8 GPUs: 40 micro-batches of
# 12 x 1024, 600k steps, 2000 warmup): a preset that leaves one out inherits it. The other
# defaults are gpttui's (data, device and dtype 'auto', the estimate, the modern recipe).
NANOGPT_DEFAULTS = frozenset({
    "n_layer", "n_head", "n_embd", "block_size", "vocab_size", "dropout", "bias",
    "batch_size", "gradient_accumulation_steps", "learning_rate", "weight_decay", "beta1",
    "beta2", "grad_clip", "max_iters", "decay_lr", "warmup_iters", "lr_decay_iters", "min_lr",
    "eval_interval", "eval_iters", "log_interval", "always_save_checkpoint", "seed",
    "init_from", "eval_only", "backend", "wandb_log",
})


def origin(key: str, preset_keys: frozenset[str] | set[str], value: Any = None) -> str:
    """Where a config's value of `key` comes from: 'preset', "nanoGPT's default" or
    "gpttui's default" (the preset does not set it). `value`: the config's value, for the
    keys whose default a nanoGPT .py config gets from nanoGPT (NANOGPT_PY_DEFAULTS)."""
    if key in preset_keys:
        return "preset"
    if key in NANOGPT_DEFAULTS or (key in NANOGPT_PY_DEFAULTS and value == NANOGPT_PY_DEFAULTS[key]):
        return "nanoGPT's default"
    return "gpttui's default"

# What a run whose config.toml predates a key did: resuming it continues the same way.
BEFORE_KEY_EXISTED: dict[str, Any] = {"chunked_loss": False}


def field_types(name: str) -> tuple[type, ...]:
    f = FIELDS[name]
    if f.metadata.get("types"):
        return f.metadata["types"]
    return {"int": (int,), "float": (float,), "bool": (bool,), "str": (str,)}[str(f.type)]


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)}


# Names people write for a key under other conventions (HF, Megatron, shorthand).
ALIASES = {
    "lr": "learning_rate", "max_lr": "learning_rate", "min_learning_rate": "min_lr",
    "bs": "batch_size", "micro_batch_size": "batch_size", "batch": "batch_size",
    "grad_accum": "gradient_accumulation_steps", "accum_steps": "gradient_accumulation_steps",
    "gradient_accumulation": "gradient_accumulation_steps",
    "iters": "max_iters", "steps": "max_iters", "max_steps": "max_iters", "num_iters": "max_iters",
    "warmup": "warmup_iters", "warmup_steps": "warmup_iters", "decay_iters": "lr_decay_iters",
    "layers": "n_layer", "n_layers": "n_layer", "num_layers": "n_layer", "depth": "n_layer",
    "heads": "n_head", "n_heads": "n_head", "num_heads": "n_head",
    "d_model": "n_embd", "hidden_size": "n_embd", "n_embed": "n_embd", "embd": "n_embd",
    "context": "block_size", "context_length": "block_size", "seq_len": "block_size",
    "sequence_length": "block_size", "ctx": "block_size", "vocab": "vocab_size",
    "wd": "weight_decay", "clip": "grad_clip", "max_grad_norm": "grad_clip",
    "precision": "dtype", "gpus": "n_gpus", "num_gpus": "n_gpus", "price": "electricity_price",
    "mfu": "assumed_mfu",
}


def _unknown(key: str, source: str) -> ConfigError:
    alias = ALIASES.get(key.lower().replace("-", "_"))
    close = [alias] if alias else difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else "see `gpttui --estimate demo --json` for every key"
    return ConfigError(f"{_at(source)}unknown key '{key}'", hint, key=key)


def _at(source: str) -> str:
    """The message's prefix naming where a value came from ('' in the editor: the field says it)."""
    return f"{source}: " if source else ""


def coerce(key: str, value: Any, source: str = "config") -> Any:
    """Check `value` against the field's type; ints are accepted where floats are."""
    if key not in FIELDS:
        raise _unknown(key, source)
    types = field_types(key)
    choices = FIELDS[key].metadata.get("choices") or ()
    if isinstance(value, bool) and bool not in types:
        raise _type_error(key, value, types, source)
    if isinstance(value, int) and not isinstance(value, bool) and float in types and int not in types:
        value = float(value)
    if isinstance(value, float) and int in types and float not in types and value.is_integer() and abs(value) < 2**53:
        value = int(value)  # 1e3 written for an int
    if not isinstance(value, types):
        raise _type_error(key, value, types, source)
    if isinstance(value, str) and choices and (str not in types or FIELDS[key].metadata.get("types")):
        # a str in a mixed field (int|'auto', bool|'auto') must be one of the choices
        if value not in choices:
            raise ConfigError(f"{_at(source)}'{key}' = {value!r} is not allowed", f"use one of {', '.join(map(repr, choices))}", key=key)
    elif isinstance(value, str) and choices and value not in choices:
        raise ConfigError(f"{_at(source)}'{key}' = {value!r} is not allowed", f"use one of {', '.join(map(repr, choices))}", key=key)
    return value


def _type_error(key: str, value: Any, types: tuple, source: str) -> ConfigError:
    want = " or ".join("'auto'" if t is str and FIELDS[key].metadata.get("choices") else t.__name__ for t in types)
    return ConfigError(f"{_at(source)}'{key}' must be {want}, got {type(value).__name__} {value!r}",
                       f"write e.g. {key} = {_example(key)}", key=key)


def _example(key: str) -> str:
    d = FIELDS[key].default
    return repr(d).replace("True", "true").replace("False", "false") if not isinstance(d, str) else f'"{d}"'


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one `--set key=value`; the value is read as the key's type."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value", "e.g. --set batch_size=8")
    key, raw = (s.strip() for s in text.split("=", 1))
    return key, parse_value(key, raw, "--set")


TRUE_WORDS, FALSE_WORDS = frozenset({"true", "yes", "on", "1"}), frozenset({"false", "no", "off", "0"})


def parse_value(key: str, raw: str, source: str = "") -> Any:
    """`raw`, typed-in text, read as `key`'s type and checked by `coerce`: the one reader
    of `--set` values and the editor's fields. `source` '' (the editor) words the error
    for a field ("must be a whole number, got 'x' — e.g. 12"), '--set' for the CLI."""
    if key not in FIELDS:
        raise _unknown(key, source)
    types, raw = field_types(key), raw.strip()
    low = raw.lower()
    if bool in types and int not in types and low in TRUE_WORDS | FALSE_WORDS:
        return coerce(key, low in TRUE_WORDS, source)
    if int in types and bool not in types:
        try:
            return coerce(key, int(raw.replace("_", "")), source)
        except ValueError:
            try:
                fv = float(raw)
                if fv.is_integer():
                    return coerce(key, int(fv), source)
            except ValueError:
                pass
    if float in types:
        try:
            return coerce(key, float(raw), source)
        except ValueError:
            raise _text_error(key, raw, source, "a number", str(FIELDS[key].default)) from None
    if str in types:
        return coerce(key, raw, source)
    cli = source == "--set"
    want = " or ".join(t.__name__ for t in types) if cli else " or ".join(
        {int: "a whole number", bool: "true or false"}.get(t, t.__name__) for t in types)
    raise _text_error(key, raw, source, want, _example(key) if cli else _as_typed(FIELDS[key].default))


def _text_error(key: str, raw: str, source: str, want: str, example: str) -> ConfigError:
    eg = f"e.g. --set {key}={example}" if source == "--set" else f"e.g. {example}"
    return ConfigError(f"{_at(source)}'{key}' must be {want}, got {raw!r}", eg, key=key)


def _as_typed(value: Any) -> str:
    """A value as one types it into a field (true/false, plain numbers and text)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def build(values: dict[str, Any], overrides: list[str] | tuple[str, ...] = (), source: str = "preset",
          pretrained: bool = True) -> TrainConfig:
    """The one builder of a TrainConfig: defaults ← `values` ← `--set` overrides ← the
    shape of the weights `init_from` names (`pretrained`; False for a run's own saved
    config, which holds its shape already, and to check typed values without reading
    weights), validated once at the end."""
    merged = {k: coerce(k, v, source) for k, v in values.items()}
    overridden = {}
    for text in overrides:
        key, value = parse_override(text)
        merged[key] = overridden[key] = value
    _check_short_run(merged, overridden)
    if pretrained:
        merged = _shaped(merged)
    cfg = TrainConfig(**merged)
    validate(cfg, source if not overrides else f"{source} + --set")
    return cfg


def _check_short_run(merged: dict[str, Any], overridden: dict[str, Any]) -> None:
    """`--set max_iters=N` shorter than the warmup the preset keeps (nanoGPT's configs leave
    warmup_iters at train.py's 2000): say where that warmup comes from and the exact fix."""
    if "max_iters" not in overridden or "warmup_iters" in overridden or "decay_lr" in overridden:
        return
    n = overridden["max_iters"]
    warmup = merged.get("warmup_iters", FIELDS["warmup_iters"].default)
    if not merged.get("decay_lr", True) or not isinstance(n, int) or n < 1 or warmup <= n:
        return
    where = ("the preset's warmup_iters" if "warmup_iters" in merged
             else "warmup_iters, nanoGPT's default the preset keeps,")
    raise ConfigError(f"--set max_iters={n} is shorter than {where} = {warmup}",
                      f"add --set warmup_iters={n // 20} (about 5 % of max_iters), or --set decay_lr=false "
                      "for a constant learning rate", key="warmup_iters")


def _shaped(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the shape pretrained weights impose (scratch / resume: unchanged);
    a failure to read them is init_from's fault."""
    from gpttui.weights.pretrained import apply_shape

    try:
        return apply_shape(values)
    except ConfigError as e:
        e.key = e.key or "init_from"
        raise


def validate(cfg: TrainConfig, source: str = "config") -> None:
    """Raise a one-line ConfigError for the first value that cannot work."""

    def bad(key: str, why: str, fix: str) -> ConfigError:
        return ConfigError(f"{_at(source)}'{key}' = {getattr(cfg, key)!r} {why}", fix, key=key)

    for key in ("n_layer", "n_head", "n_embd", "block_size", "gradient_accumulation_steps",
                "max_iters", "eval_interval", "eval_iters", "log_interval", "n_gpus"):
        if getattr(cfg, key) < 1:
            raise bad(key, "must be at least 1", f"set {key} to a positive integer")
    if isinstance(cfg.batch_size, int) and cfg.batch_size < 1:
        raise bad("batch_size", "must be at least 1", "set batch_size to a positive integer or 'auto'")
    if cfg.n_embd % cfg.n_head:
        raise bad("n_embd", f"is not divisible by n_head = {cfg.n_head}", f"pick n_embd a multiple of {cfg.n_head}, e.g. {cfg.n_head * max(1, round(cfg.n_embd / cfg.n_head))}")
    if cfg.vocab_size < 50257:
        raise bad("vocab_size", "is smaller than GPT-2's 50,257 tokens", "use 50304 (padded) or 50257")
    for key in ("learning_rate",):
        if not cfg.learning_rate > 0 or not math.isfinite(cfg.learning_rate):
            raise bad(key, "must be > 0", "typical values are 1e-4 … 1e-3")
    if cfg.min_lr < 0:
        raise bad("min_lr", "must be >= 0", "use about learning_rate / 10")
    if cfg.decay_lr and cfg.min_lr > cfg.learning_rate:
        raise bad("min_lr", f"is above learning_rate = {cfg.learning_rate:g}", "use about learning_rate / 10")
    if not 0 <= cfg.dropout < 1:
        raise bad("dropout", "must be in [0, 1)", "use 0 for pretraining, 0.1–0.2 against overfitting")
    for key in ("beta1", "beta2"):
        if not 0 <= getattr(cfg, key) < 1:
            raise bad(key, "must be in [0, 1)", "typical: beta1 0.9, beta2 0.95–0.99")
    for key in ("weight_decay", "muon_weight_decay", "grad_clip", "checkpoint_interval_s", "electricity_price", "warmup_iters", "dataset_tokens",
                "sample_tokens", "early_stop_patience", "early_stop_min_delta", "hellaswag_every", "hellaswag_examples"):
        if getattr(cfg, key) < 0:
            raise bad(key, "must be >= 0", f"set {key} to 0 or more")
    if cfg.decay_lr and cfg.warmup_iters > cfg.max_iters:  # decay_lr = false: constant lr, no warmup
        raise bad("warmup_iters", f"is more than max_iters = {cfg.max_iters}", "warm up for a few % of max_iters")
    if cfg.decay_lr and cfg.lr_decay_iters < cfg.warmup_iters:
        raise bad("lr_decay_iters", f"is less than warmup_iters = {cfg.warmup_iters}", "set lr_decay_iters to about max_iters")
    _validate_modern(cfg, bad)
    if not 0 < cfg.val_fraction < 0.5:
        raise bad("val_fraction", "must be in (0, 0.5)", "e.g. 0.0005 for large data, 0.05 for small")
    if not 0 < cfg.assumed_mfu <= 1:
        raise bad("assumed_mfu", "must be in (0, 1]", "0.3–0.5 is typical for a compiled GPT on one GPU")
    dev = cfg.device
    if not (dev in {"auto", "cpu", "cuda", "mps"} or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise bad("device", "is not a device", "use auto, cpu, cuda, cuda:N or mps")
    if not cfg.dataset:
        raise bad("dataset", "is empty", "name the prepared dataset, e.g. dataset = \"fineweb-000\"")
    from gpttui.paths import check_name

    try:
        check_name(cfg.dataset, "dataset name")
    except Exception as e:
        raise ConfigError(f"{_at(source)}'dataset' = {cfg.dataset!r} is not a valid dataset name",
                          "use letters, digits, '.', '_' or '-'", key="dataset") from e


def _validate_modern(cfg: TrainConfig, bad: Any) -> None:
    """The modern recipe's knobs (checked whatever the recipe, so a preset switched to
    'modern' later never meets a bad value)."""
    for key in ("muon_lr", "embed_lr"):
        if not getattr(cfg, key) > 0 or not math.isfinite(getattr(cfg, key)):
            raise bad(key, "must be > 0", "typical: muon_lr 0.02-0.05, embed_lr 0.1-0.6")
    if not 0 <= cfg.muon_momentum < 1:
        raise bad("muon_momentum", "must be in [0, 1)", "typical: 0.95")
    if not 0 <= cfg.warmdown_frac <= 1:
        raise bad("warmdown_frac", "must be in [0, 1]", "typical: 0.3-0.5 of the run")
    if cfg.logit_softcap < 0 or not math.isfinite(cfg.logit_softcap):
        raise bad("logit_softcap", "must be >= 0", "15 (nanochat), or 0 for no cap")
    if cfg.recipe == "modern" and (cfg.n_embd // cfg.n_head) % 2:
        raise bad("n_head", f"gives an odd head size {cfg.n_embd // cfg.n_head}, which rotary cannot split in pairs",
                  "pick n_head so that n_embd / n_head is even")
    if cfg.recipe == "modern" and cfg.bias:
        raise bad("bias", "is not supported by the modern recipe (it has no biases)", "set bias = false or recipe = \"gpt2\"")
    if cfg.recipe == "modern" and cfg.dropout > 0:
        raise bad("dropout", "is not supported by the modern recipe", "set dropout = 0 (pretraining) or recipe = \"gpt2\"")
    if cfg.recipe != "modern" and cfg.tie_head:
        raise bad("tie_head", "only applies to the modern recipe (the GPT-2 recipe always ties its head)",
                  "remove tie_head, or set recipe = \"modern\"")


# -- reading files -------------------------------------------------------------------------

def read_toml(path: Path) -> dict[str, Any]:
    """Flat key/value pairs of a TOML preset; tables (e.g. [model]) are flattened."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such preset file", "check the path or run `gpttui presets`") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML ({e})", "fix the line it names") from None
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict) and key in GROUPS:
            flat.update(value)
        else:
            flat[key] = value
    return flat


NANOGPT_DATASET = "openwebtext"  # nanoGPT's train.py: dataset = 'openwebtext' unless a config says
# Keys where a nanoGPT .py config that leaves them out gets nanoGPT's train.py default, not
# gpttui's (a TOML preset gets gpttui's: its demo dataset).
NANOGPT_PY_DEFAULTS: dict[str, Any] = {"dataset": NANOGPT_DATASET}


def read_nanogpt_py(path: Path, warn: Any = None, inherited: set[str] | None = None) -> dict[str, Any]:
    """Settings of a nanoGPT config file, by `gpttui.pyconfig`'s safe evaluator of constant
    expressions (never executed); a line that needs code is skipped and `warn(text)` is
    called with a line naming its key (default: printed to stderr). A key of
    NANOGPT_PY_DEFAULTS the file leaves out gets nanoGPT's default, and is added to
    `inherited` (the file did not set it)."""
    from gpttui import pyconfig

    values, skipped = pyconfig.read(path)
    for sk in skipped:
        (warn or _warn_stderr)(sk.text(path))
    for key, value in NANOGPT_PY_DEFAULTS.items():  # nanoGPT's train.py default, not gpttui's demo
        if key not in values:
            values[key] = value
            if inherited is not None:
                inherited.add(key)
    return values


def _warn_stderr(text: str) -> None:
    import sys

    print(f"gpttui: warning: {text}", file=sys.stderr)


def load_file(path: Path, inherited: set[str] | None = None) -> dict[str, Any]:
    """Values from a TOML preset or a nanoGPT `.py` config, by suffix; `inherited` gets the
    keys filled with nanoGPT's defaults (see read_nanogpt_py)."""
    if path.suffix == ".py":
        return read_nanogpt_py(path, inherited=inherited)
    return read_toml(path)


def to_toml(cfg: TrainConfig, only_changed: bool = True) -> str:
    """TOML text of the config (only values that differ from the defaults by default)."""
    import tomli_w

    d = to_dict(cfg)
    if only_changed:
        d = {k: v for k, v in d.items() if v != FIELDS[k].default or k == "description"}
    return tomli_w.dumps(d)
