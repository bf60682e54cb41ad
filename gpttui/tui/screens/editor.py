"""Config editor: every TrainConfig field by group, validated as typed, with a live estimate.

Each keystroke is read with `config.parse_value` (type) and, once every field parses,
the whole config is checked with `config.build` (ranges, cross-field rules); the message
appears under the field its `ConfigError.key` names. A valid config is estimated in a
thread worker, with the shape the weights `init_from` names impose (reading them is file
I/O: never on the event loop); starting the run uses that shaped config too.
"""

from __future__ import annotations

import threading
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Input, Label, Select, Static
from textual.worker import get_current_worker

from gpttui import config as C
from gpttui import fmt
from gpttui.errors import ConfigError, GpttuiError
from gpttui.presets import with_preset_warning
from gpttui.tui.failures import ReportsWorkerFailures
from gpttui.tui.messages import DatasetsListed, EstimateReady, PresetSaved, ReadyToStart
from gpttui.tui.peaks import waits_for_peak
from gpttui.tui.screens.dialogs import ChoiceScreen
from gpttui.tui.widgets.estimate_panel import EstimatePanel
from gpttui.tui.widgets.footer import StableFooter
from gpttui.weights.pretrained import SHAPE, wants_weights

SHOWN_GROUPS = ("data", "model", "batching", "optimizer", "schedule", "eval", "system", "estimate")
WIDE_FIELDS = frozenset({"description", "data_source"})  # free text: the input gets a line of its own
PICKED_FIELDS = frozenset({"recipe"})  # a choice among few named values: a picker, not free text


FROM_SOURCE = "\x00from-source"  # the dataset picker's "from a source…" entry


def dataset_options(datasets: list[Any] | None, current: str, source: str) -> list[tuple[str, str]]:
    """The picker's entries: the prepared datasets (tokens, ready or not), the config's own
    dataset when it is not prepared yet, then "from a source…". `datasets` None: not listed
    yet (the first frame said "not prepared" of a prepared dataset until the list came)."""
    out = []
    names = set()
    for info, _when in datasets or ():
        names.add(info.name)
        state = "" if info.ready else ", incomplete"
        out.append((f"{info.name}  ({fmt.si(info.train_tokens + info.val_tokens)} tokens{state})", info.name))
    if current and current not in names:
        state = "checking…" if datasets is None else "not prepared yet" if source else "not prepared, no data_source"
        out.insert(0, (f"{current}  ({state})", current))
    out.append(("from a source…", FROM_SOURCE))
    return out




def as_text(value: Any) -> str:
    """A field value as the user types it (TOML-ish: true/false, plain numbers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class EditorScreen(ReportsWorkerFailures, Screen):
    """Edit a preset's values; save as a user preset (ctrl+s) or start the run (ctrl+r)."""

    DEFAULT_CSS = """
    EditorScreen Select.field-input > SelectCurrent { border: none; height: 1; padding: 0 1; }
    EditorScreen Select.field-input > SelectOverlay { width: 1fr; }
    """
    BINDINGS = [
        Binding("ctrl+s", "save", "Save preset"),
        Binding("ctrl+r", "start", "Start run"),
        Binding("escape", "back", "Back"),
        Binding("ctrl+t", "pilot", "Pilot", show=False),
    ]

    def __init__(self, preset: str, cfg: C.TrainConfig, new: bool = False, user: bool = False,
                 own: frozenset[str] | None = None) -> None:
        super().__init__()
        self.preset, self.base, self.new = preset, cfg, new
        self.own = own  # keys the preset sets; None: unknown (no origins shown)
        self.values: dict[str, Any] = C.to_dict(cfg)
        self.bad: dict[str, str] = {}
        self.cfg: C.TrainConfig | None = cfg
        self.save_name = preset if user and not new else f"{preset}-custom"
        self.saved_values = dict(self.values)  # what Esc compares with (unsaved changes ask)
        self.datasets: list[Any] | None = None  # until listed (a worker)
        self._estimate_lock = threading.Lock()  # guards _wanted/_estimating (UI thread + worker)
        self._wanted: C.TrainConfig | None = None
        self._estimating = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="editor-body"):
            with VerticalScroll(id="fields"):
                with Vertical(classes="field-row wide"):
                    yield Label("save as (user preset name)", classes="field-name")
                    yield Input(self.save_name, id="save-name", classes="field-input")
                yield Static("", id="form-error")
                for group in SHOWN_GROUPS:
                    yield Static(group, classes="group-title")
                    for name, f in C.FIELDS.items():
                        if f.metadata["group"] == group:
                            yield from self._field(name, f.metadata["help"])
            yield EstimatePanel("estimating…", id="estimate")
        yield StableFooter()

    def _field(self, name: str, help_: str) -> ComposeResult:
        """One field: name and input on a row (free text below its name, full width),
        then its help line, shown while focused or replaced by its error."""
        wide = name in WIDE_FIELDS
        with Vertical(classes="field wide" if wide else "field"):
            with (Vertical if wide else Horizontal)(classes="field-row wide" if wide else "field-row"):
                yield Label(name, classes="field-name")
                if name == "dataset":  # a picker: prepared datasets, or "from a source…"
                    opts = dataset_options(None, self.values[name], self.values["data_source"])
                    yield Select(opts, value=self.values[name], allow_blank=False, compact=True,
                                 id="f-dataset", classes="field-input field-select")
                elif name in PICKED_FIELDS:  # a fixed set of choices (recipe)
                    choices = C.FIELDS[name].metadata["choices"]
                    yield Select([(c, c) for c in choices], value=self.values[name], allow_blank=False,
                                 id=f"f-{name}", classes="field-input")
                else:  # long free text keeps its start in view when focused (no select-all to the end)
                    yield Input(as_text(self.values[name]), id=f"f-{name}", classes="field-input",
                                select_on_focus=not wide)
            yield Static(self._help(name), id=f"h-{name}", classes="field-help")

    def on_mount(self) -> None:
        self.sub_title = f"{'new preset from' if self.new else 'editing'} {self.preset}"
        self.query_one("#f-n_layer" if self.new else "#f-description", Input).focus()
        for name in WIDE_FIELDS:  # long free text: show its start, not its end
            self.query_one(f"#f-{name}", Input).cursor_position = 0
        for name in C.FIELDS:
            field = self.query_one_optional(f"#f-{name}") if self._inherited(name) else None
            if field is not None:  # (cached id lookup: a DOM-wide query per field costs seconds)
                field.add_class("inherited")
        self.request_estimate()
        self._list_datasets()

    @work(thread=True, exclusive=True, group="editor-datasets", exit_on_error=False)
    def _list_datasets(self) -> None:
        self.post_message(DatasetsListed(self.app.services.list_datasets()))

    def on_datasets_listed(self, msg: DatasetsListed) -> None:
        self.datasets = msg.datasets
        self._set_dataset_options()

    def _set_dataset_options(self) -> None:
        sel = self.query_one("#f-dataset", Select)
        current = str(self.values["dataset"])
        with sel.prevent(Select.Changed):
            sel.set_options(dataset_options(self.datasets, current, str(self.values["data_source"])))
            sel.value = current
            sel.mutate_reactive(Select.value)  # the same value keeps its old label unless told

    @on(Select.Changed, "#f-dataset")
    def _dataset_picked(self, event: Select.Changed) -> None:
        value = event.value
        if value == FROM_SOURCE:
            from gpttui.tui.screens.datasets import PrepareScreen

            self.app.push_screen(PrepareScreen(source=str(self.values["data_source"]),
                                               text_column=str(self.values["text_column"])), self._from_source)
            return
        if isinstance(value, str) and value != self.values["dataset"]:
            self.values["dataset"] = value
            self.validate_all()

    def _from_source(self, answer: dict[str, str] | None) -> None:
        """A new dataset from files: it is prepared when the run starts (with progress)."""
        if answer:
            self.values["dataset"] = answer["name"]
            for key, value in (("data_source", answer["source"]), ("text_column", answer["column"])):
                self.query_one(f"#f-{key}", Input).value = value  # → _changed → values, validation
        self._set_dataset_options()
        self.validate_all()

    @on(Input.Changed, ".field-input")
    def _changed(self, event: Input.Changed) -> None:
        field_id = event.input.id or ""
        if field_id == "save-name":
            self.save_name = event.value.strip()
            return
        key = field_id.removeprefix("f-")
        try:
            self.values[key] = C.parse_value(key, event.value)
            self.bad.pop(key, None)
        except ConfigError as e:
            self.bad[key] = str(e)
        self.validate_all()

    @on(Select.Changed, ".field-input")
    def _picked(self, event: Select.Changed) -> None:
        key = (event.select.id or "").removeprefix("f-")
        if key in PICKED_FIELDS and isinstance(event.value, str):  # (the dataset picker has its own)
            try:
                self.values[key] = C.coerce(key, event.value, "")
                self.bad.pop(key, None)
            except ConfigError as e:
                self.bad[key] = str(e)
            self.validate_all()

    def validate_all(self) -> None:
        """Show per-field type errors, else the first whole-config error; re-estimate."""
        for name in C.FIELDS:  # (an id lookup is cached by Textual; a query walks the whole DOM)
            if self.query_one_optional(f"#h-{name}") is not None:
                self._show_field(name, self.bad.get(name))
        form = self.query_one("#form-error", Static)
        form.display = bool(self.bad)
        if self.bad:
            self.cfg = None
            form.update(f"{len(self.bad)} invalid value(s): fix the fields marked in red")
            self.query_one(EstimatePanel).show_message("Fix the invalid values to see the estimate.", error=True)
            return
        try:  # the weights' shape is applied by the estimate worker (file I/O)
            self.cfg = C.build(self.values, source="", pretrained=False)
        except ConfigError as e:
            self._invalid(str(e), e.key)
            return
        form.update("")
        self.request_estimate()

    def _invalid(self, message: str, key: str | None) -> None:
        """The config cannot work: say why, under the field at fault too; no estimate."""
        self.cfg = None
        form = self.query_one("#form-error", Static)
        form.update(message)
        form.display = True
        if key in C.FIELDS and self.query_one_optional(f"#h-{key}") is not None:  # (compat keys such as init_from have no field)
            self._show_field(key, message)
        self.query_one(EstimatePanel).show_message("Fix the invalid value to see the estimate.", error=True)

    def _inherited(self, name: str) -> bool:
        """Whether `name` still holds a default the preset does not set (unedited)."""
        return (self.own is not None and name not in self.own and name != "description"
                and self.values.get(name) == getattr(self.base, name))

    def _help(self, name: str) -> str:
        """The field's help, with where its value comes from (the preset, nanoGPT's default,
        gpttui's default, or edited here)."""
        help_ = C.FIELDS[name].metadata["help"]
        if self.own is None or name == "description":
            return help_
        if self.values.get(name) != getattr(self.base, name):
            return f"{help_} · edited"
        if name in self.own:
            return f"{help_} · set by the preset"
        return f"{help_} · inherited: {C.origin(name, self.own, getattr(self.base, name))}"

    def _show_field(self, name: str, error: str | None) -> None:
        help_ = self.query_one(f"#h-{name}", Static)
        inp = self.query_one(f"#f-{name}")
        help_.update(error or self._help(name))
        help_.set_class(bool(error), "error")
        inp.set_class(bool(error), "invalid")
        inp.set_class(not error and self._inherited(name), "inherited")

    def request_estimate(self) -> None:
        """Estimate the current config, after the keys: one worker at a time. Keys typed
        while it runs only replace the config it will estimate next, so a slow estimate
        (a loaded machine, a peak being measured) never queues work behind the typing."""
        if self.cfg is None:
            return
        with self._estimate_lock:
            self._wanted = self.cfg
            if self._estimating:
                return
            self._estimating = True
        self._estimate()

    @work(thread=True, group="estimate", exit_on_error=False)
    def _estimate(self) -> None:
        """Estimate the latest wanted config until none newer is waiting; if the device's
        peak must be measured (CPU), measure it here and estimate again. A result the user
        has typed past is not posted."""
        while True:
            cfg = self._wanted
            try:
                self._estimate_one(cfg)
            except BaseException:  # reaches the failure handler; a later key starts anew
                with self._estimate_lock:
                    self._estimating = False
                raise
            with self._estimate_lock:
                if self._wanted is cfg or get_current_worker().is_cancelled:
                    self._estimating = False
                    return

    def _estimate_one(self, wanted: C.TrainConfig) -> None:
        def current() -> bool:
            return self._wanted is wanted and not get_current_worker().is_cancelled

        try:
            cfg = shaped(wanted)
            est = self._with_preset_warning(self.app.estimate(cfg), cfg)
            if current():
                self.post_message(EstimateReady(est, cfg=cfg))
            if waits_for_peak(est) and current():
                est = self._with_preset_warning(self.app.estimate(cfg, measure=True), cfg)
                if current():
                    self.post_message(EstimateReady(est, cfg=cfg))
        except GpttuiError as e:
            if current():
                self.post_message(EstimateReady(None, str(e), getattr(e, "key", None)))

    def _with_preset_warning(self, est: Any, cfg: C.TrainConfig) -> Any:
        """`est` with a warning when the preset inherits nanoGPT's 40 micro-batches per
        iteration while sizing its own model (see `presets.inherited_batching_warning`)."""
        if self.own is None or est is None:
            return est
        edited = {k for k, v in self.values.items() if v != getattr(self.base, k)}
        return with_preset_warning(est, self.own | edited, cfg)

    def on_estimate_ready(self, msg: EstimateReady) -> None:
        panel = self.query_one(EstimatePanel)
        if msg.est is None and msg.key in C.FIELDS:  # e.g. the weights init_from names are gone
            self._invalid(msg.error, msg.key)
        elif msg.est is None:
            panel.show_message(msg.error, error=True)
        elif self.cfg is not None:
            panel.show_estimate(msg.est)
            self._show_imposed(msg.cfg)
        self.estimate = msg.est

    def _show_imposed(self, cfg: C.TrainConfig) -> None:
        """Under each shape field the weights override, the value they impose."""
        for name in SHAPE:
            if name not in self.bad and getattr(cfg, name) != self.values.get(name):
                self.query_one(f"#h-{name}", Static).update(
                    f"{as_text(getattr(cfg, name))} from init_from's weights (they decide the model's shape)")

    # -- actions ---------------------------------------------------------------------------
    def _valid_cfg(self) -> C.TrainConfig | None:
        if self.cfg is None:
            self.notify("The config has invalid values; fix them first.", severity="error")
        return self.cfg

    def action_save(self) -> None:
        cfg = self._valid_cfg()
        if cfg is not None:
            self._save(self.save_name, cfg)

    @work(thread=True, exclusive=True, group="save-preset", exit_on_error=False)
    def _save(self, name: str, cfg: C.TrainConfig) -> None:
        from gpttui.presets import save_user_preset

        try:
            path = save_user_preset(name, cfg)
        except GpttuiError as e:
            self.post_message(PresetSaved(name, error=str(e)))
            return
        self.post_message(PresetSaved(name, C.to_dict(cfg), str(path)))

    def on_preset_saved(self, msg: PresetSaved) -> None:
        if msg.error:
            self.notify(msg.error, severity="error")
            return
        self.preset, self.saved_values = msg.name, msg.values
        self.notify(f"Saved preset '{msg.name}' to {msg.path}")

    def action_start(self) -> None:
        cfg = self._valid_cfg()
        if cfg is not None and wants_weights(cfg.init_from):
            self._shape_to_start(cfg)  # reads the weights' shape: off the event loop
        elif cfg is not None:
            self.app.start_training(cfg, self.preset, leave=self)

    @work(thread=True, exclusive=True, group="editor-start", exit_on_error=False)
    def _shape_to_start(self, cfg: C.TrainConfig) -> None:
        """The run gets the shape its weights impose, as a preset started from Home does."""
        try:
            self.post_message(ReadyToStart(shaped(cfg)))
        except ConfigError as e:
            self.post_message(ReadyToStart(None, str(e), e.key))

    def on_ready_to_start(self, msg: ReadyToStart) -> None:
        if msg.cfg is None:
            self._invalid(msg.error, msg.key)
            self.notify(msg.error, severity="error")
        else:
            self.app.start_training(msg.cfg, self.preset, leave=self)

    def action_pilot(self) -> None:
        """The Pilot screen for the values as edited (saved or not)."""
        cfg = self._valid_cfg()
        if cfg is not None:
            self.app.open_pilot(self.preset, C.to_dict(cfg))

    def pilot_target(self) -> tuple[str | None, dict[str, Any] | None]:
        cfg = self._valid_cfg()
        return (self.preset, C.to_dict(cfg)) if cfg is not None else (None, None)

    def action_back(self) -> None:
        """Leave; with unsaved changes, ask first (Keep editing is the default)."""
        changed = [k for k, v in self.values.items() if self.saved_values.get(k) != v] + sorted(self.bad)
        if not changed:
            self.app.pop_screen()
            return

        def done(choice: str | None) -> None:
            if choice == "discard":
                self.app.pop_screen()

        shown = ", ".join(dict.fromkeys(changed[:6])) + (" …" if len(changed) > 6 else "")
        self.app.push_screen(ChoiceScreen("Discard your changes?", [("keep", "Keep editing"), ("discard", "Discard")],
                                          f"Changed: {shown}. Save them as a preset with ctrl+s."), done)


def shaped(cfg: C.TrainConfig) -> C.TrainConfig:
    """`cfg` with the shape of the weights `init_from` names (reads them: worker threads
    only). The keys the weights decide are left out, so weights that cannot be found are
    an error here, not the typed shape standing in for them (see `apply_shape`)."""
    if not wants_weights(cfg.init_from):
        return cfg
    decided = set(SHAPE) - {"block_size"}  # block_size may only crop the weights' positions
    return C.build({k: v for k, v in C.to_dict(cfg).items() if k not in decided}, source="")
