"""Streaming text generation from a run's checkpoint (or any gpttui / nanoGPT ckpt.pt).

`stream_sample` is a plain generator of text pieces that knows nothing about the UI: the
sampling screen and `gpttui sample` both iterate it (the screen from a worker thread).
Tokens are decoded incrementally as bytes, so a character split across two BPE tokens
(common for emoji and accented letters) comes out whole, never as U+FFFD halves.
"""

from __future__ import annotations

import codecs
import datetime as _dt
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from gpttui.errors import RunError
from gpttui.fsutil import atomic_write_text

SAMPLES_DIR = "samples"


def _path_of(run: Any) -> Path:
    """A filesystem path from a `runs.Run` (anything with `.path`), a Path or a string."""
    return Path(getattr(run, "path", run)).expanduser()


def pick_device(device: str = "auto") -> str:
    """`auto` → cuda if available, else cpu; anything else as given."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RunError(f"device {device!r} asked for, but no CUDA GPU is available", "use --device cpu")
    return device


def encode_prompt(prompt: str) -> list[int]:
    """GPT-2 tokens of `prompt`; an empty prompt starts from <|endoftext|> (unconditional)."""
    from gpttui.tokenizer import EOT, get_encoding

    ids = get_encoding().encode(prompt, allowed_special={"<|endoftext|>"}) if prompt else []
    return ids or [EOT]


def stream_sample(
    run: Any,
    prompt: str,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 200,
    seed: int = 1337,
    device: str = "auto",
    checkpoint: Path | str | None = None,
    on_load: Any = None,
) -> Iterator[str]:
    """Yield decoded text pieces as tokens are generated from the run's latest checkpoint.

    `run` is a run (`.path`), a run folder or a checkpoint file; `checkpoint` picks another
    file explicitly, or names one: "latest" (ckpt.pt, the default) or "best" (best.pt).
    `on_load(path, kind, ckpt)` is called once the checkpoint is loaded. The same seed, settings and checkpoint give the same text on the same
    device. Loading happens on the first `next()`, so call it from a worker.
    """
    import torch

    from gpttui.tokenizer import get_encoding
    from gpttui.weights.checkpoint import load_model

    if max_new_tokens < 0:
        raise RunError(f"max_new_tokens must be >= 0, got {max_new_tokens}", "e.g. 200")
    dev = pick_device(device)
    from gpttui.weights.checkpoint import choose

    path, kind = choose(_path_of(run), str(checkpoint) if checkpoint is not None else None)
    model, ckpt = load_model(path, dev)
    if on_load is not None:
        on_load(path, kind, ckpt)
    enc = get_encoding()
    idx = torch.tensor([encode_prompt(prompt)], dtype=torch.long, device=dev)
    generator = torch.Generator(device=dev).manual_seed(seed)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    limit = min(enc.n_vocab, model.config.vocab_size)
    for nxt in model.stream(idx, max_new_tokens, temperature, top_k, generator, vocab_limit=limit):
        piece = decoder.decode(enc.decode_single_token_bytes(int(nxt[0, 0])))
        if piece:
            yield piece
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def save_sample(run: Any, prompt: str, text: str, settings: Mapping[str, Any]) -> Path:
    """Write `samples/<time>.json` (prompt, text, settings) in the run folder, atomically."""
    folder = _path_of(run)
    if folder.is_file():  # a checkpoint path: keep samples next to it
        folder = folder.parent
    if not folder.is_dir():
        raise RunError(f"no run folder at {folder}", "pass a run id or folder from `gpttui runs`")
    now = _dt.datetime.now().astimezone()
    path = folder / SAMPLES_DIR / f"{now.strftime('%Y%m%d-%H%M%S-%f')}.json"
    record = {
        "created": now.isoformat(timespec="seconds"),
        "prompt": prompt,
        "text": text,
        "settings": dict(settings),
    }
    atomic_write_text(path, json.dumps(record, ensure_ascii=False, indent=2) + "\n")
    return path
