"""The modern recipe against nanoGPT's GPT-2 recipe: tokens (and time) to the same val loss.

Both recipes train the demo's shape (4 layers, 4 heads, 64 wide, 128 context, GPT-2 vocab)
on the built-in corpus (dataset demo-pystdlib, prepared if missing) with the same tokens per
step and the same training batches (same seed → same sampler), and are evaluated on the
same fixed validation tokens at the same steps.

1. GPT-2 recipe: a learning-rate sweep (seed 0), then the best lr on the other seeds;
   `--steps` steps, cosine schedule to `--steps`.
2. Modern recipe: same seeds, a schedule sized to `--modern-frac` × `--steps` steps.
3. Per seed: the tokens and train time each recipe needed to reach the GPT-2 recipe's final
   val loss (linear interpolation between eval points), and the ratio.
4. Throughput: steps of the two recipes alternated on the same batches, median step time.
5. `--ablation`: the modern recipe with each kept piece removed in turn (seed 0). A tied head
   trains the shared matrix at the head's lr (the 2026-11-30 table used embed_lr: that row is
   kept, labelled, beside the fixed one); `--tied-lrs` adds rows, `--rows tied` runs only them.
   For a shape whose blocks outweigh the embedding, see bench/recipe_shape.py.

  python bench/recipe.py                     # the full bench: 10 runs, 2 processes of 1 thread
                                             # (28 min at load 15 on 2 shared cores; ~10-15 idle)
  python bench/recipe.py --ablation-only --ablation-steps 40   # the ablation table (seed 0)
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPE = dict(n_layer=4, n_head=4, n_embd=64, block_size=128, batch_size=8, gradient_accumulation_steps=1,
             dataset="demo-pystdlib", data_source="builtin:pystdlib", val_fraction=0.02, device="cpu",
             compile=False, dropout=0.0, bias=False)
GPT2 = dict(recipe="gpt2", warmup_iters=20, beta1=0.9, beta2=0.99, weight_decay=0.1, grad_clip=1.0)
MODERN = dict(recipe="modern", learning_rate=0.008, embed_lr=0.3, muon_lr=0.03, muon_momentum=0.95,
              beta1=0.8, beta2=0.95, weight_decay=0.0, grad_clip=0.0, warmup_iters=10, min_lr=0.0,
              warmdown_frac=0.2, logit_softcap=0.0)
# Each kept piece of the modern recipe, and what "removed" means for it; the soft-cap is the
# piece this bench dropped (it costs ~1.5x step time on CPU, see RESULTS.md): its row adds it.
ABLATIONS: dict[str, dict[str, Any]] = {
    "Muon (→ AdamW on hidden matrices)": {"muon": False},
    "rotary (→ learned positions)": {"pieces": {"rotary": False}},
    "QK-norm": {"pieces": {"qk_norm": False}},
    "ReLU² (→ GELU)": {"pieces": {"relu2": False}},
    # A tied head trains the one matrix at the head's lr (recipes.build_optimizer's default);
    # the 2026-11-30 table trained it at embed_lr (0.3), a confound: both rows are kept.
    "untied head (→ tied, at the head's lr)": {"pieces": {"untied": False}},
    "untied head (→ tied, at embed_lr: the old row)": {"pieces": {"untied": False}, "tied_lr": MODERN["embed_lr"]},
    "+ zero-init projections (added)": {"pieces": {"zero_init": True}},
    "+ logit soft-cap 15 (added)": {"cfg": {"logit_softcap": 15.0}},
    "warmup-stable-decay (→ cosine)": {"cosine": True},
}


def make_cfg(**values: Any):
    from gpttui import config as C

    return C.build({**SHAPE, **values}, source="bench")


def val_set(cfg, n_seq: int):
    """n_seq fixed sequences of block_size + 1 tokens, evenly spaced over val.bin."""
    import numpy as np
    import torch

    from gpttui.paths import datasets_dir

    data = np.memmap(datasets_dir() / cfg.dataset / "val.bin", dtype=np.uint16, mode="r")
    span = cfg.block_size + 1
    starts = np.linspace(0, len(data) - span - 1, n_seq).astype(np.int64)
    seqs = torch.from_numpy(np.stack([data[s:s + span].astype(np.int64) for s in starts]))
    return seqs[:, :-1].contiguous(), seqs[:, 1:].contiguous()


def evaluate(model, vx, vy, batch: int) -> float:
    import torch

    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, vx.size(0), batch):
            _, loss = model(vx[i:i + batch], vy[i:i + batch])
            total += loss.item() * vx[i:i + batch].size(0)
    model.train()
    return total / vx.size(0)


def cosine_mult(cfg, it: int) -> float:
    from gpttui.train.setup import get_lr

    return get_lr(cfg, it) / cfg.learning_rate


def train(cfg, seed: int, eval_steps: list[int], val, *, muon: bool = True, pieces: dict | None = None,
          cosine: bool = False, adamw_lr: float | None = None, tied_lr: float | None = None,
          label: str = "") -> list[tuple[int, float, float]]:
    """Train cfg for cfg.max_iters steps; return (step, train seconds so far, val loss) at
    each step of eval_steps (step 0 included)."""
    import torch

    from gpttui.data.reader import BatchReader
    from gpttui.model import recipes
    from gpttui.paths import datasets_dir

    torch.manual_seed(seed)
    model = recipes.build_model(cfg, **(pieces or {}))
    opt = recipes.build_optimizer(model, cfg, "cpu", muon=muon, adamw_lr=adamw_lr, tied_lr=tied_lr)
    reader = BatchReader(datasets_dir() / cfg.dataset, cfg.block_size, cfg.batch_size, "cpu", seed)
    points = [(0, 0.0, evaluate(model, *val, cfg.batch_size))]
    spent = 0.0
    for it in range(cfg.max_iters):
        x, y = reader.get_batch("train")
        t0 = time.perf_counter()
        if cosine:
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * cosine_mult(cfg, it)
        else:
            recipes.apply_lr(opt, cfg, it)
        _, loss = model(x, y)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        spent += time.perf_counter() - t0
        if not math.isfinite(loss.item()):
            print(f"  {label} seed {seed}: loss diverged at step {it + 1}")
            break
        if it + 1 in eval_steps:
            points.append((it + 1, spent, evaluate(model, *val, cfg.batch_size)))
    print(f"  {label:<34} seed {seed}: " + " ".join(f"{v:.3f}" for _, _, v in points)
          + f"  ({spent:.0f} s)", flush=True)
    return points


def reach(points: list[tuple[int, float, float]], target: float) -> tuple[float, float] | None:
    """(step, seconds) where the val curve first reaches target, interpolated linearly."""
    for (s0, t0, v0), (s1, t1, v1) in zip(points, points[1:], strict=False):
        if v1 <= target:
            f = 1.0 if v0 == v1 else (v0 - target) / (v0 - v1)
            return s0 + f * (s1 - s0), t0 + f * (t1 - t0)
    return None


def throughput(cfg_a, cfg_b, steps: int) -> tuple[float, list[float]]:
    """Median step time of b over a, steps alternated on the same batches; and each pair's ratio."""
    import torch

    from gpttui.data.reader import BatchReader
    from gpttui.model import recipes
    from gpttui.paths import datasets_dir

    runs = []
    for cfg in (cfg_a, cfg_b):
        torch.manual_seed(0)
        m = recipes.build_model(cfg)
        runs.append((cfg, m, recipes.build_optimizer(m, cfg, "cpu"), []))
    reader = BatchReader(datasets_dir() / cfg_a.dataset, cfg_a.block_size, cfg_a.batch_size, "cpu", 0)
    for it in range(steps + 2):
        x, y = reader.get_batch("train")
        for cfg, m, opt, times in runs:
            t0 = time.perf_counter()
            recipes.apply_lr(opt, cfg, it)
            _, loss = m(x, y)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(m.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if it >= 2:
                times.append(time.perf_counter() - t0)
    a, b = runs[0][3], runs[1][3]
    return statistics.median(b) / statistics.median(a), [tb / ta for ta, tb in zip(a, b, strict=True)]


def fmt_ratio(values: list[float]) -> str:
    if not values:
        return "n/a"
    mean = statistics.mean(values)
    return f"{mean:.3f} (seeds: {', '.join(f'{v:.3f}' for v in values)}; spread {min(values):.3f}-{max(values):.3f})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100, help="GPT-2 recipe steps (1,024 tokens each)")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--gpt2-lrs", default="1.5e-3,3e-3,6e-3,1.2e-2", help="learning rates swept for the GPT-2 recipe")
    ap.add_argument("--modern-frac", type=float, default=0.5, help="modern schedule length / --steps")
    ap.add_argument("--evals", type=int, default=5, help="evaluations over --steps (same steps for both)")
    ap.add_argument("--val-seqs", type=int, default=16, help="fixed validation sequences")
    ap.add_argument("--throughput-steps", type=int, default=6)
    ap.add_argument("--throughput-only", action="store_true", help="only the alternated step-time comparison")
    ap.add_argument("--ablation", action="store_true", help="also remove each modern piece in turn (seed 0)")
    ap.add_argument("--ablation-only", action="store_true", help="only the ablation (with --target, or final losses)")
    ap.add_argument("--ablation-steps", type=int, default=0, help="steps of each ablation run (0 = the modern run's)")
    ap.add_argument("--only-modern", action="store_true", help="skip the GPT-2 sweep (needs --target)")
    ap.add_argument("--target", type=float, default=None, help="val loss to reach (default: GPT-2's final)")
    ap.add_argument("--jobs", type=int, default=2, help="runs trained at once, in processes of one thread each")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="modern key=value (exploration)")
    ap.add_argument("--tied-lrs", default="", help="ablation: extra tied-head rows at these lrs (comma-separated)")
    ap.add_argument("--rows", default="", help="ablation: only the rows whose name contains one of these "
                                                "comma-separated words (the baseline always runs)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch

    from gpttui import config as C
    from gpttui.data.ensure import ensure_dataset

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    modern_over = dict(MODERN, **dict(C.parse_override(s) for s in args.sets))
    base = make_cfg(**GPT2, max_iters=args.steps, lr_decay_iters=args.steps)
    ensure_dataset(base)
    val = val_set(base, args.val_seqs)
    every = max(1, args.steps // args.evals)
    evals = list(range(every, args.steps + 1, every))
    seeds = list(range(args.seeds))
    t_start = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; shape 4L/4H/64d, T=128, "
          f"1,024 tokens/step; val {args.val_seqs} x 128 tokens; evals at {evals}")
    if args.throughput_only:
        gpt2_cfg = make_cfg(**GPT2, learning_rate=3e-3, min_lr=3e-4, max_iters=args.steps, lr_decay_iters=args.steps)
        modern_cfg = make_cfg(**modern_over, max_iters=args.steps)
        report_throughput(gpt2_cfg, modern_cfg, args.throughput_steps)
        return 0
    m_steps = max(1, round(args.steps * args.modern_frac))
    modern_cfg = make_cfg(**modern_over, max_iters=m_steps, lr_decay_iters=m_steps)
    m_evals = [s for s in evals if s <= m_steps] + ([m_steps] if m_steps not in evals else [])
    a_steps = args.ablation_steps or m_steps
    a_evals = [s for s in evals if s <= a_steps] + ([a_steps] if a_steps not in evals else [])
    if args.ablation_only:
        ablate(modern_over, a_steps, a_evals, val, args.target, 3e-3, args.jobs, args.rows, args.tied_lrs)
        print(f"bench took {(time.perf_counter() - t_start) / 60:.1f} min")
        return 0
    lrs = [float(v) for v in args.gpt2_lrs.split(",")]

    def gpt2_at(lr: float):
        return make_cfg(**GPT2, learning_rate=lr, min_lr=lr / 10, max_iters=args.steps, lr_decay_iters=args.steps)

    print(f"GPT-2 recipe: {args.steps} steps, lr sweep {lrs} (seed 0); modern recipe: {m_steps} steps "
          f"({args.modern_frac:g} x), {args.sets or 'defaults'}; {args.jobs} job(s); val loss at the eval steps")
    tasks = {("modern", s): (modern_cfg, s, m_evals, "modern") for s in seeds}
    if not args.only_modern:
        tasks.update({("gpt2", lr): (gpt2_at(lr), 0, evals, f"gpt2 lr {lr:g}") for lr in lrs})
    done = run_all(tasks, val, args.jobs)
    gpt2_runs: dict[int, list] = {}
    if not args.only_modern:
        best_lr = min(lrs, key=lambda lr: done[("gpt2", lr)][-1][2])
        print(f"best GPT-2 lr: {best_lr:g} (final val {done[('gpt2', best_lr)][-1][2]:.4f})")
        gpt2_cfg = gpt2_at(best_lr)
        gpt2_runs[0] = done[("gpt2", best_lr)]
        more = run_all({("gpt2", s): (gpt2_cfg, s, evals, f"gpt2 lr {best_lr:g}") for s in seeds[1:]}, val, args.jobs)
        gpt2_runs.update({s: more[("gpt2", s)] for s in seeds[1:]})
        targets = {s: r[-1][2] for s, r in gpt2_runs.items()}
    else:
        gpt2_cfg = gpt2_at(3e-3)
        targets = {s: args.target for s in seeds}
    tok_ratios, time_ratios = [], []
    for s in seeds:
        pts, target = done[("modern", s)], targets[s]
        got = reach(pts, target)
        ref = reach(gpt2_runs[s], target) if s in gpt2_runs else None
        if got is None:
            print(f"  seed {s}: modern did NOT reach {target:.4f} in {m_steps} steps (final {pts[-1][2]:.4f})")
            continue
        line = f"  seed {s}: target {target:.4f}: modern {got[0] * 1024:,.0f} tokens, {got[1]:.0f} s"
        if ref is not None:
            tok_ratios.append(got[0] / ref[0])
            time_ratios.append(got[1] / ref[1])
            line += f"; gpt2 {ref[0] * 1024:,.0f} tokens, {ref[1]:.0f} s; ratio tokens {tok_ratios[-1]:.3f}, time {time_ratios[-1]:.3f}"
        print(line, flush=True)
    if tok_ratios:
        print(f"tokens to GPT-2's final val loss, modern / gpt2: {fmt_ratio(tok_ratios)}")
        print(f"train time to it, modern / gpt2 (runs on shared cores, not side by side): {fmt_ratio(time_ratios)}")
    report_throughput(gpt2_cfg, modern_cfg, args.throughput_steps)
    if args.ablation:
        ablate(modern_over, a_steps, a_evals, val, targets.get(0), gpt2_cfg.learning_rate, args.jobs, args.rows, args.tied_lrs)
    print(f"bench took {(time.perf_counter() - t_start) / 60:.1f} min")
    return 0


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _train_task(args: tuple) -> list:
    cfg, seed, evals, val, label, extra = args
    return train(cfg, seed, evals, val, label=label, **extra)


def run_all(tasks: dict, val, jobs: int) -> dict:
    """{key: (cfg, seed, evals, label[, train kwargs])} -> {key: points}; `jobs` processes
    of one thread each (one process: in this one)."""
    work = {k: (*v[:3], val, v[3], v[4] if len(v) > 4 else {}) for k, v in tasks.items()}
    if jobs <= 1 or len(work) <= 1:
        return {k: _train_task(a) for k, a in work.items()}
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(jobs, len(work)), mp_context=mp.get_context("spawn"), initializer=_worker_init) as ex:
        futures = {k: ex.submit(_train_task, a) for k, a in work.items()}
        return {k: f.result() for k, f in futures.items()}


def report_throughput(gpt2_cfg, modern_cfg, steps: int) -> None:
    med, pairs = throughput(gpt2_cfg, modern_cfg, steps)
    print(f"step time modern / gpt2 (alternated, {steps} steps each, median): {med:.3f} "
          f"-> tokens/s ratio {1 / med:.3f} (pairs: {min(pairs):.2f}-{max(pairs):.2f})", flush=True)


def ablate(modern_over: dict, m_steps: int, m_evals: list[int], val, target: float | None,
           best_adamw_lr: float, jobs: int, rows_filter: str = "", tied_lrs: str = "") -> None:
    """The modern recipe with each piece removed in turn, seed 0: tokens to target, final loss."""
    print(f"ablation (seed 0, {m_steps} steps, target {target})")
    words = [w for w in rows_filter.split(",") if w]
    rows = [("modern (all pieces)", {})] + [(k, v) for k, v in ABLATIONS.items()
                                            if not words or any(w in k for w in words)]
    rows += [(f"untied head (→ tied, at lr {lr:g})", {"pieces": {"untied": False}, "tied_lr": lr})
             for lr in map(float, filter(None, tied_lrs.split(",")))]
    tasks = {}
    for name, spec in rows:
        cfg = make_cfg(**{**modern_over, **spec.get("cfg", {})}, max_iters=m_steps, lr_decay_iters=m_steps)
        extra = dict(muon=spec.get("muon", True), pieces=spec.get("pieces"), cosine=spec.get("cosine", False),
                     adamw_lr=best_adamw_lr, tied_lr=spec.get("tied_lr"))
        tasks[name] = (cfg, 0, m_evals, f"- {name}", extra)
    done = run_all(tasks, val, jobs)
    print(f"| removed (seed 0, {m_steps} steps) | final val loss | tokens to target {target} |")
    for name, _ in rows:
        pts = done[name]
        got = reach(pts, target) if target is not None else None
        where = f"{got[0] * 1024:,.0f}" if got else "not reached"
        print(f"| {name} | {pts[-1][2]:.4f} | {where} |", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
