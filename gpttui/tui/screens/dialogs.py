"""Small modal screens: a choice dialog (confirmations, quit) and the too-small notice."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ChoiceScreen(ModalScreen[str | None]):
    """A question with a few answers; dismisses with the chosen key, or None on Esc."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, question: str, choices: list[tuple[str, str]], detail: str = "") -> None:
        super().__init__()
        self.question, self.choices, self.detail = question, choices, detail

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="question")
            if self.detail:
                yield Static(self.detail, id="detail")
            with Horizontal(id="buttons"):
                for i, (key, label) in enumerate(self.choices):
                    yield Button(label, id=f"choice-{key}", variant="primary" if i == 0 else "default")

    def on_mount(self) -> None:
        self.query(Button).first().focus()  # Enter picks the first answer: callers put the safe one first

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss((event.button.id or "").removeprefix("choice-"))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class TooSmallNote(Static):
    """Covers the current screen while the terminal is smaller than the layout needs."""

    DEFAULT_CSS = """
    TooSmallNote {
        layer: notice; dock: top; width: 100%; height: 100%;
        background: $background; color: $warning; text-style: bold;
        content-align: center middle; text-align: center;
    }
    """

    def __init__(self, size: tuple[int, int], min_size: tuple[int, int]) -> None:
        super().__init__(self.message(size, min_size))

    @staticmethod
    def cover(current: Any, stack: list[Any], size: tuple[int, int], min_size: tuple[int, int]) -> None:
        """Mount (or update) the note on the `current` screen while `size` is below
        `min_size`; remove it everywhere else (and everywhere once the size is fine)."""
        small = size[0] < min_size[0] or size[1] < min_size[1]
        for screen in stack:
            for note in screen.query(TooSmallNote):
                if small and screen is current:
                    note.update(TooSmallNote.message(size, min_size))
                else:
                    note.remove()
        if small and not current.query(TooSmallNote):
            current.mount(TooSmallNote(size, min_size))

    @staticmethod
    def message(size: tuple[int, int], min_size: tuple[int, int]) -> str:
        return (f"Terminal too small: {size[0]}×{size[1]}.\n"
                f"gpttui needs at least {min_size[0]}×{min_size[1]}.\n"
                "Enlarge the window: nothing stops while it is small.\n"
                "q quits (asks while a run trains) · ? lists the keys")
