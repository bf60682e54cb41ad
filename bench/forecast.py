"""How well a run's forecast predicts its final val loss, and how much fixed evaluation
tokens quieten a curve.

1. Train tiny CPU runs (2 shapes x 2 recipes x `--seeds` seeds, dataset demo-pystdlib,
   prepared if missing, its tokens remapped to the VOCAB most frequent ids; `--jobs`
   processes of one thread each). At each of ~20 evals the
   val loss is scored twice on the same weights: on the fixed batches `eval_fixed` uses
   (`BatchReader.fixed_batches("val")`) and on fresh random batches (the "eval" stream, as
   with eval_fixed off). The eval stream never moves the training data, so this is the same
   training as two runs with eval_fixed on and off. The curves go to `--curves` (JSON).
2. Forecast (gpttui.plan.forecast) made from the fixed evals up to 30 % and 50 % of each run:
   absolute error (%) against the run's final (fixed) val loss, and whether the band holds it;
   with the decay prior calibrated on the other runs of the recipe (leave-one-out), with the
   shipped priors (in-sample), and with the decay ignored (a power law in steps).
3. Noise: per run and per kind of eval, the std of each eval's distance from a smooth fit of
   the run's own curve (a local quadratic through its neighbours, see `noise`); the ratio
   random / fixed.

  OMP_NUM_THREADS=1 nice -n 19 python bench/forecast.py   # train and report (19 min at load 15-19)
  python bench/forecast.py --report-only              # report from the saved curves
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe import GPT2, MODERN, SHAPE  # noqa: E402  (bench/recipe.py: the recipe bench's settings)

# Sized for 2 shared, loaded cores (load 15-19, ~10 % of a core per process): the demo's
# tokens are remapped to its VOCAB most frequent ids (the rest to one id), or the GPT-2
# vocabulary's 50,257-wide head would be nearly all of each step's cost.
VOCAB = 4096
SHAPES = {"2L/48d/T64/B4": dict(n_layer=2, n_head=2, n_embd=48, block_size=64, batch_size=4),
          "4L/64d/T64/B4": dict(n_layer=4, n_head=4, n_embd=64, block_size=64, batch_size=4)}
RECIPES = {"gpt2": dict(GPT2, learning_rate=3e-3, min_lr=3e-4), "modern": dict(MODERN)}
SCHEDULE_KEYS = ("recipe", "max_iters", "decay_lr", "warmup_iters", "lr_decay_iters", "learning_rate", "min_lr",
                 "warmdown_frac")


def make_cfg(shape: str, recipe: str, steps: int, eval_interval: int, eval_iters: int):
    from gpttui import config as C

    values = {**SHAPE, **SHAPES[shape], **RECIPES[recipe], "max_iters": steps, "lr_decay_iters": steps,
              "eval_interval": eval_interval, "eval_iters": eval_iters, "eval_fixed": True}
    return dataclasses.replace(C.build(values, source="bench"), vocab_size=VOCAB)  # (build checks >= GPT-2's)


def remapped(cfg) -> Path:
    """The demo dataset with its tokens remapped to the VOCAB most frequent train ids (the
    rest to VOCAB - 1), written once next to it."""
    import numpy as np

    from gpttui.paths import datasets_dir

    src, dst = datasets_dir() / cfg.dataset, datasets_dir() / f"{cfg.dataset}-bench-v{VOCAB}"
    if (dst / "val.bin").exists():
        return dst
    train = np.memmap(src / "train.bin", dtype=np.uint16, mode="r")
    order = np.argsort(np.bincount(train, minlength=65536))[::-1]
    table = np.full(65536, VOCAB - 1, dtype=np.uint16)
    table[order[:VOCAB - 1]] = np.arange(VOCAB - 1, dtype=np.uint16)
    dst.mkdir(parents=True, exist_ok=True)
    for split in ("val", "train"):  # val last: its presence says the copy is whole
        table[np.memmap(src / f"{split}.bin", dtype=np.uint16, mode="r")].tofile(dst / f"{split}.bin")
    return dst


def val_loss(model, batches, n: int) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        total = sum(model(*batches())[1].item() for _ in range(n))
    model.train()
    return total / n


def train(task: tuple) -> dict[str, Any]:
    """One run: {'evals': [(iter, fixed val, random val)], schedule keys, ...}."""
    import torch

    from gpttui.data.reader import BatchReader
    from gpttui.model import recipes

    shape, recipe, seed, steps, every, n_eval = task
    cfg = make_cfg(shape, recipe, steps, every, n_eval)
    torch.manual_seed(seed)
    model = recipes.build_model(cfg)
    opt = recipes.build_optimizer(model, cfg, "cpu")
    reader = BatchReader(remapped(cfg), cfg.block_size, cfg.batch_size, "cpu", seed)

    def both() -> tuple[float, float]:
        fixed = reader.fixed_batches("val")
        return (val_loss(model, fixed.get_batch, n_eval),
                val_loss(model, lambda: reader.get_batch("val", stream="eval"), n_eval))

    evals = [(0, *both())]
    t0 = time.perf_counter()
    for it in range(steps):
        x, y = reader.get_batch("train")
        recipes.apply_lr(opt, cfg, it)
        _, loss = model(x, y)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if (it + 1) % every == 0 or it + 1 == steps:
            evals.append((it + 1, *both()))
    label = f"{recipe} {shape} seed {seed}"
    print(f"  {label:<32} final val {evals[-1][1]:.4f} (random {evals[-1][2]:.4f}); "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return {"label": label, "shape": shape, "seed": seed, "evals": evals,
            "tokens_per_iter": cfg.batch_size * cfg.block_size,
            **{k: getattr(cfg, k) for k in SCHEDULE_KEYS}}


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def train_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    from gpttui.data.ensure import ensure_dataset

    cfg = make_cfg(next(iter(SHAPES)), "gpt2", 100, 5, 1)
    ensure_dataset(cfg)
    remapped(cfg)
    every = max(1, args.steps // args.evals)
    tasks = [(shape, recipe, seed, args.steps, every, args.eval_iters)
             for shape in SHAPES for recipe in RECIPES
             for seed in range(args.first_seed, args.first_seed + args.seeds)]
    print(f"{len(tasks)} runs of {args.steps} steps, an eval every {every} steps, {args.eval_iters} val "
          f"batches per eval (fixed and random); {args.jobs} job(s)", flush=True)
    if args.jobs <= 1:
        _worker_init()
        return [train(t) for t in tasks]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init) as ex:
        return list(ex.map(train, tasks))


def noise(evals: list[tuple[int, float]], max_iters: int, half: int = 3) -> float:
    """Std of each eval's distance from a smooth fit of the curve: a quadratic in log(iter)
    through its `half` neighbours on each side (the eval itself left out), over the evals
    past 20 % of the run (before that the curve bends too fast for any smoother)."""
    import numpy as np

    pts = [(i, v) for i, v in evals if i >= 0.2 * max_iters]
    x = np.log([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    dist = []
    for k in range(half, len(pts) - half):
        nb = [j for j in range(k - half, k + half + 1) if j != k]
        coef = np.polyfit(x[nb], y[nb], 2)
        dist.append(y[k] - np.polyval(coef, x[k]))
    return float(np.std(dist))


def forecast_at(run: dict[str, Any], frac: float, k_prior: float | None = None, **kw: Any):
    from gpttui.plan import forecast as F

    sched = F.Schedule.of({**run, **kw})
    upto = frac * run["max_iters"]
    pts = [(i, v) for i, v, _ in run["evals"] if i <= upto]
    return F.forecast(pts, sched, k_prior=k_prior)


def decay_ratios(runs: list[dict[str, Any]]) -> list[float | None]:
    """Each run's measured K / (fitted loss at the decay's start), from its whole curve."""
    from gpttui.plan import forecast as F

    return [F.decay_ratio([(i, v) for i, v, _ in r["evals"]], F.Schedule.of(r)) for r in runs]


def loo_prior(runs: list[dict[str, Any]], ratios: list[float | None], k: int) -> float | None:
    """The decay prior for run k calibrated on the other runs of its recipe (median)."""
    others = [x for j, (r, x) in enumerate(zip(runs, ratios, strict=True))
              if j != k and x is not None and r["recipe"] == runs[k]["recipe"]]
    return statistics.median(others) if others else None


def report(runs: list[dict[str, Any]]) -> None:
    from gpttui.plan import forecast as F

    ratios = decay_ratios(runs)
    print("\ndecay ratio K / (fitted loss at the decay's start), fitted on each whole run: "
          + ", ".join(f"{r['label']}: {'n/a' if x is None else f'{x:.3f}'}" for r, x in zip(runs, ratios, strict=True)))
    variants = {"model, decay prior calibrated on the other runs of the recipe": "loo",
                f"model, shipped K_PRIORS {F.K_PRIORS} (in-sample)": "shipped",
                "decay ignored (constant-lr power law in steps)": "flat"}
    print(f"\n{len(runs)} runs; forecast from the fixed evals up to 30 % / 50 % of the run vs the final (fixed) "
          "val loss; err = |forecast - final| / final; 'in' = |forecast - final| <= band (model, calibrated prior)")
    print(f"{'run':<32} {'final':>7} | {'@30%':>13} {'err%':>6} {'in':>3} | {'@50%':>13} {'err%':>6} {'in':>3}"
          f" | {'last eval@50%':>13} {'err%':>6}")
    stats: dict[tuple[str, float], list[tuple[float, bool]]] = {}
    naive = []
    for k, run in enumerate(runs):
        final = run["evals"][-1][1]
        cells = []
        for frac in (0.3, 0.5):
            for name, how in variants.items():
                kw = {"decay_lr": False} if how == "flat" else {}
                fc = forecast_at(run, frac, loo_prior(runs, ratios, k) if how == "loo" else None, **kw)
                if fc is None:
                    stats.setdefault((name, frac), []).append((float("nan"), False))
                    cells += [f"{'none':>13} {'':>6} {'':>3}"] if how == "loo" else []
                    continue
                err = abs(fc.loss - final) / final * 100
                inside = abs(fc.loss - final) <= fc.band
                stats.setdefault((name, frac), []).append((err, inside))
                if how == "loo":
                    cells.append(f"{fc.loss:6.3f}±{fc.band:5.3f} {err:6.2f} {'yes' if inside else 'no':>3}")
        last = [v for i, v, _ in run["evals"] if i <= 0.5 * run["max_iters"]][-1]
        naive.append(abs(last - final) / final * 100)
        print(f"{run['label']:<32} {final:7.3f} | {' | '.join(cells)} | {last:13.3f} {naive[-1]:6.2f}")
    print()
    for (name, frac), rows in sorted(stats.items(), key=lambda kv: (kv[0][1], list(variants).index(kv[0][0]))):
        errs = [e for e, _ in rows if e == e]
        hits = sum(c for _, c in rows)
        print(f"at {frac:.0%}, {name}: median abs error {statistics.median(errs):.2f} % (max {max(errs):.2f} %), "
              f"band coverage {hits}/{len(errs)} = {hits / len(errs):.0%}"
              + (f", {len(rows) - len(errs)} without a forecast" if len(rows) > len(errs) else ""))
    print(f"at 50 %, the last eval as the forecast: median abs error {statistics.median(naive):.2f} %")
    print("\nnoise: std of each eval's distance from a smooth fit of its own curve (same runs, same weights)")
    noise_ratios = []
    for run in runs:
        nf = noise([(i, f) for i, f, _ in run["evals"]], run["max_iters"])
        nr = noise([(i, r) for i, _, r in run["evals"]], run["max_iters"])
        noise_ratios.append(nr / nf if nf > 0 else float("inf"))
        print(f"  {run['label']:<32} fixed {nf:.4f}  random {nr:.4f}  ratio {noise_ratios[-1]:.1f}x")
    print(f"random / fixed: median {statistics.median(noise_ratios):.1f}x (min {min(noise_ratios):.1f}x, "
          f"max {max(noise_ratios):.1f}x)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200, help="optimizer steps of each run")
    ap.add_argument("--evals", type=int, default=20, help="evaluations over the run")
    ap.add_argument("--eval-iters", type=int, default=4, help="val batches per evaluation (each kind)")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds first-seed.. (2 or more: runs the shipped K_PRIORS were not calibrated on)")
    ap.add_argument("--jobs", type=int, default=2, help="runs trained at once, in processes of one thread each")
    ap.add_argument("--curves", type=Path, default=Path(tempfile.gettempdir()) / "gpttui-forecast-curves.json")
    ap.add_argument("--report-only", action="store_true", help="report from --curves, train nothing")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.report_only:
        t0 = time.perf_counter()
        runs = train_all(args)
        args.curves.write_text(json.dumps(runs))
        print(f"training took {(time.perf_counter() - t0) / 60:.1f} min; curves in {args.curves}")
    runs = json.loads(args.curves.read_text())
    report(runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
