"""A table's first frame shows its cells whole: columns are sized as rows are added, not on
the table's next Idle (a loaded CI drew Home's presets at the headers' widths: "gpt2-s")."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from gpttui.tui.widgets.tables import add_rows


class OneTable(App):
    def compose(self) -> ComposeResult:
        yield DataTable()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("preset", "time")


async def test_add_rows_sizes_the_columns_before_the_table_is_idle() -> None:
    async with OneTable().run_test(size=(80, 24)) as pilot:
        table = pilot.app.query_one(DataTable)
        table.add_row("gpt2-small * ⚠", "6d 20h", key="plain")  # Textual's own: sized on its next Idle
        assert [c.content_width for c in table.ordered_columns] == [6, 4]  # the headers' widths until then
        add_rows(table, [(("seed-000-modern", "17h 07m"), "eager")])  # no await between: no Idle
        assert [c.content_width for c in table.ordered_columns] == [15, 7]
