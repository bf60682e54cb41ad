"""User-facing errors: one line that says what is wrong and what to do.

Anything a user can cause (bad config, missing file, full disk) is raised as a
`GpttuiError`; the CLI prints its message and exits non-zero. Tracebacks are for bugs.
"""

from __future__ import annotations


class GpttuiError(Exception):
    """An error the user can fix; `str(err)` is a single line shown as is."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:  # one line, hint appended
        msg = super().__str__().replace("\n", " ")
        return f"{msg} — {self.hint}" if self.hint else msg


class ConfigError(GpttuiError):
    """A config or preset value is unknown, mistyped or out of range; `key` names the
    TrainConfig key at fault (None when no one key is: a file that does not parse)."""

    def __init__(self, message: str, hint: str | None = None, key: str | None = None):
        super().__init__(message, hint)
        self.key = key


class DataError(GpttuiError):
    """A data source or dataset is missing, unreadable or empty."""


class RunError(GpttuiError):
    """A run or checkpoint cannot be found, locked, or is damaged."""


def first_line(e: BaseException, limit: int = 200) -> str:
    """An exception's first non-empty line, at most `limit` characters (its type's name when
    it says nothing): how a caught error is quoted inside a one-line message."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:limit]
