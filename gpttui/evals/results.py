"""Benchmark figures kept in a run folder, read back by `gpttui runs`, Runs and compare.

- `evals.json`: what `gpttui eval` measured, per task and checkpoint (latest / best / a
  file), written atomically (read, merge, rename) so a crash never leaves half a file.
- status.json's `hellaswag_*` fields: the training loop's latest fixed-subset figure
  (written by the run's MetricsWriter from its TaskEval events).

`headline` picks what a one-line listing shows: the newest full-set figure from
`gpttui eval` when there is one, else the loop's subset figure. Pure: no torch.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpttui.fsutil import atomic_write_text

EVALS_NAME = "evals.json"


@dataclass(frozen=True)
class Headline:
    acc_norm: float
    stderr: float
    n: int
    source: str  # "eval" (gpttui eval, a checkpoint) or "loop" (the training loop's subset)
    iter: int | None = None

    def text(self) -> str:
        """`0.2955±0.005` (the ± is the binomial standard error)."""
        return f"{self.acc_norm:.4f}±{self.stderr:.3f}"


def read(run_path: Path | str) -> dict[str, Any]:
    """evals.json as a dict ({} when absent or unreadable: a listing never fails on it)."""
    try:
        data = json.loads((Path(run_path) / EVALS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(run_path: Path | str, task: str, checkpoint: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Merge `entry` (acc_norm, acc, stderr, n, iter, ...) under task/checkpoint, atomically."""
    data = read(run_path)
    by_ckpt = data.get(task) if isinstance(data.get(task), dict) else {}
    by_ckpt[checkpoint] = {**entry, "time": time.time()}
    data[task] = by_ckpt
    atomic_write_text(Path(run_path) / EVALS_NAME, json.dumps(data, indent=1) + "\n")
    return data


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def headline(run_path: Path | str, status: dict[str, Any], task: str = "hellaswag") -> Headline | None:
    """The figure a listing shows: the newest `gpttui eval` entry, else the loop's."""
    entries = [e for e in (read(run_path).get(task) or {}).values() if isinstance(e, dict)]
    entries = [e for e in entries if _num(e.get("acc_norm")) is not None and _num(e.get("n"))]
    if entries:
        e = max(entries, key=lambda e: _num(e.get("time")) or 0.0)
        return Headline(float(e["acc_norm"]), _num(e.get("stderr")) or 0.0, int(e["n"]), "eval",
                        int(e["iter"]) if _num(e.get("iter")) is not None else None)
    acc = _num(status.get(f"{task}_acc_norm"))
    n = _num(status.get(f"{task}_n"))
    if acc is None or not n:
        return None
    it = _num(status.get(f"{task}_iter"))
    return Headline(acc, _num(status.get(f"{task}_stderr")) or 0.0, int(n), "loop", int(it) if it is not None else None)
