"""`gpttui serve`'s gate, in process: the real textual-serve app behind the token middleware,
driven by aiohttp's test client. Without the token (or its cookie) every request is 403 and
no app process starts; with it, the page, the cookie, and a websocket that starts the app;
a websocket from another Origin is 403 even with the cookie."""

from __future__ import annotations

import asyncio
import shlex
import sys

import pytest

pytest.importorskip("textual_serve")
from aiohttp import WSServerHandshakeError  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from gpttui.cli.serve_auth import cookie_name, gated_server, origin_ok  # noqa: E402

TOKEN = "s3cret-token"
PORT = 8123


def _run(tmp_path, body):
    marker = tmp_path / "started"
    cmd = f"{shlex.quote(sys.executable)} -c " + shlex.quote(
        f"import pathlib, time; pathlib.Path({str(marker)!r}).write_text('x'); time.sleep(30)")

    async def main():
        server = gated_server(cmd, "localhost", PORT, TOKEN, "t")
        app = await server._make_app()
        async with TestClient(TestServer(app, host="127.0.0.1", port=PORT)) as client:
            await body(client, marker)

    asyncio.run(main())


def _host():
    return f"127.0.0.1:{PORT}"


@pytest.mark.parametrize("path", ["/", "/?token=wrong", "/static/js/textual.js", "/download/x", "/ws"])
def test_every_request_without_the_token_is_403(tmp_path, path):
    async def body(client, marker):
        r = await client.get(path, allow_redirects=False)
        assert r.status == 403
        assert "token" in await r.text()

    _run(tmp_path, body)


def test_websocket_without_the_token_is_403_and_starts_no_app(tmp_path):
    async def body(client, marker):
        with pytest.raises(WSServerHandshakeError) as e:
            await client.ws_connect("/ws", headers={"Origin": f"http://{_host()}"})
        assert e.value.status == 403
        await asyncio.sleep(1.0)
        assert not marker.exists()

    _run(tmp_path, body)


def test_token_sets_a_strict_httponly_cookie_and_redirects_without_it(tmp_path):
    async def body(client, marker):
        r = await client.get(f"/?token={TOKEN}&fontsize=14", allow_redirects=False)
        assert r.status == 302
        assert r.headers["Location"] == "/?fontsize=14"  # the token leaves the address bar
        morsel = r.cookies[cookie_name(PORT)]
        assert morsel.value == TOKEN and morsel["httponly"] and morsel["samesite"] == "Strict"
        page = await client.get("/?fontsize=14")  # the client keeps the cookie
        assert page.status == 200
        html = await page.text()
        assert f'data-session-websocket-url="ws://{_host()}/ws"' in html  # the host the browser used
        assert (await client.get("/static/js/textual.js")).status == 200

    _run(tmp_path, body)


def test_websocket_with_the_cookie_starts_the_app_and_other_origins_are_403(tmp_path):
    async def body(client, marker):
        await client.get(f"/?token={TOKEN}", allow_redirects=False)
        for origin in ("http://evil.example", f"http://evil.example:{PORT}", "null", "http://localhost:1", None):
            headers = {"Origin": origin} if origin else {}
            with pytest.raises(WSServerHandshakeError) as e:
                await client.ws_connect("/ws", headers=headers)
            assert e.value.status == 403, origin
        await asyncio.sleep(0.5)
        assert not marker.exists()
        ws = await client.ws_connect("/ws", headers={"Origin": f"http://{_host()}"})
        for _ in range(100):
            if marker.exists():
                break
            await asyncio.sleep(0.1)
        assert marker.exists()  # the app process started
        await ws.close()

    _run(tmp_path, body)


def test_a_dns_rebound_host_is_refused_even_with_matching_origin():
    assert origin_ok("http://localhost:8000", "localhost:8000")
    assert origin_ok("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert not origin_ok("http://attacker.example:8000", "attacker.example:8000")
    assert not origin_ok("http://localhost:8000", "localhost:9000")
    assert not origin_ok(None, "localhost:8000")


def test_tunnel_line_never_names_a_loopback_host(monkeypatch):
    from gpttui.cli import serve

    monkeypatch.setattr(serve.socket, "getfqdn", lambda: "localhost")
    monkeypatch.setattr(serve.socket, "gethostname", lambda: "vm")
    assert serve.tunnel_line(8000).endswith("@vm")
    monkeypatch.setattr(serve.socket, "gethostname", lambda: "localhost")
    assert serve.tunnel_line(8000).endswith("@<this-host>")


def test_the_servers_stop_prints_no_closed_loop_traceback():
    """Seen in CI: stopping `gpttui serve` printed "RuntimeError: Event loop is closed" from a
    tab's subprocess transport collected after the loop closed. That one is dropped; any
    other unraisable exception still reaches the previous hook."""
    import asyncio.base_subprocess
    from types import SimpleNamespace

    from gpttui.cli.serve import quiet_closed_loop_hook

    seen = []
    hook = quiet_closed_loop_hook(seen.append)
    closed = SimpleNamespace(exc_value=RuntimeError("Event loop is closed"),
                             object=asyncio.base_subprocess.BaseSubprocessTransport.__del__)
    hook(closed)
    assert seen == []
    other = SimpleNamespace(exc_value=RuntimeError("Event loop is closed"), object=print)
    boom = SimpleNamespace(exc_value=ValueError("x"), object=asyncio.base_subprocess.BaseSubprocessTransport.__del__)
    hook(other)
    hook(boom)
    assert seen == [other, boom]
