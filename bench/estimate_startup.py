"""`gpttui --estimate demo` against `python -c "import torch"`, side by side.

Issue #22: the estimate imported torch (to key the kept CPU peak by torch's thread count)
and took longer than importing torch alone. Both commands run alternately, N times each,
in fresh processes; the medians and their ratio are printed with the load average, since
wall-clock on a shared machine moves with the load (the ratio moves less).

    nice -n 19 python bench/estimate_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "gpttui --estimate demo": [sys.executable, "-m", "gpttui", "--estimate", "demo"],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
}


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    timed(COMMANDS["gpttui --estimate demo"])  # keeps this machine's CPU peak if not kept yet
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    load0 = os.getloadavg()[0]
    for _ in range(args.runs):  # alternate, so both see the same load
        for name, cmd in COMMANDS.items():
            times[name].append(timed(cmd))
    load1 = os.getloadavg()[0]
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, v in times.items():
        print(f"{name:28s} median {med[name]:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in v)})")
    est, torch = med["gpttui --estimate demo"], med['python -c "import torch"']
    print(f"ratio estimate / import torch: {est / torch:.2f}  (load average {load0:.1f} -> {load1:.1f}, "
          f"{os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
