"""`gpttui serve`: the terminal UI in a browser tab, through textual-serve, on localhost only.

Each tab runs its own `gpttui` process (textual-serve's model), marked by GPTTUI_SERVED so
that runs started there train in detached processes and outlive the tab
(`gpttui.tui.detached`). The server binds to localhost: from another machine the way in is
an SSH tunnel, whose command line is printed. Every request needs the token drawn at start
and printed in the URL (`gpttui.cli.serve_auth`): without it, 403 and no gpttui starts.
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


def this_host() -> str:
    """The name to ssh to: the FQDN, else the host name, never a loopback name (getfqdn
    answers "localhost" where /etc/hosts lists the machine's name on 127.0.0.1); where no
    better name is known, a placeholder the user must replace."""
    for name in (socket.getfqdn(), socket.gethostname()):
        if name and name.split(".")[0] not in ("localhost", "localhost6", "ip6-localhost") and not name.startswith("127."):
            return name
    return "<this-host>"


def tunnel_line(port: int) -> str:
    """The ssh command that brings this machine's localhost:port to the user's computer."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (containers)
        user = "<user>"
    return f"ssh -N -L {port}:localhost:{port} {user}@{this_host()}"


def quiet_closed_loop_hook(previous: Any) -> Any:
    """An unraisable-exception hook that drops one known shutdown message and passes the rest
    to `previous`: a tab's subprocess transport collected after aiohttp closed the loop raises
    "Event loop is closed" from BaseSubprocessTransport.__del__, which Python printed as a
    traceback when the server stopped (seen on a loaded machine)."""

    def hook(unraisable: Any) -> None:
        exc, where = unraisable.exc_value, getattr(unraisable.object, "__qualname__", "")
        if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed" and where == "BaseSubprocessTransport.__del__":
            return
        previous(unraisable)

    return hook


def cmd_serve(args: Any) -> int:
    """`gpttui serve [--port N]`."""
    try:
        import textual_serve.server  # noqa: F401 - the optional dependency, checked here

        from gpttui.cli.serve_auth import gated_server, new_token
    except ImportError:
        raise GpttuiError("gpttui serve needs the textual-serve package", "pip install 'gpttui[serve]'") from None
    port = int(args.port)
    check_port(port)
    os.environ["GPTTUI_SERVED"] = "1"  # inherited by every tab's gpttui process
    token = new_token()
    server = gated_server(f"{shlex.quote(sys.executable)} -m gpttui", HOST, port, token, "gpttui")
    url = f"http://localhost:{port}/?token={token}"
    print(f"gpttui: serving the UI on localhost:{port} (this machine only; each browser tab is its own gpttui)\n"
          f"from your computer: {tunnel_line(port)}\n"
          f"  then open {url}\n"
          "the token is this server's password: whoever has it can run anything as you; a new one is drawn at each start\n"
          "runs started in a tab train in their own process: closing the tab does not stop them", flush=True)
    sys.unraisablehook = quiet_closed_loop_hook(sys.unraisablehook)
    server.serve()
    return 0
