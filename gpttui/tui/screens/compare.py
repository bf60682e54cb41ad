"""Compare: two runs' val loss against tokens seen, and a side-by-side table of what was
measured (step medians, tokens and time to a common val loss, HellaSwag, the final or
forecast val loss). Its files are read in a thread worker."""

from __future__ import annotations

import statistics
from typing import Any

from rich.table import Table
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Header, Static

from gpttui import events as E
from gpttui import fmt
from gpttui.errors import GpttuiError
from gpttui.tui.failures import ReportsWorkerFailures
from gpttui.tui.messages import Compared
from gpttui.tui.widgets.chart import LineChart, Series
from gpttui.tui.widgets.footer import StableFooter


def full_eval_text(run: Any) -> str | None:
    """`gpttui eval`'s newest HellaSwag figure for a run (None if never evaluated)."""
    from gpttui.evals import results

    path = getattr(run, "path", None)
    h = results.headline(path, {}) if path is not None else None
    return None if h is None else f"{h.text()} (n {h.n:,})"


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def short_names(a: str, b: str, width: int = 14) -> tuple[str, str]:
    """Two run ids as told apart in a legend or a column: the shared leading parts (the
    date, '20261202-') dropped, each cut at its end to `width` ('…') if still too long."""
    pa, pb = a.split("-"), b.split("-")
    k = 0
    while k < min(len(pa), len(pb)) - 1 and pa[k] == pb[k]:
        k += 1
    out = []
    for parts in (pa, pb):
        name = "-".join(parts[k:]) or "-".join(parts)
        out.append(name if len(name) <= width else name[: width - 1] + "…")
    return out[0], out[1]


def compare_table(a: str, ea: list[E.Event], b: str, eb: list[E.Event], rows: int = 6,
                  hellaswag: dict[str, str] | None = None) -> Table:
    """Side by side: step time, tokens/s, MFU (medians of measured steps), best val, and
    the val loss at the eval iterations both runs reached. Labels and figures are short
    enough for the 44 columns the table has beside the chart at 120x40 (nothing "…")."""
    t = Table(box=None, header_style="bold", pad_edge=False, caption_justify="left", caption_style="dim")
    t.add_column("", no_wrap=True)
    for name in short_names(a, b, 12):  # figures never wrap; a long name is cut with "…"
        t.add_column(name, justify="right", no_wrap=True, overflow="ellipsis")

    def steps(ev: list[E.Event]) -> list[E.StepMetrics]:
        return [e for e in ev if isinstance(e, E.StepMetrics) and not e.compiling]

    sa, sb = steps(ea), steps(eb)
    t.add_row("step medians", "", "")
    for label, get, f in (("  step time", lambda s: s.step_time_s * 1000, lambda v: f"{v:,.0f} ms"),
                          ("  tokens/s", lambda s: s.tokens_per_s, fmt.si),
                          ("  MFU", lambda s: s.mfu, fmt.pct)):
        va = _median([get(s) for s in sa if get(s) is not None])
        vb = _median([get(s) for s in sb if get(s) is not None])
        t.add_row(label, f(va) if va is not None else fmt.DASH, f(vb) if vb is not None else fmt.DASH)
    va_ev = {e.iter: e for e in ea if isinstance(e, E.EvalResult)}
    vb_ev = {e.iter: e for e in eb if isinstance(e, E.EvalResult)}
    t.add_row("best val", fmt.num(min((e.val_loss for e in va_ev.values()), default=None), ".4f"),
              fmt.num(min((e.val_loss for e in vb_ev.values()), default=None), ".4f"))
    _reach_rows(t, ea, eb)
    notes = []
    if _task_rows(t, ea, eb, [(hellaswag or {}).get(r) for r in (a, b)]):
        notes.append("HellaSwag: random 0.25, GPT-2 124M 0.2955")
    from gpttui.runs.compare import ending

    na, nb = ending(ea), ending(eb)
    if na is not None or nb is not None:
        t.add_row("final val", *(fmt.DASH if n is None else f"{n.loss:.4f}" if n.band is None
                                 else f"~{n.loss:.3f}±{n.band:.3f}" for n in (na, nb)))
        if any(n is not None and n.band is not None for n in (na, nb)):
            notes.append("~ forecast (computed); else measured")
    common = sorted(set(va_ev) & set(vb_ev))
    for it in common[-rows:]:
        t.add_row(f"val @ iter {it:,}", f"{va_ev[it].val_loss:.4f}", f"{vb_ev[it].val_loss:.4f}")
    if not common:
        t.add_row("val @ same iter", "none", "")
    t.caption = "\n".join(notes) or None
    return t


def _task_rows(t: Table, ea: list[E.Event], eb: list[E.Event], full: list[str | None]) -> bool:
    """HellaSwag acc_norm ± stderr: the loop's newest (its fixed subset) at its iteration,
    and `gpttui eval`'s; True if there was any (the caption then gives the references)."""
    def last(ev: list[E.Event]) -> E.TaskEval | None:
        return next((e for e in reversed(ev) if isinstance(e, E.TaskEval)), None)

    la, lb = last(ea), last(eb)
    if la is None and lb is None and not any(full):
        return False
    t.add_row("HellaSwag", "", "")
    if la is not None or lb is not None:
        t.add_row("  in loop", *(f"{x.acc_norm:.4f}±{x.stderr:.3f}" if x else fmt.DASH for x in (la, lb)))
        t.add_row("   at iter", *(f"{x.iter:,}" if x else fmt.DASH for x in (la, lb)))
    if any(full):
        t.add_row("  gpttui eval", *((f or fmt.DASH).split(" (n ")[0] for f in full))
        t.add_row("   examples", *(f.split(" (n ")[1].rstrip(")") if f and " (n " in f else fmt.DASH for f in full))
    return True


def _reach_rows(t: Table, ea: list[E.Event], eb: list[E.Event], target: float | None = None) -> None:
    """Tokens and training time each run needed to reach `target` (default: the best val
    loss both reached), measured at their evaluations."""
    from gpttui.runs.compare import common_target, reached

    target = common_target(ea, eb) if target is None else target
    if target is None:
        return
    ra, rb = reached(ea, target), reached(eb, target)

    def cell(r, f) -> str:
        return fmt.DASH if r is None else f(r)

    t.add_row(f"to val {target:.4f}", "", "")
    t.add_row("  tokens", cell(ra, lambda r: fmt.si(r.tokens)), cell(rb, lambda r: fmt.si(r.tokens)))
    t.add_row("  time", cell(ra, lambda r: fmt.duration(r.elapsed_s)), cell(rb, lambda r: fmt.duration(r.elapsed_s)))


class CompareScreen(ReportsWorkerFailures, Screen):
    """Val loss against tokens seen for two runs, and a side-by-side table."""

    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self, a: str, b: str) -> None:
        super().__init__()
        self.a, self.b = a, b

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="compare-body"):
            yield LineChart(xlabel="tokens seen", title="val loss", id="compare-chart")
            yield Static("loading…", id="compare-table")
        yield StableFooter()

    def on_mount(self) -> None:
        self.sub_title = f"{self.a} vs {self.b}"
        self._load()

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def _load(self) -> None:
        try:
            runs = {rid: self.app.services.get_run(rid) for rid in (self.a, self.b)}
            data = {rid: run.events() for rid, run in runs.items()}
        except GpttuiError as e:
            self.post_message(Compared({}, str(e)))
            return
        self.post_message(Compared(data, hellaswag={rid: full_eval_text(run) for rid, run in runs.items()}))

    def on_compared(self, msg: Compared) -> None:
        if msg.error:
            self.query_one("#compare-table", Static).update(msg.error)
            return
        series = []
        for rid, name in zip((self.a, self.b), short_names(self.a, self.b), strict=True):
            evs = [e for e in msg.data[rid] if isinstance(e, E.EvalResult)]
            series.append(Series(name, tuple(float(e.tokens_seen) for e in evs), tuple(e.val_loss for e in evs)))
        self.query_one(LineChart).set_series(series)
        self.query_one("#compare-table", Static).update(
            compare_table(self.a, msg.data[self.a], self.b, msg.data[self.b], hellaswag=msg.hellaswag))

    def action_back(self) -> None:
        self.app.pop_screen()
