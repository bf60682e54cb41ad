"""Step records in metrics.jsonl: small, and the same size at step 10 as at step 600,000.

A StepMetrics event has ~25 fields; written whole it is ~600 bytes, most of which repeat
(the peak's basis, the device's memory, a peak VRAM that stopped moving). On disk a step
line therefore holds only the fields that changed since the previous step line of the
same file (`iter` and `type` always), floats to 7 significant digits (the wall clock to
10 ms); the first step line a writer emits holds every field. A reader expands each line
over the previous one (`StepDecoder`), so `Run.events()` returns whole StepMetrics.
Other events are written as they are: they are rare.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

_ALWAYS = ("iter", "type")
_DIGITS = 7


def _round(key: str, v: Any) -> Any:
    if isinstance(v, float) and not isinstance(v, bool):
        if key == "time":
            return round(v, 2)
        if v != v or v in (float("inf"), float("-inf")):
            return v
        return float(f"{v:.{_DIGITS}g}")
    return v


class StepEncoder:
    """Writer side: one per open metrics file (a new writer starts with a full record)."""

    def __init__(self) -> None:
        self._last: dict[str, Any] = {}

    def encode(self, d: dict[str, Any]) -> dict[str, Any]:
        """The compact form of a StepMetrics `to_json()` dict."""
        full = {k: _round(k, v) for k, v in d.items()}
        out = {k: v for k, v in full.items() if k in _ALWAYS or k not in self._last or self._last[k] != v}
        self._last = full
        return out


class StepDecoder:
    """Reader side: expands compact step lines over the previous one."""

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self._last: dict[str, Any] = dict(defaults or {})

    def decode(self, d: dict[str, Any]) -> dict[str, Any]:
        if d.get("type") != "step":
            return d
        full = {**self._last, **d}
        self._last = full
        return full

    def feed_bytes(self, data: bytes) -> None:
        """Advance over lines already read elsewhere (to decode what follows them)."""
        for line in data.splitlines():
            if b'"type":"step"' not in line:
                continue
            try:
                self.decode(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue


def dumps(d: dict[str, Any]) -> str:
    return json.dumps(d, separators=(",", ":"))


# (metrics file, byte offset) -> the decoder positioned there, for followers that read on;
# several followers of one run (a run view, a comparison) each find their own
_PARKED: dict[tuple[Path, int], StepDecoder] = {}
_MAX_PARKED = 32


def decoder_at(path: Path, offset: int, run_id: str) -> StepDecoder:
    """A decoder positioned at byte `offset` of the metrics file `path`: the one the last
    read left there, or one rebuilt from the lines before it (a new follower)."""
    parked = _PARKED.get((path, offset)) if offset else None
    if parked is not None:
        return StepDecoder(parked._last)  # a copy: followers at the same offset each advance their own
    dec = StepDecoder({"run_id": run_id, "max_iters": 0, "peak_tflops": None, "peak_basis": "",
                       "grad_norm": None, "eta_s": None, "mfu": None})
    if offset:
        with contextlib.suppress(OSError), open(path, "rb") as f:
            dec.feed_bytes(f.read(offset))
    return dec


def park_decoder(path: Path, offset: int, dec: StepDecoder) -> None:
    _PARKED[(path, offset)] = dec
    while len(_PARKED) > _MAX_PARKED:  # oldest first (dicts keep insertion order)
        del _PARKED[next(iter(_PARKED))]
