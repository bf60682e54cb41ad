"""The run store: one folder per run in the user data dir, the files are the truth.

`runs_dir()/<id>/` holds `config.toml` (the resolved config), `run.json` (preset, created,
params, host), `status.json` (state, pid, host, progress; rewritten atomically),
`metrics.jsonl` (one event per line, flushed as written), `ckpt.pt` (latest checkpoint),
`samples/` and `lock`. A second gpttui, or one started after an SSH drop, reads the same
files to list and follow a run; a run whose status says active but whose process is gone
is shown as "interrupted" and can be resumed. A training run's events reach these files
through `gpttui.runs.writer.MetricsWriter`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpttui import config as C
from gpttui import events as E
from gpttui.errors import RunError
from gpttui.evals import results as eval_results
from gpttui.faults import is_user_os_error, os_error, pause_point, remove_stale_temporaries
from gpttui.fsutil import atomic_open, atomic_write_text
from gpttui.paths import check_name, runs_dir
from gpttui.proc import pid_alive
from gpttui.runs import health as runhealth
from gpttui.runs.records import decoder_at, park_decoder

try:  # POSIX advisory locks; Windows falls back to the pid check alone
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_STATUS_LOCK = threading.Lock()  # status.json writes within this process, one at a time
INTERRUPTED = "interrupted"  # listing-only state: active in status.json, process gone
CKPT_NAME = "ckpt.pt"


def host() -> str:
    return socket.gethostname()


DAMAGED = runhealth.DAMAGED
@dataclass(frozen=True)
class RunSummary:
    """One line of `gpttui runs`: plain data read from run.json and status.json."""

    id: str
    preset: str
    state: str
    iter: int
    max_iters: int
    tokens_seen: int
    best_val_loss: float | None
    tokens_per_s: float | None
    mfu: float | None
    params: int | None
    created: float
    updated: float
    duration_s: float | None
    alive: bool
    damaged: str | None = None  # which files are damaged and what still works; None if whole
    has_checkpoint: bool = True
    stop_reason: str = ""  # why it ended early (an early stop on a plateau), '' otherwise
    hellaswag: float | None = None  # acc_norm: `gpttui eval`'s newest, else the loop's subset
    hellaswag_stderr: float | None = None  # its binomial standard error
    hellaswag_n: int | None = None  # examples it was measured on
    forecast: float | None = None  # the last forecast of the final val loss (computed), and...
    forecast_band: float | None = None  # ...its ± half-width
    pilot: str = ""  # a pilot's trial: "<pilot id> · <candidate> · rung N" (status.json), '' otherwise
    message: str = ""  # status.json's last message (why a run failed), '' if none

    @property
    def hellaswag_text(self) -> str:
        """`0.2955±0.005` or '-' (the ± is the binomial standard error)."""
        return "-" if self.hellaswag is None else f"{self.hellaswag:.4f}±{self.hellaswag_stderr or 0:.3f}"

    @property
    def preset_label(self) -> str:
        """The preset, marked when the run is a pilot's trial."""
        return f"{self.preset} (pilot trial)" if self.pilot else self.preset

    @property
    def resumable(self) -> bool:
        if self.damaged is not None:
            return not self.alive and self.has_checkpoint and self.state != E.FINISHED
        return not self.alive and self.state in (E.STOPPED, INTERRUPTED, E.FAILED)


class Run:
    """A run folder. Cheap to construct; every accessor reads the files afresh."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.id = self.path.name
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- files -----------------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CKPT_NAME

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    def config(self) -> C.TrainConfig:
        """The resolved config the run was started with."""
        path = self.path / "config.toml"
        saved = C.read_toml(path)
        values = {**C.BEFORE_KEY_EXISTED, **saved}  # older runs lack newer keys
        if saved.get("recipe") == "modern" and "muon_weight_decay" not in saved:
            # before muon_weight_decay existed, Muon's matrices decayed by weight_decay:
            # a resumed run keeps training with the decay it started with
            values["muon_weight_decay"] = saved.get("weight_decay", 0.0)
        return C.build(values, source=f"run {self.id} config.toml", pretrained=False)

    def info(self) -> dict[str, Any]:
        return runhealth.read_json(self.path / "run.json")

    def status(self) -> dict[str, Any]:
        return runhealth.read_json(self.path / "status.json")

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into status.json (atomically), stamping pid, host and time.

        One writer at a time in this process (the trainer thread and a signal handler may
        both write); a damaged status.json is replaced, not merged; temporaries left by a
        write that was killed are removed."""
        path = self.path / "status.json"
        got = _STATUS_LOCK.acquire(timeout=5.0)
        try:
            try:
                st = self.status()
            except RunError:
                st = {}
            st.update(fields)
            st.setdefault("pid", os.getpid())
            st.setdefault("host", host())
            st["updated"] = time.time()
            remove_stale_temporaries(path)
            try:
                with atomic_open(path, "wb") as f:
                    f.write((json.dumps(st, indent=1) + "\n").encode("utf-8"))
                    pause_point("status-write")
            except OSError as e:
                if is_user_os_error(e):
                    raise os_error(e, f"run {self.id} status.json", path) from None
                raise
        finally:
            if got:
                _STATUS_LOCK.release()
        return st

    def latest_checkpoint(self) -> Path | None:
        return self.checkpoint_path if self.checkpoint_path.is_file() else None

    def alive(self, st: dict[str, Any] | None = None) -> bool:
        """Whether the process named in status.json still trains this run."""
        st = self.status() if st is None else st
        if st.get("state") not in E.ACTIVE_STATES:
            return False
        if st.get("host") not in (None, host()):
            return time.time() - float(st.get("updated", 0)) < 600  # another machine: trust fresh files
        return pid_alive(st.get("pid"))

    def summary(self) -> RunSummary:
        """The run's listing line. Damaged run.json / status.json do not hide it: it is
        listed with `damaged` saying which file and what still works."""
        damage: list[str] = []
        info = runhealth.read_or_note(self.path / "run.json", damage)
        st = runhealth.read_or_note(self.path / "status.json", damage)
        try:
            status_ok = "status.json" not in " ".join(damage)
            alive = self.alive(st) if status_ok else self.lock_held()
            state = str(st.get("state", "unknown")) if status_ok else DAMAGED
            if state in E.ACTIVE_STATES and not alive:
                state = INTERRUPTED
            created = float(info.get("created", st.get("started", 0.0)) or runhealth.mtime(self.path))
            updated = float(st.get("updated", created))
            started = st.get("started")
            return RunSummary(
                id=self.id, preset=str(info.get("preset", "")), state=state,
                iter=int(st.get("iter", 0)), max_iters=int(st.get("max_iters", 0)),
                tokens_seen=int(st.get("tokens_seen", 0)), best_val_loss=_num(st.get("best_val_loss")),
                tokens_per_s=_num(st.get("tokens_per_s")), mfu=_num(st.get("mfu")), params=info.get("params"),
                created=created, updated=updated,
                duration_s=_num(st.get("elapsed_s", (updated - started) if started else None)), alive=alive,
                damaged=runhealth.damage_note(self, damage), has_checkpoint=self.latest_checkpoint() is not None,
                stop_reason=str(st.get("stop_reason") or ""), pilot=str(st.get("pilot") or ""), **_hellaswag(self.path, st),
                forecast=_num(st.get("forecast")), forecast_band=_num(st.get("forecast_band")),
                message=str(st.get("message") or ""),
            )
        except (TypeError, ValueError) as e:  # valid JSON, wrong types
            return self.damaged_summary(f"status.json or run.json has a wrong value ({e})")

    def lock_held(self) -> bool:
        """Whether a live process holds this run's lock (False where unknown)."""
        return self._lock_fd is not None or runhealth.lock_held(self.path / "lock")

    def damaged_summary(self, note: str) -> RunSummary:
        """A RunSummary for a folder whose files say nothing usable."""
        t = runhealth.mtime(self.path)
        return RunSummary(id=self.id, preset="", state=DAMAGED, iter=0, max_iters=0, tokens_seen=0,
                          best_val_loss=None, tokens_per_s=None, mfu=None, params=None, created=t,
                          updated=t, duration_s=None, alive=self.lock_held(), damaged=note,
                          has_checkpoint=self.latest_checkpoint() is not None)

    # -- events ----------------------------------------------------------------------------
    def events(self) -> list[E.Event]:
        """Every event in metrics.jsonl (complete lines only)."""
        return self.follow(0)[0]

    def follow(self, offset: int) -> tuple[list[E.Event], int]:
        """Events appended since byte `offset`, and the offset after the last complete line.

        A line still being written (no newline yet) is left for the next call."""
        try:
            with open(self.metrics_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1
        out: list[E.Event] = []
        dec = decoder_at(self.metrics_path, offset, self.id)
        for line in data[:end].splitlines():
            try:
                ev = E.from_json(dec.decode(json.loads(line)))
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                continue  # a torn line from a crash mid-write
            if ev is not None:
                out.append(ev)
        park_decoder(self.metrics_path, offset + end, dec)
        return out, offset + end

    # -- lock ------------------------------------------------------------------------------
    def acquire_lock(self) -> None:
        """Take the run's lock for this process, or raise RunError naming the holder.

        `flock` is released by the kernel when its holder dies, so a stale lock of a dead
        process is simply taken over; the pid check covers systems without flock."""
        if self._lock_fd is not None:
            return
        path = self.path / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:  # pragma: no cover - Windows
                holder = _read_lock(path)
                if holder.get("pid") not in (None, os.getpid()) and pid_alive(holder.get("pid")):
                    raise BlockingIOError
        except BlockingIOError:
            os.close(fd)
            raise self.busy_error() from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": host()}).encode())
        self._lock_fd = fd
        self.remove_temporaries(0.0)  # only the lock holder writes them: any left are a kill's

    def busy_error(self, detail: str = "") -> RunError:
        """The one-line refusal for a run another live process holds (naming it)."""
        holder = _read_lock(self.path / "lock")
        return RunError(
            f"another process is training this run ({self.id}: pid {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')}){detail}",
            "stop that process first, or follow the run in the TUI",
        )

    def remove_temporaries(self, older_than_s: float) -> int:
        """Delete temporaries of status.json, ckpt.pt and best.pt left by a killed write."""
        return sum(remove_stale_temporaries(self.path / name, older_than_s)
                   for name in ("status.json", CKPT_NAME, "best.pt", "config.toml", "run.json"))

    def release_lock(self) -> None:
        if self._lock_fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._lock_fd, 0)
        os.close(self._lock_fd)  # closing drops the flock
        self._lock_fd = None

    @contextlib.contextmanager
    def lock(self) -> Iterator[Run]:
        """Hold the run's lock for the block (RunError if another live process holds it)."""
        self.acquire_lock()
        try:
            yield self
        finally:
            self.release_lock()


def _hellaswag(path: Path, st: dict[str, Any]) -> dict[str, Any]:
    h = eval_results.headline(path, st)
    return {} if h is None else {"hellaswag": h.acc_norm, "hellaswag_stderr": h.stderr, "hellaswag_n": h.n}


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def _is_run_folder(path: Path) -> bool:
    """A run folder, even one whose run.json is missing (any of a run's own files)."""
    return path.is_dir() and any((path / n).is_file() for n in ("run.json", "status.json", "config.toml", CKPT_NAME))


def _read_lock(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, json.JSONDecodeError):
        return {}


def new_run_id(preset: str, name: str | None) -> str:
    if name:
        return check_name(name, "run name")
    stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in Path(preset).stem)[:60] or "run"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}"


def free_run_id(preset: str, name: str | None = None) -> str:
    """The id `create_run` would give now: `name`, or the preset's dated id with -2, -3 …
    added while a folder of that name exists (a detached trainer is told it in advance)."""
    base = new_run_id(preset, name)
    run_id, n = base, 1
    while (runs_dir() / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def history_to_checkpoint(events: list[E.Event]) -> list[E.Event]:
    """The losses and evals a resumed run keeps: those up to its last checkpoint, so a screen
    shows the whole curve and the best val loss at once, not only what follows."""
    upto = max((e.iter for e in events if isinstance(e, E.CheckpointSaved)), default=-1)
    return [ev for ev in events if isinstance(ev, (E.StepMetrics, E.EvalResult)) and ev.iter <= upto]


def create_run(cfg: C.TrainConfig, preset: str, name: str | None = None, params: int | None = None) -> Run:
    """A new run folder with its resolved config, run.json and an initial status.json.
    `params` defaults to the config's total parameter count (the estimator's, which equals
    the model's)."""
    if params is None:
        from gpttui.plan.estimate import count_params

        params = count_params(cfg).total
    from gpttui.weights.pretrained import check_available

    check_available(cfg.init_from)  # weights not here (an empty HF cache): fail before the folder exists
    root = runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    base = new_run_id(preset, name)
    run_id, n = base, 1
    while True:
        try:
            (root / run_id).mkdir()
            break
        except FileExistsError:
            if name:
                raise RunError(f"a run named '{name}' already exists", f"pick another --name or `gpttui --resume {name}`") from None
            n += 1
            run_id = f"{base}-{n}"
    run = Run(root / run_id)
    run.samples_dir.mkdir()
    atomic_write_text(run.path / "config.toml", C.to_toml(cfg, only_changed=False))
    now = time.time()
    info = {"id": run_id, "preset": preset, "created": now, "host": host(), "params": params}
    atomic_write_text(run.path / "run.json", json.dumps(info, indent=1) + "\n")
    run.write_status(state=E.PREPARING, iter=0, max_iters=cfg.max_iters, tokens_seen=0,
                     best_val_loss=None, tokens_per_s=None, mfu=None, started=now)
    return run


def get_run(id_or_path: str | Path) -> Run:
    """A run by id (in the data dir) or by folder path; RunError if there is none."""
    text = str(id_or_path)
    candidates = [Path(text).expanduser()] if ("/" in text or os.sep in text) else []
    candidates.append(runs_dir() / text)
    for path in candidates:
        if _is_run_folder(path):
            return Run(path.resolve())
    known = [r.id for r in list_runs()]
    import difflib

    close = difflib.get_close_matches(text, known, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'?" if close else "list runs with `gpttui runs`"
    raise RunError(f"no run '{text}'", hint)


def list_runs() -> list[RunSummary]:
    """Every run in the data dir, oldest first; a damaged one is listed as damaged (with what
    still works), never skipped."""
    root = runs_dir()
    if not root.is_dir():
        return []
    out = []
    for path in root.iterdir():
        if not path.name.startswith(".") and _is_run_folder(path):
            run = Run(path)
            try:
                out.append(run.summary())
            except (RunError, OSError) as e:
                out.append(run.damaged_summary(str(e)))
            if not out[-1].alive:  # nobody writes there now: what a kill left is garbage
                run.remove_temporaries(older_than_s=60.0)
    return sorted(out, key=lambda s: (s.created, s.id))


def delete_run(id_or_path: str | Path) -> None:
    """Remove a run folder; refused while a live process trains it."""
    run = get_run(id_or_path)
    with run.lock():
        if run.alive():
            raise RunError(f"run {run.id} is still training", "stop it first")
        shutil.rmtree(run.path)
