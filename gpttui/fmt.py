"""Every figure's text: counts, bytes, durations, FLOPs, dtypes; textual- and torch-free.

The one home of number formatting for the TUI (`si`, `gib`, `duration`, `flops`, …), the
headless log lines (`duration_compact`), `--estimate` (`si_spaced`, `duration_words`,
`figure`) and `gpttui prepare` (`bytes_binary`, `hms`). The styles differ on purpose (a
log line is terser than a screen, a table cell says "min"); each exists once, here.
"""

from __future__ import annotations

import time
from typing import Any

DASH = "–"


def si(n: float | int | None, unit: str = "", digits: int = 1, *, none: str = DASH, whole_below_k: bool = False) -> str:
    """1234567 -> '1.2M' (k, M, B, T); None -> `none`. Under 1000 a whole number prints
    without decimals (every number with `whole_below_k`: 523.7 -> '524')."""
    if n is None:
        return none
    n = float(n)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.{digits}f}{suffix}{unit}"
    return f"{n:.0f}{unit}" if whole_below_k or n == int(n) else f"{n:.{digits}f}{unit}"


def si_spaced(x: float, unit: str = "") -> str:
    """`--estimate`'s counts: 124439808 -> '124.44 M', 1500 -> '1.50 k', 512 -> '512'."""
    for div, suffix in ((1e12, " T"), (1e9, " B"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= div:
            return f"{x / div:.2f}{suffix}{unit}"
    return f"{x:,.0f}{(' ' + unit) if unit else ''}"


def gib(n: int | float | None, unit: str = " GiB", none: str = DASH) -> str:
    """Bytes as GiB with one decimal, `none` ('–') when unknown."""
    return none if n is None else f"{n / 2**30:.1f}{unit}"


def bytes_binary(n: int | float) -> str:
    """Bytes, on disk or read: KiB, MiB or GiB with one decimal. gpttui's one unit system
    for sizes is binary (KiB, MiB, GiB = 2^10, 2^20, 2^30 bytes), as memory is shown."""
    for div, unit in ((2**30, "GiB"), (2**20, "MiB")):
        if n >= div:
            return f"{n / div:,.1f} {unit}"
    return f"{n / 2**10:,.1f} KiB"


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


def duration_compact(s: float | None, none: str = "-") -> str:
    """Log lines: 80 -> '1m20s', 4000 -> '1h06m', 90000 -> '1d01h'; None -> '-'."""
    if s is None:
        return none
    s = int(max(0, s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def duration_words(s: float) -> str:
    """`--estimate`'s times: '45 s', '12 min', '3.5 h', '80.0 h (3.3 d)'."""
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    h = s / 3600
    return f"{h:.1f} h" + (f" ({h / 24:.1f} d)" if h >= 48 else "")


def hms(seconds: float | None) -> str:
    """A countdown as 'H:MM:SS'; '--:--' when unknown."""
    if seconds is None:
        return "--:--"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def clock(t: float | None) -> str:
    """A wall-clock time (epoch seconds) as 'HH:MM', with the weekday if not today-ish."""
    if t is None:
        return DASH
    return time.strftime("%a %H:%M", time.localtime(t))


def pct(x: float | None, digits: int = 1) -> str:
    return DASH if x is None else f"{100 * x:.{digits}f}%"


def num(x: float | None, fmt: str = ".3f") -> str:
    return DASH if x is None else format(x, fmt)


def forecast_cell(summary: Any, dash: str = DASH) -> str:
    """A runs table's forecast cell: "3.412±0.050" for a run short of max_iters with a
    forecast (gpttui.plan.forecast, computed); the dash when there is none or the run
    finished (its val loss is then measured)."""
    loss, band = getattr(summary, "forecast", None), getattr(summary, "forecast_band", None)
    if loss is None or band is None or getattr(summary, "state", "") == "finished":
        return dash
    return f"{loss:.3f}±{band:.3f}"


def short_run_id(run_id: str, width: int = 24) -> str:
    """A run id for a table: one longer than `width` (a pilot trial's, 32+ characters) keeps
    its end (time, name, trial) after "…"; the screen names the selected run in full."""
    return run_id if len(run_id) <= width else "…" + run_id[-(width - 1):]


def run_state(summary: Any) -> str:
    """A run's state as the runs tables show it: "training (live)" while a process trains
    it (this one or another), "(damaged)" after a state whose files are damaged."""
    state = str(getattr(summary, "state", "")) + (" (live)" if getattr(summary, "alive", False) else "")
    if getattr(summary, "damaged", None) and summary.state != "damaged":
        state += " (damaged)"
    return state


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


def short_dtype(dtype: str) -> str:
    """'bfloat16' -> 'bf16', 'float16' -> 'fp16', 'float32' -> 'fp32' (others unchanged)."""
    return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(dtype, dtype)


def figure(fig: object) -> str:
    """An estimate `Figure`'s value in human units (M params, B tokens, 2.55e18 FLOPs,
    GiB, h, kWh), as `--estimate` prints it; '–' when unknown."""
    v, u = fig.value, fig.unit  # type: ignore[attr-defined]
    if v is None:
        return DASH
    if isinstance(v, (str, bool)):
        return str(v)
    if u == "B":
        return f"{v / 2**30:.2f} GiB"
    if u == "params":
        return si_spaced(v)
    if u == "tokens/s":
        return f"{si_spaced(v)} tokens/s"
    if u == "tokens":
        return f"{v:,}" if v < 1e7 else si_spaced(v)
    if u == "FLOP":
        mant, exp = f"{v:.3g}e0".split("e")[:2] if v < 1000 else f"{v:.2e}".split("e")
        return f"{mant}e{int(exp)}" if v >= 1000 else mant
    if u == "s":
        return duration_words(v)
    if u == "":
        return f"{v:.1%}" if isinstance(v, float) and v <= 1 else str(v)
    if u == "seq":
        return f"{v} seq"
    if u == "TFLOPS":
        return f"{v:.4g} TFLOPS"
    if u in ("kWh", "W", "epochs", "tokens/param"):
        return f"{v:,.3g} {u}" if v < 1000 else f"{v:,.0f} {u}"
    return f"{v:,.2f} {u}"  # currency
