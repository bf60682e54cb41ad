"""Where gpttui keeps its files: the user data dir (runs, datasets) and config dir (presets).

`GPTTUI_DATA_DIR` and `GPTTUI_CONFIG_DIR` override the platformdirs locations (tests and
clusters with a shared scratch disk use them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gpttui.errors import GpttuiError

APP = "gpttui"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def data_dir() -> Path:
    env = os.environ.get("GPTTUI_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def config_dir() -> Path:
    env = os.environ.get("GPTTUI_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def runs_dir() -> Path:
    return data_dir() / "runs"


def datasets_dir() -> Path:
    return data_dir() / "datasets"


def user_presets_dir() -> Path:
    return config_dir() / "presets"


def check_name(name: str, what: str = "name") -> str:
    """Return `name` if it is a safe single path component, else raise a one-line error."""
    if not _NAME_RE.match(name or "") or name in {".", ".."}:
        raise GpttuiError(
            f"invalid {what} {name!r}",
            "use letters, digits, '.', '_' or '-' (no '/', no leading '.')",
        )
    return name
