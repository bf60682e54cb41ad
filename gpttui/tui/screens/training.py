"""The live training screen: status, progress, loss charts, MFU/VRAM gauges, log.

It renders the app's `LiveRun` (or a `LiveRun` it is given, for a run another process
trains). Events only mark the view dirty (the app folds them into the LiveRun); the screen's
one clock redraws the numbers once a second while it is shown, and the plotext chart every
other second, so a fast trainer never makes the UI thread (and the GIL it shares with the
trainer) busy (`bench/ui_cost.py`). State changes, evals and keys redraw at once. A screen
that is covered (Help on top) draws nothing until it is shown again.
"""

from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Header, RichLog, Sparkline, Static

from gpttui import events as E
from gpttui import fmt
from gpttui.tui.live import STARTING, LiveRun
from gpttui.tui.screens import training_view as V
from gpttui.tui.screens.dialogs import ChoiceScreen
from gpttui.tui.screens.reference import ReferenceOverlay
from gpttui.tui.widgets.chart import LineChart, Series
from gpttui.tui.widgets.footer import StableFooter
from gpttui.tui.widgets.gauge import Gauge

STATE_STYLE = {
    E.TRAINING: "bold green", E.EVALUATING: "bold cyan", E.PAUSED: "bold yellow",
    E.COMPILING: "bold magenta", E.PREPARING: "bold magenta", E.FINISHED: "bold green",
    E.STOPPED: "bold yellow", E.FAILED: "bold red", E.SAVING: "bold cyan", E.STOPPING: "bold yellow",
}


def loss_series(live: LiveRun) -> list[Series]:
    """Train loss per logged step and val loss per eval, against iterations."""
    tr = Series("train", tuple(float(i) for i, _ in live.losses), tuple(v for _, v in live.losses))
    va = Series("val", tuple(float(e.iter) for e in live.evals), tuple(e.val_loss for e in live.evals))
    return [tr, va]


class ProgressLine(Widget):
    """The run's progress bar, drawn at whatever width it has when rendered."""

    DEFAULT_CSS = "ProgressLine { height: 1; width: 1fr; }"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.fraction: float | None = None

    def set_fraction(self, frac: float | None) -> None:
        cells = None if frac is None else round(frac * 1000)  # repaint only when a cell could move
        if cells != getattr(self, "_cells", -1):
            self._cells, self.fraction = cells, frac
            self.refresh()

    def render(self) -> Text:
        return V.progress_line(self.fraction, self.size.width)


class RunLog(RichLog):
    """The run's log, wrapped at the pane's width and wrapped again when that changes (a
    hint cut at the right edge is a hint lost), following its end. No scrollbars: a
    2-column thumb in a 5-line pane drew as stray "▅▅" glyphs; the log still scrolls by
    keys (it has the focus: ↑↓ PgUp PgDn Home End) and the wheel, as its title says."""

    DEFAULT_CSS = "RunLog { scrollbar-visibility: hidden; scrollbar-size: 0 0; overflow-x: hidden; }"

    def __init__(self, **kw) -> None:
        super().__init__(max_lines=500, wrap=True, min_width=1, markup=False, **kw)
        self.kept: deque[str] = deque(maxlen=500)
        self._wrapped_at = 0
        self.border_title = "log · ↑↓ PgUp PgDn scroll"

    def add(self, line: str) -> None:
        self.kept.append(line)
        self.write(line)

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width != self._wrapped_at and self.kept:
            self._wrapped_at = width
            self.clear()
            for line in self.kept:
                self.write(line, scroll_end=False)
            self.scroll_end(animate=False, immediate=False)
        self._wrapped_at = width


class TrainingScreen(ReferenceOverlay, Screen):
    """Live view of one run; controls work only on the run this process trains."""

    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("p", "unpause", "Resume"),  # (the footer offers the one the run's state allows)
        Binding("s", "save", "Save ckpt"),
        Binding("x", "stop", "Stop"),
        Binding("g", "sample", "Sample"),
        Binding("left_square_bracket", "sample_step(-1)", "Older sample", show=False, key_display="["),
        Binding("right_square_bracket", "sample_step(1)", "Newer sample", show=False, key_display="]"),
        Binding("w", "dismiss_warning", "Dismiss warning", show=False),
        Binding("b", "toggle_bell", "Bell on warnings on/off", show=False),
        Binding("f", "reference", "Reference run on the chart (pick or none)", show=False),
        Binding("escape", "back", "Back"),
    ]

    REFRESH_S = 1.0  # the one clock: numbers, gauges, sparkline, log; elapsed and ETA tick
    CHART_S = 2.0  # the plotext chart (~15 ms a build), drawn in the same frame when due

    def __init__(self, live: LiveRun | None = None, controllable: bool = True) -> None:
        super().__init__()
        self._live = live
        self.controllable = controllable
        self._log_seen = 0
        self._dirty = True
        self._shown: dict[str, str] = {}
        self._drawn: dict[str, object] = {}  # what each Static shows now (text and styles)
        self._spark: tuple[float, ...] = ()
        self._chart_t = -1e9
        self._sample_i: int | None = None  # the sample shown (None: the newest)
        self._warned = 0  # warnings dismissed (w) or already shown in the banner
        self._banner: E.RunWarning | None = None
        self._state_drawn = ""
        self._w: dict[str, Widget] = {}  # widgets by selector, looked up once (a query walks the DOM)
        self._reference_init()

    @property
    def live(self) -> LiveRun | None:
        return self._live if self._live is not None else getattr(self.app, "live", None)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="status")
        yield Static(id="banner")
        with Horizontal(id="progress-row"):
            yield ProgressLine(id="progress")
            yield Static(id="iter")
        with Horizontal(id="main"):
            yield LineChart(xlabel="iter", key_below=(50, 16), id="loss-chart")
            with Vertical(id="side"):
                yield Static(id="numbers")
                yield Gauge("MFU", width=10, id="mfu", warn=2.0)
                yield Gauge("VRAM", width=10, id="vram")
                yield Gauge("RAM", width=10, id="ram")
                yield Static(id="sample")
        yield Static(id="mfu-basis")
        with Horizontal(id="spark-row"):
            yield Static(id="spark-label")
            yield Sparkline([], id="spark")
        yield RunLog(id="log")
        yield StableFooter()

    def on_mount(self) -> None:
        for sel in ("#status", "#banner", "#iter", "#numbers", "#mfu", "#vram", "#ram", "#sample",
                    "#mfu-basis", "#spark-label", "#spark"):
            self._w[sel] = self.query_one(sel)
        self._w["progress"] = self.query_one(ProgressLine)
        self._w["spark"] = self.query_one(Sparkline)
        self._w["log"] = self.query_one(RunLog)
        self._w["chart"] = self.query_one(LineChart)
        self.set_interval(self.REFRESH_S, self._tick)
        self.refresh_view(chart=True)

    def on_resize(self, event: Resize) -> None:
        """The log takes a share of a tall terminal (6 rows up to 34, 8 at 40, 12 at 60);
        the chart and the side column keep the rest. A wide one (160+ columns) widens the
        side column, so a sample reads in longer lines (the chart still gets 130+)."""
        log = self._w.get("log")
        if log is not None:
            log.styles.height = max(6, min(14, event.size.height // 5))
            self.query_one("#side").styles.width = 46 if event.size.width < 160 else 66

    def on_screen_resume(self) -> None:
        """Shown again (Help closed, back from Runs): catch up at once."""
        if self._dirty:
            self.refresh_view(chart=True)

    def _put(self, selector: str, content: str | Text) -> None:
        """Update a Static only if its text changed, and re-layout the screen only if its
        shape (length, line count) did: a layout pass costs more than the redraw, and
        this runs 4 times a second while the trainer wants the CPU."""
        plain = content if isinstance(content, str) else content.plain
        key = plain if isinstance(content, str) else (plain, tuple(content.spans), content.style)
        if self._drawn.get(selector) == key:  # the same text and styles: nothing to repaint
            return
        prev = self._shown.get(selector)
        shape_changed = prev is None or len(prev) != len(plain) or prev.count("\n") != plain.count("\n")
        w = self._w[selector]
        assert isinstance(w, Static)
        w.update(content, layout=shape_changed)
        self._shown[selector], self._drawn[selector] = plain, key

    def mark_dirty(self, urgent: bool = False) -> None:
        """Called by the app for each batch of events; urgent ones (state changes, evals,
        keys) redraw now if the screen is shown, the rest at the next tick."""
        self._dirty = True
        if urgent and self.is_current:
            self.refresh_view(chart=True)

    def _tick(self) -> None:
        """Once a second, while shown: redraw what events changed, and while the run's clock
        runs redraw anyway (elapsed and ETA tick even when a step takes minutes)."""
        live = self.live
        if live is not None and (live.running or live.state == E.PREPARING):
            self._dirty = True
        if self._dirty and self.is_current:
            self.refresh_view(chart=False)

    def refresh_view(self, chart: bool = True) -> None:
        """Redraw every widget from the LiveRun (not before it is composed, nor while the
        app tears it down)."""
        self._dirty = False
        if not self._w or not self.is_attached:
            return
        live = self.live
        if live is None:
            self._put("#status", "No run is training. Start one from Home (r).")
            return
        self._status(live)
        self._warning(live)
        self._progress(live)
        self._numbers(live)
        self._put("#sample", V.sample_text(live, self._sample_i))
        spark = live.recent_losses()
        if spark != self._spark:
            self._spark = spark
            self._w["spark"].data = list(spark) if len(spark) > 1 else []  # type: ignore[attr-defined]
        self._put("#spark-label", V.spark_label(spark))  # (cached: repainted only when it changes)
        self._show("#spark", len(spark) > 1)  # (an empty Sparkline draws a ▁▁▁ baseline: no data drawn as data)
        log = self._w["log"]
        assert isinstance(log, RunLog)
        for line in live.new_log_lines(self._log_seen):
            log.add(line)
        self._log_seen = live.log_total
        now = time.monotonic()
        if chart or now - self._chart_t >= self.CHART_S:
            self._chart_t = now
            chart = self._w["chart"]
            assert isinstance(chart, LineChart)
            chart.empty = ("loss: from the first logged step (train) and evaluation (val)" if live.active
                           else f"no loss was logged: the run {live.state} before its first log")
            chart.set_series(loss_series(live) + self.reference)

    def _status(self, live: LiveRun) -> None:
        t = Text()
        t.append(f" {live.state.upper()} ", style=f"reverse {STATE_STYLE.get(live.state, 'bold')}")
        t.append("  new run (named once its data is ready)" if live.run_id == STARTING else f"  run {live.run_id}")
        if live.state in (E.EVALUATING, E.PREPARING, E.COMPILING, E.SAVING) and live.state_since is not None:
            t.append(f"  for {fmt.duration(self.app.services.clock() - live.state_since)}", style="dim")
        ev_pos = live.eval_position()
        if ev_pos is not None:
            t.append(f"  batch {ev_pos[0]:,}/{ev_pos[1]:,}", style="dim")
        if live.step is not None and live.step.compiling and live.state != E.COMPILING:  # (its message says so)
            t.append("  (compiling: first steps are slow)", style="magenta")
        if live.state != self._state_drawn:  # the footer's keys follow the state (Pause/Resume, none once ended)
            self._state_drawn = live.state
            self.refresh_bindings()
        if live.pending:
            t.append(f"  {live.pending}", style="bold yellow")
        elif live.message:
            t.append(f"  {live.message}", style="red" if live.state == E.FAILED else "dim")
        if live.state == E.PAUSED and not live.pending and self.check_action("unpause", ()):
            t.append("  p resumes", style="bold yellow")
        if self._live is not None and live.active:  # (why the footer has no pause, save or stop)
            t.append("  trained by another process: pause or stop it there", style="dim")
        if live.prepare is not None and live.state == E.PREPARING:
            p = live.prepare
            t.append(f"  preparing data: {p.stage} {fmt.si(p.tokens)} tokens, ETA {fmt.duration(p.eta_s)}")
        self._put("#status", t)

    def _progress(self, live: LiveRun) -> None:
        self._w["progress"].set_fraction(V.fraction_done(live))  # type: ignore[attr-defined]
        self._put("#iter", V.iter_text(live))

    def _show(self, selector: str, on: bool) -> None:
        w = self._w[selector]
        if w.display != on:
            w.display = on

    def _warning(self, live: LiveRun) -> None:
        """The newest warning not dismissed, as a banner (with the terminal bell if on)."""
        w = live.warnings[-1] if len(live.warnings) > self._warned else None
        if w is not self._banner:
            self._banner = w
            if w is not None:
                self._put("#banner", V.banner_text(w))
                if getattr(self.app, "bell_on_warning", False):
                    self.app.bell()
        self._show("#banner", w is not None)

    def _numbers(self, live: LiveRun) -> None:
        self._put("#numbers", V.numbers_text(live, self.app.services.clock()))
        s = live.step
        if s is None:
            return
        self._show("#mfu", s.mfu is not None)
        if s.mfu is not None:
            self._gauge("#mfu").set_value(s.mfu, f"{fmt.pct(s.mfu)} of {s.peak_tflops:.3g} TFLOPS", over_is_bad=False)
        self._show("#mfu-basis", True)
        self._put("#mfu-basis", V.mfu_basis_line(s))
        for sel, detail in (("#vram", V.vram_detail(s)), ("#ram", V.ram_detail(s))):
            self._show(sel, detail is not None)
            if detail is not None:
                self._gauge(sel).set_value(*detail)

    def _gauge(self, selector: str) -> Gauge:
        w = self._w[selector]
        assert isinstance(w, Gauge)
        return w

    # -- keys ------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pause, save and stop belong to the process that trains the run: a run followed
        from its files does not offer them (its footer would promise keys that only warn),
        nor does a run that has ended; p reads Pause or Resume as the run's state allows."""
        if action in ("pause", "unpause", "save", "stop"):
            live = self.live
            if not self.controllable or self._live is not None or live is None or not live.active:
                return False
            if action in ("pause", "unpause"):
                return (live.state == E.PAUSED) == (action == "unpause")
        return True

    def _can_control(self) -> bool:
        if not self.controllable or self._live is not None:
            self.notify("This run is trained by another process; control it there.", severity="warning")
            return False
        return self.app.session_active()

    def action_pause(self) -> None:
        if self._can_control():
            self.app.toggle_pause()

    def action_unpause(self) -> None:
        self.action_pause()

    def action_save(self) -> None:
        if self._can_control():
            self.app.session.save_now()
            self.notify("Checkpoint requested; it is written at the end of this step.")

    def action_stop(self) -> None:
        if not self._can_control():
            return

        def done(choice: str | None) -> None:
            if choice == "stop":
                self.app.stop_session()

        self.app.push_screen(ChoiceScreen(
            "Stop this run?", [("stop", "Stop (checkpoint first)"), ("cancel", "Keep training")],
            "It can be resumed later from the Runs screen."), done)

    def action_sample(self) -> None:
        live = self.live
        if live is None:
            return
        saw_all = not live.resumed and (self._live is None or live.active)  # every event (a followed run's file has them)
        if saw_all and not live.checkpoints:
            save = "; s saves one now" if self.check_action("save", ()) else ""
            when = (f"one is written at each evaluation after iter 0 (eval_interval){save}" if live.active
                    else f"this run {live.state} before writing one")
            self.notify(f"No checkpoint to sample from: {when}.", severity="warning")
            return
        self.app.open_sampling(live.run_id)

    def action_sample_step(self, delta: int) -> None:
        """Browse the samples generated at each evaluation ([ older, ] newer)."""
        live = self.live
        if live is None or not live.samples:
            return
        i = (len(live.samples) - 1 if self._sample_i is None else self._sample_i) + delta
        self._sample_i = None if i >= len(live.samples) - 1 else max(0, i)
        self.mark_dirty(True)

    def action_toggle_bell(self) -> None:
        self.app.bell_on_warning = not getattr(self.app, "bell_on_warning", False)
        self.notify(f"Terminal bell on warnings: {'on' if self.app.bell_on_warning else 'off'}")

    def action_dismiss_warning(self) -> None:
        live = self.live
        if live is not None:
            self._warned = len(live.warnings)
            self.mark_dirty(True)

    def action_back(self) -> None:
        self.app.pop_screen()
