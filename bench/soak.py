"""Soak: the TUI attached to a fake trainer at 50 events/s for 10 minutes (a long run, sped up).

A fake trainer thread emits StepMetrics at `--rate` per second (plus an eval, a checkpoint
and a log line every 500 steps) into the real app's listener *and* a real `MetricsWriter`
on a run folder, with the Training screen shown at 120x40; frames are rendered to escape
sequences as for a real terminal and discarded (bench/ui_cost.py's driver). Meanwhile `?`
and `esc` are pressed alternately every `--press-every` seconds.

Reported (targets from issue #11):
  - the process's RSS growth from the end of the first minute to the end (< 50 MB),
    sampled every 30 s
  - bytes per step record in metrics.jsonl: first (a writer's full record), median, max of
    the rest (<= 300)
  - key -> first frame showing the new screen: median and p95 (< 100 ms)
No torch: nothing here depends on the GPU.

  python bench/soak.py                        # 50 events/s, 10 minutes
  python bench/soak.py --minutes 1            # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_cost import DiscardingTerminal, FakeSession, step  # noqa: E402

from gpttui import events as E  # noqa: E402


def rss_mb() -> float:
    """Resident set size of this process (Linux /proc; ru_maxrss elsewhere is a peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SoakSession(FakeSession):
    """ui_cost's fake TrainSession, also writing a run folder, with an eval, a checkpoint and
    a log line every 500 steps."""

    def __init__(self, listener: Any, rate: float, writer: Any) -> None:
        super().__init__(listener, rate)
        self.writer = writer
        self.run_id = "bench-ui"
        self.steps = 0
        self.error = ""

    def _emit(self, ev: E.Event) -> None:
        self.writer(ev)
        self.listener(ev)

    def start(self) -> None:
        from gpttui.plan import hostmem

        hostmem.freeze_heap()  # as the real trainer does once its set-up is done (train/loop.py)
        self.alive = True
        self._emit(E.StatusChanged("bench-ui", state=E.TRAINING, message="training"))
        threading.Thread(target=self._run, daemon=True, name="soak-trainer").start()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # a dead fake trainer would make the figures meaningless
            self.error = f"{type(e).__name__}: {e}"
            raise

    def _loop(self) -> None:
        i, period = 0, 1.0 / self.rate
        t = time.perf_counter()
        while not self._stop.is_set():
            i += 1
            self._emit(step(i, 10_000_000))
            self.steps = i
            if i % 500 == 0:
                loss = 10.0 / (1 + i / 100)
                self._emit(E.EvalResult("bench-ui", iter=i, train_loss=loss, val_loss=loss * 1.05,
                                        best_val_loss=loss * 1.05, tokens_seen=32768 * i))
                self._emit(E.CheckpointSaved("bench-ui", iter=i, path="ckpt.pt", reason="best"))
                self._emit(E.LogMessage("bench-ui", level="info", text=f"soak: {i} steps"))
            t += period
            time.sleep(max(0.0, t - time.perf_counter()))


async def soak(rate: float, seconds: float, press_every: float, frame_timeout: float = 10.0) -> dict[str, Any]:
    from gpttui import config as C
    from gpttui.runs import store as runs
    from gpttui.runs import writer as runwriter
    from gpttui.tui.app import make_app
    from gpttui.tui.screens.help import HelpScreen
    from gpttui.tui.screens.training import TrainingScreen

    cfg = C.TrainConfig()
    run = runs.create_run(cfg, "soak", name="soak", params=124_000_000)
    writer = runwriter.MetricsWriter(run)
    sessions: list[SoakSession] = []

    def new_session(cfg: Any, preset: str, listener: Any) -> SoakSession:
        sessions.append(SoakSession(listener, rate, writer))
        return sessions[-1]

    app = make_app(new_session=new_session)
    app.driver_class = DiscardingTerminal
    frames: list[tuple[float, type]] = []
    app.post_display_hook = lambda: frames.append((time.perf_counter(), type(app.screen)))  # type: ignore[method-assign]
    rss: list[tuple[float, float]] = []
    lat: list[float] = []
    async with app.run_test(headless=False, size=(120, 40)) as pilot:
        for _ in range(3):  # Home loads (presets, estimates, the CPU peak measured once per machine)
            await app.workers.wait_for_complete()
            await asyncio.sleep(0.3)
        app.start_training(cfg, "soak")
        t0 = time.perf_counter()
        next_rss, n = t0, 0
        while (now := time.perf_counter()) - t0 < seconds:
            if now >= next_rss:
                rss.append((now - t0, rss_mb()))
                next_rss += 30.0
            key, want = ("question_mark", HelpScreen) if n % 2 == 0 else ("escape", TrainingScreen)
            seen = len(frames)
            k0 = time.perf_counter()
            await pilot.press(key)
            while not any(s is want for _, s in frames[seen:]):
                if time.perf_counter() - k0 > frame_timeout:
                    raise SystemExit(f"no frame showed {want.__name__} within {frame_timeout:.0f} s")
                await asyncio.sleep(0.005)
            lat.append(1000 * (next(t for t, s in frames[seen:] if s is want) - k0))
            n += 1
            await asyncio.sleep(press_every)
            frames[:] = frames[-50:]  # the bench's own list must not be what grows
        gc.collect()
        rss.append((time.perf_counter() - t0, rss_mb()))
        steps = sessions[0].steps
        if sessions[0].error:
            raise SystemExit(f"the fake trainer died: {sessions[0].error}")
        app.session.stop()
    writer.close()
    sizes = [len(line) for line in run.metrics_path.read_bytes().splitlines() if b'"type":"step"' in line]
    return {"rss": rss, "lat": lat, "sizes": sizes, "steps": steps, "seconds": seconds}


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--press-every", type=float, default=2.0, help="seconds between key presses")
    p.add_argument("--frame-timeout", type=float, default=10.0,
                   help="give up when a key's screen has not been drawn after this many seconds (raise on a loaded machine)")
    args = p.parse_args()
    os.environ.setdefault("GPTTUI_DATA_DIR", tempfile.mkdtemp(prefix="gpttui-soak-"))
    os.environ.setdefault("GPTTUI_CONFIG_DIR", tempfile.mkdtemp(prefix="gpttui-soak-conf-"))
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    r = asyncio.run(soak(args.rate, 60 * args.minutes, args.press_every, args.frame_timeout))
    load1 = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"machine load average (1 min) at start {load0[0]:.1f}, at end {load1[0]:.1f}, on {os.cpu_count()} cores")
    rss = r["rss"]
    after_1min = next((mb for t, mb in rss if t >= 60), rss[0][1])
    print(f"{r['steps']} step events in {r['seconds']:.0f} s ({r['steps'] / r['seconds']:.1f}/s) with the TUI attached")
    print("RSS (MB) every 30 s: " + ", ".join(f"{t:.0f}s {mb:.1f}" for t, mb in rss))
    print(f"RSS growth after the first minute: {rss[-1][1] - after_1min:+.1f} MB (target < 50 MB)")
    s = r["sizes"]
    rest = s[1:] or s
    print(f"step records: {len(s)}, first {s[0]} B (a writer's full record), median {statistics.median(rest):.0f} B, "
          f"max {max(rest)} B (target <= 300)")
    lat = r["lat"]
    print(f"key -> frame: {len(lat)} presses, median {statistics.median(lat):.1f} ms, p95 {p95(lat):.1f} ms, "
          f"max {max(lat):.1f} ms (target p95 < 100 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
