"""`gpttui.fmt` is the one home of figure formatting; each style's strings are pinned here
(they are what the screens, log lines, `--estimate` and `gpttui prepare` printed before
they shared the module)."""

from __future__ import annotations

import subprocess
import sys

from gpttui import fmt
from gpttui.plan.estimate import Figure


def test_counts() -> None:
    assert [fmt.si(v) for v in (None, 0, 12.5, 999, 41234.5, 123456789, 2.55e9, 3.3e12)] == \
        ["–", "0", "12.5", "999", "41.2k", "123.5M", "2.5B", "3.3T"]
    assert fmt.si(None, none="-") == "-" and fmt.si(512.0, "tok/s") == "512tok/s"
    assert [fmt.si(v, whole_below_k=True) for v in (523.7, 41234.5)] == ["524", "41.2k"]
    assert [fmt.si(v, digits=2, whole_below_k=True) for v in (999.5, 1234.5, 1.5e6)] == ["1000", "1.23k", "1.50M"]
    assert [fmt.si_spaced(v) for v in (512, 1500, 124439808, 2.55e9)] == ["512", "1.50 k", "124.44 M", "2.55 B"]


def test_bytes() -> None:
    assert fmt.gib(12 * 2**30) == "12.0 GiB" and fmt.gib(None) == "–" and fmt.gib(3 * 2**29, unit="", none="-") == "1.5"
    assert [fmt.bytes_binary(v) for v in (512, 1234.5, 12.3e6, 2**30)] == ["0.5 KiB", "1.2 KiB", "11.7 MiB", "1.0 GiB"]
    assert [fmt.bytes_binary(v) for v in (512, 5 * 2**20, 3 * 2**30)] == ["0.5 KiB", "5.0 MiB", "3.0 GiB"]


def test_durations() -> None:
    assert [fmt.duration(v) for v in (None, 5, 45, 80, 4000, 172800)] == ["–", "5.0s", "45s", "1m 20s", "1h 06m", "2d 0h"]
    assert [fmt.duration_compact(v) for v in (None, 45, 80, 4000, 90000)] == ["-", "45s", "1m20s", "1h06m", "1d01h"]
    assert [fmt.duration_words(v) for v in (45, 720, 12600, 288000)] == ["45 s", "12 min", "3.5 h", "80.0 h (3.3 d)"]
    assert fmt.hms(None) == "--:--" and fmt.hms(3725) == "1:02:05"


def test_flops_dtypes_and_figures() -> None:
    assert fmt.flops(1.44e18) == "1.44 EFLOP" and fmt.flops(None) == "–"
    assert [fmt.short_dtype(d) for d in ("bfloat16", "float16", "float32", "int8")] == ["bf16", "fp16", "fp32", "int8"]
    assert fmt.figure(Figure(2.55e18, "FLOP", "")) == "2.55e18"
    assert fmt.figure(Figure(124439808, "params", "")) == "124.44 M"
    assert fmt.figure(Figure(720.0, "s", "")) == "12 min" and fmt.figure(Figure(None, "s", "")) == "–"


def test_no_textual_and_no_torch() -> None:
    code = "import sys, gpttui.fmt; print('textual' in sys.modules or 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
