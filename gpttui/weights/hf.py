"""Hugging Face GPT-2 weights in and out: key names, Conv1D transposes, config.json, tokenizer.

Hugging Face's `GPT2LMHeadModel` stores the same tensors as nanoGPT under other names and
with four projection weights transposed (its `Conv1D` keeps weights as (in, out), an
`nn.Linear` as (out, in)). This module maps between the two, reads and writes
`model.safetensors` + `config.json`, finds nanoGPT's named models ('gpt2', 'gpt2-xl', ...)
in the local Hugging Face cache, and writes GPT-2's tokenizer files next to an export.
Nothing here ever downloads. torch and safetensors are imported inside the functions that
need them (config.py asks this module for a model's shape without loading torch).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpttui.errors import ConfigError, RunError
from gpttui.weights.layout import is_buffer

# nanoGPT's `from_pretrained` table: the shape of each named GPT-2 (all have bias, 50257
# tokens and 1024 positions).
NAMED = {
    "gpt2": {"n_layer": 12, "n_head": 12, "n_embd": 768},
    "gpt2-medium": {"n_layer": 24, "n_head": 16, "n_embd": 1024},
    "gpt2-large": {"n_layer": 36, "n_head": 20, "n_embd": 1280},
    "gpt2-xl": {"n_layer": 48, "n_head": 25, "n_embd": 1600},
}
GPT2_VOCAB = 50257
# Weights Hugging Face keeps in Conv1D layout (transposed against nn.Linear).
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# Buffers older HF files carry (the causal mask); not weights.
WEIGHTS = "model.safetensors"


def hub_dirs() -> list[Path]:
    """Where the Hugging Face cache may be, in the order huggingface_hub looks."""
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    xdg = os.environ.get("XDG_CACHE_HOME")
    dirs.append((Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub")
    return dirs


def find_cached(name: str) -> Path | None:
    """The snapshot folder of `name` (e.g. 'gpt2') holding config.json + model.safetensors."""
    for hub in hub_dirs():
        repo = hub / f"models--{name.replace('/', '--')}"
        snaps = repo / "snapshots"
        if not snaps.is_dir():
            continue
        ref = repo / "refs" / "main"
        order = [snaps / ref.read_text().strip()] if ref.is_file() else []
        order += sorted(snaps.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        for snap in order:
            if (snap / "config.json").is_file() and (snap / WEIGHTS).is_file():
                return snap
    return None


def not_cached(name: str) -> ConfigError:
    where = " or ".join(str(d) for d in hub_dirs())
    return ConfigError(
        f"init_from = '{name}': not found in the Hugging Face cache ({where}); gpttui never downloads",
        f"on a connected machine run `huggingface-cli download {name} config.json model.safetensors` "
        f"(or `hf download ...`) and copy ~/.cache/huggingface over, or set init_from to the folder",
    )


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def read_config(folder: Path) -> dict[str, Any]:
    """gpttui's model shape from a Hugging Face GPT-2 `config.json`."""
    path = folder / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not readable JSON ({e})", "point init_from at a Hugging Face GPT-2 folder") from None
    if raw.get("model_type", "gpt2") != "gpt2":
        raise ConfigError(f"{path}: model_type '{raw.get('model_type')}' is not GPT-2",
                          "only GPT-2-architecture weights fit gpttui's model")
    try:
        return {"n_layer": int(raw["n_layer"]), "n_head": int(raw["n_head"]), "n_embd": int(raw["n_embd"]),
                "block_size": int(raw.get("n_positions", raw.get("n_ctx", 1024))),
                "vocab_size": int(raw.get("vocab_size", GPT2_VOCAB)), "bias": True}
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{path}: no usable {e} in the GPT-2 config", "the folder's config.json is damaged") from None


# -- reading ----------------------------------------------------------------------------------

def read_state(folder: Path) -> dict[str, Any]:
    """nanoGPT-named tensors from a Hugging Face GPT-2 folder (Conv1D weights transposed)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = folder / WEIGHTS
    if not path.is_file():
        bin_hint = " (only pytorch_model.bin is there: re-save it with safe_serialization=True)" \
            if (folder / "pytorch_model.bin").is_file() else ""
        raise ConfigError(f"{folder}: no {WEIGHTS}{bin_hint}", "gpttui reads safetensors weights only")
    try:
        raw = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ConfigError(f"{path}: not readable safetensors ({e})", "the file is truncated or damaged") from None
    out: dict[str, Any] = {}
    for key, tensor in raw.items():
        if is_buffer(key) or key == "lm_head.weight":
            continue  # the mask buffer; the head is tied to wte
        name = key.removeprefix("transformer.")
        t = tensor.t() if name.endswith(CONV1D) else tensor
        out[f"transformer.{name}"] = t.contiguous()
    if "transformer.wte.weight" in out:
        out["lm_head.weight"] = out["transformer.wte.weight"]
    return out


# -- writing ----------------------------------------------------------------------------------

def to_hf_state(state: Mapping[str, Any], n_layer: int, vocab: int = GPT2_VOCAB) -> dict[str, Any]:
    """Hugging Face names and layout for a nanoGPT state dict; missing biases (bias=False)
    become zeros, the embedding is cropped to GPT-2's `vocab` real tokens."""
    import torch

    out: dict[str, Any] = {}
    for key, t in state.items():
        if key == "lm_head.weight" or is_buffer(key):
            continue
        name = key.removeprefix("transformer.")
        if name == "wte.weight":
            t = t[:vocab]
        t = t.detach().to("cpu", torch.float32)
        out[f"transformer.{name}"] = (t.t() if name.endswith(CONV1D) else t).contiguous()
    width = out["transformer.wte.weight"].shape[1]
    zeros = {"ln_1": width, "ln_2": width, "attn.c_attn": 3 * width, "attn.c_proj": width,
             "mlp.c_fc": 4 * width, "mlp.c_proj": width}
    for i in range(n_layer):
        for mod, n in zeros.items():
            out.setdefault(f"transformer.h.{i}.{mod}.bias", torch.zeros(n))
    out.setdefault("transformer.ln_f.bias", torch.zeros(width))
    return out


def hf_config(model_args: Mapping[str, Any], vocab: int = GPT2_VOCAB) -> dict[str, Any]:
    """A `config.json` for GPT2LMHeadModel. GELU is the exact one gpttui trains with ('gelu'),
    not GPT-2's tanh approximation ('gelu_new'), so logits match."""
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": vocab, "n_positions": int(model_args["block_size"]), "n_ctx": int(model_args["block_size"]),
        "n_embd": int(model_args["n_embd"]), "n_layer": int(model_args["n_layer"]), "n_head": int(model_args["n_head"]),
        "n_inner": None, "activation_function": "gelu", "layer_norm_epsilon": 1e-5,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "initializer_range": 0.02,
        "scale_attn_weights": True, "tie_word_embeddings": True, "use_cache": True,
        "bos_token_id": 50256, "eos_token_id": 50256, "torch_dtype": "float32",
    }


def write_tokenizer(folder: Path, max_length: int) -> None:
    """GPT-2's slow-tokenizer files (vocab.json, merges.txt) from the offline copies gpttui
    already verifies, plus the tokenizer config naming <|endoftext|> as bos/eos/unk."""
    from gpttui.fsutil import atomic_write_text
    from gpttui.tokenizer import ENCODER_JSON_SHA256, VOCAB_BPE_SHA256, bpe_files, checked_bytes

    bpe, encoder = bpe_files()
    atomic_write_text(folder / "vocab.json", checked_bytes(encoder, ENCODER_JSON_SHA256).decode("utf-8"))
    atomic_write_text(folder / "merges.txt", checked_bytes(bpe, VOCAB_BPE_SHA256).decode("utf-8"))
    eot = "<|endoftext|>"
    atomic_write_text(folder / "tokenizer_config.json", json.dumps({
        "tokenizer_class": "GPT2Tokenizer", "model_max_length": max_length, "add_prefix_space": False,
        "bos_token": eot, "eos_token": eot, "unk_token": eot}, indent=1) + "\n")
    atomic_write_text(folder / "special_tokens_map.json",
                      json.dumps({"bos_token": eot, "eos_token": eot, "unk_token": eot}, indent=1) + "\n")


def write_folder(folder: Path, state: Mapping[str, Any], model_args: Mapping[str, Any]) -> Path:
    """model.safetensors + config.json + tokenizer files in `folder` (created if needed)."""
    from safetensors.torch import save_file

    from gpttui.fsutil import atomic_write_text

    vocab = int(model_args["vocab_size"])
    if vocab < GPT2_VOCAB:
        raise RunError(f"vocab_size {vocab} is below GPT-2's {GPT2_VOCAB}", "only GPT-2-vocabulary models export")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"{folder}: cannot create the export folder ({e.strerror})", "pick a writable folder") from None
    tensors = to_hf_state(state, int(model_args["n_layer"]))
    _write_weights(folder / WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    try:
        atomic_write_text(folder / "config.json", json.dumps(hf_config(model_args), indent=1) + "\n")
        write_tokenizer(folder, int(model_args["block_size"]))
    except OSError as e:
        from gpttui.faults import os_error

        raise os_error(e, "the export", folder) from None
    return folder


EXPORT_FILES = (WEIGHTS, "config.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")


def check_target(folder: Path, force: bool) -> None:
    """RunError when `folder` already holds files an export writes (unless `force`), or is
    a file: an export never overwrites a model without being told to."""
    if folder.exists() and not folder.is_dir():
        raise RunError(f"{folder} is a file, not a folder", "pick a folder for the export")
    there = [name for name in EXPORT_FILES if (folder / name).exists()]
    if there and not force:
        raise RunError(f"{folder} already holds {', '.join(there)}",
                       "pass --force to overwrite them, or pick another folder")


def _write_weights(path: Path, save: Any) -> None:
    """`save(tmp)` into a temporary sibling of `path`, fsync, rename: a full disk (OSError
    or safetensors' own error saying so) is one line and leaves `path` as it was."""
    import tempfile

    from safetensors import SafetensorError

    from gpttui.faults import os_error
    from gpttui.fsutil import fsync_dir

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except (OSError, SafetensorError) as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, SafetensorError):
            if "No space left" not in str(e):
                raise RunError(f"cannot write {path}: {e}", "check the folder's disk") from None
            e = OSError(errno.ENOSPC, "No space left on device", str(path))
        raise os_error(e, "the exported model", path) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
