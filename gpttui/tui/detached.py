"""A training session whose run lives in a detached process, followed from its files.

Under `gpttui serve` every browser tab is its own gpttui process, ended when the tab
closes. A run started from a tab therefore trains in a detached headless `gpttui --run`
(its own session, no terminal, output in the data dir's `serve/` folder), and the tab
follows it through the run's metrics.jsonl, exactly as any other gpttui can. The keys of
the training screen reach it through the run folder's `control` file (`gpttui.runs.control`).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpttui import events as E
from gpttui.config import TrainConfig, to_toml
from gpttui.errors import RunError
from gpttui.proc import spawn_gpttui
from gpttui.runs.store import history_to_checkpoint

Listener = Callable[[E.Event], None]


def serve_dir() -> Path:
    from gpttui.paths import data_dir

    return data_dir() / "serve"


class DetachedSession:
    """The `TrainSession` of a served tab: start, follow and steer a detached run."""

    detached = True  # quitting.hand_off: nothing to hand off, the run already lives elsewhere

    def __init__(self, cfg: TrainConfig | None, preset: str, listener: Listener,
                 resume: str | None = None, poll_s: float = 0.5):
        self.cfg, self.preset, self.listener, self.resume_id = cfg, preset, listener, resume
        self.run_id: str | None = resume
        self.poll_s = poll_s
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._stop_requested = threading.Event()

    # -- start ------------------------------------------------------------------------------
    def _new_run_command(self) -> list[str]:
        from gpttui.runs.store import free_run_id

        assert self.cfg is not None
        stem = Path(self.preset).stem or "run"
        run_id = self.run_id = free_run_id(stem)
        folder = serve_dir() / run_id
        folder.mkdir(parents=True, exist_ok=True)
        from gpttui.fsutil import atomic_write_text

        preset_file = folder / f"{stem}.toml"  # named like the preset: run.json records its name
        atomic_write_text(preset_file, to_toml(self.cfg, only_changed=False))
        return ["--run", str(preset_file), "--name", run_id]

    def start(self) -> None:
        """Start the detached process and the thread that follows its run."""
        if self.resume_id is not None:
            from gpttui.runs.store import get_run

            get_run(self.resume_id)  # a one-line error here rather than in a log file
            args = ["--resume", self.resume_id]
        else:
            args = self._new_run_command()
        assert self.run_id is not None
        serve_dir().mkdir(parents=True, exist_ok=True)
        self.log_path = serve_dir() / f"{self.run_id}.log"
        self.proc = spawn_gpttui(args, self.log_path)
        self.listener(E.LogMessage(self.run_id, level="info",
                                   text=f"training in a detached process (pid {self.proc.pid}, log {self.log_path}): "
                                        "closing this tab does not stop it"))
        self._thread = threading.Thread(target=self._follow, name=f"gpttui-follow-{self.run_id}", daemon=True)
        self._thread.start()

    # -- follow -----------------------------------------------------------------------------
    def _run(self) -> Any:
        from gpttui.runs.store import get_run

        try:
            return get_run(self.run_id)  # type: ignore[arg-type]
        except RunError:
            return None  # not created yet (the process prepares data first)

    def _follow(self) -> None:
        try:
            self._follow_until_end()
        except Exception as e:  # noqa: BLE001 - the tab must say why it stopped following
            self.listener(E.LogMessage(self.run_id or "", level="error", text=f"following the run failed: {e}{_logged(e)}"))
        finally:
            self._done.set()

    def _follow_until_end(self) -> None:
        run, offset, ended = None, 0, False
        while not ended:
            exited = self.proc is not None and self.proc.poll() is not None
            if run is None:
                run = self._run()
                if run is not None:
                    offset = self._start_offset(run)
            if run is not None:
                events, offset = run.follow(offset)
                for ev in events:
                    self.listener(ev)
                    ended = ended or isinstance(ev, (E.Finished, E.Failed))
            if exited and not ended:
                self._report_exit()
                return
            if not ended:
                time.sleep(self.poll_s)

    def _start_offset(self, run: Any) -> int:
        """Where following starts: a resumed run replays its curve up to the checkpoint,
        then follows what the new process appends."""
        if self.resume_id is None:
            return 0
        events, end = run.follow(0)
        for ev in history_to_checkpoint(events):
            self.listener(ev)
        return end

    def _report_exit(self) -> None:
        """The process ended without a Finished/Failed event (bad config, data error, kill)."""
        last = ""
        if self.log_path is not None and self.log_path.is_file():
            lines = [ln for ln in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
            last = lines[-1].strip() if lines else ""
        rc = self.proc.returncode if self.proc is not None else None
        self.listener(E.Failed(self.run_id or "", reason=last or f"the training process exited with code {rc}",
                               hint=f"its output is in {self.log_path}"))

    # -- control ----------------------------------------------------------------------------
    def _request(self, action: str) -> bool:
        from gpttui.runs import control

        run = self._run() if self.run_id else None
        if run is None:
            return False
        control.request(run.path, action)
        return True

    def pause(self) -> None:
        self._request("pause")

    def resume(self) -> None:
        self._request("resume")

    def save_now(self) -> None:
        self._request("save")

    def stop(self) -> None:
        self._stop_requested.set()
        if not self._request("stop") and self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # still preparing data: nothing to checkpoint yet

    def is_alive(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


def _logged(error: Exception) -> str:
    """Where the traceback of a bug went (the failed-worker log), for its one line."""
    from gpttui.tui.failures import append_traceback

    try:
        return f" (traceback in {append_traceback('following a detached run', error)})"
    except OSError:
        return ""
