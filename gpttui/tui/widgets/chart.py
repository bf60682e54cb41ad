"""LineChart: a plotext chart rendered to text and shown in a Static.

plotext keeps one global figure, so charts are built only on the UI thread (a ~10 ms
build, done at most a few times a second). The series are plain tuples; the chart is
rebuilt when they or the widget's size change.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.events import Resize
from textual.widgets import Static

from gpttui import fmt


@dataclass(frozen=True)
class Series:
    """One line: its legend label and points."""

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]


def downsample(s: Series, n: int) -> Series:
    """At most `n` points: the means of consecutive equal-size groups. A braille chart shows
    2 points per column, so more only cost time (plotext is pure Python: a 100k-iteration
    run plotted raw would block the UI, and with it the trainer, for seconds every redraw)."""
    m = len(s.xs)
    if m <= n:
        return s
    xs, ys = [], []
    for i in range(n):
        a, b = i * m // n, (i + 1) * m // n
        xs.append(sum(s.xs[a:b]) / (b - a))
        ys.append(sum(s.ys[a:b]) / (b - a))
    return Series(s.label, tuple(xs), tuple(ys))


# The colours plotext 6's 'simple' theme gives the 1st, 2nd, … signal made (a test holds this).
SERIES_COLORS = (12, 10, 9, 14, 13, 11)


def render_chart(series: list[Series], width: int, height: int, xlabel: str = "", title: str = "",
                 key_below: tuple[int, int] | None = None, empty: str = "waiting for data…") -> Text:
    """The chart as rich Text (ANSI colours of plotext's 'simple' theme). Each series keeps
    its colour whether or not the ones before it have points yet. `key_below` (columns,
    rows): in a chart smaller than that, no legend box (it covered a third of the data at
    80x24); the series are named in their colours on the x label's line instead."""
    import plotext as plt

    compact = key_below is not None and (width < key_below[0] or height < key_below[1])
    fig = plt.figure
    fig.clear()
    fig.plot_size(max(20, width), max(6, height - (1 if compact else 0)))
    fig.theme("simple")
    drawn = []
    first = next(((s.xs[0], s.ys[0]) for s in series if s.xs), None)
    for i, s in enumerate(series):
        s = downsample(s, 2 * max(20, width))
        if not s.xs:
            if first is not None:  # takes its colour (plotext hands colours out as signals are drawn) with one
                fig.draw(fig.signal([first[0]], [first[1]], marker="dot"))  # point the next series draws over
            continue
        marker = "braille" if len(s.xs) > 40 else "dot"
        sig = fig.signal(list(s.xs), list(s.ys), marker=marker)
        fig.draw((sig if compact else sig.label(s.label)).lines())
        drawn.append((s.label, SERIES_COLORS[i % len(SERIES_COLORS)]))
    if not drawn:
        return Text(empty, style="dim")
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys]
    lo, hi = min(xs), max(xs)
    one = hi == lo
    if one:  # one point: an axis from 0 to past it (plotext's own ran -1 … 1 around it)
        lo, hi = min(0.0, lo), lo + max(1.0, abs(lo))
        fig.ruler("x").lim(lo, hi)
    ticks = [lo + (hi - lo) * i / 4 for i in range(5)] if width >= 40 and not one else [lo, hi]
    if hi - lo >= 4 or all(float(x).is_integer() for x in xs):  # whole numbers where the labels are (and
        # one label per whole number: iterations 1-3 read "1 2 2 2 3"): a tick reads where it stands
        ticks = sorted({float(round(t)) for t in ticks})
    fig.ruler("x").ticks(ticks, [fmt.si(t, whole_below_k=True) for t in ticks])  # "26.0k", not "2.6e4"
    if one:
        fig.legend(x=hi, y=max(ys), ha="right", va="top", relative=True)
    elif max(xs) > min(xs) and max(ys) > min(ys):
        # Top right, where a falling loss curve is not: the default (top left) hid its start.
        fig.legend(x=max(xs), y=max(ys), ha="right", va="top", relative=True)
    if xlabel and not compact:
        fig.label(xlabel, axis=0)
    if title:
        fig.title(title)
    text = Text.from_ansi(fig.build().string())
    if compact:
        text.rstrip()
        text.append(f"\n{xlabel}   " if xlabel else "\n", style="dim")
        for label, color in drawn:
            text.append("• ", style=f"color({color})").append(f"{label}  ")
    return text


class LineChart(Static):
    """A chart of one or more series; call `set_series` to change it."""

    DEFAULT_CSS = "LineChart { height: 1fr; min-height: 8; }"

    def __init__(self, xlabel: str = "", title: str = "", key_below: tuple[int, int] | None = None, **kw) -> None:
        super().__init__("", **kw)
        self.xlabel, self.title_text, self.key_below = xlabel, title, key_below
        self.empty = "waiting for data…"  # what it says with no points (set before set_series)
        self.series: list[Series] = []
        self._key: tuple = ()

    def set_series(self, series: list[Series]) -> None:
        """Replace the data; redraws only when something changed."""
        self.series = series
        self._redraw()

    def on_resize(self, event: Resize) -> None:
        self._redraw()

    def _redraw(self) -> None:
        w, h = self.content_size
        if w <= 0 or h <= 0:
            return
        key = (w, h, self.empty, tuple((s.label, len(s.xs), s.xs[-1:], s.ys[-1:]) for s in self.series))
        if key == self._key:
            return
        self._key = key
        self.update(render_chart(self.series, w, h, self.xlabel, self.title_text, self.key_below, self.empty),
                    layout=False)  # fixed size
