"""The pilot's evidence as rows and lines: the CLI's table, the TUI's table and the header
of the `<preset>-pilot` preset read the same figures (all measured by the pilot's trials)."""

from __future__ import annotations

import math
from typing import Any

from gpttui.fmt import duration_compact, gib, si
from gpttui.train.pilotplan import MIN_TRIAL_ITERS


def loss_text(v: float | None) -> str:
    return f"{v:.4f}" if v is not None and math.isfinite(v) else "-"


def progress_line(st: Any) -> str:
    live = next((t for t in reversed(st.trials) if t.state == "training"), None)
    now = f" · {live.label} iter {live.iter}/{live.iters_planned}" if live else ""
    return (f"[{duration_compact(st.elapsed_s)} of {duration_compact(st.budget_s)}] {st.phase}{now}"
            f" · ETA {duration_compact(st.eta_s)}")


def table_rows(st: Any) -> list[list[str]]:
    """One row per candidate: its measured batching and its final val loss at each rung."""
    rows = []
    for c in st.candidates:
        b = st.batching.get(c.label)
        trials = {t.rung: t for t in st.trials if t.label == c.label}
        last = trials[max(trials)] if trials else None
        row = [("* " if c.label == st.winner else "  ") + c.label,
               f"{b.batch_size}x{b.accum}" if b else "-",
               si(last.tokens_per_s if last and last.tokens_per_s else (b.tokens_per_s if b else None),
                  whole_below_k=True),
               gib(last.peak_bytes if last else (b.peak_bytes if b else None)),
               f"{last.mfu * 100:.2f}%" if last and last.mfu is not None else "-"]
        for r in range(1, len(st.rung_sizes) + 1):
            t = trials.get(r)
            row.append("" if t is None else (f"{t.val_loss:.4f} ({t.iter} it)" if t.val_loss is not None and t.state == "finished"
                                             else t.state))
        rows.append(row)
    return rows


def table_columns(st: Any) -> list[str]:
    return ["candidate", "micro x accum", "tok/s", "peak mem", "MFU"] + [
        f"rung {r}: {n} trials, val" for r, n in enumerate(st.rung_sizes, 1)]


def table_note(st: Any) -> str:
    """What the table's figures are (printed under it)."""
    memory = ("peak mem: CUDA max allocated in that trial" if st.peak_is_vram else
              "peak mem: this process's resident memory while that trial ran; the trials share the process, "
              "so a later row also holds memory earlier trials freed and the allocator kept (an upper bound)")
    return f"each rung's losses: the end of each trial's own decay, at equal training seconds; {memory}"


def evidence_header(st: Any) -> str:
    lines = [f"{st.save_as}: written by `gpttui pilot {st.preset}` "
             f"({st.pilot_id}, {st.budget_s / 60:.1f} min budget, {st.elapsed_s / 60:.1f} min used)",
             "every trial: same seed (data order), same fixed val batches, its own warmup -> decay schedule;",
             "final val loss per rung (measured), at equal training seconds within a rung:"]
    for r in range(1, len(st.rung_sizes) + 1):
        row = [f"{t.label} {loss_text(t.val_loss)} ({t.iter} it, "
               f"{t.tokens_per_s or st.batching[t.label].tokens_per_s:,.0f} tok/s)"
               for t in st.trials if t.rung == r]
        if row:
            lines.append(f"  rung {r}: " + "; ".join(row))
    short = weak_note(st)
    if short:
        lines.append(short)
    lines.append(f"winner: {st.winner}")
    return "\n".join(lines)



def weak_note(st: Any, min_iters: int = MIN_TRIAL_ITERS) -> str:
    """A warning when trials were too short for their ranking to mean much ('' if not)."""
    few = [t for t in st.trials if t.state == "finished" and t.iter < min_iters]
    if not few:
        return ""
    return (f"warning: {len(few)} of {len(st.trials)} trials took fewer than {min_iters} steps (the budget "
            f"bought only that at the speed measured): a weak ranking; give more minutes")
