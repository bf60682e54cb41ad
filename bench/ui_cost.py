"""What the Training screen costs the UI thread (and so the GIL the trainer needs), without torch.

A fake trainer thread emits StepMetrics at `--rate` per second (25 = one per 40 ms step,
the H100 figure for seed-000) into the real app's listener, with the Training screen shown
at `--size`, for `--seconds`. Frames are rendered to escape sequences as for a real
terminal and discarded. Reported: the UI thread's CPU time per second of wall time (its
share of a core; the GIL is held for nearly all of it), frames per second, and which
widgets rendered how often. Lower is better; nothing here depends on the GPU.

  python bench/ui_cost.py                   # 25 events/s, 120x40, 10 s
  python bench/ui_cost.py --rate 2.5        # log_interval 10 at the same speed
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.drivers.headless_driver import HeadlessDriver  # noqa: E402
from textual.widget import Widget  # noqa: E402

from gpttui import events as E  # noqa: E402


class DiscardingTerminal(HeadlessDriver):
    """A driver Textual treats as a real terminal (frames rendered to escape sequences);
    the output is counted and dropped."""

    written = 0

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        DiscardingTerminal.written += len(data)


def step(i: int, max_iters: int) -> E.StepMetrics:
    loss = 10.0 / (1 + i / 100)
    return E.StepMetrics(
        "bench-ui", iter=i, max_iters=max_iters, loss=loss, lr=6e-4, grad_norm=0.5 + (i % 7) / 10, step_time_s=0.04,
        tokens_per_s=820_000.0 + i % 1000, tokens_seen=32768 * i, elapsed_s=0.04 * i, eta_s=0.04 * (max_iters - i),
        mfu=0.25, peak_tflops=989.0, peak_basis="H100 SXM bf16 dense 989 TFLOPS (table)", vram_used=5 * 2**30 + i,
        vram_peak=8 * 2**30, vram_total=80 * 2**30, power_w=400.0 + i % 50, energy_kwh=0.001 * i)


class FakeSession:
    """Emits StepMetrics at `rate` per second from its own thread until stopped."""

    def __init__(self, listener: Any, rate: float) -> None:
        self.listener, self.rate = listener, rate
        self.alive = False
        self._stop = threading.Event()

    def start(self) -> None:
        self.alive = True
        self.listener(E.StatusChanged("bench-ui", state=E.TRAINING, message="training"))
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        i, period = 0, 1.0 / self.rate
        t = time.perf_counter()
        while not self._stop.is_set():
            i += 1
            self.listener(step(i, 1_000_000))
            t += period
            time.sleep(max(0.0, t - time.perf_counter()))

    def stop(self) -> None:
        self._stop.set()
        self.alive = False

    def is_alive(self) -> bool:
        return self.alive

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def save_now(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


async def measure(rate: float, seconds: float, size: tuple[int, int], profile: int = 0) -> None:
    from gpttui import config as C
    from gpttui.tui.app import make_app

    renders: collections.Counter[str] = collections.Counter()
    real_render_lines = Widget.render_lines

    def counting(self: Widget, crop: Any) -> Any:
        renders[type(self).__name__] += 1
        return real_render_lines(self, crop)

    app = make_app(new_session=lambda cfg, preset, listener: FakeSession(listener, rate))
    app.driver_class = DiscardingTerminal
    frames = [0]
    app.post_display_hook = lambda: frames.__setitem__(0, frames[0] + 1)  # type: ignore[method-assign]
    async with app.run_test(headless=False, size=size):
        await asyncio.sleep(1.0)  # Home loads
        app.start_training(C.TrainConfig(), "bench")
        await asyncio.sleep(2.0)  # the Training screen composes, the first chart draws
        Widget.render_lines = counting  # type: ignore[method-assign]
        prof = cProfile.Profile() if profile else None
        f0, cpu0, t0 = frames[0], time.thread_time(), time.perf_counter()
        if prof:
            prof.enable()
        await asyncio.sleep(seconds)
        if prof:
            prof.disable()
        cpu, wall, nframes = time.thread_time() - cpu0, time.perf_counter() - t0, frames[0] - f0
        Widget.render_lines = real_render_lines  # type: ignore[method-assign]
        app.session.stop()
    print(f"{rate:g} events/s, {size[0]}x{size[1]}, {wall:.1f} s: UI thread CPU {1000 * cpu / wall:.1f} ms per s "
          f"({100 * cpu / wall:.1f} % of a core), {nframes / wall:.1f} frames/s, "
          f"{DiscardingTerminal.written / wall / 1e3:.0f} kB/s of terminal output")
    print("widget renders per second: " + ", ".join(f"{k} {v / wall:.1f}" for k, v in renders.most_common(12)))
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(profile)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=25.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--size", default="120x40")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="profile the UI thread (cProfile) and print its N heaviest functions by cumulative time")
    args = p.parse_args()
    os.environ.setdefault("GPTTUI_DATA_DIR", tempfile.mkdtemp(prefix="gpttui-bench-ui-"))
    os.environ.setdefault("GPTTUI_CONFIG_DIR", tempfile.mkdtemp(prefix="gpttui-bench-ui-conf-"))
    w, h = (int(v) for v in args.size.split("x"))
    asyncio.run(measure(args.rate, args.seconds, (w, h), args.profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
