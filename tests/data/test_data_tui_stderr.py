"""Preparing inside the TUI: Textual swaps sys.stderr for an object whose fileno() is -1.

multiprocessing's resource tracker passed that fd to its child and spawning failed with
"bad value(s) in fds_to_keep"; the tokenizer pool must start anyway (and really use workers).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_worker_pool_starts_when_stderr_has_no_fd(tmp_path):
    code = textwrap.dedent(
        """
        import io, os, sys
        from gpttui.data.tokenize import _Ordered

        class Capture(io.TextIOBase):  # what Textual installs while the app runs
            def fileno(self): return -1
            def write(self, s): return len(s)

        if __name__ == "__main__":
            sys.stderr = Capture()
            pool = _Ordered(2)
            pids = {pool.pool.submit(os.getpid).result() for _ in range(4)}
            assert pool.pool is not None and os.getpid() not in pids, pids
            print("workers", len(pids))
        """
    )
    script = tmp_path / "probe.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "workers" in out.stdout
