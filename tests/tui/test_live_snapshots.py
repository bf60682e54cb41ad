"""SVG snapshots of the Training screen of a long run: a step in progress on a CPU (micro-steps,
RAM gauge, samples panel), each warning banner (worded by the real RunMonitor), an early-stopped
run, the Datasets screen and the editor's picker and discard dialog."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import text_of, wait_for
from test_live_screen import cpu_step
from test_snapshots import settle
from tui_fakes import NOW, FakeSession, services, step

from gpttui import events as E
from gpttui.tui.app import make_app


def _run_before(*make_events):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "r")
        await settle(pilot, 0.2)
        session = FakeSession.instances[-1]
        for make in make_events:
            for ev in make(session.run_id):
                session.listener(ev)
        pilot.app.drain_events()
        pilot.app.screen.refresh_view(chart=True)
        await settle(pilot)

    return run_before


def _long_step(rid: str) -> list[E.Event]:
    return [cpu_step(rid, 20),
            E.Sample(rid, iter=20, prompt="def ", text="main():\n    return 42", val_loss=3.5, time=NOW),
            E.Progress(rid, iter=20, max_iters=40, micro=12, accum=64, tokens_seen=2584, elapsed_s=5.0, time=NOW)]


def _warning(rid: str) -> list[E.Event]:
    return [E.RunWarning(rid, code="overfit", iter=20, time=NOW,
                         text="overfitting: val − train gap widened 0.020 → 0.150 over 3 evaluations",
                         hint="raise dropout (now 0) to 0.1–0.2 or train on more data")]


def _early_stop(rid: str) -> list[E.Event]:
    reason = "early stop: val loss has not improved for 3 evaluations (best 3.5000 at iter 20, now 3.5100)"
    return [E.StatusChanged(rid, state=E.STOPPING, message=reason, time=NOW),
            E.Finished(rid, state=E.STOPPED, iter=20, best_val_loss=3.5, tokens_seen=2560, elapsed_s=60.0,
                       reason=reason, time=NOW)]


def _forecast_stop(rid: str) -> list[E.Event]:
    fc = E.Forecast(rid, iter=20, loss=3.6123, band=0.0456, at_iter=40, n_evals=8, time=NOW)
    reason = "early stop: forecast 3.612 ± 0.046 at iter 40 (8 evals) cannot beat run ref's best val 3.4000 by 0.01"
    return [fc, E.StatusChanged(rid, state=E.STOPPING, message=reason, time=NOW),
            E.Finished(rid, state=E.STOPPED, iter=20, best_val_loss=3.5, tokens_seen=2560, elapsed_s=60.0,
                       reason=reason, time=NOW)]


def test_training_forecast_early_stopped(snap_compare) -> None:
    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=_run_before(_forecast_stop))


def test_training_long_step_cpu(snap_compare) -> None:
    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=_run_before(_long_step))


def test_training_warning_banner(snap_compare) -> None:
    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=_run_before(_warning))


def _monitor_warning(code: str, tmp_path) -> E.RunWarning:
    """The banner's warning as the real RunMonitor words it, from numbers that trigger it."""
    from gpttui import config as C
    from gpttui.train.monitor import RunMonitor

    got: list[E.Event] = []
    mon = RunMonitor(C.TrainConfig(), "r", got.append, free=lambda path: 3 * 2**30)

    def st(i: int, loss: float = 3.0, tps: float = 1000.0, **kw) -> E.StepMetrics:
        return step("r", i, max_iters=1000, loss=loss, tokens_per_s=tps, **kw)

    if code == "spike":
        for i in range(60):
            mon.on_step(st(i, 3.0 + 0.02 * (i % 5)))
        mon.on_step(st(60, 4.5))
    elif code == "throughput":
        for i in range(24):
            mon.on_step(st(i, tps=1000.0 if i < 20 else 600.0))
    elif code == "vram":
        for i in range(60):
            mon.on_step(st(i, vram_reserved=int(4 * 2**30 + max(0, i - 40) * 0.05 * 2**30), vram_total=12 * 2**30))
    elif code == "disk":
        ck = tmp_path / "ckpt.pt"
        with open(ck, "wb") as f:
            f.truncate(2 * 2**30)  # sparse: 2 GiB on paper
        mon.on_checkpoint(str(ck), 100)
    warnings = [w for w in got if isinstance(w, E.RunWarning)]
    assert warnings and warnings[0].code == code
    return warnings[0]


@pytest.mark.parametrize("code", ["spike", "throughput", "vram", "disk"])
def test_training_each_warning_banner(snap_compare, code, tmp_path) -> None:
    """Every warning the monitor gives (overfitting: test_training_warning_banner), in its words."""
    w = _monitor_warning(code, tmp_path)
    events = lambda rid: [dataclasses.replace(w, run_id=rid, time=NOW)]  # noqa: E731
    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=_run_before(events))


def test_training_early_stopped(snap_compare) -> None:
    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=_run_before(_early_stop))


async def _start_preparing(pilot) -> None:
    """Home → Datasets → prepare "web" from a parquet glob (the prepare blocks until released)."""
    from textual.widgets import Input

    await settle(pilot)
    await pilot.press("d")
    await settle(pilot)
    await pilot.press("n")
    await settle(pilot)
    pilot.app.screen.query_one("#p-source", Input).value = "/data/web/*.parquet"
    pilot.app.screen.query_one("#p-name", Input).value = "web"
    await pilot.click("#p-go")
    await wait_for(pilot, lambda: "ETA" in text_of(pilot.app.screen.query_one("#ds-progress")), what="the progress")


def test_datasets_preparing(snap_compare, isolated_dirs) -> None:
    from test_datasets_screen import BlockingPrepare, make_dataset

    data, _ = isolated_dirs
    make_dataset(data, "books", 5000)
    make_dataset(data, "fineweb-sample", 1_200_000, "/data/fineweb/sample-000.parquet")
    prep = BlockingPrepare(data)

    async def run_before(pilot) -> None:
        await _start_preparing(pilot)

    try:
        assert snap_compare(make_app(services(prepare_dataset=prep)), terminal_size=(120, 30), run_before=run_before)
    finally:
        prep.release.set()


def test_datasets_stop_preparing_dialog(snap_compare, isolated_dirs) -> None:
    from test_datasets_screen import BlockingPrepare, make_dataset

    data, _ = isolated_dirs
    make_dataset(data, "books", 5000)
    prep = BlockingPrepare(data)

    async def run_before(pilot) -> None:
        await _start_preparing(pilot)
        await pilot.press("c")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "ChoiceScreen", what="the question")

    try:
        assert snap_compare(make_app(services(prepare_dataset=prep)), terminal_size=(100, 30), run_before=run_before)
    finally:
        prep.release.set()


def test_datasets_delete_dialog(snap_compare, isolated_dirs) -> None:
    from test_datasets_screen import make_dataset

    data, _ = isolated_dirs
    make_dataset(data, "books", 5000)

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)

    assert snap_compare(make_app(services()), terminal_size=(100, 30), run_before=run_before)


def test_editor_dataset_picker(snap_compare, isolated_dirs) -> None:
    from test_datasets_screen import make_dataset
    from textual.widgets import Select

    data, _ = isolated_dirs
    make_dataset(data, "books", 5000)

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "e")
        await settle(pilot)
        pilot.app.screen.query_one("#f-dataset", Select).focus()
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=run_before)


def test_editor_discard_dialog(snap_compare) -> None:
    from textual.widgets import Input

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "e")
        await settle(pilot)
        pilot.app.screen.query_one("#f-n_layer", Input).value = "4"
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)

    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=run_before)
