"""`init_from`: start a run from pretrained weights, and `gpttui export`: take them out.

`init_from` takes nanoGPT's values and two more:
- 'scratch' (random init) and 'resume' (nanoGPT's; in gpttui `gpttui --resume RUN`);
- 'gpt2', 'gpt2-medium', 'gpt2-large', 'gpt2-xl': GPT-2 from the local Hugging Face cache;
- a Hugging Face GPT-2 folder (config.json + model.safetensors);
- a nanoGPT or gpttui `ckpt.pt` (or a folder holding one, e.g. a run folder).

As in nanoGPT, the pretrained model decides the shape (n_layer, n_head, n_embd, vocab_size,
bias); block_size may only shrink (the position table is cropped). `config.build` applies
the shape when a preset is read, so estimates and the run's config.toml show the real
model; the loop then loads the weights with `load_weights` and checks every tensor.
No torch at module level: config.py calls `apply_shape` on the light path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpttui.errors import ConfigError, RunError
from gpttui.weights import hf
from gpttui.weights.layout import state_shape, tied_state

NO_WEIGHTS = ("scratch", "resume")
SHAPE = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "bias")


@dataclass(frozen=True)
class Source:
    kind: str  # "hf" (config.json + model.safetensors) or "nanogpt" (ckpt.pt)
    path: Path  # the HF folder, or the ckpt.pt file
    label: str  # what the user wrote


def wants_weights(init_from: str) -> bool:
    return init_from not in NO_WEIGHTS


def check_available(init_from: str) -> None:
    """Raise now, as one line, when `init_from`'s weights are not on this machine: called
    before a run folder is created or a dataset prepared, so a failure leaves nothing behind."""
    if wants_weights(init_from):
        locate(init_from)


def locate(init_from: str) -> Source:
    """Where `init_from`'s weights are; a ConfigError saying what to do when they are not."""
    if init_from in hf.NAMED:
        snap = hf.find_cached(init_from)
        if snap is None:
            raise hf.not_cached(init_from)
        return Source("hf", snap, init_from)
    path = Path(init_from).expanduser()
    if hf.is_hf_folder(path):
        return Source("hf", path, init_from)
    if path.is_file() and path.name == hf.WEIGHTS and hf.is_hf_folder(path.parent):
        return Source("hf", path.parent, init_from)
    if path.is_dir() and (path / "ckpt.pt").is_file():
        return Source("nanogpt", path / "ckpt.pt", init_from)
    if path.is_file() and path.suffix in (".pt", ".pth", ".ckpt"):
        return Source("nanogpt", path, init_from)
    what = "no such file or folder" if not path.exists() else "neither a Hugging Face GPT-2 folder nor a ckpt.pt"
    raise ConfigError(f"init_from = {init_from!r}: {what}",
                      f"use 'scratch', {', '.join(repr(n) for n in hf.NAMED)}, a folder with config.json + "
                      "model.safetensors, or a ckpt.pt")


def source_shape(init_from: str) -> dict[str, Any]:
    """The model shape `init_from`'s weights have (named GPT-2s from nanoGPT's table, so an
    estimate works before the weights are on this machine)."""
    if init_from in hf.NAMED:
        return {**hf.NAMED[init_from], "block_size": 1024, "vocab_size": hf.GPT2_VOCAB, "bias": True}
    src = locate(init_from)
    if src.kind == "hf":
        return hf.read_config(src.path)
    from gpttui.weights.checkpoint import load_checkpoint, model_args

    try:
        args = model_args(load_checkpoint(src.path))
    except RunError as e:
        raise ConfigError(f"init_from: {e.args[0]}", e.hint) from None
    missing = [k for k in SHAPE if k not in args]
    if missing:
        raise ConfigError(f"init_from = {init_from!r}: the checkpoint does not say its {', '.join(missing)}",
                          "re-save it with nanoGPT's model_args")
    return {k: args[k] for k in SHAPE}


def apply_shape(values: dict[str, Any]) -> dict[str, Any]:
    """`values` (a config being built) with the pretrained model's shape, as nanoGPT does;
    a block_size the user set below the model's is kept (the position table is cropped)."""
    init = values.get("init_from", "scratch")
    if not wants_weights(init):
        return values
    try:
        shape = source_shape(init)
    except ConfigError:
        if all(k in values for k in SHAPE):  # a run's own full config (resume --set): its shape stands,
            return values                     # the weights come from its checkpoint
        raise
    out = {**values, **{k: shape[k] for k in ("n_layer", "n_head", "n_embd", "vocab_size", "bias")}}
    block = values.get("block_size")
    out["block_size"] = block if isinstance(block, int) and 0 < block < shape["block_size"] else shape["block_size"]
    return out


def read_weights(src: Source) -> dict[str, Any]:
    """nanoGPT-named tensors of `src` (on the CPU), lm_head tied to wte."""
    if src.kind == "hf":
        return hf.read_state(src.path)
    from gpttui.weights.checkpoint import load_checkpoint

    return tied_state(load_checkpoint(src.path)["model"])


def check_fits(label: str, state: dict[str, Any], cfg: Any, expected: dict[str, Any]) -> None:
    """One-line RunError naming the first way the weights differ from the run's model."""
    got = state_shape(state)
    got.setdefault("n_layer", 0)
    hint = "leave n_layer, n_head, n_embd, vocab_size and bias unset: init_from decides the model's shape"
    for key in ("n_layer", "n_embd", "vocab_size", "bias"):
        if key in got and got[key] != getattr(cfg, key):
            raise RunError(f"init_from {label}: {key} {got[key]} in the weights vs {getattr(cfg, key)} in the run's config", hint)
    if got.get("block_size", cfg.block_size) < cfg.block_size:
        raise RunError(f"init_from {label}: block_size {cfg.block_size} is longer than the weights' {got['block_size']} positions",
                       f"set block_size to {got['block_size']} or less")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        what = ", ".join([f"missing {k}" for k in missing[:2]] + [f"unexpected {k}" for k in unexpected[:2]])
        raise RunError(f"init_from {label}: the weights do not fit a GPT-2 ({what})", "use GPT-2-architecture weights")
    for key, want in expected.items():
        if tuple(state[key].shape) != tuple(want.shape):
            raise RunError(f"init_from {label}: {key} is {list(state[key].shape)} in the weights, the model needs "
                           f"{list(want.shape)}", "the weights file does not match its own config")


def load_weights(model: Any, cfg: Any, log: Callable[[str], None]) -> None:
    """Copy `cfg.init_from`'s weights into `model` (built from `cfg`), checked tensor by tensor."""
    import torch

    src = locate(cfg.init_from)
    state = read_weights(src)
    wpe = state.get("transformer.wpe.weight")
    if wpe is not None and wpe.shape[0] > cfg.block_size:
        state["transformer.wpe.weight"] = wpe[: cfg.block_size]  # nanoGPT's crop_block_size
    expected = model.state_dict()
    check_fits(src.label, state, cfg, expected)
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
    n = sum(p.numel() for p in model.parameters())
    cropped = f", positions cropped from {wpe.shape[0]}" if wpe is not None and wpe.shape[0] > cfg.block_size else ""
    log(f"init_from {src.label}: {n / 1e6:.2f}M pretrained parameters from {src.path}; shape from the weights: "
        f"n_layer {cfg.n_layer}, n_head {cfg.n_head}, n_embd {cfg.n_embd}, vocab_size {cfg.vocab_size}, "
        f"bias {cfg.bias}, block_size {cfg.block_size}{cropped}")


# -- export -------------------------------------------------------------------------------------

FORMATS = {"hf": "a Hugging Face GPT-2 folder (model.safetensors, config.json, GPT-2 tokenizer)"}


def export(ckpt_path: Path, out: Path, fmt: str = "hf", force: bool = False) -> tuple[Path, dict[str, Any]]:
    """Write the checkpoint's model to `out` in `fmt`; returns the folder and model_args.
    Files already in `out` are refused unless `force`."""
    from gpttui.weights.checkpoint import load_model

    if fmt not in FORMATS:
        raise RunError(f"export format {fmt!r} is not supported",
                       "use " + "; ".join(f"--format {k}: {v}" for k, v in FORMATS.items()))
    hf.check_target(out, force)
    model, ckpt = load_model(ckpt_path, recipe="gpt2")  # a modern checkpoint: one-line refusal
    args = model.config.to_dict()
    hf.write_folder(out, model.state_dict(), args)
    return out, {**args, "iter_num": int(ckpt.get("iter_num", 0))}
