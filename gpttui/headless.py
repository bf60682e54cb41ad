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
import os
import signal
import sys
import time
from dataclasses import asdict
from typing import Any

from gpttui import events as E

EXIT_OK, EXIT_FAILED = 0, 1
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


# -- formatting -------------------------------------------------------------------------------
def si(n: float | None, digits: int = 1) -> str:
    """41234.5 -> '41.2k'; None -> '-'."""
    if n is None:
        return "-"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.{digits}f}{suffix}"
    return f"{n:.{digits}f}" if n != int(n) else f"{int(n)}"


def duration(s: float | None) -> str:
    """80 -> '1m20s', 4000 -> '1h06m'; None -> '-'."""
    if s is None:
        return "-"
    s = int(max(0, s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**30:.1f}"


def step_line(ev: E.StepMetrics) -> str:
    """`iter 120/400 loss 5.4321 lr 1.9e-03 | 41.2k tok/s | mfu 3.1% of <basis> | eta 1m20s`."""
    parts = [f"iter {ev.iter}/{ev.max_iters} loss {ev.loss:.4f} lr {ev.lr:.1e}",
             f"{si(ev.tokens_per_s)} tok/s"]
    parts.append(f"mfu {ev.mfu * 100:.1f}% of {ev.peak_basis}" if ev.mfu is not None else f"mfu - ({ev.peak_basis})")
    if ev.vram_total:
        parts.append(f"vram {_gib(ev.vram_peak)}/{_gib(ev.vram_total)} GiB")
    if ev.power_w is not None:
        parts.append(f"{ev.power_w:.0f} W")
    parts.append("compiling" if ev.compiling else f"eta {duration(ev.eta_s)}")
    return " | ".join(parts)


def event_line(ev: E.Event) -> str | None:
    """A plain line for the events worth a line of their own (None for the rest)."""
    if isinstance(ev, E.StepMetrics):
        return step_line(ev)
    if isinstance(ev, E.EvalResult):
        return f"eval iter {ev.iter}: train {ev.train_loss:.4f} val {ev.val_loss:.4f} (best {ev.best_val_loss:.4f})"
    if isinstance(ev, E.CheckpointSaved):
        return f"checkpoint ({ev.reason}) at iter {ev.iter}: {ev.path}"
    if isinstance(ev, E.LogMessage):
        return f"{ev.level}: {ev.text}" if ev.level != "info" else ev.text
    if isinstance(ev, E.StatusChanged) and ev.state in (E.COMPILING, E.PAUSED, E.STOPPING):
        return f"[{ev.state}] {ev.message}".rstrip()
    if isinstance(ev, E.Finished):
        best = f", best val {ev.best_val_loss:.4f}" if ev.best_val_loss is not None else ""
        why = f" ({ev.reason})" if ev.reason else ""
        return f"{ev.state} at iter {ev.iter} after {duration(ev.elapsed_s)}: {si(ev.tokens_seen)} tokens{best}{why}"
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
            eta = "compiling" if ev.compiling else f"eta {duration(ev.eta_s)}"
            self.progress.update(self.task, completed=ev.iter, total=ev.max_iters,
                                 stats=f"loss {ev.loss:.4f} {si(ev.tokens_per_s)} tok/s mfu {mfu}{vram} {eta}")
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


# -- commands -----------------------------------------------------------------------------------
def _ensure_dataset(cfg: Any, quiet: bool) -> None:
    """Prepare cfg.dataset from cfg.data_source if it is missing, with progress lines."""
    from gpttui.data.cli import plain_line
    from gpttui.data.store import ensure_dataset, get_dataset

    info = get_dataset(cfg.dataset)
    if info is not None and info.ready:
        return
    last = [0.0]

    def progress(ev: E.PrepareProgress) -> None:
        now = time.monotonic()
        if not quiet and not last[0]:  # said once preparing has really begun
            print(f"preparing dataset '{cfg.dataset}' from {cfg.data_source} (first run only)", flush=True)
        if not quiet and (now - last[0] >= 2.0 or ev.stage == "done"):
            last[0] = now
            print(plain_line(ev), flush=True)

    ensure_dataset(cfg, progress)


def _printer(args: argparse.Namespace, run_id: str, max_iters: int) -> Any:
    if sys.stdout.isatty() and not getattr(args, "plain", False):
        return RichPrinter(run_id, max_iters)
    return PlainPrinter()


def _setup_dist(cfg: Any) -> Any:
    """Join the torchrun process group early (dataset preparation waits on rank 0)."""
    from gpttui.train import ddp
    from gpttui.train.setup import resolve_env

    dist = ddp.from_env()
    if dist.enabled:
        env = resolve_env(cfg, dist.local_rank, True)
        ddp.split_accumulation(cfg.gradient_accumulation_steps if isinstance(cfg.gradient_accumulation_steps, int) else 1,
                               dist.world_size)
        ddp.init(dist, env.device_type)
    return dist


def cmd_run(args: argparse.Namespace) -> int:
    """`gpttui --run PRESET [--set k=v] [--name N]`: a new run, trained headless."""
    from gpttui import presets, runs

    preset = presets.get(args.run)
    cfg = preset.config(args.overrides)
    from gpttui.pretrained import check_available

    check_available(cfg.init_from)  # before a dataset is prepared or a run folder made
    dist = _setup_dist(cfg)
    try:
        if dist.is_master:
            _ensure_dataset(cfg, quiet=False)
        _barrier(dist)
        run = runs.create_run(cfg, preset.name, args.name) if dist.is_master else None
        if run is not None:
            print(f"run {run.id}: {run.path}", flush=True)
        from gpttui.trainer import Trainer

        return _drive(Trainer(cfg, run, dist=dist), args, run.id if run else "", cfg.max_iters)
    finally:
        _shutdown(dist)


def cmd_resume(args: argparse.Namespace) -> int:
    """`gpttui --resume RUN [--set k=v]`: continue a stopped, failed or interrupted run."""
    from gpttui import runs
    from gpttui.trainer import Trainer

    run = runs.get_run(args.resume)
    trainer = Trainer.for_resume(run, overrides=args.overrides)
    dist = _setup_dist(trainer.cfg)
    trainer.dist = dist
    try:
        if dist.is_master:
            _ensure_dataset(trainer.cfg, quiet=False)
            print(f"resuming run {run.id}: {run.path}", flush=True)
        _barrier(dist)
        return _drive(trainer, args, run.id, trainer.cfg.max_iters)
    finally:
        _shutdown(dist)


def _barrier(dist: Any) -> None:
    if dist.enabled:
        from gpttui.train import ddp

        ddp.barrier()


def _shutdown(dist: Any) -> None:
    if dist.enabled:
        from gpttui.train import ddp

        ddp.shutdown()


def _drive(trainer: Any, args: argparse.Namespace, run_id: str, max_iters: int) -> int:
    """Train in the Trainer's thread; the main thread waits and turns signals into a stop."""
    got: list[int] = []
    shown: list[Any] = []  # the printer, once made (a rich bar must give the cursor back)

    def on_signal(signum: int, _frame: Any) -> None:
        if got:  # a second ^C: leave now (the checkpoint write is atomic either way)
            _leave_now(trainer, signum, shown[0] if shown else None)
        got.append(signum)
        if trainer.dist.is_master:
            print(f"\ngpttui: {signal.Signals(signum).name}: saving a checkpoint, then stopping", file=sys.stderr, flush=True)
        trainer.stop()

    old = {s: signal.signal(s, on_signal) for s in SIGNAL_EXIT}
    old_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN) if hasattr(signal, "SIGHUP") else None
    printer = _printer(args, run_id, max_iters) if trainer.dist.is_master else None
    shown.append(printer)

    from gpttui import control

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
    from gpttui.runs import list_runs

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
    for col in ("id", "state", "preset", "iter", "tokens", "best val", "tok/s", "MFU"):
        table.add_column(col, justify="right" if col not in ("id", "state", "preset") else "left", no_wrap=col == "id")
    for r in rows:
        table.add_row(
            r.id, r.state + (" (damaged)" if r.damaged and r.state != "damaged" else "")
            + (" (early stop)" if r.stop_reason.startswith("early stop") else ""),
            r.preset, f"{r.iter}/{r.max_iters}", si(r.tokens_seen),
            f"{r.best_val_loss:.4f}" if r.best_val_loss is not None else "-",
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
    return EXIT_OK


def _say_checkpoint(path: Any, kind: str, ckpt: dict) -> None:
    """`sampling from ckpt.pt (latest, iter 150, best val 4.1105); best.pt: iter 75` on stderr."""
    val = ckpt.get("best_val_loss")
    val_s = f", best val {val:.4f}" if isinstance(val, float) and val != float("inf") else ""
    line = f"sampling from {path.name} ({kind}, iter {ckpt.get('iter_num', '?')}{val_s})"
    if kind == "latest" and path.with_name("best.pt").is_file():
        line += "; --checkpoint best samples best.pt (the lowest val loss)"
    print(line, file=sys.stderr, flush=True)


def cmd_sample(args: argparse.Namespace) -> int:
    """`gpttui sample RUN`: stream generated text to stdout, then save it in the run."""
    from gpttui.runs import get_run
    from gpttui.sample import save_sample, stream_sample

    run = get_run(args.run)
    settings = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
                "top_k": args.top_k, "seed": args.seed, "device": args.device}
    which = getattr(args, "checkpoint", None) or "latest"
    settings["checkpoint"] = which
    pieces: list[str] = []
    try:
        for piece in stream_sample(run, args.prompt, args.max_new_tokens, args.temperature,
                                   args.top_k, args.seed, args.device, checkpoint=which, on_load=_say_checkpoint):
            pieces.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
    except KeyboardInterrupt:
        print("\ngpttui: sampling interrupted (partial sample saved)", file=sys.stderr)
    sys.stdout.write("\n")
    path = save_sample(run, args.prompt, "".join(pieces), settings)
    print(f"saved {path}", file=sys.stderr)
    return EXIT_OK

