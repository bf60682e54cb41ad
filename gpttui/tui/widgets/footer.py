"""Textual's Footer without its leak (textual issue #6666, open in 8.2.8).

Textual's Footer recomposes at every `bindings_updated_signal` of its screen, which fires
at each screen switch back to it and at each focus change. Every FooterKey it composes
is `data_bind(compact=Footer.compact)`, which appends (key, setter) to the Footer's own
watcher list for `compact`; Textual prunes that list only when `compact` changes, which
it never does, so every key ever shown stays alive (measured: ~4 MB/min with a screen
switch every 2 s, bench/soak.py).

`StableFooter` draws exactly what Footer draws. It
  - skips a recompose whose keys would be identical to those shown (what compose reads:
    each shown binding, whether it is enabled, its tooltip and key display, the command
    palette key), so a screen switch or a focus move rebuilds nothing; and
  - after a recompose that does change the keys, lets Textual drop the watchers of the
    removed keys (`mutate_reactive` runs Textual's own pruning of closed watchers).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class StableFooter(Footer):
    """A Footer that rebuilds its keys only when they change, and frees the old ones."""

    # Compact, Textual gives every key a right margin, the palette key docked at the right
    # edge too: the last column was left to the keys scrolled under it, and at 80 columns the
    # footer ended "▏^p palettea" (the "a" of "Sample").
    DEFAULT_CSS = """
    StableFooter.-compact FooterKey.-command-palette { margin-right: 0; }
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown_keys: Hashable | None = None

    def _keys_signature(self) -> Hashable | None:
        """Everything Footer.compose reads to build its keys; None before bindings are ready."""
        if not self._bindings_ready:
            return None
        app = self.app
        active = self.screen.active_bindings
        shown = tuple((binding, enabled, tooltip, app.get_key_display(binding))
                      for _node, binding, enabled, tooltip in active.values() if binding.show)
        palette = None
        if self.show_command_palette and app.ENABLE_COMMAND_PALETTE:
            entry = active.get(app.COMMAND_PALETTE_BINDING)
            if entry is not None:
                _node, binding, enabled, _tooltip = entry
                palette = (binding, enabled, app.get_key_display(binding))
        return shown, palette

    def compose(self) -> ComposeResult:
        self._shown_keys = self._keys_signature()
        yield from super().compose()
        self.call_after_refresh(self._fit_keys)

    def on_resize(self, _event: Resize) -> None:
        self._fit_keys()

    def _fit_keys(self) -> None:
        """Show the keys that fit whole beside the palette key and hide the rest: at 80
        columns Home's footer showed "t Tr" (Training cut mid-word) and hid Sample under
        the palette key. Hidden keys stay in Help (?) and the palette (^p)."""
        keys = list(self.query(FooterKey))
        palette = [k for k in keys if k.has_class("-command-palette")]
        room = self.size.width - sum(self._width(k) for k in palette)
        for key in (k for k in keys if not k.has_class("-command-palette")):
            room -= self._width(key)
            key.display = room >= 0

    def _width(self, key: FooterKey) -> int:
        return (key.get_content_width(self.size, self.app.size) + key.styles.gutter.width
                + key.styles.margin.width)

    async def recompose(self) -> None:
        if self.is_attached and self._shown_keys is not None and self._keys_signature() == self._shown_keys:
            return  # the same keys: rebuilding them would only leak the old ones
        await super().recompose()
        self._fit_keys()
        # Textual prunes a reactive's watchers of closed nodes only when it is set: do it now,
        # so the keys just removed are not kept alive by their `compact` data binding.
        self.mutate_reactive(Footer.compact)
