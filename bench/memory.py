"""Peak memory and throughput of the plain and the chunked loss, side by side.

Each measurement is a fresh child process running gpttui's real Trainer (no run folder)
on random tokens, with `chunked_loss` false (plain: all B·T·V logits) or true (chunked).
The paths alternate, plain first on even repeats and chunked first on odd ones. Peak
memory: CPU the child's peak RSS (`resource.getrusage`; this parent never imports torch,
whose RSS a forked child would inherit); CUDA `torch.cuda.max_memory_allocated` (and
`max_memory_reserved`). tokens/s is timed between the StepMetrics of step `--warmup` and
the last step (the first eval, compilation and the final checkpoint fall outside).
Next to each, the estimator's peak for the same config and its error (CUDA: without its
assumed 0.6 GB CUDA context, against both allocator peaks).

  python bench/memory.py                                  # C1 on CPU (fp32, eager)
  python bench/memory.py --set n_layer=6 --set n_head=6 --set n_embd=384 --set batch_size=4   # C2
  python bench/memory.py --device cuda --preset seed-000 --compile --set batch_size=16
  python bench/memory.py --device cuda --preset seed-000 --max-batch --cap-gib 12

`--max-batch`: instead, the largest micro-batch whose training step (forward, backward,
AdamW) fits, per path, found by doubling then bisecting in one child per path; on CUDA
`--cap-gib` limits the process with `torch.cuda.set_per_process_memory_fraction`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# C1 of issue #9. nanoGPT's peak RSS for it on this 2-core machine, as recorded in the issue
# (nanoGPT cannot be run from this repository): 2.2 GiB.
C1 = ["n_layer=4", "n_head=4", "n_embd=128", "block_size=256", "batch_size=8",
      "gradient_accumulation_steps=1", "dtype=float32", "dropout=0.0"]
NANOGPT_C1_GIB = 2.2
MIB = 2**20


def make_cfg(args: argparse.Namespace, chunked: bool):
    from gpttui import config as C
    from gpttui import presets

    base = dict(presets.get(args.preset).values) if args.preset else {}
    overrides = ([] if args.preset else C1) + list(args.overrides) + [
        "dataset=bench", "data_source=", f"device={args.device}", f"compile={str(args.compile).lower()}",
        "eval_interval=1000000", "eval_iters=1", "log_interval=1", "checkpoint_interval_s=0",
        "always_save_checkpoint=false", "warmup_iters=0", "decay_lr=false",
        f"chunked_loss={str(chunked).lower()}", f"max_iters={args.warmup + args.iters}",
    ]
    return C.build(base, overrides, source="bench")


# -- the child ----------------------------------------------------------------------------------

def child_measure(args: argparse.Namespace, chunked: bool) -> dict:
    import resource

    import torch
    from train import StepClock, write_data

    from gpttui.train.trainer import Trainer

    cfg = make_cfg(args, chunked)
    write_data(cfg, 400_000)
    cuda = args.device.startswith("cuda")
    if cuda and args.cap_gib:
        cap_fraction(args.cap_gib)
    clock = StepClock(args.warmup, args.warmup + args.iters)
    res = Trainer(cfg, None, [clock]).run()
    if res.kind != "finished":
        return {"error": f"{res.kind}: {getattr(res, 'reason', '')}"}
    out = {"tokens_per_s": cfg.batch_size * cfg.block_size * cfg.gradient_accumulation_steps * args.iters / clock.seconds,
           "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if cuda:
        out["peak_allocated"] = torch.cuda.max_memory_allocated()
        out["peak_reserved"] = torch.cuda.max_memory_reserved()
    return out


def cap_fraction(cap_gib: float) -> None:
    import torch

    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap_gib * 2**30 / total))


def child_max_batch(args: argparse.Namespace, chunked: bool) -> dict:
    """The largest micro-batch whose forward, backward and AdamW step fit (doubling, then
    bisecting between the last fit and the first failure)."""
    import torch

    from gpttui.model.recipes import build_model, build_optimizer
    from gpttui.train.setup import resolve_env

    cfg = make_cfg(args, chunked)
    env = resolve_env(cfg)
    if env.device_type == "cuda" and args.cap_gib:
        cap_fraction(args.cap_gib)
    model = build_model(cfg).to(env.device)  # the preset's recipe, as the Trainer builds it
    model.chunked_loss = chunked
    opt = build_optimizer(model, cfg, env.device_type)
    fwd = torch.compile(model) if env.compile else model

    def step(b: int) -> None:
        x = torch.randint(0, cfg.vocab_size, (b, cfg.block_size), device=env.device)
        with env.autocast():
            _, loss = fwd(x, x)
        loss.backward()
        opt.step()  # AdamW's state stays allocated from the first fit on, as in a run

    def fits(b: int) -> bool:
        if env.device_type == "cuda":
            torch.cuda.empty_cache()  # the last failure's tensors are gone by now
        try:
            step(b)
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            opt.zero_grad(set_to_none=True)

    lo, hi = 0, 1
    while hi <= args.max_batch_limit and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, args.max_batch_limit + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return {"max_batch": lo, "limit": args.max_batch_limit}


# -- the parent ---------------------------------------------------------------------------------

def spawn(args: argparse.Namespace, chunked: bool, mode: str) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--chunked" if chunked else "--plain"] + forward_args(args)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise SystemExit(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def forward_args(args: argparse.Namespace) -> list[str]:
    out = ["--device", args.device, "--iters", str(args.iters), "--warmup", str(args.warmup),
           "--cap-gib", str(args.cap_gib), "--max-batch-limit", str(args.max_batch_limit)]
    if args.preset:
        out += ["--preset", args.preset]
    if args.compile:
        out.append("--compile")
    for o in args.overrides:
        out += ["--set", o]
    return out


def predicted(args: argparse.Namespace, chunked: bool) -> int:
    """The estimator's peak for this config on this device kind; on CUDA without the
    assumed CUDA context, which no allocator statistic holds."""
    from gpttui.plan.estimate import CUDA_CONTEXT_BYTES, estimate

    cfg = make_cfg(args, chunked)
    cuda = args.device.startswith("cuda")
    est = estimate(cfg, device_kind="cuda" if cuda else "cpu")
    return est.mem_total.value - (CUDA_CONTEXT_BYTES if cuda else 0)


def spread(v: list[float]) -> str:
    return f"{statistics.median(v):,.0f} (min {min(v):,.0f}, max {max(v):,.0f})"


def report(args: argparse.Namespace, res: dict[bool, list[dict]]) -> None:
    cfg = make_cfg(args, True)
    name = "plain", "chunked"
    print(f"\nconfig: {cfg.n_layer}L/{cfg.n_head}H/{cfg.n_embd}d, block {cfg.block_size}, micro-batch "
          f"{cfg.batch_size} x accum {cfg.gradient_accumulation_steps}, {cfg.dtype}, {args.device}"
          f"{' compiled' if args.compile else ' eager'}; {args.iters} steps after {args.warmup}; "
          f"median of {args.repeat} (min, max)")
    keys = ["peak_rss"] + (["peak_allocated", "peak_reserved"] if args.device.startswith("cuda") else [])
    for chunked in (False, True):
        runs = res[chunked]
        pred = predicted(args, chunked)
        mem = "  ".join(f"{k} {spread([r[k] / MIB for r in runs])} MiB" for k in keys)
        print(f"{name[chunked]:>8}: {mem}  tokens/s {spread([r['tokens_per_s'] for r in runs])}")
        for k in keys[1:] if len(keys) > 1 else keys:  # CUDA: against the allocator, not RSS
            meas = statistics.median(r[k] for r in runs)
            print(f"{'':>8}  estimate {pred / MIB:,.0f} MiB vs {k} {meas / MIB:,.0f} MiB: {100 * (pred / meas - 1):+.1f} %")
    pairs = list(zip(res[False], res[True], strict=True))
    for k in keys + ["tokens_per_s"]:
        ratios = [c[k] / p[k] for p, c in pairs]
        print(f"chunked / plain {k:>15}: {statistics.median(ratios):.3f} "
              f"(repeats {', '.join(f'{r:.3f}' for r in ratios)})")
    if not args.preset and not args.overrides and args.device == "cpu":
        print(f"nanoGPT, same config (C1), peak RSS recorded in issue #9: {NANOGPT_C1_GIB} GiB")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--preset", default="", help="take the model and batch from a preset (default: C1)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--iters", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--max-batch", action="store_true", help="find the largest micro-batch per path instead")
    p.add_argument("--max-batch-limit", type=int, default=512)
    p.add_argument("--cap-gib", type=float, default=0.0, help="CUDA: limit the process to this many GiB")
    p.add_argument("--child", choices=("measure", "max-batch"), help=argparse.SUPPRESS)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--chunked", dest="path", action="store_const", const=True, help=argparse.SUPPRESS)
    g.add_argument("--plain", dest="path", action="store_const", const=False, help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ.setdefault("GPTTUI_DATA_DIR", tempfile.mkdtemp(prefix="gpttui-bench-"))
    if args.child:
        fn = child_measure if args.child == "measure" else child_max_batch
        print(json.dumps(fn(args, bool(args.path))), flush=True)
        return 0
    if args.max_batch:
        for chunked in (False, True):
            r = spawn(args, chunked, "max-batch")
            cap = f" under {args.cap_gib:g} GiB" if args.cap_gib else ""
            print(f"{'chunked' if chunked else 'plain':>8}: largest micro-batch{cap}: {r['max_batch']}"
                  f"{' (the search limit)' if r['max_batch'] >= r['limit'] else ''}", flush=True)
        return 0
    res: dict[bool, list[dict]] = {False: [], True: []}
    for rep in range(args.repeat):
        for chunked in ((False, True) if rep % 2 == 0 else (True, False)):
            r = spawn(args, chunked, "measure")
            if "error" in r:
                raise SystemExit(f"{'chunked' if chunked else 'plain'}: {r['error']}")
            res[chunked].append(r)
            print(f"repeat {rep + 1} {'chunked' if chunked else 'plain':>7}: peak RSS {r['peak_rss'] / MIB:,.0f} MiB"
                  + (f", allocated {r['peak_allocated'] / MIB:,.0f} MiB" if "peak_allocated" in r else "")
                  + f", {r['tokens_per_s']:,.0f} tokens/s", flush=True)
    report(args, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
