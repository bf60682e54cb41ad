"""Number formatting for the screens: compact, unit-carrying, '–' for unknown."""

from __future__ import annotations

import time

DASH = "–"


def si(n: float | int | None, unit: str = "", digits: int = 1) -> str:
    """1234567 -> '1.2M' (k, M, B, T); None -> '–'."""
    if n is None:
        return DASH
    n = float(n)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.{digits}f}{suffix}{unit}"
    return f"{n:.0f}{unit}" if n == int(n) else f"{n:.{digits}f}{unit}"


def gib(n: int | float | None) -> str:
    """Bytes as GiB with one decimal, '–' when unknown."""
    return DASH if n is None else f"{n / 2**30:.1f} GiB"


def duration(s: float | None) -> str:
    """Seconds as '45s', '12m 03s', '3h 20m' or '2d 4h'."""
    if s is None:
        return DASH
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f}s" if s >= 10 else f"{s:.1f}s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}m {sec:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h {m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d {h}h"


def clock(t: float | None) -> str:
    """A wall-clock time (epoch seconds) as 'HH:MM', with the weekday if not today-ish."""
    if t is None:
        return DASH
    return time.strftime("%a %H:%M", time.localtime(t))


def pct(x: float | None, digits: int = 1) -> str:
    return DASH if x is None else f"{100 * x:.{digits}f}%"


def num(x: float | None, fmt: str = ".3f") -> str:
    return DASH if x is None else format(x, fmt)


def bar(frac: float | None, width: int, fill: str = "█", empty: str = "░") -> str:
    """A text bar `width` cells wide, filled to `frac` (clipped to [0, 1])."""
    if frac is None:
        return empty * width
    cells = round(max(0.0, min(1.0, frac)) * width)
    return fill * cells + empty * (width - cells)


def flops(n: float | None) -> str:
    """1.44e18 -> '1.44 EFLOP' (k … Z, three significant digits); None -> '–'."""
    if n is None:
        return DASH
    n = float(n)
    for exp, prefix in ((21, "Z"), (18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if abs(n) >= 10**exp:
            return f"{n / 10**exp:.3g} {prefix}FLOP"
    return f"{n:.3g} FLOP"
