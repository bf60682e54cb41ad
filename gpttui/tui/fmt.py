"""The screens' number formatting lives in `gpttui.fmt` (shared with headless and the CLI);
this name stays importable for screens not moved over yet."""

from gpttui.fmt import *  # noqa: F403
