"""What headless training prints: one plain line per event worth a line (logs, pipes,
`nohup`), or a rich progress bar on a terminal with the other lines above it."""

from __future__ import annotations

import sys
from typing import Any

from gpttui import events as E
from gpttui import fmt


def si(n: float | None) -> str:
    """41234.5 -> '41.2k', 548.5 -> '549'; None -> '-' (log lines stay ASCII where a figure is unknown)."""
    return fmt.si(n, none="-", whole_below_k=True)


def _gib(n: int | None) -> str:
    return fmt.gib(n, unit="", none="-")


def step_line(ev: E.StepMetrics) -> str:
    """`iter 120/400 loss 5.4321 lr 1.9e-03 | 41.2k tok/s | mfu 3.1% of <basis> | eta 1m20s`."""
    parts = [f"iter {ev.iter}/{ev.max_iters} loss {ev.loss:.4f} lr {ev.lr:.1e}",
             f"{si(ev.tokens_per_s)} tok/s"]
    parts.append(f"mfu {ev.mfu * 100:.1f}% of {ev.peak_basis}" if ev.mfu is not None else f"mfu - ({ev.peak_basis})")
    if ev.vram_total:
        parts.append(f"vram {_gib(ev.vram_peak)}/{_gib(ev.vram_total)} GiB")
    if ev.power_w is not None:
        parts.append(f"{ev.power_w:.0f} W")
    parts.append("compiling" if ev.compiling else f"eta {fmt.duration_compact(ev.eta_s)}")
    return " | ".join(parts)


def event_line(ev: E.Event) -> str | None:
    """A plain line for the events worth a line of their own (None for the rest)."""
    if isinstance(ev, E.StepMetrics):
        return step_line(ev)
    if isinstance(ev, E.EvalResult):
        return f"eval iter {ev.iter}: train {ev.train_loss:.4f} val {ev.val_loss:.4f} (best {ev.best_val_loss:.4f})"
    if isinstance(ev, E.TaskEval):
        return (f"{ev.task} iter {ev.iter}: acc_norm {ev.acc_norm:.4f} ± {ev.stderr:.4f} "
                f"(fixed subset of {ev.n:,}, {ev.seconds:.1f} s; GPT-2 124M 0.2955, random 0.25)")
    if isinstance(ev, E.Forecast):
        return (f"forecast at iter {ev.iter}: final val {ev.loss:.4f} ± {ev.band:.4f} at iter {ev.at_iter:,} "
                f"(computed from {ev.n_evals} evals)")
    if isinstance(ev, E.CheckpointSaved):
        return f"checkpoint ({ev.reason}) at iter {ev.iter}: {ev.path}"
    if isinstance(ev, E.LogMessage):
        return f"{ev.level}: {ev.text}" if ev.level != "info" else ev.text
    if isinstance(ev, E.StatusChanged) and ev.state in (E.COMPILING, E.PAUSED, E.STOPPING):
        return f"[{ev.state}] {ev.message}".rstrip()
    if isinstance(ev, E.Finished):
        best = f", best val {ev.best_val_loss:.4f}" if ev.best_val_loss is not None else ""
        why = f" ({ev.reason})" if ev.reason else ""
        return f"{ev.state} at iter {ev.iter} after {fmt.duration_compact(ev.elapsed_s)}: {si(ev.tokens_seen)} tokens{best}{why}"
    if isinstance(ev, E.RunWarning):
        return f"WARN {ev.code}: {ev.text} → {ev.hint}"
    if isinstance(ev, E.Sample):
        return f"sample @ iter {ev.iter}: {(ev.prompt + ev.text)!r}"
    return None


class PlainPrinter:
    """Listener printing one line per interesting event (failures go to stderr separately)."""

    def __init__(self, stream: Any = None):
        self.stream = stream or sys.stdout

    def __call__(self, ev: E.Event) -> None:
        line = event_line(ev)
        if line is not None:
            print(line, file=self.stream, flush=True)


class RichPrinter:
    """Listener driving a rich progress bar; other events print above it."""

    def __init__(self, run_id: str, max_iters: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = Console(stderr=False)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), console=self.console, refresh_per_second=4,
        )
        self.task = self.progress.add_task(run_id, total=max_iters, stats="preparing")

    def __enter__(self) -> RichPrinter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, ev: E.Event) -> None:
        if isinstance(ev, E.StepMetrics):
            mfu = f"{ev.mfu * 100:.1f}%" if ev.mfu is not None else "-"
            vram = f" vram {_gib(ev.vram_peak)}/{_gib(ev.vram_total)}G" if ev.vram_total else ""
            eta = "compiling" if ev.compiling else f"eta {fmt.duration_compact(ev.eta_s)}"
            self.progress.update(self.task, completed=ev.iter, total=ev.max_iters,
                                 stats=f"loss {ev.loss:.4f} {si(ev.tokens_per_s)} tok/s mfu {mfu}{vram} {eta}")
        elif isinstance(ev, E.Progress) and ev.eval_total:  # inside a long evaluation
            self.progress.update(self.task, stats=f"evaluating: batch {ev.eval_done:,}/{ev.eval_total:,}")
        elif isinstance(ev, E.Progress):  # inside a long step: the bar moves by micro-steps
            self.progress.update(self.task, completed=ev.iter + (ev.micro / ev.accum if ev.accum else 0))
        elif isinstance(ev, E.StatusChanged):
            self.progress.update(self.task, stats=ev.state)
            line = event_line(ev)
            if line:
                self.progress.console.print(line)
        elif not isinstance(ev, E.Failed):
            line = event_line(ev)
            if line:
                self.progress.console.print(line, markup=False, highlight=False)


