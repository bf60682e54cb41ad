"""SVG snapshots of the HellaSwag figure where a run's quality is shown: the Training screen
(beside the val loss, with the reference marks), the Runs table and compare. Update with
`pytest tests/tui/test_hellaswag_snapshots.py --snapshot-update` after checking the report."""

from __future__ import annotations

import json

from test_snapshots import run_first_preset, settle
from tui_fakes import NOW, FakeSession, script, services, write_run

from gpttui import events as E
from gpttui.tui.app import make_app


def with_tasks(run_id: str, upto: int, base: float = 0.24) -> list[E.Event]:
    """`script` plus a HellaSwag result after each evaluation (a subset of 120)."""
    out: list[E.Event] = []
    for ev in script(run_id, upto):
        out.append(ev)
        if isinstance(ev, E.EvalResult):
            acc = base + ev.iter / 1000
            out.append(E.TaskEval(run_id, iter=ev.iter, task="hellaswag", acc_norm=acc, acc=acc - 0.01,
                                  stderr=(acc * (1 - acc) / 120) ** 0.5, n=120, seconds=0.5, time=NOW))
    return out


class TaskSession(FakeSession):
    def start(self) -> None:
        self.calls.append("start")
        self.alive = True
        for ev in with_tasks(self.run_id, self.upto):
            self._emit(ev)
        self.iter = self.upto


def test_training_shows_hellaswag_beside_val_loss(snap_compare) -> None:
    run_before = run_first_preset

    app = make_app(services(new_session=lambda cfg, preset, listener: TaskSession(cfg, preset, listener)))
    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def _two_runs(data) -> None:
    a = write_run(data, "20231114-a", "tiny", with_tasks("20231114-a", 40))
    write_run(data, "20231114-b", "tiny", with_tasks("20231114-b", 40, base=0.22))
    st = json.loads((a / "status.json").read_text())  # as the run's MetricsWriter leaves it
    st.update(hellaswag_acc_norm=0.28, hellaswag_stderr=0.041, hellaswag_n=120, hellaswag_iter=40)
    (a / "status.json").write_text(json.dumps(st))
    full = {"acc_norm": 0.2671, "acc": 0.2590, "stderr": 0.0044, "n": 10042, "iter": 40, "full": True, "time": NOW}
    (data / "runs" / "20231114-b" / "evals.json").write_text(json.dumps({"hellaswag": {"latest": full}}))


async def _to_runs(pilot) -> None:
    await settle(pilot)
    await pilot.press("u")
    await settle(pilot)


def test_runs_table_shows_hellaswag(snap_compare, isolated_dirs) -> None:
    data, _ = isolated_dirs
    _two_runs(data)

    async def run_before(pilot) -> None:
        await _to_runs(pilot)
        await pilot.press("space")  # a second fill, as test_snapshots' Runs table does
        await settle(pilot)

    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=run_before)


def test_compare_shows_hellaswag(snap_compare, isolated_dirs) -> None:
    data, _ = isolated_dirs
    _two_runs(data)

    async def run_before(pilot) -> None:
        await _to_runs(pilot)
        await pilot.press("space", "down", "c")
        await settle(pilot)

    assert snap_compare(make_app(services()), terminal_size=(120, 40), run_before=run_before)
