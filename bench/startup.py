"""Start-up cost: `gpttui --help` and Home's first frame, each in a fresh process, for this
tree and (optionally) another checkout, alternated so load hits both alike.

    python bench/startup.py [--repeat 7] [--other /path/to/other/checkout]

Home's first frame is timed from the process's spawn to the first frame Textual shows of
the Home screen (headless `run_test` at 120×40, fake-free: real services, a private data
dir). It also reports whether torch was loaded by then (it must not be). Medians of
`--repeat` runs; with `--other`, the ratio this/other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = r"""
import asyncio, json, os, sys, time
t0 = float(os.environ["STARTUP_T0"])
from gpttui.tui.app import make_app
from gpttui.tui.screens.home import HomeScreen

async def main():
    app = make_app()
    shown = asyncio.get_running_loop().create_future()
    def hook():
        if isinstance(app.screen, HomeScreen) and not shown.done():
            shown.set_result(time.time() - t0)
    app.post_display_hook = hook
    async with app.run_test(size=(120, 40)) as pilot:
        s = await asyncio.wait_for(shown, 60)
        torch = "torch" in sys.modules
        print(json.dumps({"frame_s": s, "torch_loaded": torch}))
        app.exit()

asyncio.run(main())
"""


def _env(tree: Path, data: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(tree), "GPTTUI_DATA_DIR": str(data / "d"),
            "GPTTUI_CONFIG_DIR": str(data / "c"), "STARTUP_T0": str(time.time())}


def help_s(tree: Path, data: Path) -> float:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "gpttui", "--help"], env=_env(tree, data), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return time.perf_counter() - t


def home_s(tree: Path, data: Path) -> tuple[float, bool]:
    env = _env(tree, data)
    env["STARTUP_T0"] = str(time.time())
    r = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["frame_s"], out["torch_loaded"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--other", type=Path, help="another checkout to time alternately (e.g. a worktree of the previous commit)")
    args = ap.parse_args()
    trees = {"this": HERE} | ({"other": args.other.resolve()} if args.other else {})
    res: dict[str, dict[str, list]] = {k: {"help": [], "home": [], "torch": []} for k in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for name, tree in trees.items():
                res[name]["help"].append(help_s(tree, Path(tmp)))
                s, torch = home_s(tree, Path(tmp))
                res[name]["home"].append(s)
                res[name]["torch"].append(torch)
    load = os.getloadavg()[0]
    for name, r in res.items():
        print(f"{name:5}: --help median {1000 * statistics.median(r['help']):6.0f} ms (min {1000 * min(r['help']):.0f}),"
              f" Home first frame median {1000 * statistics.median(r['home']):6.0f} ms (min {1000 * min(r['home']):.0f}),"
              f" torch loaded by then: {any(r['torch'])}")
    if args.other:
        for k in ("help", "home"):
            ratio = statistics.median(res["this"][k]) / statistics.median(res["other"][k])
            print(f"this/other {k}: {ratio:.2f}")
    print(f"load average {load:.1f} ({os.cpu_count()} CPUs), {args.repeat} repeats each, alternated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
