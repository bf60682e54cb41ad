"""The TUI's cost to training, and its key-press latency while training, in one run.

  (a) headless: the Trainer on a run folder (MetricsWriter) with the plain printer, as
      `gpttui --run --plain` drives it
  (b) TUI: the same config started from the real app (`App.run_test`, the real Training
      screen redrawing at its own rates, every event delivered through the app's inbox)

Both are timed the same way: a listener stamps each StepMetrics; tokens/s is taken over the
iterations after `--warmup`, so set-up, torch import and the final checkpoint do not count.
The runs alternate a, b, a, b, ... `--repeat` times; medians are reported, and the ratio
b/a (target >= 0.97). `--variants` adds diagnostic runs to the rotation: (A)/(B) = (a)/(b)
with the losses read back at each log instead of one step late (the loop before session 2:
on CUDA the device idled while the host logged). Python's GC pauses inside the timed window
are printed per run.

The app runs with a driver that is not "headless" to Textual, so every frame is rendered
to terminal escape sequences exactly as for a real terminal, then discarded.

Key latency: while a long run trains in the TUI, `?` (help) and `esc` (back) are pressed
alternately; each is timed from the key event to the first frame that shows the new screen
(App.post_display_hook). Median and p95 over `--presses` (target < 100 ms).

  python bench/tui.py                       # tiny CPU model, ~2 minutes on 2 busy cores
  python bench/tui.py --device cuda --preset seed-000 --set gradient_accumulation_steps=2 --compile --iters 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


from ui_cost import DiscardingTerminal  # noqa: E402  (the same torch-free terminal)

from gpttui import events as E  # noqa: E402

VARIANTS = {
    "a": "headless (MetricsWriter + plain printer)",
    "b": "TUI attached, Training screen redrawing",
    "A": "as (a), losses read back at each log (no deferral)",
    "B": "as (b), losses read back at each log (no deferral)",
}


@contextlib.contextmanager
def variant(key: str) -> Any:
    """Set up variant `key`: immediate read-back for (A)/(B)."""
    from gpttui.train.loop import Loop

    setup = Loop.setup

    def immediate(self: Any) -> None:
        setup(self)
        self.async_readback = False

    if key in "AB":
        Loop.setup = immediate  # type: ignore[method-assign]
    try:
        yield
    finally:
        Loop.setup = setup  # type: ignore[method-assign]


class GcWatch:
    """Python's garbage-collector pauses (gen, seconds, end time): a full collection walks
    every object, torch's compiled graphs included, and holds the GIL while it does."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float, float]] = []
        self._t0 = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._t0 = now
        else:
            self.pauses.append((info["generation"], now - self._t0, now))

    def summary(self, t0: float, t1: float) -> str:
        inside = [(g, d) for g, d, t in self.pauses if t0 <= t <= t1]
        if not inside:
            return "no GC"
        by_gen = {g: [d for gg, d in inside if gg == g] for g in (0, 1, 2)}
        return ", ".join(f"gen{g} {len(v)}x max {1000 * max(v):.0f} ms" for g, v in by_gen.items() if v)


GC = GcWatch()
LAST_GC: dict[str, list[str]] = {}


class StepClock:
    """Listener: (perf_counter, iter) of every StepMetrics; tokens/s after the warm-up."""

    def __init__(self, tokens_per_iter: int, warmup: int) -> None:
        self.tpi, self.warmup = tokens_per_iter, warmup
        self.stamps: list[tuple[float, int]] = []

    def __call__(self, ev: E.Event) -> None:
        if isinstance(ev, E.StepMetrics):
            self.stamps.append((time.perf_counter(), ev.iter))

    def tokens_per_s(self) -> float:
        timed = [(t, i) for t, i in self.stamps if i >= self.warmup]
        (t0, i0), (t1, i1) = timed[0], timed[-1]
        self.gc = GC.summary(t0, t1)
        return self.tpi * (i1 - i0) / (t1 - t0)


def make_cfg(iters: int, log_interval: int, device: str = "cpu", preset: str = "",
             overrides: tuple[str, ...] = (), compile_: bool = False) -> Any:
    from train import TINY  # bench/train.py: the same tiny model

    from gpttui import config as C
    from gpttui import presets

    base = dict(presets.get(preset).values) if preset else {}
    return C.build(base, ([] if preset else TINY) + list(overrides) + [
        "dataset=bench", "data_source=", f"device={device}", f"compile={str(compile_).lower()}",
        f"max_iters={iters}", f"lr_decay_iters={iters}", "eval_interval=1000000", "eval_iters=1",
        f"log_interval={log_interval}", "checkpoint_interval_s=0", "always_save_checkpoint=false",
        "warmup_iters=0", "gpu="], source="bench")


def headless(cfg: Any, warmup: int) -> float:
    from gpttui.cli.printers import PlainPrinter
    from gpttui.runs import store as runs
    from gpttui.train.trainer import Trainer

    clock = StepClock(cfg.tokens_per_iter, warmup)
    res = Trainer(cfg, runs.create_run(cfg, "bench"), [PlainPrinter(io.StringIO()), clock]).run()
    if res.kind != "finished":
        raise SystemExit(f"headless run failed: {res}")
    tps = clock.tokens_per_s()
    LAST_GC["a"] = [clock.gc]
    return tps


def tui_app(clock: StepClock | None) -> Any:
    from gpttui.tui.app import GptTuiApp, make_app
    from gpttui.tui.services import RealSession

    def new_session(cfg: Any, preset: str, listener: Any) -> RealSession:
        if clock is None:
            return RealSession(cfg, preset, listener)

        def both(ev: E.Event) -> None:
            listener(ev)
            clock(ev)

        return RealSession(cfg, preset, both)

    app = make_app(new_session=new_session)
    app.driver_class = DiscardingTerminal
    assert isinstance(app, GptTuiApp)
    return app


async def settle(app: Any, pilot: Any) -> None:
    """Let Home finish loading (presets, estimates, the CPU matmul peak measurement) so
    that it does not overlap the timed training, as it would not for a user."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)


async def wait(pilot: Any, cond: Any, timeout: float = 600) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit("timed out waiting for the run")
        await asyncio.sleep(0.05)  # not pilot.pause: it walks every widget to wait for idle (UI work a real app does not do)


async def with_tui(cfg: Any, warmup: int) -> float:
    clock = StepClock(cfg.tokens_per_iter, warmup)
    app = tui_app(clock)
    async with app.run_test(headless=False, size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.start_training(cfg, "bench")
        await wait(pilot, lambda: app.live is not None and app.live.state in (E.FINISHED, E.FAILED))
        if app.live.state != E.FINISHED:
            raise SystemExit(f"TUI run failed: {app.live.message}")
    tps = clock.tokens_per_s()
    LAST_GC["b"] = [clock.gc]
    return tps


async def key_latency(cfg: Any, presses: int) -> list[float]:
    """Milliseconds from a key to the first frame showing its effect, while training."""
    from gpttui.tui.screens.help import HelpScreen
    from gpttui.tui.screens.training import TrainingScreen

    app = tui_app(None)
    frames: list[tuple[float, type]] = []
    app.post_display_hook = lambda: frames.append((time.perf_counter(), type(app.screen)))  # type: ignore[method-assign]
    out: list[float] = []
    async with app.run_test(headless=False, size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.start_training(cfg, "bench")
        await wait(pilot, lambda: app.live is not None and app.live.step is not None and app.live.step.iter >= 5)
        for n in range(presses):
            key, want = ("question_mark", HelpScreen) if n % 2 == 0 else ("escape", TrainingScreen)
            await pilot.pause(0.2 + 0.013 * (n % 7))  # land at different points of a step
            seen = len(frames)
            t0 = time.perf_counter()
            await pilot.press(key)
            await wait(pilot, lambda want=want, seen=seen: any(s is want for _, s in frames[seen:]), timeout=10)
            t1 = next(t for t, s in frames[seen:] if s is want)
            out.append(1000 * (t1 - t0))
        assert app.live.active, "the run ended during the key test: raise its iterations"
        app.stop_session()
        await wait(pilot, lambda: not app.session.is_alive())
    return out


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=150, help="timed iterations per run")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--presses", type=int, default=20)
    p.add_argument("--log-interval", type=int, default=1, help="1 = an event (and UI message) every step")
    p.add_argument("--device", default="cpu")
    p.add_argument("--preset", default="", help="take the model and batch from a preset (default: tiny)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--variants", default="ab", help="which runs, in order, from: " + ", ".join(f"{k} = {v}" for k, v in VARIANTS.items()))
    args = p.parse_args()
    shape = (args.device, args.preset, tuple(args.overrides), args.compile)
    os.environ.setdefault("GPTTUI_DATA_DIR", tempfile.mkdtemp(prefix="gpttui-bench-tui-"))
    os.environ.setdefault("GPTTUI_CONFIG_DIR", tempfile.mkdtemp(prefix="gpttui-bench-tui-conf-"))
    from train import write_data

    cfg = make_cfg(args.warmup + args.iters, args.log_interval, *shape)
    write_data(cfg, 2_000_000)
    res: dict[str, list[float]] = {k: [] for k in args.variants}
    gcs: dict[str, list[str]] = {}
    for r in range(args.repeat):
        for k in args.variants:
            with variant(k):
                res[k].append(headless(cfg, args.warmup) if k in "aA" else asyncio.run(with_tui(cfg, args.warmup)))
            gcs.setdefault(k, []).append(LAST_GC["a" if k in "aA" else "b"][0])
        print(f"repeat {r + 1}: " + "   ".join(f"({k}) {res[k][-1]:,.0f}" for k in args.variants)
              + (f"   b/a {res['b'][-1] / res['a'][-1]:.3f}" if "a" in res and "b" in res else ""), flush=True)
        print("   GC while timed: " + "; ".join(f"({k}) {gcs[k][-1]}" for k in args.variants), flush=True)
    lat = asyncio.run(key_latency(make_cfg(1_000_000, args.log_interval, *shape), args.presses)) if args.presses else []
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"\nconfig: {cfg.n_layer}L/{cfg.n_head}H/{cfg.n_embd}d block {cfg.block_size} batch {cfg.batch_size} x {cfg.gradient_accumulation_steps} on {args.device}"
          f"{' compiled' if args.compile else ''},"
          f" log_interval {args.log_interval}; {args.iters} iters after {args.warmup}, median of {args.repeat}")
    for k, v in med.items():
        base = med.get("A" if k.isupper() else "a")
        ratio = f"   {k}/{'A' if k.isupper() else 'a'} = {v / base:.3f}" if base and k not in "aA" else ""
        print(f"({k}) {VARIANTS[k]:<58} {v:>12,.0f} tok/s{ratio}")
    if "a" in med and "b" in med:
        print(f"TUI attached / headless: b/a = {med['b'] / med['a']:.3f}  (target >= 0.97)")
    if lat:
        print(f"key -> frame while training: median {statistics.median(lat):.1f} ms, p95 {p95(lat):.1f} ms,"
              f" max {max(lat):.1f} ms over {len(lat)} presses (target < 100 ms)")
    print(f"frames written: {DiscardingTerminal.written / 1e6:.1f} MB of terminal output")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
