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
from textual.widgets import Footer


class StableFooter(Footer):
    """A Footer that rebuilds its keys only when they change, and frees the old ones."""

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

    async def recompose(self) -> None:
        if self.is_attached and self._shown_keys is not None and self._keys_signature() == self._shown_keys:
            return  # the same keys: rebuilding them would only leak the old ones
        await super().recompose()
        # Textual prunes a reactive's watchers of closed nodes only when it is set: do it now,
        # so the keys just removed are not kept alive by their `compact` data binding.
        self.mutate_reactive(Footer.compact)
