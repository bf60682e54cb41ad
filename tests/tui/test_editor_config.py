"""The editor checks fields through config's API (no `--set` round trip, the field at
fault found by `ConfigError.key`) and estimates and starts with the shape the weights
`init_from` names impose, as `config.build` does for a preset."""

from __future__ import annotations

import json
import shutil

from conftest import settle, text_of
from textual.widgets import Input, Static
from tui_fakes import FakeSession, services

from gpttui import config as C
from gpttui.tui.app import make_app
from gpttui.tui.screens.editor import EditorScreen

RUN = {"dataset": "tiny-ds", "max_iters": 10, "warmup_iters": 1, "lr_decay_iters": 10, "batch_size": 2,
       "gradient_accumulation_steps": 1}


async def open_editor(pilot, cfg: C.TrainConfig) -> EditorScreen:
    await settle(pilot)
    pilot.app.open_editor("ft", cfg)
    await settle(pilot)
    assert isinstance(pilot.app.screen, EditorScreen)
    return pilot.app.screen


async def test_a_shape_typed_over_gpt2s_weights_is_estimated_and_started_as_gpt2() -> None:
    """init_from = 'gpt2' decides the shape: typing n_layer = 4 changes neither the estimate
    nor the run (before, the estimate showed 4 layers and the run failed at the weights)."""
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        ed = await open_editor(pilot, C.build({**RUN, "init_from": "gpt2"}))
        gpt2 = ed.estimate.params_nanogpt.value
        assert gpt2 > 100e6  # GPT-2 small's 124M
        ed.query_one("#f-n_layer", Input).value = "4"
        await settle(pilot)
        assert ed.cfg is not None and ed.values["n_layer"] == 4
        assert ed.estimate.params_nanogpt.value == gpt2
        assert "12 from init_from's weights" in text_of(ed.query_one("#h-n_layer", Static))
        await pilot.press("ctrl+r")
        await settle(pilot)
        cfg = FakeSession.instances[-1].cfg
        assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab_size, cfg.bias) == (12, 12, 768, 50257, True)


async def test_weights_gone_since_the_preset_was_read_are_an_error_not_the_typed_shape(tmp_path) -> None:
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 3, "n_head": 2, "n_embd": 64,
                                                "n_positions": 128, "vocab_size": 50257}))
    app = make_app(services())
    async with app.run_test(size=(120, 40)) as pilot:
        ed = await open_editor(pilot, C.build({**RUN, "init_from": str(hf), "block_size": 64}))
        assert ed.cfg is not None and ed.cfg.n_layer == 3 and ed.estimate is not None
        shutil.rmtree(hf)
        ed.query_one("#f-max_iters", Input).value = "20"
        await settle(pilot)
        form = text_of(ed.query_one("#form-error", Static))
        assert ed.cfg is None and "no such file or folder" in form and "init_from" in form, form
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert not FakeSession.instances  # nothing started
