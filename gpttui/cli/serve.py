"""`gpttui serve`: the terminal UI in a browser tab, through textual-serve, on localhost only.

Each tab runs its own `gpttui` process (textual-serve's model), marked by GPTTUI_SERVED so
that runs started there train in detached processes and outlive the tab
(`gpttui.tui.detached`). The server binds to localhost: from another machine the way in is
an SSH tunnel, whose command line is printed.
"""

from __future__ import annotations

import getpass
import os
import shlex
import socket
import sys
from typing import Any

from gpttui.errors import GpttuiError

HOST = "localhost"


def check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise GpttuiError(f"--port {port} is not a port", "use 1024-65535, e.g. --port 8000")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise GpttuiError(f"port {port} on localhost is taken ({e.strerror})", "pick another with --port") from None


def tunnel_line(port: int) -> str:
    """The ssh command that brings this machine's localhost:port to the user's computer."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (containers)
        user = "USER"
    return f"ssh -N -L {port}:localhost:{port} {user}@{socket.getfqdn() or socket.gethostname()}"


def cmd_serve(args: Any) -> int:
    """`gpttui serve [--port N]`."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise GpttuiError("gpttui serve needs the textual-serve package", "pip install 'gpttui[serve]'") from None
    port = int(args.port)
    check_port(port)
    os.environ["GPTTUI_SERVED"] = "1"  # inherited by every tab's gpttui process
    server = Server(f"{shlex.quote(sys.executable)} -m gpttui", host=HOST, port=port, title="gpttui")
    print(f"gpttui: serving the UI at http://localhost:{port} (this machine only; each browser tab is its own gpttui)\n"
          f"from your computer: {tunnel_line(port)}\n"
          f"  then open http://localhost:{port}\n"
          "runs started in a tab train in their own process: closing the tab does not stop them", flush=True)
    server.serve()
    return 0
