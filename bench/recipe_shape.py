"""The recipe comparison on a shape whose transformer blocks outweigh its embedding.

`bench/recipe.py` measures the demo's shape (4L/64d, GPT-2 vocabulary), where ~94 % of the
parameters are the embedding and the head: a recipe that trains those two faster wins
there whatever it does to the blocks. This bench asks the same question on a shape where
the blocks hold more parameters than the embedding. With GPT-2's 50,304-token vocabulary
that needs d ≥ ~700 at 6 layers (12·L·d² ≥ 50,304·d), too slow for a shared 2-core CPU, so
it DEVIATES from the shipped setup in one declared way: the corpus (demo-pystdlib) is
remapped to its `--vocab` − 1 most frequent training tokens plus one UNK id (the counts come
from train.bin only), and both recipes train on that remapped corpus with vocab_size =
`--vocab`. Everything else is the shipped code (`gpttui.model.recipes`). The defaults are
the measured command: 6L/4H/64d at V = 2,048 (blocks 295 k parameters, embedding 131 k,
modern's head 131 k; 5.2 % of val tokens are UNK).

Protocol (fixed evaluation tokens: the same `--val-seqs` sequences, evenly spaced over
val.bin, scored at every eval of every run):
1. GPT-2 recipe: lr sweep on seed 0 at `--steps` steps (cosine to lr/10), then the best lr
   on seed 1. Its final val loss per seed is the target.
2. Modern recipe (demo-modern's hyperparameters): both seeds at schedules of
   `--modern-fracs` × `--steps` (each a full warmup–stable–decay schedule of that length).
3. Modern lr sweep, seed 0, at the 0.5× schedule: every group's lr scaled by
   `--modern-lr-scales` (Muon, embedding and head together).
4. Modern with a tied head (seed 0, 0.5×) at the head's lr (the ablation row, unconfounded);
   `--tied-lrs` adds tied rows at other lrs. `--throughput-only N`: the two recipes' steps
   alternated on the same batches (median step-time ratio of N pairs).
5. Per seed: tokens the modern recipe needs for the GPT-2 target, two ways: (a) where a
   schedule's own curve first crosses it (linear between evals; bench/recipe.py's method),
   (b) the schedule length whose FINAL loss equals it, interpolated in log-tokens between
   the two schedules that bracket it (a run that ends, with its decay, at the target).
   And val loss at equal tokens (the 1× modern schedule against GPT-2's final).

  OMP_NUM_THREADS=1 nice -n 19 python bench/recipe_shape.py --out /tmp/recipe_shape.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import recipe as R  # noqa: E402  (bench/recipe.py: train, reach, val_set, make_cfg)


def remap_dataset(src: str, vocab: int) -> tuple[str, dict]:
    """Write datasets/<src>-top<vocab>/{train,val}.bin: the vocab − 1 most frequent train
    tokens keep a rank id (0 = most frequent), every other token becomes UNK = vocab − 1."""
    import numpy as np

    from gpttui.paths import datasets_dir

    name = f"{src}-top{vocab}"
    sdir, ddir = datasets_dir() / src, datasets_dir() / name
    train = np.memmap(sdir / "train.bin", dtype=np.uint16, mode="r")
    counts = np.bincount(train, minlength=65536)
    keep = np.argsort(-counts, kind="stable")[:vocab - 1]
    table = np.full(65536, vocab - 1, dtype=np.uint16)
    table[keep] = np.arange(vocab - 1, dtype=np.uint16)
    info: dict = {"vocab": vocab, "unk_id": vocab - 1, "source": src}
    ddir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        data = np.memmap(sdir / f"{split}.bin", dtype=np.uint16, mode="r")
        out = table[np.asarray(data)]
        info[f"{split}_tokens"] = int(out.size)
        info[f"{split}_unk_frac"] = round(float((out == vocab - 1).mean()), 4)
        if not (ddir / f"{split}.bin").exists():
            tmp = ddir / f"{split}.bin.tmp"
            out.tofile(tmp)
            tmp.replace(ddir / f"{split}.bin")
    (ddir / "remap.json").write_text(json.dumps(info, indent=1))
    return name, info


def shaped(base: dict, args, name: str, **values):
    """A config at the bench's shape on the remapped corpus (vocab_size set after the
    builder, whose check wants GPT-2's vocabulary)."""
    L, H, d = (int(v) for v in args.shape.split(","))
    cfg = R.make_cfg(**{**base, **values}, n_layer=L, n_head=H, n_embd=d, block_size=args.block,
                     batch_size=args.batch, dataset=name)
    return dataclasses.replace(cfg, vocab_size=args.vocab)


def run_pool(jobs: int, first: dict, val, then=None) -> dict:
    """Train `first` ({key: (cfg, seed, evals, label, extra)}) in `jobs` one-thread
    processes; `then(done)` may return more tasks once every key of `first` whose key[0] is
    "gpt2" is done (the seed-1 run at the sweep's best lr)."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    done: dict = {}
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=R._worker_init) as ex:
        pending = {ex.submit(R._train_task, (c, s, e, val, lab, x)): k for k, (c, s, e, lab, x) in first.items()}
        sweep = {k for k in first if k[0] == "gpt2"}
        while pending:
            fin, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in fin:
                done[pending.pop(f)] = f.result()
            if then is not None and sweep <= done.keys():
                more, then = then(done), None
                pending.update({ex.submit(R._train_task, (c, s, e, val, lab, x)): k
                                for k, (c, s, e, lab, x) in more.items()})
    return done


def final_interp(points: list[tuple[float, float]], target: float) -> float | None:
    """(tokens, final loss) of schedules of different lengths → the tokens at which the final
    loss equals target, linear in log-tokens between the bracketing pair; None outside."""
    pts = sorted(points)
    for (t0, v0), (t1, v1) in zip(pts, pts[1:], strict=False):
        if v0 >= target >= v1 and v0 != v1:
            f = (v0 - target) / (v0 - v1)
            return math.exp(math.log(t0) + f * (math.log(t1) - math.log(t0)))
    return None


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="6,4,64", help="layers,heads,width")
    ap.add_argument("--vocab", type=int, default=2048, help="top-(V-1) tokens + UNK")
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=192, help="GPT-2 recipe steps")
    ap.add_argument("--eval-every", type=int, default=16)
    ap.add_argument("--val-seqs", type=int, default=32)
    ap.add_argument("--gpt2-lrs", default="3e-3,6e-3,1.2e-2")
    ap.add_argument("--modern-fracs", default="0.5,1.0")
    ap.add_argument("--modern-lr-scales", default="0.5,2")
    ap.add_argument("--no-tied", action="store_true", help="no tied-head row at the head's lr")
    ap.add_argument("--tied-lrs", default="", help="tied-head rows (seed 0, 0.5x) at these lrs")
    ap.add_argument("--no-seed1", action="store_true", help="no GPT-2 seed-1 run (a later sweep point)")
    ap.add_argument("--both-seeds", action="store_true", help="GPT-2 seed 1 at every swept lr, queued at once")
    ap.add_argument("--throughput-only", type=int, default=0, metavar="STEPS",
                    help="only the two recipes' steps alternated on the same batches (after a run made the corpus)")
    ap.add_argument("--report", nargs="+", default=[], metavar="JSON", help="only merge --out files and report")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="", help="write every run's curve here (JSON)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    from gpttui.data.ensure import ensure_dataset

    args = parse_args(argv)
    if args.report:
        report(*load_runs(args.report))
        return 0
    if args.throughput_only:
        name = f"{R.SHAPE['dataset']}-top{args.vocab}"
        gpt2_cfg = shaped(R.GPT2, args, name, learning_rate=3e-3, min_lr=3e-4, max_iters=args.steps,
                          lr_decay_iters=args.steps)
        modern_cfg = shaped(R.MODERN, args, name, max_iters=args.steps, lr_decay_iters=args.steps)
        R.report_throughput(gpt2_cfg, modern_cfg, args.throughput_only)
        return 0
    t_start = time.perf_counter()
    ensure_dataset(R.make_cfg(**R.GPT2, max_iters=args.steps, lr_decay_iters=args.steps))
    name, info = remap_dataset(R.SHAPE["dataset"], args.vocab)
    tok_step = args.batch * args.block

    def evals_to(n: int) -> list[int]:
        e = list(range(args.eval_every, n + 1, args.eval_every))
        return e + ([n] if n not in e else [])

    def gpt2(lr: float):
        return shaped(R.GPT2, args, name, learning_rate=lr, min_lr=lr / 10, max_iters=args.steps,
                      lr_decay_iters=args.steps)

    def modern(frac: float, scale: float = 1.0):
        n = max(1, round(args.steps * frac))
        lrs = {k: R.MODERN[k] * scale for k in ("learning_rate", "embed_lr", "muon_lr")}
        return shaped(R.MODERN, args, name, **lrs, max_iters=n, lr_decay_iters=n), n

    from gpttui.model import recipes

    m = recipes.build_model(modern(1.0)[0])
    blocks = sum(p.numel() for n, p in m.named_parameters() if n.startswith("transformer.h."))
    emb = m.transformer.wte.weight.numel()
    val = R.val_set(gpt2(3e-3), args.val_seqs)
    lrs = [float(v) for v in args.gpt2_lrs.split(",") if v]
    fracs = [float(v) for v in args.modern_fracs.split(",") if v]
    scales = [float(v) for v in args.modern_lr_scales.split(",") if v]
    print(f"shape {args.shape} (L,H,d), T={args.block}, {tok_step} tokens/step, vocab {args.vocab} "
          f"(UNK: train {info['train_unk_frac']:.2%}, val {info['val_unk_frac']:.2%}); blocks {blocks:,} params, "
          f"embedding {emb:,}, modern head {emb:,}; val {args.val_seqs} x {args.block} fixed tokens", flush=True)
    tasks: dict = {("gpt2", lr): (gpt2(lr), 0, evals_to(args.steps), f"gpt2 lr {lr:g}", {}) for lr in lrs}
    if args.both_seeds:
        tasks.update({("gpt2-seed1", lr): (gpt2(lr), 1, evals_to(args.steps), f"gpt2 lr {lr:g}", {}) for lr in lrs})
    for frac in sorted(fracs, reverse=True):
        for s in (0, 1):
            cfg, n = modern(frac)
            tasks[("modern", frac, s)] = (cfg, s, evals_to(n), f"modern {frac:g}x", {})
    for sc in filter(None, scales):
        cfg, n = modern(0.5, sc)
        tasks[("modern-lr", sc)] = (cfg, 0, evals_to(n), f"modern 0.5x lr x{sc:g}", {})
    if not args.no_tied:
        cfg, n = modern(0.5)
        tasks[("tied",)] = (cfg, 0, evals_to(n), "modern 0.5x tied@head lr", {"pieces": {"untied": False}})
    for lr in (float(v) for v in args.tied_lrs.split(",") if v):
        cfg, n = modern(0.5)
        tasks[("tied", lr)] = (cfg, 0, evals_to(n), f"modern 0.5x tied@{lr:g}", {"pieces": {"untied": False}, "tied_lr": lr})

    def seed1(done):
        best = min(lrs, key=lambda lr: done[("gpt2", lr)][-1][2])
        print(f"best GPT-2 lr on seed 0: {best:g}; seed 1 queued", flush=True)
        return {("gpt2-seed1", best): (gpt2(best), 1, evals_to(args.steps), f"gpt2 lr {best:g}", {})}

    done = run_pool(args.jobs, tasks, val, None if args.no_seed1 or args.both_seeds else seed1)
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "remap": info, "blocks": blocks, "embedding": emb,
                                              "runs": {"|".join(map(str, k)): v for k, v in done.items()}}, indent=1))
    report(done, tok_step)
    print(f"bench took {(time.perf_counter() - t_start) / 60:.1f} min")
    return 0


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load_runs(paths: list[str]) -> tuple[dict, int]:
    """Merge --out files: {key tuple: points}, tokens per step (the files must agree)."""
    done, steps = {}, set()
    for path in paths:
        data = json.loads(Path(path).read_text())
        steps.add(data["args"]["batch"] * data["args"]["block"])
        for k, pts in data["runs"].items():
            key = tuple(_number(v) for v in k.split("|"))
            done[key] = [tuple(p) for p in pts]
    if len(steps) != 1:
        raise SystemExit(f"the files disagree on tokens per step: {sorted(steps)}")
    return done, steps.pop()


def report(done: dict, tok_step: int) -> None:
    """Sweep table, and per seed the modern tokens to the GPT-2 target (the lr that has a
    seed-1 run and the lowest seed-0 final among those)."""
    for k, pts in sorted(done.items(), key=str):
        print(f"  {'/'.join(map(str, k)):<22} final {pts[-1][2]:.4f} @ {pts[-1][0] * tok_step:,} tokens")
    with1 = [k[1] for k in done if k[0] == "gpt2-seed1"]
    if not with1:
        print("no GPT-2 seed-1 run: no targets")
        return
    best = min(with1, key=lambda lr: done[("gpt2", lr)][-1][2])
    ref = {0: done[("gpt2", best)], 1: done[("gpt2-seed1", best)]}
    fracs = sorted({k[1] for k in done if k[0] == "modern"})
    print(f"GPT-2 baseline: lr {best:g} (lowest seed-0 final among the lrs with a seed-1 run)")
    curve, fin, equal = [], [], []
    for s in (0, 1):
        target, g_tok = ref[s][-1][2], ref[s][-1][0] * tok_step
        runs = {f: done[("modern", f, s)] for f in fracs if ("modern", f, s) in done}
        crossings = {f: R.reach(pts, target) for f, pts in runs.items()}
        cross = [c[0] * tok_step for c in crossings.values() if c]
        by_final = final_interp([(pts[-1][0] * tok_step, pts[-1][2]) for pts in runs.values()], target)
        print(f"seed {s}: GPT-2 target {target:.4f} at {g_tok:,} tokens; modern crossing per schedule "
              + ", ".join(f"{f:g}x: {c[0] * tok_step:,.0f}" if c else f"{f:g}x: not reached" for f, c in crossings.items())
              + (f"; by final loss {by_final:,.0f}" if by_final else "; by final loss: outside the schedules")
              + "; finals " + ", ".join(f"{f:g}x {pts[-1][2]:.4f}" for f, pts in runs.items()))
        if cross:
            curve.append(min(cross) / g_tok)
        if by_final:
            fin.append(by_final / g_tok)
        if 1.0 in runs:
            equal.append(runs[1.0][-1][2] - target)
    print(f"tokens to GPT-2's final val loss, modern / gpt2, curve crossing (earliest schedule): {R.fmt_ratio(curve)}")
    print(f"same, by final loss across schedule lengths: {R.fmt_ratio(fin)}")
    if equal:
        print(f"val loss at equal tokens, modern 1x − gpt2: {', '.join(f'{v:+.4f}' for v in equal)} "
              f"(mean {statistics.mean(equal):+.4f})")


if __name__ == "__main__":
    raise SystemExit(main())
