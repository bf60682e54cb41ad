"""A run that cannot fit in memory is refused before it starts (`gpttui.plan.fits`)."""

from __future__ import annotations

import pytest

from gpttui import presets as P
from gpttui.errors import ConfigError, DataError
from gpttui.plan import fits
from gpttui.plan.hardware import GIB, DeviceInfo, lookup_gpu


def _gpu(gib: float) -> DeviceInfo:
    return DeviceInfo("cuda", "RTX 4070", 0, int(gib * GIB), lookup_gpu("RTX 4070"), None, "", None)


def test_the_gpu_memory_decides_and_a_near_miss_is_let_through():
    cfg = P.get("seed-000").config([])
    fits.check_fits(cfg, _gpu(12))  # the preset's own card
    need, _ = fits.needed_bytes(cfg, True, 12 * GIB)
    fits.check_fits(cfg, _gpu(need / GIB / 1.2))  # the estimate is a model: just over is allowed
    with pytest.raises(ConfigError, match=r"cannot fit: its estimated peak is [\d.,]+ GiB .* the GPU's memory \(RTX 4070\) is 2.0 GiB"):
        fits.check_fits(cfg, _gpu(2))


def test_a_cpu_run_compares_with_the_hosts_ram(monkeypatch):
    monkeypatch.setattr("gpttui.plan.hardware.total_ram", lambda: 4 * GIB)
    fits.check_fits(P.get("demo").config(["device=cpu"]))
    with pytest.raises(ConfigError, match="this machine's RAM is 4.0 GiB"):
        fits.check_fits(P.get("demo").config(["device=cpu", "n_layer=100000"]))
    monkeypatch.setattr("gpttui.plan.hardware.total_ram", lambda: None)
    fits.check_fits(P.get("demo").config(["device=cpu", "n_layer=100000"]))  # unknown memory: not refused


def test_no_memory_check_lets_the_launch_go_on(monkeypatch):
    from gpttui.train import launch

    cfg = P.get("demo").config(["device=cpu", "n_layer=100000", "dataset=never-made", "data_source="])
    with pytest.raises(ConfigError, match="cannot fit"):
        launch.start(cfg, "demo")
    with pytest.raises(DataError, match="never-made"):  # past the check, at the next one
        launch.start(cfg, "demo", check_memory=False)
