"""DataTable helpers.

A DataTable sizes its auto-width columns on its next Idle, which comes only after the table
itself handles a message: a frame drawn before that (a loaded machine, a screenshot) shows the
rows cut at the headers' widths ("gpt2-s  123.6M  61.4M  6d 2  fits"). `add_rows` widens the
columns as it adds, so the first frame is already right.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable


def add_rows(table: DataTable, rows: Iterable[tuple[Sequence[Any], Any]]) -> None:
    """Add (cells, key) rows and widen each column to its widest cell now."""
    columns = table.ordered_columns
    for cells, key in rows:
        table.add_row(*cells, key=key)
        for column, cell in zip(columns, cells, strict=False):
            width = cell.cell_len if isinstance(cell, Text) else cell_len(str(cell))
            if width > column.content_width:
                column.content_width = width
