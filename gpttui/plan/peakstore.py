"""Measured CPU matmul peaks kept per machine, so MFU and time estimates stop moving.

A CPU's matmul rate measured by each process under whatever load there is swung from 0.031
to 0.193 TFLOPS within one hour on one machine: every MFU and every estimate moved with it.
The first measurement on a machine (by CPU model, torch threads and dtype) is kept in the
data dir (`peaks.json`) and used from then on; `remeasure` replaces it on request.
No torch here: the caller passes the measuring function.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from gpttui.fsutil import atomic_write_text
from gpttui.paths import data_dir
from gpttui.plan.hostmem import cpu_model, physical_cores

FILE = "peaks.json"


def machine_key(device: str, dtype: str, threads: int | None = None) -> str:
    """What a measurement is valid for: this CPU model, thread count and dtype."""
    cpu = cpu_model() or platform.processor() or platform.machine()
    n = threads if threads is not None else torch_threads()
    return f"{device}|{dtype}|{cpu}|{n} threads"


def torch_threads() -> int:
    """torch's intra-op thread count, without importing torch: torch's own count once it is
    loaded; else OMP_NUM_THREADS / MKL_NUM_THREADS as torch reads them; else the physical
    cores (torch's default). A wrong guess only costs a measurement (the key misses)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return int(torch.get_num_threads())
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        try:
            n = int(os.environ.get(var, ""))
        except ValueError:
            continue
        if n > 0:
            return n
    return physical_cores() or os.cpu_count() or 1


def stored_cpu_peak(dtype: str) -> float | None:
    """This machine's kept CPU matmul peak in `dtype` (TFLOPS), or None: a file read, no torch."""
    entry = stored(machine_key("cpu", dtype))
    return float(entry["tflops"]) if entry is not None else None


def _load() -> dict[str, Any]:
    try:
        data = json.loads((data_dir() / FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def stored(key: str) -> dict[str, Any] | None:
    """{'tflops', 'measured'} kept for `key`, or None."""
    entry = _load().get(key)
    if isinstance(entry, dict) and isinstance(entry.get("tflops"), (int, float)) and entry["tflops"] > 0:
        return entry
    return None


def keep(key: str, tflops: float) -> None:
    data = _load()
    data[key] = {"tflops": tflops, "measured": time.time()}
    path = data_dir() / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))


def kept_or_measure(key: str, measure: Callable[[], float], remeasure: bool = False) -> float:
    """The kept peak for `key`, else (or when `remeasure`) a new measurement, kept."""
    entry = None if remeasure else stored(key)
    if entry is not None:
        return float(entry["tflops"])
    value = float(measure())
    try:
        keep(key, value)
    except OSError:  # a read-only data dir: use it for this process only
        pass
    return value
