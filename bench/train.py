"""Training throughput: gpttui's Trainer next to a minimal eager PyTorch loop, in one run.

  (a) reference: the same GPT and micro-batch, a bare fwd/bwd/AdamW loop (no gpttui)
  (b) gpttui's Trainer with no listener and no run folder
  (c) the Trainer with a run folder, MetricsWriter and a plain printer attached

Each is timed over `--iters` optimizer steps after `--warmup` steps; a Trainer is timed
between the StepMetrics events of those two steps (log_interval 1; each is emitted after a
device sync), so set-up, compilation, the first eval and the final checkpoint fall outside. Repeated `--repeat` times, interleaved; medians reported.
The ratio c/b is gpttui's own overhead (events, metrics, NVML polling): target < 2 %.
With --trackers, (c) is timed twice (c, c': an A/A pair whose ratio shows the noise of this
machine) next to (w) (c) + W&B (WANDB_MODE=offline unless set), (t) (c) + TensorBoard and
(d) (c) + both, in an order that alternates between repeats; each tracker's ratio to (c) is
judged against the A/A noise (either side of 1): inside it is "no measurable loss". The trackers run in a
child process at nice 19 and SCHED_IDLE (gpttui.train.trackers.child); its CPU time is reported too.

  python bench/train.py                                   # CPU, tiny model
  python bench/train.py --device cuda --preset gpt2-124m --compile --set batch_size=16
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TINY = ["n_layer=2", "n_head=2", "n_embd=64", "block_size=64", "batch_size=8",
        "gradient_accumulation_steps=1", "dropout=0.0"]


def make_cfg(args: argparse.Namespace):
    from gpttui import config as C
    from gpttui import presets

    base = dict(presets.get(args.preset).values) if args.preset else {}
    overrides = ([] if args.preset else TINY) + list(args.overrides) + [
        "dataset=bench", "data_source=", f"device={args.device}", f"compile={str(args.compile).lower()}",
        "eval_interval=1000000", "eval_iters=1", "log_interval=1", "checkpoint_interval_s=0",
        "always_save_checkpoint=false", "warmup_iters=0", "decay_lr=false",
    ]
    return C.build(base, overrides, source="bench")


def write_data(cfg, tokens: int) -> None:
    import numpy as np

    from gpttui.paths import datasets_dir

    folder = datasets_dir() / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", tokens), ("val", max(cfg.block_size * 4, tokens // 20))):
        rng.integers(0, 50257, n, dtype=np.uint16).tofile(folder / f"{split}.bin")


def reference(cfg, steps: int) -> float:
    """Seconds for `steps` optimizer steps of a bare loop (after the caller's warm-up)."""
    import numpy as np
    import torch

    from gpttui.model.recipes import build_model, build_optimizer
    from gpttui.paths import datasets_dir
    from gpttui.train.setup import resolve_env

    env = resolve_env(cfg)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(env.device)  # the preset's recipe, as the Trainer builds it
    model.chunked_loss = cfg.chunked_loss  # the loss path the Trainer uses
    opt = build_optimizer(model, cfg, env.device_type)
    fwd = torch.compile(model) if env.compile else model
    scaler = torch.amp.GradScaler(env.device_type, enabled=env.use_scaler)
    data = torch.from_numpy(np.fromfile(datasets_dir() / "bench" / "train.bin", dtype=np.uint16).astype(np.int64))
    b, t = cfg.batch_size, cfg.block_size

    def batch():
        ix = torch.randint(len(data) - t - 1, (b,))
        xy = torch.stack([data[i : i + t + 1] for i in ix]).to(env.device)
        return xy[:, :-1].contiguous(), xy[:, 1:].contiguous()

    def step():
        for _ in range(cfg.gradient_accumulation_steps):
            x, y = batch()
            with env.autocast():
                _, loss = fwd(x, y)
            scaler.scale(loss / cfg.gradient_accumulation_steps).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(WARMUP):
        step()
    sync(env)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.item()
    sync(env)
    return time.perf_counter() - t0


def sync(env) -> None:
    import torch

    if env.device_type == "cuda":
        torch.cuda.synchronize()


class StepClock:
    """A listener that notes when the steps `start` and `end` are reported (log_interval 1:
    each StepMetrics is emitted right after its step's losses are read back, a device sync)."""

    def __init__(self, start: int, end: int):
        self.start, self.end = start, end
        self.t: dict[int, float] = {}
        self.cpu: dict[int, float] = {}  # the trainer thread's CPU time (this runs on it)

    def __call__(self, ev) -> None:
        it = getattr(ev, "iter", None)
        if type(ev).__name__ == "StepMetrics" and it in (self.start, self.end):
            self.t[it] = time.perf_counter()
            self.cpu[it] = time.thread_time()

    @property
    def cpu_seconds(self) -> float:
        return self.cpu[self.end] - self.cpu[self.start]

    @property
    def seconds(self) -> float:
        return self.t[self.end] - self.t[self.start]


def trainer_time(cfg, warmup: int, iters: int, listeners: bool, trackers: tuple[str, ...] = (), label: str = "") -> float:
    """Seconds the Trainer takes for `iters` steps after `warmup` steps (compile, the first
    eval and the final checkpoint fall outside the timed span)."""
    from gpttui.cli.printers import PlainPrinter
    from gpttui.runs import store as runs
    from gpttui.train.trainer import Trainer

    total = warmup + iters
    cfg = cfg.replace(max_iters=total, lr_decay_iters=total, log_interval=1,
                      wandb_log="wandb" in trackers, tensorboard_log="tensorboard" in trackers)
    run = runs.create_run(cfg, "bench") if listeners else None
    clock = StepClock(warmup, total)
    lst = [clock] + ([PlainPrinter(io.StringIO())] if listeners else [])
    tr = Trainer(cfg, run, lst)
    res = tr.run()
    if res.kind != "finished":
        raise SystemExit(f"trainer failed: {res}")
    tracker_cpu = 0.0
    for fn in tr._listeners:  # let W&B / TensorBoard finish before the next timed run
        if hasattr(fn, "close") and fn.__class__.__name__ == "TrackerListener":
            fn.close(timeout=300)
            tracker_cpu += fn.cpu_s
    if label:  # (c), (c'), (w), (t), (d)
        CPU.setdefault(label, []).append(clock.cpu_seconds / iters)
    if trackers:
        CPU.setdefault(label + " child", []).append(tracker_cpu / total)
    return clock.seconds


WARMUP = 5
CPU: dict[str, list[float]] = {}  # CPU seconds per step: trainer thread (by variant), tracker process
VARIANTS = {"c": (), "c'": (), "w": ("wandb",), "t": ("tensorboard",), "d": ("wandb", "tensorboard")}


def main() -> int:
    global WARMUP
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--preset", default="", help="a preset to take the model and batch from (default: tiny)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--trackers", action="store_true",
                   help="also (c') (w) (t) (d): an A/A (c) and (c) + W&B (offline) / TensorBoard / both")
    p.add_argument("--trackers-only", action="store_true", help="with --trackers: time only those, alternating")
    args = p.parse_args()
    args.trackers = args.trackers or args.trackers_only
    if args.trackers:
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
    WARMUP = args.warmup
    os.environ.setdefault("GPTTUI_DATA_DIR", tempfile.mkdtemp(prefix="gpttui-bench-"))
    cfg = make_cfg(args)
    write_data(cfg, 2_000_000)
    tpi = cfg.batch_size * cfg.block_size * cfg.gradient_accumulation_steps
    order = (["a", "b"] if not args.trackers_only else []) + (list(VARIANTS) if args.trackers else ["c"])
    res: dict[str, list[float]] = {k: [] for k in order}
    for r in range(args.repeat):
        for key in order if r % 2 == 0 else order[::-1]:  # alternating: drift hits every variant alike
            if key == "a":
                secs = reference(cfg, args.iters)
            else:
                secs = trainer_time(cfg, args.warmup, args.iters, key != "b", VARIANTS.get(key, ()), key)
            res[key].append(tpi * args.iters / secs)
        print(f"repeat {r + 1}: " + "  ".join(f"{k} {v[-1]:,.0f}" for k, v in res.items()) + " tok/s", flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"\nconfig: {cfg.n_layer}L/{cfg.n_head}H/{cfg.n_embd}d block {cfg.block_size} batch {cfg.batch_size}"
          f" x accum {cfg.gradient_accumulation_steps} on {args.device}{' compiled' if args.compile else ''};"
          f" {args.iters} iters after {args.warmup} warm-up, median of {args.repeat}")
    if "a" in med:
        print(f"(a) bare PyTorch loop        {med['a']:>12,.0f} tok/s")
        print(f"(b) Trainer, no listeners    {med['b']:>12,.0f} tok/s   b/a = {med['b'] / med['a']:.3f}")
        print(f"(c) Trainer + MetricsWriter  {med['c']:>12,.0f} tok/s   c/b = {med['c'] / med['b']:.3f}"
              f"   listener overhead {100 * (1 - med['c'] / med['b']):+.1f} %")
    else:
        print(f"(c) Trainer + MetricsWriter  {med['c']:>12,.0f} tok/s")
    if args.trackers:
        tracker_verdict(res)
    return 0


def tracker_verdict(res: dict[str, list[float]]) -> None:
    """Each tracker's per-repeat ratio to (c) of the same repeat, judged against the A/A
    noise: the largest distance from 1 of c'/c (two identical runs), on either side. A
    median ratio within 1 - that noise is no measurable loss. (A one-sided band would call
    0.985 a loss whenever the few A/A repeats happen to land above 1.)"""
    ratio = {k: [x / c for x, c in zip(res[k], res["c"], strict=True)] for k in ("c'", "w", "t", "d")}
    aa = ratio["c'"]
    noise = max(abs(1 - x) for x in aa)
    lo, hi = 1 - noise, 1 + noise
    print(f"(c') A/A: c'/c per repeat {', '.join(f'{x:.3f}' for x in aa)}  -> noise ±{100 * noise:.1f} %"
          f" (band {lo:.3f} .. {hi:.3f})")
    if noise > 0.05:
        print(f"     the A/A spread is {100 * (hi - lo):.0f} points wide: this machine is too busy to resolve a"
              " tracker's cost; rerun on a quiet one (the verdicts below are inconclusive)")
    cpu = {k: statistics.median(v) * 1e3 for k, v in CPU.items()}
    for key, name in (("w", "W&B"), ("t", "TensorBoard"), ("d", "W&B + TensorBoard")):
        m = statistics.median(ratio[key])
        verdict = "no measurable loss (inside the A/A band)" if m >= lo else f"LOSS {100 * (1 - m):.1f} % (below the A/A band)"
        print(f"({key}) {name:<18} {key}/c median {m:.3f}  per repeat {', '.join(f'{x:.3f}' for x in ratio[key])}"
              f"  -> {verdict}")
        print(f"     CPU per step: trainer thread {cpu[key]:.2f} ms vs (c) {cpu['c']:.2f} ms;"
              f" tracker process {cpu[key + ' child']:.2f} ms (incl. start-up, at the lowest priority)")


if __name__ == "__main__":
    raise SystemExit(main())
