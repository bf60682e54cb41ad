"""The loop talks to its owner only through `train.owner` (a frozen Job in, LoopOwner calls
out), builds one frozen `Built`, and writes no one else's state."""

from __future__ import annotations

import dataclasses

import pytest
from trainutil import one_thread, tiny_cfg, write_dataset  # noqa: F401 - one_thread is a fixture

from gpttui import events as E
from gpttui.train import ddp
from gpttui.train.loop import Loop
from gpttui.train.owner import Job, LoopOwner


class StrictOwner:
    """Exactly the LoopOwner members; any other attribute read or write fails the test."""

    __slots__ = ("events", "_state", "saves")

    def __init__(self) -> None:
        self.events: list[E.Event] = []
        self._state = E.PREPARING
        self.saves = 1  # one save request, taken once

    state = property(lambda self: self._state)
    stop_requested = property(lambda self: False)
    pause_requested = property(lambda self: False)

    def wait_if_paused(self) -> float:
        return 0.0

    def take_save_request(self) -> bool:
        self.saves, asked = 0, self.saves > 0
        return asked

    def emit(self, ev: E.Event) -> None:
        self.events.append(ev)

    def log(self, text: str, level: str = "info") -> None:
        self.emit(E.LogMessage("strict", level=level, text=text))

    def set_state(self, state: str, message: str = "") -> None:
        self._state = state

    def end_state(self, state: str) -> None:
        self._state = state


def test_the_protocol_names_every_call_the_strict_owner_has() -> None:
    wanted = {n for n in dir(LoopOwner) if not n.startswith("_")}
    assert wanted == {n for n in dir(StrictOwner) if not n.startswith("_")} - {"events", "saves"}


@pytest.mark.usefixtures("one_thread")
def test_a_loop_trains_for_an_owner_that_is_not_a_trainer() -> None:
    write_dataset()
    cfg = tiny_cfg(max_iters=4, eval_interval=2, batch_size="auto", gradient_accumulation_steps=2)
    owner = StrictOwner()
    loop = Loop(Job(cfg, None, "strict", ddp.DistInfo(), resume=False), owner)
    res = loop.train()
    loop.close()
    assert isinstance(res, E.Finished) and res.iter == 4 and owner.state == E.FINISHED
    assert loop.cfg.batch_size != "auto" and cfg.batch_size == "auto"  # resolved in the loop, the job untouched
    assert any(isinstance(e, E.StepMetrics) for e in owner.events)
    with pytest.raises(dataclasses.FrozenInstanceError):
        loop.b.cfg = cfg  # type: ignore[misc] - what set-up built is one frozen object
