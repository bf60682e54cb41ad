"""Help: every key of every screen, generated from the screens' own bindings."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from rich.table import Table
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def _screens() -> list[tuple[str, type]]:
    from gpttui.tui.screens.compare import CompareScreen
    from gpttui.tui.screens.datasets import DatasetsScreen
    from gpttui.tui.screens.editor import EditorScreen
    from gpttui.tui.screens.home import HomeScreen
    from gpttui.tui.screens.pilot import PilotScreen
    from gpttui.tui.screens.runs import RunsScreen, RunViewScreen
    from gpttui.tui.screens.sampling import SamplingScreen
    from gpttui.tui.screens.training import TrainingScreen

    return [("Home", HomeScreen), ("Config editor", EditorScreen), ("Pilot", PilotScreen),
            ("Training", TrainingScreen), ("Sampling", SamplingScreen), ("Runs", RunsScreen),
            ("A run (o on Runs)", RunViewScreen), ("Compare", CompareScreen), ("Datasets", DatasetsScreen)]


_NAMED = {"escape": "Esc", "enter": "Enter", "space": "Space", "tab": "Tab"}


def typed_key(keys: str) -> str:
    """Binding keys as a user types them: 'question_mark' -> '?', 'slash' -> '/',
    'escape,q' -> 'Esc / q'."""
    from textual.keys import format_key

    return " / ".join(_NAMED.get(k.strip(), format_key(k.strip())) for k in keys.split(","))


def help_table() -> Table:
    """A table of screen, key and what it does."""
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("screen", style="cyan", no_wrap=True)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("does")
    table.add_row("everywhere", "?", "this help")
    table.add_row("", "q / ctrl+q", "quit (asks while a run trains)")
    table.add_row("", "ctrl+p", "command palette: every action by name")
    for title, cls in _screens():
        for i, (keys, does) in enumerate(screen_keys(cls)):
            table.add_row(title if i == 0 else "", keys, does)
    return table


def screen_keys(cls: type, by: str = "description") -> list[tuple[str, str]]:
    """(keys as typed, what they do) for a screen's own bindings: the keys of one action on
    one line ("Enter / e  Edit"), without the app's help and quit (listed once, above);
    `by="action"`: (action, keys as typed) instead."""
    by_action: dict[str, tuple[list[str], str]] = {}
    for b in cls.BINDINGS:
        if not isinstance(b, Binding) or b.action in ("app.help", "app.request_quit"):
            continue
        keys, does = by_action.setdefault(b.action, ([], ""))
        keys.append(b.key_display or typed_key(b.key))
        if b.description and not does:
            by_action[b.action] = (keys, b.description)
    if by == "action":
        return [(action, " / ".join(keys)) for action, (keys, _does) in by_action.items()]
    rows: list[tuple[str, str]] = []
    for keys, does in ((" / ".join(k), d or a) for a, (k, d) in by_action.items()):
        if rows and rows[-1][0] == keys:  # one key, two actions by state (p: Pause, Resume): one row
            rows[-1] = (keys, f"{rows[-1][1]} / {does}")
        else:
            rows.append((keys, does))
    return rows


def screen_commands(screen: Any) -> Iterable[SystemCommand]:
    """The palette's entries for what `screen`'s own keys do (Run, Edit, Compare, …), by name."""
    keys = dict(screen_keys(type(screen), by="action"))
    seen = set()
    for b in getattr(screen, "BINDINGS", ()):
        if not isinstance(b, Binding) or not b.description or b.action in seen:
            continue
        if b.action in ("back", "app.help", "app.request_quit", "dismiss"):
            continue
        if screen.check_action(b.action.split("(")[0], ()) is not True:
            continue  # what the state does not allow (Pause on a paused run, Stop on an ended one)
        seen.add(b.action)
        yield SystemCommand(b.description, f"{keys.get(b.action, typed_key(b.key))} on this screen",
                            partial(screen.run_action, b.action))


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static("[b]gpttui keys[/b]  (Esc closes)\n")
            yield Static(help_table())
