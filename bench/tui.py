"""The TUI's cost to training, and its key-press latency while training, in one run.

  (a) headless: the Trainer on a run folder (MetricsWriter) with the plain printer, as
      `gpttui --run --plain` drives it
  (b) TUI: the same config started from the real app (`App.run_test`, the real Training
      screen redrawing at its 4 Hz / 1 Hz rates, every event posted to the UI)

Both are timed the same way: a listener stamps each StepMetrics; tokens/s is taken over the
iterations after `--warmup`, so set-up, torch import and the final checkpoint do not count.
The runs alternate a, b, a, b, ... `--repeat` times; medians are reported, and the ratio
b/a (target >= 0.97).

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

from textual.drivers.headless_driver import HeadlessDriver  # noqa: E402

from gpttui import events as E  # noqa: E402

SLOW_RATES = (1.0, 5.0)  # variant (c): Training screen redraw periods (numbers, chart) in seconds


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
        return self.tpi * (i1 - i0) / (t1 - t0)


class DiscardingTerminal(HeadlessDriver):
    """A driver Textual treats as a real terminal (frames rendered to escape sequences);
    the output is counted and dropped."""

    written = 0

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        DiscardingTerminal.written += len(data)


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
    from gpttui import runs
    from gpttui.headless import PlainPrinter
    from gpttui.trainer import Trainer

    clock = StepClock(cfg.tokens_per_iter, warmup)
    res = Trainer(cfg, runs.create_run(cfg, "bench"), [PlainPrinter(io.StringIO()), clock]).run()
    if res.kind != "finished":
        raise SystemExit(f"headless run failed: {res}")
    return clock.tokens_per_s()


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
        await pilot.pause(0.05)


async def with_tui(cfg: Any, warmup: int) -> float:
    clock = StepClock(cfg.tokens_per_iter, warmup)
    app = tui_app(clock)
    async with app.run_test(headless=False, size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.start_training(cfg, "bench")
        await wait(pilot, lambda: app.live is not None and app.live.state in (E.FINISHED, E.FAILED))
        if app.live.state != E.FINISHED:
            raise SystemExit(f"TUI run failed: {app.live.message}")
    return clock.tokens_per_s()


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
    args = p.parse_args()
    shape = (args.device, args.preset, tuple(args.overrides), args.compile)
    os.environ.setdefault("GPTTUI_DATA_DIR", tempfile.mkdtemp(prefix="gpttui-bench-tui-"))
    os.environ.setdefault("GPTTUI_CONFIG_DIR", tempfile.mkdtemp(prefix="gpttui-bench-tui-conf-"))
    from train import write_data

    cfg = make_cfg(args.warmup + args.iters, args.log_interval, *shape)
    write_data(cfg, 2_000_000)
    from gpttui.tui.screens.training import TrainingScreen

    rates = (TrainingScreen.REFRESH_S, TrainingScreen.CHART_S)
    res: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    for r in range(args.repeat):
        res["a"].append(headless(cfg, args.warmup))
        res["b"].append(asyncio.run(with_tui(cfg, args.warmup)))
        TrainingScreen.REFRESH_S, TrainingScreen.CHART_S = SLOW_RATES  # (c): how much do redraws cost?
        res["c"].append(asyncio.run(with_tui(cfg, args.warmup)))
        TrainingScreen.REFRESH_S, TrainingScreen.CHART_S = rates
        print(f"repeat {r + 1}: headless {res['a'][-1]:,.0f} tok/s   TUI {res['b'][-1]:,.0f} tok/s"
              f"   ratio {res['b'][-1] / res['a'][-1]:.3f}   TUI at slow redraw rates {res['c'][-1]:,.0f} tok/s",
              flush=True)
    lat = asyncio.run(key_latency(make_cfg(1_000_000, args.log_interval, *shape), args.presses))
    a, b, c = (statistics.median(res[k]) for k in "abc")
    print(f"\nconfig: {cfg.n_layer}L/{cfg.n_head}H/{cfg.n_embd}d block {cfg.block_size} batch {cfg.batch_size} x {cfg.gradient_accumulation_steps} on {args.device}"
          f"{' compiled' if args.compile else ''},"
          f" log_interval {args.log_interval}; {args.iters} iters after {args.warmup}, median of {args.repeat}")
    print(f"(a) headless (MetricsWriter + plain printer)  {a:>10,.0f} tok/s")
    print(f"(b) TUI attached, Training screen redrawing   {b:>10,.0f} tok/s   b/a = {b / a:.3f}  (target >= 0.97)")
    print(f"(c) as (b), numbers every {SLOW_RATES[0]:g} s, chart every {SLOW_RATES[1]:g} s"
          f"   {c:>10,.0f} tok/s   c/a = {c / a:.3f}")
    print(f"key -> frame while training: median {statistics.median(lat):.1f} ms, p95 {p95(lat):.1f} ms,"
          f" max {max(lat):.1f} ms over {len(lat)} presses (target < 100 ms)")
    print(f"frames written: {DiscardingTerminal.written / 1e6:.1f} MB of terminal output")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
