"""`gpttui prepare` and `gpttui datasets`: progress on a terminal, plain lines elsewhere."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

from gpttui import fmt
from gpttui.events import PrepareProgress

PLAIN_EVERY_S = 5.0


def _count(n: float) -> str:
    """1234567 -> '1.23M' (tokens, documents, rates)."""
    return fmt.si(n, digits=2, whole_below_k=True)


def plain_line(ev: PrepareProgress) -> str:
    """One progress line for logs and pipes."""
    pct = 100.0 * ev.bytes_done / ev.bytes_total if ev.bytes_total else 0.0
    return (
        f"prepare {ev.run_id}: {ev.stage} {pct:5.1f}% {fmt.bytes_binary(ev.bytes_done)}/{fmt.bytes_binary(ev.bytes_total)}, "
        f"{ev.documents:,} docs, {_count(ev.tokens)} tokens, {_count(ev.tokens_per_s)} tok/s, ETA {fmt.hms(ev.eta_s)}"
    )


class PlainPrepareLines:
    """A preparation's progress as plain lines (logs, pipes): at most one each `every_s`
    while tokenizing. `intro` is said once, when preparing has really begun; the "done"
    line is printed only where no summary line follows (`gpttui prepare` prints one)."""

    def __init__(self, every_s: float = PLAIN_EVERY_S, intro: str | None = None, show_done: bool = False):
        self.every_s, self.intro, self.show_done = every_s, intro, show_done
        self.last = 0.0

    def __call__(self, ev: PrepareProgress) -> None:
        now = time.monotonic()
        if ev.stage in ("scanning", "unchanged") or (ev.stage == "done" and not self.show_done):
            return  # nothing to show yet / the summary line says it
        if ev.stage == "tokenizing" and now - self.last < self.every_s:
            return
        if self.intro:
            print(self.intro, flush=True)
            self.intro = None
        self.last = now
        print(plain_line(ev), flush=True)


def _rich_progress(console) -> tuple[object, Callable[[PrepareProgress], None]]:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
        TextColumn("{task.fields[docs]} docs"), TextColumn("{task.fields[rate]} tok/s"),
        TimeRemainingColumn(), console=console, transient=True,
    )
    task = bar.add_task("scanning", total=None, docs="0", rate="0")

    def update(ev: PrepareProgress) -> None:
        bar.update(task, description=f"{ev.run_id} {ev.stage}", completed=ev.bytes_done, total=ev.bytes_total or None,
                   docs=f"{ev.documents:,}", rate=_count(ev.tokens_per_s))

    return bar, update


def cmd_prepare(args: argparse.Namespace) -> int:
    """Prepare a dataset and print one summary line (or say it was already up to date)."""
    from gpttui.data.prepare import prepare

    unchanged: list[bool] = []
    start = time.monotonic()
    use_bar = sys.stdout.isatty() and not getattr(args, "plain", False)
    if use_bar:
        from rich.console import Console

        bar, show = _rich_progress(Console())
    else:
        bar, show = None, PlainPrepareLines()

    def progress(ev: PrepareProgress) -> None:
        if ev.stage == "unchanged":
            unchanged.append(True)
        show(ev)

    if bar is not None:
        with bar:  # type: ignore[attr-defined]
            info = _run_prepare(prepare, args, progress)
    else:
        info = _run_prepare(prepare, args, progress)
    if unchanged:
        print(f"dataset {info.name}: up to date (sources unchanged), nothing to do — use --force to rebuild")
        return 0
    elapsed = time.monotonic() - start
    tokens = info.train_tokens + info.val_tokens
    print(
        f"dataset {info.name}: train {info.train_tokens:,} tokens ({info.train_docs:,} docs), "
        f"val {info.val_tokens:,} tokens ({info.val_docs:,} docs), {fmt.bytes_binary(info.size_bytes)} "
        f"in {elapsed:.1f} s ({_count(tokens / max(elapsed, 1e-9))} tok/s) -> {info.path}"
    )
    skipped = info.meta.get("skipped", {})
    if any(skipped.values()):
        print("skipped: " + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in skipped.items() if v))
    return 0


def _run_prepare(prepare, args: argparse.Namespace, progress):
    return prepare(
        list(args.sources), args.name, text_column=args.text_column, val_fraction=args.val_fraction,
        workers=args.workers, force=args.force, progress=progress,
    )


def cmd_datasets(args: argparse.Namespace) -> int:
    """List prepared datasets: name, tokens per split, size, sources, ready."""
    from gpttui.data.store import list_datasets
    from gpttui.paths import datasets_dir

    infos = list_datasets()
    if getattr(args, "json", False):
        print(json.dumps([i.to_json() for i in infos], indent=2))
        return 0
    if not infos:
        print(f"no datasets in {datasets_dir()} — create one with `gpttui prepare SOURCE --name NAME`")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"datasets in {datasets_dir()}")
    for col, just in (("name", "left"), ("train tokens", "right"), ("val tokens", "right"),
                      ("size", "right"), ("sources", "left"), ("ready", "center")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for i in infos:
        table.add_row(
            i.name, f"{i.train_tokens:,}", f"{i.val_tokens:,}", fmt.bytes_binary(i.size_bytes),
            "; ".join(i.sources) or ("(meta.json damaged)" if i.meta.get("damaged") else "(no meta.json)"), "yes" if i.ready else "[red]no[/red]",
        )
    Console().print(table)
    return 0
