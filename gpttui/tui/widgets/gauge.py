"""Gauge: a one-line labelled bar (VRAM against device memory, MFU against peak)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from gpttui import fmt


class Gauge(Static):
    """`label [████░░░░] detail`, coloured by how full it is."""

    DEFAULT_CSS = "Gauge { height: 1; }"

    def __init__(self, label: str, width: int = 16, warn: float = 0.85, **kw) -> None:
        super().__init__("", **kw)
        self.label, self.bar_width, self.warn = label, width, warn
        self.set_value(None, "")

    def set_value(self, frac: float | None, detail: str, over_is_bad: bool = True) -> None:
        """Fill to `frac` (None: unknown) and show `detail` after the bar."""
        style = "green"
        if frac is not None and over_is_bad and frac >= 1.0:
            style = "bold red"
        elif frac is not None and over_is_bad and frac >= self.warn:
            style = "yellow"
        text = Text(f"{self.label:<6}", style="bold")
        text.append(fmt.bar(frac, self.bar_width), style=style if frac is not None else "dim")
        text.append(f" {detail}")
        key = (text.plain, style)
        if key != getattr(self, "_key", None):  # unchanged: no repaint (redraws run every second)
            self._key = key
            self.update(text, layout=False)  # always one line: no layout pass needed
