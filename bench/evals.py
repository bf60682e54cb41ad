"""HellaSwag scoring speed on this CPU, and what the in-loop subset costs next to an evaluation.

    GPTTUI_DATA_DIR=... nice -n 19 python bench/evals.py [--examples 200] [--plain 40]

Needs the data (`gpttui eval --download`). For two models (the demo preset's 4L/64 and a
6L/384, random weights: speed does not depend on them) it measures, side by side in one run:
- examples/s of gpttui's scorer (packed micro-batches, endings-only LM head, row chunks);
- examples/s of the plain loop (one ending per forward, full logits), on fewer examples;
- one loop evaluation's time (2 x eval_iters forward passes of batch x block with targets,
  as `train/loop.py:estimate_loss`) and the auto-sized subset's time: their ratio is the
  in-loop cost the 10 % rule (`evals/inloop.py:auto_examples`) aims at.
Times are this process's CPU seconds (`time.process_time`, one torch thread): on a shared,
oversubscribed machine wall time measures the neighbours; CPU time measures the work.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gpttui import config as C  # noqa: E402
from gpttui.evals import data, hellaswag, inloop  # noqa: E402
from gpttui.model import recipes  # noqa: E402
from gpttui.tokenizer import get_encoding  # noqa: E402

SHAPES = {
    "demo 4L/64 T128": dict(n_layer=4, n_head=4, n_embd=64, block_size=128, batch_size=8, eval_iters=8),
    "6L/384 T256": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=8, eval_iters=8),
}


def plain_rate(model, rendered) -> float:
    t0 = time.process_time()
    with torch.no_grad():
        for r in rendered:
            for row, start in zip(r.rows, r.starts, strict=True):
                idx = torch.tensor([row])
                logits = model.lm_head(model.hidden(idx))[0, :, :hellaswag.GPT2_VOCAB]
                F.cross_entropy(logits[:-1], idx[0, 1:], reduction="none")[start - 1:].mean().item()
    return len(rendered) / (time.process_time() - t0)


def eval_seconds(model, cfg) -> float:
    """One loop evaluation: 2 x eval_iters batches with targets, no_grad, as estimate_loss."""
    x = torch.randint(0, 50257, (cfg.batch_size, cfg.block_size))
    t0 = time.process_time()
    with torch.no_grad():
        for _ in range(2 * cfg.eval_iters):
            model(x, x)[1].item()
    return time.process_time() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=200)
    ap.add_argument("--plain", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not data.available():
        print(f"no HellaSwag data in {data.task_dir()}: run `gpttui eval --download` first")
        return 2
    examples = data.load_examples()
    enc = get_encoding()
    print(f"load {os.getloadavg()[0]:.1f}, torch threads {torch.get_num_threads()}, {args.examples} examples "
          f"(first in file order), plain loop on the first {args.plain}")
    print("| model | scorer ex/s | plain ex/s | speed-up | eval s | auto subset | subset s | subset / eval |")
    print("|---|---|---|---|---|---|---|---|")
    for name, shape in SHAPES.items():
        cfg = C.build({**shape, "device": "cpu", "compile": False, "dtype": "float32"}, source="bench")
        torch.manual_seed(0)
        model = recipes.build_model(cfg).eval()
        rendered = [hellaswag.render(ex, enc, cfg.block_size) for ex in examples[: args.examples]]
        hellaswag.score_rendered(model, rendered[:8])  # warm-up
        t0 = time.process_time()
        hellaswag.score_rendered(model, rendered)
        fast = len(rendered) / (time.process_time() - t0)
        slow = plain_rate(model, rendered[: args.plain])
        ev = eval_seconds(model, cfg)
        n = inloop.auto_examples(cfg)
        subset = [hellaswag.render(examples[i], enc, cfg.block_size) for i in inloop.subset_indices(n, len(examples))]
        t0 = time.process_time()
        hellaswag.score_rendered(model, subset)
        sub = time.process_time() - t0
        print(f"| {name} | {fast:.1f} | {slow:.1f} | {fast / slow:.1f}x | {ev:.2f} | {n} | {sub:.2f} | "
              f"{sub / ev:.1%} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
