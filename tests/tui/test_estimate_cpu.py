"""The estimate on a CPU machine: the matmul peak is measured once, in a worker thread,
then Home and the editor show time and speed against it, and memory against system RAM."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import settle, text_of
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey
from tui_fakes import fake_device, services

from gpttui import config as C
from gpttui.errors import ConfigError
from gpttui.paths import user_presets_dir
from gpttui.plan.hardware import DeviceInfo, measured_basis
from gpttui.plan.target import MEASURING
from gpttui.plan.target import peak_key as peak_target
from gpttui.tui.app import make_app
from gpttui.tui.peaks import PeakCache
from gpttui.tui.widgets.estimate_panel import EstimatePanel


def cpu_device() -> DeviceInfo:
    return DeviceInfo("cpu", "CPU (Test, 2 threads)", 0, 16 * 2**30, None, None,
                      "CPU: no table peak; measured with a matmul when needed", None)


class FakeMeasure:
    """Records each measurement and the thread it ran on; takes a little while."""

    def __init__(self, tflops: float = 0.125, fail: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.threads: list[threading.Thread] = []
        self.tflops, self.fail = tflops, fail

    def __call__(self, device: str, dtype: str) -> float:
        self.calls.append((device, dtype))
        self.threads.append(threading.current_thread())
        time.sleep(0.2)
        if self.fail:
            raise RuntimeError("no torch")
        return self.tflops


def test_peak_target() -> None:
    cfg = C.TrainConfig()
    assert peak_target(cfg, cpu_device()) == ("cpu", "float32")
    assert peak_target(cfg, fake_device()) is None  # a table card: no measurement
    assert peak_target(cfg.replace(device="cpu"), fake_device()) == ("cpu", "float32")
    assert peak_target(cfg.replace(gpu="A100"), cpu_device()) is None
    unknown = DeviceInfo("cuda", "Mystery GPU", 1, 8 * 2**30, None, None, "unknown card", 150.0)
    assert peak_target(cfg, unknown) == ("cuda:1", "bfloat16")
    assert measured_basis("cpu", "float32", 0.1234) == "CPU matmul 0.123 TFLOPS (measured)"


def test_peak_cache_measures_once_and_reports_failure() -> None:
    ok = FakeMeasure()
    cache = PeakCache(ok)
    assert cache.known(("cpu", "float32")) is None
    assert cache.measure(("cpu", "float32"))[0] == 0.125
    assert cache.measure(("cpu", "float32"))[0] == 0.125
    assert ok.calls == [("cpu", "float32")]
    bad = PeakCache(FakeMeasure(fail=True))
    value, basis = bad.measure(("cpu", "float32"))
    assert value is None and "could not measure" in basis and "RuntimeError" in basis


async def test_home_on_cpu_shows_time_against_measured_peak() -> None:
    measure = FakeMeasure()
    app = make_app(services(detect_device=cpu_device, measure_peak=measure))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert measure.calls == [("cpu", "float32")]  # once, for every preset
        assert all(t is not threading.main_thread() for t in measure.threads)
        table = app.screen.query_one("#presets", DataTable)
        assert str(table.columns[ColumnKey("vram")].label) == "RAM"
        tiny = table.get_row("tiny")
        assert tiny[3] != "–" and tiny[4].startswith("fits")
        device_line = text_of(app.screen.query_one("#device", Static))
        assert "CPU matmul 0.125 TFLOPS (measured)" in device_line and "RAM" in device_line
        row = next(r for r in app.screen.rows if r.name == "tiny")
        assert row.est.time_s.value == pytest.approx(row.est.total_tokens.value / row.est.tokens_per_s.value)
        assert row.est.mem_device.value == 16 * 2**30


async def test_editor_on_cpu_shows_measured_basis_and_ram() -> None:
    app = make_app(services(detect_device=cpu_device, measure_peak=FakeMeasure()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down", "e")
        await settle(pilot)
        panel = text_of(app.screen.query_one(EstimatePanel))
        assert "peak: CPU matmul 0.125 TFLOPS (measured)" in panel
        assert "RAM " in panel and "VRAM" not in panel and "of 16.0 GiB" in panel
        time_line = next(line for line in panel.splitlines() if line.startswith("time"))
        speed_line = next(line for line in panel.splitlines() if line.startswith("speed"))
        assert "–" not in time_line.split("at MFU")[0] and "tok/s" in speed_line
        assert "power unknown" in panel  # no board power for a CPU: energy stays unknown, said so
        assert MEASURING not in panel


async def test_failed_measurement_is_reported_not_fatal() -> None:
    app = make_app(services(detect_device=cpu_device, measure_peak=FakeMeasure(fail=True)))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "e")
        await settle(pilot)
        panel = text_of(app.screen.query_one(EstimatePanel))
        assert "could not measure a matmul peak (RuntimeError)" in panel
        assert next(line for line in panel.splitlines() if line.startswith("time")).split()[1] == "–"


def test_a_past_run_of_the_same_shape_gives_the_measured_speed() -> None:
    """Home and the editor use the throughput a past run measured on this machine, as
    `gpttui --estimate` does; another shape or another device does not count."""
    from gpttui.runs import store as runs
    from gpttui.tui.services import _estimate

    cfg = C.TrainConfig(device="cpu", n_layer=2, n_head=2, n_embd=64, block_size=64, batch_size=4,
                        gradient_accumulation_steps=1, max_iters=100, warmup_iters=10, lr_decay_iters=100,
                        dataset_tokens=1_000_000)
    before = _estimate(cfg, cpu_device(), None)
    assert before.tokens_per_s.value is None  # no peak measured yet, no past run
    run = runs.create_run(cfg, "tiny", name="past")
    run.write_status(device="cpu", device_type="cpu", world_size=1, tokens_per_s=2048.0)
    other = runs.create_run(cfg.replace(n_layer=3), "tiny", name="other-shape")
    other.write_status(device="cpu", device_type="cpu", world_size=1, tokens_per_s=9999.0)
    est = _estimate(cfg, cpu_device(), None)
    assert est.tokens_per_s.value == 2048.0 and "past" in est.tokens_per_s.basis
    assert est.time_s.value == pytest.approx(100 * 4 * 64 / 2048.0, rel=0.05)
    on_gpu = _estimate(cfg.replace(device="auto"), fake_device(), None)  # the RTX 4070: not the device it ran on
    assert on_gpu.tokens_per_s.value != 2048.0 and "measured" not in on_gpu.tokens_per_s.basis


async def test_an_unknown_gpu_name_is_the_clis_error_not_a_cpu_estimate() -> None:
    """`gpu = "RTX 9999"`: `--estimate` stops with a ConfigError; the TUI used to estimate a
    CPU at float32 without a word. Both now resolve the target in one place."""
    from gpttui.plan.report import build_estimate

    (user_presets_dir() / "odd.toml").write_text('description = "odd card"\ngpu = "RTX 9999"\n')
    with pytest.raises(ConfigError) as cli:
        build_estimate(C.TrainConfig(gpu="RTX 9999"), None)
    app = make_app(services(detect_device=cpu_device, measure_peak=FakeMeasure()))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        row = next(r for r in app.screen.rows if r.name == "odd")
        assert row.est is None and row.error == str(cli.value)
        assert "config 'gpu': unknown GPU 'RTX 9999'" in row.error


async def test_home_and_the_editor_show_one_time_for_a_preset() -> None:
    """The time in Home's table and the editor's estimate are one figure (the description
    states none: tests/unit/test_presets.py)."""
    app = make_app(services(detect_device=cpu_device, measure_peak=FakeMeasure()))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#presets", DataTable)
        home_time = str(table.get_row("tiny")[3])
        assert home_time not in ("–", "…")
        table.move_cursor(row=table.get_row_index("tiny"))
        await pilot.press("e")
        await settle(pilot)
        panel = text_of(app.screen.query_one(EstimatePanel))
        time_line = next(line for line in panel.splitlines() if line.startswith("time"))
        assert home_time in time_line, (home_time, time_line)
