"""The gate in front of `gpttui serve`: a random token per start, as Jupyter does.

textual-serve has no authentication: whoever reaches its port gets a gpttui running as this
user (start and delete runs, read any of the user's files into a dataset). Binding to
localhost is not enough on a shared machine (any local user can connect) nor against a web
page in the user's browser while the SSH tunnel is up. So:

- every start draws a token (`secrets.token_urlsafe`); the URL printed carries it
  (`http://localhost:PORT/?token=...`);
- a request whose `?token=` matches gets the page and a cookie (HttpOnly, SameSite=Strict,
  named after the port since cookies ignore ports), then is redirected to the URL without
  the token, so it leaves the address bar and the history;
- every other HTTP or websocket request without the token or the cookie gets 403, before
  textual-serve sees it: no app process starts;
- a websocket must also come from the page itself: its Origin names a loopback host and the
  same host:port the request was sent to (a page elsewhere, or a DNS-rebound name, is 403).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def new_token() -> str:
    return secrets.token_urlsafe(32)


def cookie_name(port: int) -> str:
    return f"gpttui_serve_{port}"


def _same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


def origin_ok(origin: str | None, host: str | None) -> bool:
    """True when the websocket's Origin is this page: http(s)://<loopback>:<port> equal to
    the Host the request was sent to."""
    if not origin or not host:
        return False
    try:
        parts = urlsplit(origin)
        name = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and name in LOOPBACK and parts.netloc.lower() == host.lower()


def make_middleware(token: str, port: int, index: Any = None) -> Any:
    """An aiohttp middleware that lets through only requests carrying `token`; `index`, if
    given, answers `GET /` in place of the app's own handler."""
    name = cookie_name(port)

    @web.middleware
    async def gate(request: web.Request, handler: Any) -> web.StreamResponse:
        if _same(request.query.get("token"), token):
            if request.method == "GET" and request.path == "/":
                query = {k: v for k, v in request.query.items() if k != "token"}
                raise _with_cookie(web.HTTPFound(request.rel_url.with_query(query)), name, token)
        elif not _same(request.cookies.get(name), token):
            raise web.HTTPForbidden(text="gpttui serve: open the URL with ?token= that `gpttui serve` printed\n")
        if request.headers.get("Upgrade", "").lower() == "websocket" and not origin_ok(
                request.headers.get("Origin"), request.headers.get("Host")):
            raise web.HTTPForbidden(text="gpttui serve: websocket from another origin refused\n")
        if index is not None and request.method == "GET" and request.path == "/":
            return await index(request)
        return await handler(request)

    return gate


def _with_cookie(response: web.HTTPException, name: str, token: str) -> web.HTTPException:
    response.set_cookie(name, token, httponly=True, samesite="Strict", path="/")
    response.headers["Cache-Control"] = "no-store"
    return response


def gated_server(command: str, host: str, port: int, token: str, title: str) -> Any:
    """A textual-serve Server whose aiohttp app passes every request through the gate, and
    whose page points its websocket at the host the browser used (so the cookie, set for
    that host, goes with it)."""
    import aiohttp_jinja2
    from textual_serve.server import Server, to_int

    class GatedServer(Server):
        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.middlewares.insert(0, make_middleware(token, port, self.handle_gated_index))
            return app

        async def on_startup(self, app: web.Application) -> None:
            """Quiet: `gpttui serve` printed the URL with its token; textual-serve's banner
            would print it without."""

        async def handle_gated_index(self, request: web.Request) -> web.Response:
            base = f"{request.scheme}://{request.host}"
            ws = ("wss:" if request.scheme == "https" else "ws:") + base.split(":", 1)[1]
            context = {
                "font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": ws + str(request.app.router["websocket"].url_for()),
                "config": {"static": {"url": base + str(request.app.router["static"].url_for(filename="/")).rstrip("/") + "/"}},
                "application": {"name": self.title},
            }
            response = aiohttp_jinja2.render_template("app_index.html", request, context)
            response.headers["Cache-Control"] = "no-store"
            return response

    return GatedServer(command, host=host, port=port, title=title)
