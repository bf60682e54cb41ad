"""Checkpoints: atomic save, safe load, nanoGPT's keys, RNG and sampler state for exact resume.

A checkpoint is a plain dict saved with `torch.save`. It holds nanoGPT's keys (`model`,
`optimizer`, `model_args`, `iter_num`, `best_val_loss`, `config`), so nanoGPT's
`sample.py` reads ours, plus gpttui's (`scaler`, `rng`, `sampler`, `tokens_seen`,
`elapsed_s`, `format`). Everything in it is a tensor, dict, list, tuple, number, string or
None, so it loads with `torch.load(weights_only=True)`: opening a checkpoint someone sent
you cannot run code.

Saving writes a temporary sibling, fsyncs it and renames it over the old file: a `kill -9`
at any moment leaves the previous checkpoint whole. Temporaries orphaned by a kill are
removed by the next save (the run lock guarantees one writer per run).
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gpttui.errors import RunError, first_line
from gpttui.faults import is_user_os_error, os_error, pause_point
from gpttui.fsutil import atomic_open, fsync_dir
from gpttui.weights.layout import state_shape, tied_state

FORMAT = "gpttui-ckpt-1"
CKPT_NAME = "ckpt.pt"
BEST_NAME = "best.pt"  # the checkpoint of the best val loss so far, beside the latest
# Wrapper prefixes that must never reach a checkpoint: torch.compile and DDP.
WRAPPER_PREFIXES = ("_orig_mod.", "module.")
# Buffers older nanoGPT / HF GPT-2 state dicts carry that our SDPA attention does not have.


# -- state dicts ---------------------------------------------------------------------------

def strip_prefixes(state: Mapping[str, Any]) -> dict[str, Any]:
    """Keys without any leading `_orig_mod.` / `module.` (in any order, repeated)."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP and torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, torch.nn.parallel.DistributedDataParallel) or (
            hasattr(model, "module") and isinstance(model.module, torch.nn.Module)
        ):
            model = model.module
        else:
            return model


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict with wrapper prefixes removed (nanoGPT key names)."""
    return strip_prefixes(unwrap(model).state_dict())


# -- RNG ------------------------------------------------------------------------------------

def capture_rng() -> dict[str, Any]:
    """Python, NumPy, torch CPU and (if present) CUDA generator states, as plain values."""
    np_state = np.random.get_state(legacy=False)
    rng: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(state: Mapping[str, Any]) -> None:
    """Restore what `capture_rng` captured; accepts the rng dict or a whole checkpoint."""
    rng = state["rng"] if "rng" in state else state
    if not rng:
        return
    if "python" in rng:
        version, internal, gauss = rng["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in rng:
        n = rng["numpy"]
        np.random.set_state({
            "bit_generator": n["bit_generator"],
            "state": {"key": np.asarray(n["key"].cpu().numpy(), dtype=np.uint32), "pos": int(n["pos"])},
            "has_gauss": int(n["has_gauss"]),
            "gauss": float(n["gauss"]),
        })
    if "torch" in rng:
        torch.set_rng_state(rng["torch"].cpu())
    cuda = rng.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


# -- building and saving --------------------------------------------------------------------

def plain(obj: Any) -> Any:
    """`obj` with NumPy arrays and scalars turned into tensors and Python numbers, so the
    checkpoint loads with weights_only=True."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    return obj


def build_checkpoint(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scaler: Any,
    model_args: Mapping[str, Any],
    iter_num: int,
    best_val_loss: float,
    config_dict: Mapping[str, Any],
    sampler_state: Mapping[str, Any] | None,
    tokens_seen: int,
    elapsed_s: float,
) -> dict[str, Any]:
    """A checkpoint dict with nanoGPT's keys and gpttui's, RNG captured now."""
    scaler_state = scaler.state_dict() if scaler is not None and getattr(scaler, "is_enabled", lambda: True)() else None
    return {
        "format": FORMAT,
        "model": model_state(model),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "model_args": dict(model_args),
        "iter_num": int(iter_num),
        "best_val_loss": float(best_val_loss),
        "config": plain(dict(config_dict)),
        "scaler": plain(scaler_state),
        "rng": capture_rng(),
        "sampler": plain(dict(sampler_state)) if sampler_state is not None else None,
        "tokens_seen": int(tokens_seen),
        "elapsed_s": float(elapsed_s),
        "recipe": str(model_args.get("recipe", "gpt2")),
    }


def stale_temporaries(path: Path) -> list[Path]:
    """Temporary siblings of `path` left by saves that were killed (`.ckpt.pt.*.tmp`)."""
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def save_checkpoint(path: Path | str, state: Mapping[str, Any]) -> Path:
    """Write `state` atomically to `path`; the old file stays whole until the rename."""
    path = Path(path)
    for tmp in stale_temporaries(path):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    try:
        with atomic_open(path, "wb") as f:
            torch.save(dict(state), f)
            pause_point("checkpoint-write")
    except OSError as e:  # the temporary is gone, the previous checkpoint untouched
        if is_user_os_error(e):
            raise os_error(e, f"the checkpoint {path.name} (the previous one is intact)", path) from None
        raise
    except RuntimeError as e:  # torch wraps a failed write ("... file write failed")
        cause = e.__cause__ or e.__context__
        if isinstance(cause, OSError) and is_user_os_error(cause):
            raise os_error(cause, f"the checkpoint {path.name} (the previous one is intact)", path) from None
        raise
    return path


def keep_best(latest: Path | str) -> Path:
    """Make `best.pt` beside `latest` a copy of it, atomically: a hard link (no extra write;
    the next save of `latest` renames a new file over its name, the linked one lives on as
    best.pt), or a byte copy where links are not supported. Called only when val improved."""
    latest = Path(latest)
    best = latest.with_name(BEST_NAME)
    for tmp in stale_temporaries(best):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    tmp = best.with_name(f".{best.name}.link.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            os.link(latest, tmp)
            os.replace(tmp, best)
            fsync_dir(best.parent)
        except OSError as e:
            if is_user_os_error(e) and e.errno not in (errno.EPERM,):
                raise
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            with open(latest, "rb") as src, atomic_open(best, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
    except OSError as e:
        if is_user_os_error(e):
            raise os_error(e, f"{BEST_NAME} (ckpt.pt was saved)", best) from None
        raise
    return best


def choose(run_path: Path | str, which: str | None) -> tuple[Path, str]:
    """The checkpoint file to sample from, and what it is: `latest` (ckpt.pt, the default,
    what a resume continues from), `best` (best.pt, the lowest val loss) or a file path."""
    folder = Path(run_path).expanduser()
    if folder.is_file():
        return folder, "file"
    which = (which or "latest").strip()
    if which in ("latest", CKPT_NAME):
        return folder / CKPT_NAME, "latest"
    if which in ("best", BEST_NAME):
        path = folder / BEST_NAME
        if not path.is_file():
            raise RunError(f"run {folder.name} has no {BEST_NAME} yet",
                           "it is written at the first eval that lowers the val loss; use --checkpoint latest")
        return path, "best"
    return Path(which).expanduser(), "file"


# -- loading ----------------------------------------------------------------------------------

def first_sentence(text: str, limit: int = 160) -> str:
    """The first sentence of an error text, never cut inside a word (torch's are long)."""
    text = " ".join(text.split())
    end = text.find(". ")
    if 0 < end < limit:
        return text[:end]
    if len(text) <= limit:
        return text.rstrip(".")
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def resolve(path: Path | str) -> Path:
    """A checkpoint file: `path` itself, or `ckpt.pt` inside a run folder."""
    path = Path(path).expanduser()
    return path / CKPT_NAME if path.is_dir() else path


# what torch's safe unpickler says about bytes that are no pickle (not about a pickle's objects)
_NOT_A_PICKLE = ("Unsupported operand", "invalid load key", "could not find MARK", "stack underflow",
                 "truncated", "ran out of input", "EOF")


def load_checkpoint(path: Path | str, map_location: Any = "cpu", trust: bool = False) -> dict[str, Any]:
    """Load a gpttui or nanoGPT checkpoint with weights_only=True (unless `trust`); model
    keys come back without `_orig_mod.`. Missing, truncated or foreign files raise RunError."""
    path = resolve(path)
    if not path.is_file():
        raise RunError(f"no checkpoint at {path}", "train first, or pass a run folder or a ckpt.pt file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=not trust)
    except torch.OutOfMemoryError:
        raise
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for bad files
        first = first_line(e, 10_000)
        if "Weights only load failed" in first and any(k in str(e) for k in _NOT_A_PICKLE):
            # the safe unpickler stumbled on bytes that are no pickle at all (random bytes, a
            # text file): a damaged or foreign file, not one holding Python objects (issue #20)
            first = "not a torch checkpoint: its bytes are no pickle torch can read"
        elif "Weights only load failed" in first:
            raise RunError(
                f"{path}: holds Python objects other than tensors and plain values",
                "refusing to run code from a checkpoint; re-save it from a trusted source",
            ) from None
        other = path.with_name(BEST_NAME if path.name != BEST_NAME else CKPT_NAME)
        alt = f"; {other.name} beside it is a separate file and may still load" if other.is_file() else ""
        raise RunError(f"{path}: truncated or damaged, not a readable checkpoint ({type(e).__name__}: {first_sentence(first)})",
                       f"restore it from a copy or start the run again{alt}") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), Mapping):
        raise RunError(f"{path}: not a gpttui or nanoGPT checkpoint (no 'model' state dict)",
                       "pass a ckpt.pt written by gpttui or nanoGPT's train.py")
    ckpt["model"] = strip_prefixes(ckpt["model"])
    return ckpt


def checkpoint_recipe(ckpt: Mapping[str, Any]) -> str:
    """The recipe a checkpoint was trained with: "gpt2" (nanoGPT's, also every nanoGPT
    file) or "modern" (recorded in the checkpoint, its model_args and its config)."""
    for where in (ckpt, ckpt.get("model_args") or {}, ckpt.get("config") or {}):
        if isinstance(where, Mapping) and isinstance(where.get("recipe"), str):
            return where["recipe"]
    return "gpt2"


def require_recipe(ckpt: Mapping[str, Any], recipe: str, action: str) -> None:
    """RunError (one line) unless the checkpoint was trained with `recipe`: e.g. a modern
    checkpoint cannot `action` as nanoGPT's GPT-2 (other layers, no position table), nor
    "resume" under a config that names the other recipe."""
    have = checkpoint_recipe(ckpt)
    if have == recipe:
        return
    if recipe == "gpt2" and action != "resume":
        raise RunError(f"cannot {action}: this checkpoint was trained with the '{have}' recipe, not nanoGPT's GPT-2",
                       "its layers (rotary, QK-norm, untied head) do not exist in nanoGPT; use gpttui to sample it")
    raise RunError(f"cannot {action}: this checkpoint was trained with the '{have}' recipe, the config says '{recipe}'",
                   f"set recipe = \"{have}\" (a run keeps the recipe it started with)")


def model_args(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """model_args, completed from the config dict and the state dict's shapes (old nanoGPT
    files may lack fields)."""
    from gpttui.model.gpt import GPTConfig

    args = state_shape(ckpt["model"])
    names = set(GPTConfig.__dataclass_fields__)
    config = ckpt.get("config") or {}
    merged = {k: v for k, v in config.items() if k in names} if isinstance(config, Mapping) else {}
    merged.update(ckpt.get("model_args") or {})
    merged.update(args)  # the weights themselves are the truth about shapes
    return merged


def load_model(path: Path | str, device: str | torch.device = "cpu", trust: bool = False,
               recipe: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The checkpoint's model (GPT, or ModernGPT for a modern checkpoint) with its weights
    on `device` (eval mode), and the checkpoint. Reads gpttui and nanoGPT `ckpt.pt` files
    alike; `recipe="gpt2"` refuses anything nanoGPT's GPT could not load (one-line RunError)."""
    from gpttui.model.gpt import GPT, GPTConfig

    ckpt = load_checkpoint(path, map_location="cpu", trust=trust)
    if recipe is not None:
        require_recipe(ckpt, recipe, "load it as a nanoGPT GPT-2 model" if recipe == "gpt2" else "load it")
    if checkpoint_recipe(ckpt) == "modern":
        return _load_modern(path, ckpt, device), ckpt
    config = GPTConfig.from_dict(model_args(ckpt))
    if config.n_embd % config.n_head:
        raise RunError(f"{resolve(path)}: n_embd {config.n_embd} is not divisible by n_head {config.n_head}",
                       "the checkpoint's model_args are damaged")
    state = tied_state(ckpt["model"])
    model = GPT(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        what = ", ".join([f"missing {k}" for k in missing[:2]] + [f"unexpected {k}" for k in unexpected[:2]])
        raise RunError(f"{resolve(path)}: weights do not fit a GPT ({what})",
                       "this is not a nanoGPT-style GPT checkpoint")
    model.to(device).eval()
    return model, ckpt


def _load_modern(path: Path | str, ckpt: dict[str, Any], device: str | torch.device) -> Any:
    from gpttui.model.modern import ModernConfig, ModernGPT

    try:
        model = ModernGPT(ModernConfig.from_dict(dict(ckpt.get("model_args") or {})))
        model.load_state_dict(ckpt["model"])
    except (ValueError, RuntimeError) as e:
        first = first_line(e, 160)
        raise RunError(f"{resolve(path)}: weights do not fit the modern model ({first})",
                       "the checkpoint's model_args or weights are damaged") from None
    model.to(device).eval()
    return model
