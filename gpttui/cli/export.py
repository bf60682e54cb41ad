"""`gpttui export RUN --format hf DIR`: a run's (or a ckpt.pt's) model written for other tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gpttui.errors import RunError
from gpttui.weights import hf
from gpttui.weights.pretrained import export


def cmd_export(args: Any) -> int:
    """`gpttui export RUN --format hf DIR`."""
    from gpttui.runs.store import get_run
    from gpttui.weights.checkpoint import resolve

    path = Path(args.run).expanduser()
    if path.is_file() or (path.is_dir() and (path / "ckpt.pt").is_file() and not (path / "run.json").is_file()):
        ckpt, what = resolve(path), str(path)
    else:
        run = get_run(args.run)
        ckpt = run.latest_checkpoint()
        if ckpt is None:
            raise RunError(f"run {run.id} has no checkpoint yet", "export after its first evaluation or a save (s)")
        what = f"run {run.id}"
    out, info = export(ckpt, Path(args.dir).expanduser(), args.format, force=bool(getattr(args, "force", False)))
    pad = f"; the {info['vocab_size'] - hf.GPT2_VOCAB} padding rows of the embedding dropped" \
        if info["vocab_size"] > hf.GPT2_VOCAB else ""
    print(f"exported {what} (iteration {info['iter_num']}) to {out}: model.safetensors, config.json, "
          f"GPT-2 tokenizer (vocab {hf.GPT2_VOCAB}{pad})\n"
          f"load it with: transformers.GPT2LMHeadModel.from_pretrained({str(out)!r})")
    return 0
