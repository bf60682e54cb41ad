"""Headless mode: `gpttui --run PRESET`, `--resume RUN`, `gpttui runs`, `gpttui sample`.

Training runs the same Trainer as the TUI, in its thread, while the main thread waits and
handles signals: SIGINT/SIGTERM checkpoint and exit 130/143, SIGHUP is ignored (an SSH drop
does not kill the run). On a terminal a rich progress bar shows loss, tokens/s, MFU, VRAM
and ETA; elsewhere (logs, pipes, `nohup`) one plain line per log_interval. Under torchrun
every rank trains, only rank 0 prints and writes the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from gpttui import events as E
from gpttui import fmt
from gpttui.cli.printers import PlainPrinter, RichPrinter, si
from gpttui.errors import GpttuiError

EXIT_OK, EXIT_FAILED = 0, 1
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


# -- commands -----------------------------------------------------------------------------------
def _prepare_lines(cfg: Any) -> Callable[[E.PrepareProgress], None]:
    """Progress lines for a dataset prepared on first use."""
    from gpttui.cli.data import PlainPrepareLines

    return PlainPrepareLines(intro=f"preparing dataset '{cfg.dataset}' from {cfg.data_source} (first run only)",
                             show_done=True)


def _printer(args: argparse.Namespace, run_id: str, max_iters: int) -> Any:
    if sys.stdout.isatty() and not getattr(args, "plain", False):
        return RichPrinter(run_id, max_iters)
    return PlainPrinter()


def cmd_run(args: argparse.Namespace) -> int:
    """`gpttui --run PRESET [--set k=v] [--name N]`: a new run, trained headless."""
    from gpttui import presets
    from gpttui.train import launch

    preset = presets.get(args.run)
    cfg = preset.config(args.overrides)
    trainer = launch.start(cfg, preset.name, name=args.name, progress_for=_prepare_lines,
                           check_memory=not getattr(args, "no_memory_check", False))
    try:
        run = trainer.run_obj
        if run is not None:
            print(f"run {run.id}: {run.path} (dataset {cfg.dataset!r})", flush=True)
        return _drive(trainer, args, run.id if run else "", cfg.max_iters)
    finally:
        launch.leave(trainer)


def cmd_resume(args: argparse.Namespace) -> int:
    """`gpttui --resume RUN [--set k=v]`: continue a stopped, failed or interrupted run."""
    from gpttui.runs import store as runs
    from gpttui.train import launch

    run = runs.get_run(args.resume)
    trainer = launch.resume(run, overrides=args.overrides, progress_for=_prepare_lines,
                            check_memory=not getattr(args, "no_memory_check", False))
    try:
        if trainer.dist.is_master:
            print(f"resuming run {run.id}: {run.path}", flush=True)
        return _drive(trainer, args, run.id, trainer.cfg.max_iters)
    finally:
        launch.leave(trainer)


def _drive(trainer: Any, args: argparse.Namespace, run_id: str, max_iters: int) -> int:
    """Train in the Trainer's thread; the main thread waits and turns signals into a stop."""
    got: list[int] = []
    shown: list[Any] = []  # the printer, once made (a rich bar must give the cursor back)

    def on_signal(signum: int, _frame: Any) -> None:
        if got:  # a second ^C: leave now (the checkpoint write is atomic either way)
            _leave_now(trainer, signum, shown[0] if shown else None)
        if trainer.state in SETUP_STATES:  # building the model: no step taken, nothing to save
            _leave_in_setup(trainer, signum, shown[0] if shown else None)
        got.append(signum)
        if trainer.dist.is_master:
            # (the run's own "[stopping] saving a checkpoint, then stopping" line follows)
            print(f"\ngpttui: got {signal.Signals(signum).name}; press ctrl+c again to leave at once "
                  "(the last checkpoint written is kept)", file=sys.stderr, flush=True)
        trainer.stop()

    old = {s: signal.signal(s, on_signal) for s in SIGNAL_EXIT}
    old_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN) if hasattr(signal, "SIGHUP") else None
    printer = _printer(args, run_id, max_iters) if trainer.dist.is_master else None
    shown.append(printer)

    from gpttui.runs import control

    # pause/resume/save/stop requests from other processes (a `gpttui serve` tab)
    ctl = trainer.run_obj.path if trainer.run_obj is not None and not trainer.dist.enabled else None
    if ctl is not None:
        control.take(ctl)  # a request left for an earlier process is stale
    try:
        if printer is not None:
            trainer.add_listener(printer)
        with printer if isinstance(printer, RichPrinter) else _Null():
            trainer.start()
            while not trainer.join(0.25):
                if ctl is not None:
                    control.obey(ctl, trainer)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if old_hup is not None:
            signal.signal(signal.SIGHUP, old_hup)
    res = trainer.result
    if trainer.refused is not None:
        print(f"gpttui: error: {trainer.refused}", file=sys.stderr, flush=True)
        return 2
    if isinstance(res, E.Failed):
        if trainer.dist.is_master:
            hint = f" — {res.hint}" if res.hint else ""
            print(f"gpttui: error: run {run_id} failed at iter {res.iter}: {res.reason}{hint}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    if got:
        return SIGNAL_EXIT[signal.Signals(got[0])]
    return EXIT_OK


SETUP_STATES = frozenset({E.PREPARING, E.COMPILING})  # before the first step: nothing new to save


def _leave_in_setup(trainer: Any, signum: int, printer: Any = None) -> None:
    """SIGINT/SIGTERM while the trainer builds the model, restores a checkpoint or compiles:
    no step has been taken in this process, so there is nothing to save; the trainer thread
    may be inside one long allocation that no flag interrupts, so leave now (as
    `_leave_now`), the run marked stopped and any earlier checkpoint untouched."""
    name = signal.Signals(signum).name
    run = trainer.run_obj if trainer.dist.is_master else None
    if run is not None:
        with contextlib.suppress(Exception):
            run.write_status(state=E.STOPPED, pid=os.getpid(), eta_s=None,
                             message=f"stopped by {name} during set-up, before its first step")
    if isinstance(printer, RichPrinter):
        with contextlib.suppress(Exception):
            printer.progress.stop()
    if trainer.dist.is_master:
        print(f"\ngpttui: {name} during set-up: stopping now, nothing to save yet (no step was taken)",
              file=sys.stderr, flush=True)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os._exit(SIGNAL_EXIT.get(signal.Signals(signum), 130))


def _leave_now(trainer: Any, signum: int, printer: Any = None) -> None:
    """A second SIGINT/SIGTERM: record the run as interrupted and exit at once.

    Raising KeyboardInterrupt here (as before) let the interpreter shut down while the
    trainer thread was inside torch: C++ destructors ran under it and the process died with
    SIGABRT ("terminate called without an active exception") or SIGSEGV, status.json still
    saying "training". `os._exit` skips that teardown; the kernel drops the run lock, an
    interrupted checkpoint write leaves the previous ckpt.pt whole, and its temporary is
    removed by the next save."""
    code = SIGNAL_EXIT.get(signal.Signals(signum), 130)
    run = trainer.run_obj if trainer.dist.is_master else None
    saved = None
    if run is not None:
        try:
            saved = run.status().get("checkpoint_iter")
        except Exception:  # noqa: BLE001 - a damaged status must not stop the exit
            saved = None
        then = f"resume continues from iter {saved}" if saved is not None else "no checkpoint yet: start it again"
        with contextlib.suppress(Exception):
            run.write_status(state="interrupted", pid=os.getpid(), eta_s=None,
                             message=f"interrupted by a second {signal.Signals(signum).name} at iter {trainer.iter_num}; {then}")
    if isinstance(printer, RichPrinter):
        with contextlib.suppress(Exception):
            printer.progress.stop()  # restores the cursor; os._exit runs no cleanup
    if trainer.dist.is_master:
        resume = ""
        if run is not None:
            resume = (f" — resume from iter {saved} with `gpttui --resume {run.id}`" if saved is not None
                      else " — no checkpoint yet: start it again with `gpttui --run`")
        print(f"\ngpttui: interrupted at iter {trainer.iter_num} without a final checkpoint{resume}",
              file=sys.stderr, flush=True)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os._exit(code)


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def cmd_runs(args: argparse.Namespace) -> int:
    """`gpttui runs [--json]`: every run with its state and progress."""
    from gpttui.runs.store import list_runs

    rows = list_runs()
    if getattr(args, "json", False):
        print(json.dumps([{**asdict(r), "resumable": r.resumable} for r in rows], indent=1))
        return EXIT_OK
    if not rows:
        print("no runs yet: start one with `gpttui --run demo`")
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("id", "state", "preset", "iter", "tokens", "best val", "HellaSwag", "forecast", "tok/s", "MFU"):
        table.add_column(col, justify="right" if col not in ("id", "state", "preset") else "left", no_wrap=col == "id")
    for r in rows:
        table.add_row(
            r.id, r.state + (" (damaged)" if r.damaged and r.state != "damaged" else "")
            + (" (early stop)" if r.stop_reason.startswith("early stop") else ""),
            r.preset_label, f"{r.iter}/{r.max_iters}", si(r.tokens_seen),
            f"{r.best_val_loss:.4f}" if r.best_val_loss is not None else "-", r.hellaswag_text,
            fmt.forecast_cell(r, "-"),
            si(r.tokens_per_s), f"{r.mfu * 100:.1f}%" if r.mfu is not None else "-",
        )
    # Piped: as wide as the rows need (an 80-column guess cut run ids in half).
    console = Console() if sys.stdout.isatty() else Console(width=1000, soft_wrap=True)
    console.print(table)
    for r in rows:
        if r.damaged:
            console.print(f"{r.id}: {r.damaged}", markup=False, highlight=False)
        if r.stop_reason:
            console.print(f"{r.id}: {r.stop_reason}", markup=False, highlight=False)
        if r.pilot:
            console.print(f"{r.id}: pilot trial {r.pilot}", markup=False, highlight=False)
    return EXIT_OK


def _say_checkpoint(path: Any, kind: str, ckpt: dict) -> None:
    """`sampling from ckpt.pt (latest, iter 150, best val 4.1105); best.pt: iter 75` on stderr."""
    val = ckpt.get("best_val_loss")
    val_s = f", best val {val:.4f}" if isinstance(val, float) and val != float("inf") else ""
    line = f"sampling from {path.name} ({kind}, iter {ckpt.get('iter_num', '?')}{val_s})"
    if kind == "latest" and path.with_name("best.pt").is_file():
        line += "; --checkpoint best samples best.pt (the lowest val loss)"
    print(line, file=sys.stderr, flush=True)


def check_sample_args(args: argparse.Namespace) -> None:
    """One line and exit 2 for settings that cannot sample (a negative or NaN temperature
    used to print blank text, NaN a traceback)."""
    t = args.temperature
    if not math.isfinite(t) or t < 0:
        raise GpttuiError(f"--temperature {t} is not a temperature",
                          "use a number >= 0: 0 is greedy, 0.8 the default, above 1 more random")
    if args.top_k < 0:
        raise GpttuiError(f"--top-k {args.top_k} is negative", "use 0 (every token) or a count such as 200")
    if args.max_new_tokens < 1:
        raise GpttuiError(f"--max-new-tokens {args.max_new_tokens} is not a count", "use 1 or more, e.g. 200")


def cmd_sample(args: argparse.Namespace) -> int:
    """`gpttui sample RUN`: stream generated text to stdout, then save it in the run; Ctrl+C
    stops it, saves the text so far and exits 130."""
    check_sample_args(args)
    from gpttui.runs.store import get_run
    from gpttui.weights.sample import save_sample, stream_sample

    run = get_run(args.run)
    settings = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
                "top_k": args.top_k, "seed": args.seed, "device": args.device}
    which = getattr(args, "checkpoint", None) or "latest"
    settings["checkpoint"] = which
    pieces: list[str] = []
    interrupted = False
    try:
        for piece in stream_sample(run, args.prompt, args.max_new_tokens, args.temperature,
                                   args.top_k, args.seed, args.device, checkpoint=which, on_load=_say_checkpoint):
            pieces.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
    except KeyboardInterrupt:
        interrupted = True
        print("\ngpttui: sampling interrupted (partial sample saved)", file=sys.stderr)
    sys.stdout.write("\n")
    path = save_sample(run, args.prompt, "".join(pieces), settings)
    print(f"saved {path}", file=sys.stderr)
    return 130 if interrupted else EXIT_OK

