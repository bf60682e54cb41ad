"""Measured matmul peaks for devices the GPU table does not know (CPUs, MPS, unlisted cards).

An estimate's time, speed and energy need a peak TFLOPS. Table cards have one; for the
CPU (and MPS or a card missing from the table) `gpttui.hardware.measured_matmul_tflops`
measures one, which imports torch and takes seconds. `PeakCache` runs that at most once per
(device, dtype) and only in worker threads: screens estimate at once with what is known,
then `measure` (blocking, in their worker) and estimate again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from gpttui.config import TrainConfig

Target = tuple[str, str]  # (torch device: "cpu" | "mps" | "cuda:N", dtype)
MEASURING = "measuring a matmul peak…"


def peak_target(cfg: TrainConfig, device: Any) -> Target | None:
    """The (device, dtype) whose measured matmul rate stands in for `cfg`'s peak, or None
    when a table peak applies (the config names a GPU, or the detected card is listed)."""
    from gpttui.hardware import default_dtype

    if cfg.gpu or device is None:
        return None
    if cfg.device == "cpu" or device.kind == "cpu":
        return "cpu", cfg.dtype if cfg.dtype != "auto" else default_dtype(None, "cpu")
    if device.spec is not None or device.peak_tflops:
        return None
    torch_dev = "mps" if device.kind == "mps" else f"cuda:{device.index}"
    return torch_dev, cfg.dtype if cfg.dtype != "auto" else default_dtype(None, device.kind)


def waits_for_peak(est: Any) -> bool:
    """Whether `est` was made before its device's peak was measured."""
    return est is not None and est.peak_tflops.basis == MEASURING


def basis_text(target: Target, tflops: float) -> str:
    """'CPU matmul 0.21 TFLOPS (measured)', with the dtype when it is not fp32."""
    dev, dtype = target
    name = "CPU" if dev == "cpu" else ("Apple GPU" if dev == "mps" else dev.upper())
    short = {"bfloat16": "bf16", "float16": "fp16"}.get(dtype)
    return f"{name} matmul {tflops:.3g} TFLOPS (measured{', ' + short if short else ''})"


def measure_matmul(device: str, dtype: str) -> float:
    """The real measurement (imports torch; seconds)."""
    from gpttui.hardware import measured_matmul_tflops

    return measured_matmul_tflops(device, dtype)


class PeakCache:
    """Measured peaks by target: `known` never blocks, `measure` blocks (worker threads)."""

    def __init__(self, measure: Callable[[str, str], float] = measure_matmul) -> None:
        self._measure = measure
        self._lock = threading.Lock()
        self._peaks: dict[Target, tuple[float | None, str]] = {}

    def known(self, target: Target | None) -> tuple[float | None, str] | None:
        """(TFLOPS or None if the measurement failed, basis), or None if not measured yet."""
        return None if target is None else self._peaks.get(target)

    def measure(self, target: Target) -> tuple[float | None, str]:
        """Measure `target` once (later callers wait for the first and share its result)."""
        with self._lock:
            if target not in self._peaks:
                try:
                    value = float(self._measure(*target))
                    self._peaks[target] = (value, basis_text(target, value))
                except Exception as e:  # no torch / no such device: say so, never raise
                    self._peaks[target] = (None, f"{target[0]}: could not measure a matmul peak ({type(e).__name__})")
            return self._peaks[target]

    def forget(self) -> None:
        """Drop what was measured (after a re-measurement on request)."""
        with self._lock:
            self._peaks.clear()
