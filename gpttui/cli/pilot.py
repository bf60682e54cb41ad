"""`gpttui pilot PRESET [--minutes M] [--try KEY=V1,V2 ...]`: the pilot, headless.

Lines as the pilot goes (what was measured, each trial's end), a progress line at most every
10 s, then the table of every trial and the recommendation, saved as `<preset>-pilot`.
Ctrl-C stops the trial in progress (checkpointed: `gpttui --resume` continues it) and ends.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from gpttui.fmt import duration_compact
from gpttui.train.pilotreport import progress_line, table_columns, table_note, table_rows, weak_note

PROGRESS_EVERY_S = 10.0


def cmd_pilot(args: argparse.Namespace) -> int:
    from gpttui.errors import ConfigError
    from gpttui.train.pilot import Pilot, prepare

    minutes = float(args.minutes)
    if not 0.5 <= minutes <= 24 * 60:
        raise ConfigError(f"--minutes {args.minutes:g}: out of range", "give between 0.5 and 1440 minutes")
    name, values, candidates = prepare(args.preset, args.tries, overrides=args.overrides)
    out = _Lines()
    pilot = Pilot(name, values, candidates, minutes * 60, on_update=out)
    print(f"pilot of '{name}': {len(candidates)} candidates — " + ", ".join(c.label for c in candidates), flush=True)
    old = signal.signal(signal.SIGINT, lambda *_: (print("\ngpttui: stopping the pilot (the trial checkpoints)",
                                                          file=sys.stderr, flush=True), pilot.stop()))
    try:
        st = pilot.run()
    finally:
        signal.signal(signal.SIGINT, old)
    print()
    print_table(st)
    if st.winner:
        print(f"\nrecommendation: {st.winner} — {st.candidate(st.winner).note}")
        print(f"saved as preset '{st.save_as}' ({st.preset_path}); train it with `gpttui --run {st.save_as}`")
        if weak_note(st):
            print(weak_note(st))
        return 0
    if pilot.stopped:
        print("pilot stopped before a recommendation; its trials are in `gpttui runs` (resumable)")
        return 130
    print("gpttui: error: no trial finished, so there is no recommendation", file=sys.stderr)
    return 1


class _Lines:
    """on_update: new log lines as they come, and a progress line at most every 10 s."""

    def __init__(self) -> None:
        self.shown = 0
        self.next_t = time.monotonic() + PROGRESS_EVERY_S

    def __call__(self, st: Any) -> None:
        for line in st.log[self.shown:]:
            print(f"[{duration_compact(st.elapsed_s)}] {line}", flush=True)
        self.shown = len(st.log)
        if time.monotonic() >= self.next_t and not st.done:
            self.next_t = time.monotonic() + PROGRESS_EVERY_S
            print(progress_line(st), flush=True)


def print_table(st: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", title=f"pilot {st.pilot_id} (all figures measured)")
    for i, col in enumerate(table_columns(st)):
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=True)
    for row in table_rows(st):
        table.add_row(*row)
    console = Console() if sys.stdout.isatty() else Console(width=1000, soft_wrap=True)
    console.print(table)
    console.print(table_note(st), markup=False, highlight=False)
