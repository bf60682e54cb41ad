"""The head gradient and the loss under fp16 autocast + GradScaler, next to fp32 and bf16.

One micro-batch of random tokens through a preset's model (both recipes), chunked and plain
loss; for each dtype: the loss, the fraction of the fp32 head gradient's non-zero entries
that are zero (flushed), and the relative error of the head's and of all gradients against
fp32. Then `--steps` AdamW steps per dtype from the same init on one fixed batch: the losses
side by side (fp16 must track fp32 as bf16 does). Issue #20: the chunked loss divided the
head's gradient by the token count before the cast to fp16 and 92 % of it flushed to zero.

  python bench/fp16.py                                        # CPU, a tiny model
  python bench/fp16.py --device cuda --preset seed-000 --set batch_size=16
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TINY = ["n_layer=1", "n_head=2", "n_embd=32", "block_size=128", "batch_size=4"]


def make_cfg(args: argparse.Namespace, recipe: str):
    from gpttui import config as C
    from gpttui import presets

    base = dict(presets.get(args.preset).values) if args.preset else {}
    over = ([] if args.preset else TINY) + list(args.overrides) + [f"recipe={recipe}", "dropout=0.0",
                                                                   "dataset=bench", "data_source="]
    return C.build(base, over, source="bench")


def one_step(cfg, dev, batch, dtype, chunked):
    """(loss, {name: grad}) of one forward/backward; fp16 through a GradScaler, unscaled."""
    import torch

    from gpttui.model.recipes import build_model

    torch.manual_seed(0)
    model = build_model(cfg).to(dev)
    model.chunked_loss = chunked
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    scaler = torch.amp.GradScaler(dev, enabled=dtype == torch.float16)
    with torch.autocast(dev, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        _, loss = model(*batch)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    return loss.item(), {n: p.grad.float() for n, p in model.named_parameters() if p.grad is not None}


def train(cfg, dev, batch, dtype, steps):
    import torch

    from gpttui.model.recipes import build_model

    torch.manual_seed(0)
    model = build_model(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    scaler = torch.amp.GradScaler(dev, enabled=dtype == torch.float16)
    losses = []
    for _ in range(steps):
        with torch.autocast(dev, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            _, loss = model(*batch)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--preset", default="")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    import torch

    dev = args.device
    bf16 = dev == "cpu" or torch.cuda.is_bf16_supported(including_emulation=False)
    dtypes = {"fp16": torch.float16, **({"bf16": torch.bfloat16} if bf16 else {})}
    worst = 0.0
    for recipe in ("gpt2", "modern"):
        cfg = make_cfg(args, recipe)
        g = torch.Generator().manual_seed(1)
        shape = (cfg.batch_size, cfg.block_size)
        batch = tuple(torch.randint(0, cfg.vocab_size, shape, generator=g).to(dev) for _ in range(2))
        print(f"== {recipe}: {shape[0]}x{shape[1]} tokens, vocab {cfg.vocab_size}, n_embd {cfg.n_embd} (measured)")
        for chunked in (True, False):
            loss0, g0 = one_step(cfg, dev, batch, None, chunked)
            head = "lm_head.weight" if "lm_head.weight" in g0 else "transformer.wte.weight"
            for name, dt in dtypes.items():
                loss, gr = one_step(cfg, dev, batch, dt, chunked)
                nz = g0[head] != 0
                flushed = ((gr[head] == 0) & nz).sum().item() / max(1, nz.sum().item())
                rel = ((gr[head] - g0[head]).norm() / g0[head].norm()).item()
                rel_all = max(((gr[n] - g0[n]).norm() / g0[n].norm().clamp(min=1e-30)).item() for n in g0)
                worst = max(worst, flushed) if name == "fp16" else worst
                print(f"  {'chunked' if chunked else 'plain  '} {name}: loss {loss:.4f} (fp32 {loss0:.4f})  "
                      f"head grad flushed {flushed:.4%}  rel err head {rel:.2e}  worst param {rel_all:.2e}")
        curves = {n: train(cfg, dev, batch, dt, args.steps) for n, dt in {"fp32": None, **dtypes}.items()}
        print(f"  {args.steps} AdamW steps on one batch, last loss: "
              + "  ".join(f"{n} {c[-1]:.4f}" for n, c in curves.items()))
    print(f"fp16 head gradient flushed, worst case: {worst:.4%} ({'OK' if worst < 1e-3 else 'FAIL'})")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
