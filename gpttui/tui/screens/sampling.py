"""Sampling: generate from a run's checkpoint; text streams in from a thread worker and
the finished sample is saved into the run folder."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Input, Label, Static
from textual.worker import get_current_worker

from gpttui.errors import GpttuiError
from gpttui.tui.failures import ReportsWorkerFailures
from gpttui.tui.messages import LatestRun, SampleDone, SamplePiece
from gpttui.tui.widgets.footer import StableFooter

PARAMS = (("temperature", "0.8", float), ("top_k", "200", int), ("max_new_tokens", "200", int), ("seed", "1337", int))




class SamplingScreen(ReportsWorkerFailures, Screen):
    """Settings on the left, the streamed text on the right."""

    BINDINGS = [
        Binding("ctrl+g", "generate", "Generate"),
        Binding("ctrl+x", "cancel", "Cancel", priority=True),  # (over the fields' own ctrl+x, cut)
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, run_id: str | None = None) -> None:
        super().__init__()
        self.run_id = run_id or ""
        self.text = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="sample-body"):
            with Vertical(id="sample-form"):
                for key, default in (("run", self.run_id), ("checkpoint", ""), ("prompt", "")):
                    with Horizontal(classes="field-row"):
                        yield Label(key, classes="field-name")
                        yield Input(default, id=f"s-{key}", classes="field-input",
                                    placeholder={"checkpoint": "latest (or best)", "prompt": "(empty: unconditional)", "run": "run id"}[key])
                for key, default, _ in PARAMS:
                    with Horizontal(classes="field-row"):
                        yield Label(key, classes="field-name")
                        yield Input(default, id=f"s-{key}", classes="field-input")
                yield Static("Enter or ctrl+g generates; ctrl+x cancels.", id="sample-status")
            with VerticalScroll(id="sample-out-box"):
                yield Static("", id="sample-out")
        yield StableFooter()

    def on_mount(self) -> None:
        self.sub_title = f"sample from run {self.run_id}" if self.run_id else "sample from a run"
        self.query_one("#s-prompt" if self.run_id else "#s-run", Input).focus()
        if not self.run_id:
            self._latest_run()

    @work(thread=True, group="sample-runs", exit_on_error=False)
    def _latest_run(self) -> None:
        try:
            runs = self.app.services.list_runs()
        except GpttuiError as e:  # the field stays empty: the user names a run
            self.post_message(SampleDone(str(e), error=True))
            return
        if runs:
            self.post_message(LatestRun(runs[-1].id))

    def on_latest_run(self, msg: LatestRun) -> None:
        self.query_one("#sample-status", Static).update(f"latest run: {msg.run_id}")
        inp = self.query_one("#s-run", Input)
        if not inp.value:
            inp.value = msg.run_id

    def settings(self) -> dict[str, Any]:
        """The form as stream_sample keyword arguments (GpttuiError for a bad number)."""
        out: dict[str, Any] = {}
        for key, _, typ in PARAMS:
            raw = self.query_one(f"#s-{key}", Input).value.strip()
            try:
                out[key] = typ(raw)
            except ValueError:
                raise GpttuiError(f"{key} must be a {typ.__name__}, got {raw!r}", f"e.g. {dict((k, d) for k, d, _ in PARAMS)[key]}") from None
        if out["top_k"] <= 0:
            out["top_k"] = None
        if out["temperature"] <= 0:
            raise GpttuiError("temperature must be > 0", "e.g. 0.8")
        return out

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_generate()

    def action_generate(self) -> None:
        run_id = self.query_one("#s-run", Input).value.strip()
        if not run_id:
            self.notify("Name a run (see Runs, u on Home).", severity="warning")
            return
        try:
            settings = self.settings()
        except GpttuiError as e:
            self.query_one("#sample-status", Static).update(str(e))
            return
        self.text = ""
        self.query_one("#sample-out", Static).update("")
        self.query_one("#sample-status", Static).update("loading checkpoint…")
        prompt = self.query_one("#s-prompt", Input).value
        ckpt = self.query_one("#s-checkpoint", Input).value.strip() or None
        self._generate(run_id, prompt, ckpt, settings)

    @work(thread=True, exclusive=True, group="sample", exit_on_error=False)
    def _generate(self, run_id: str, prompt: str, ckpt: str | None, settings: dict[str, Any]) -> None:
        services, worker = self.app.services, get_current_worker()
        pieces: list[str] = []
        source: list[str] = []

        def loaded(path: Any, kind: str, state: dict[str, Any]) -> None:
            source.append(f"from {path.name} ({kind}, iter {state.get('iter_num', '?')}); ")

        try:
            run = services.get_run(run_id)
            for piece in services.stream_sample(run, prompt=prompt, checkpoint=ckpt, on_load=loaded, **settings):
                if worker.is_cancelled:
                    break
                pieces.append(piece)
                self.post_message(SamplePiece(piece))
            text = "".join(pieces)
            path = services.save_sample(run, prompt, text, {**settings, "checkpoint": ckpt or "latest"})
        except GpttuiError as e:
            self.post_message(SampleDone(str(e), error=True))
            return
        note = "cancelled; " if worker.is_cancelled else ""
        self.post_message(SampleDone(f"{note}{''.join(source)}{len(pieces)} pieces, saved in the run folder as "
                                     f"{path.parent.name}/{path.name}"))

    def on_sample_piece(self, msg: SamplePiece) -> None:
        if not self.text:
            self.query_one("#sample-status", Static).update("generating…")
        self.text += msg.text
        self.query_one("#sample-out", Static).update(Text(self.query_one("#s-prompt", Input).value + self.text))

    def on_sample_done(self, msg: SampleDone) -> None:
        self.query_one("#sample-status", Static).update(msg.note)
        if msg.error:
            self.notify(msg.note, severity="error")

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "sample")

    def action_back(self) -> None:
        self.action_cancel()
        self.app.pop_screen()
