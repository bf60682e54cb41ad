"""Measured matmul peaks for devices the GPU table does not know (CPUs, MPS, unlisted cards).

An estimate's time, speed and energy need a peak TFLOPS. Table cards have one; for the
CPU (and MPS or a card missing from the table) `gpttui.plan.hardware.measured_matmul_tflops`
measures one, which imports torch and takes seconds. `PeakCache` runs that at most once per
(device, dtype) and only in worker threads: screens estimate at once with what is known,
then `measure` (blocking, in their worker) and estimate again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from gpttui.plan.hardware import measured_peak
from gpttui.plan.target import MEASURING, PeakKey


def waits_for_peak(est: Any) -> bool:
    """Whether `est` was made before its device's peak was measured."""
    return est is not None and est.peak_tflops.basis == MEASURING


def measure_matmul(device: str, dtype: str) -> float:
    """The real measurement (imports torch; seconds)."""
    from gpttui.plan.hardware import measured_matmul_tflops

    return measured_matmul_tflops(device, dtype)


class PeakCache:
    """Measured peaks by target: `known` never blocks, `measure` blocks (worker threads)."""

    def __init__(self, measure: Callable[[str, str], float] = measure_matmul) -> None:
        self._measure = measure
        self._lock = threading.Lock()
        self._peaks: dict[PeakKey, tuple[float | None, str]] = {}

    def known(self, target: PeakKey | None) -> tuple[float | None, str] | None:
        """(TFLOPS or None if the measurement failed, basis), or None if not measured yet."""
        return None if target is None else self._peaks.get(target)

    def measure(self, target: PeakKey) -> tuple[float | None, str]:
        """Measure `target` once (later callers wait for the first and share its result)."""
        with self._lock:
            if target not in self._peaks:
                self._peaks[target] = measured_peak(*target, measure=self._measure)  # never raises
            return self._peaks[target]

    def forget(self) -> None:
        """Drop what was measured (after a re-measurement on request)."""
        with self._lock:
            self._peaks.clear()
