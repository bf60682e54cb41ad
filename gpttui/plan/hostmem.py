"""Host memory of this process and machine, cheaply (a /proc read, ~20 µs), without psutil.

Used by the training metrics (RAM beside VRAM, or alone on a CPU run); figures that cannot
be read on this platform are left out, never guessed. Also the one reader of the machine's
physical RAM and CPU model name (device detection, estimates, the kept CPU peak).
"""

from __future__ import annotations

import os
from functools import lru_cache


def process_rss() -> int | None:
    """Resident memory of this process in bytes (Linux /proc), None where unreadable."""
    try:
        with open("/proc/self/statm", "rb") as f:
            resident = int(f.read().split()[1])
        return resident * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


@lru_cache(maxsize=1)
def total_ram() -> int | None:
    """Physical memory of the machine in bytes, None where unknown."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def host_memory() -> dict[str, int]:
    """`ram_used`/`ram_total` for StepMetrics, each only when measured."""
    out = {}
    rss, total = process_rss(), total_ram()
    if rss is not None:
        out["ram_used"] = rss
    if total is not None:
        out["ram_total"] = total
    return out


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ('' where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@lru_cache(maxsize=1)
def physical_cores() -> int | None:
    """Physical cores (distinct package/core ids in /proc/cpuinfo), None where unknown."""
    cores, package = set(), "0"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "physical id":
                    package = value.strip()
                elif key.strip() == "core id":
                    cores.add((package, value.strip()))
    except OSError:
        return None
    return len(cores) or None


def freeze_heap() -> None:
    """Move every object alive now out of the garbage collector's reach (`gc.freeze`).

    A full collection walks every tracked object while holding the GIL (~0.5 µs each on
    this VM): with torch, a model and compiled graphs that is 200k-1M objects, a 100-500 ms
    pause several times a minute in a process whose UI thread renders frames and whose
    trainer thread launches kernels. The training loop calls this once its set-up is done;
    `thaw_heap` undoes it when the run ends."""
    import gc

    gc.freeze()


def thaw_heap() -> None:
    """Let the collector see the frozen objects again (what set-up built may now be freed)."""
    import gc

    gc.unfreeze()
