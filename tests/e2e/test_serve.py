"""`gpttui serve` in a real browser: headless Chromium, driven over the DevTools protocol,
loads the page, receives the Home screen with its presets, and a key press reaches the app
(? opens the help screen). The bytes checked are the ones the page's terminal renders: a
script added before the page's own wraps WebSocket and keeps every frame it receives.

Skipped only where Chromium or textual-serve cannot be had (`.ci/run` installs both).
Set GPTTUI_SERVE_SCREENSHOT=path to keep a PNG of the served Home screen (docs/serve-home.png
was taken so: a second tab, listing the run the first tab started before it was closed).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("textual_serve")
aiohttp = pytest.importorskip("aiohttp")
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")]

HOOK = """
(() => {
  const Orig = window.WebSocket;
  const dec = new TextDecoder();
  window.__frames = [];
  function Hooked(url, protocols) {
    const ws = protocols === undefined ? new Orig(url) : new Orig(url, protocols);
    ws.addEventListener("message", (e) => {
      if (typeof e.data !== "string") window.__frames.push(dec.decode(new Uint8Array(e.data), {stream: true}));
    });
    return ws;
  }
  Hooked.prototype = Orig.prototype;
  for (const k of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) Hooked[k] = Orig[k];
  window.WebSocket = Hooked;
})();
"""
ANSI = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {timeout}s")


class Cdp:
    """The few DevTools-protocol calls the test needs, over aiohttp's websocket client."""

    def __init__(self, ws):
        self.ws, self.n = ws, 0

    async def call(self, method: str, **params):
        self.n += 1
        await self.ws.send_str(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def text(self) -> str:
        r = await self.call("Runtime.evaluate", expression="(window.__frames || []).join('')", returnByValue=True)
        return ANSI.sub("", r["result"].get("value", ""))

    async def wait_for(self, *needles: str, timeout: float = 90.0) -> str:
        end = time.monotonic() + timeout
        text = ""
        while time.monotonic() < end:
            text = await self.text()
            if all(n in text for n in needles):
                return text
            await asyncio.sleep(0.5)
        raise AssertionError(f"{needles} not on the page after {timeout}s; got {text[-400:]!r}")

    async def key(self, char: str) -> None:
        for kind in ("keyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key=char, text=char if kind == "keyDown" else "")

    async def escape(self) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key="Escape", code="Escape", windowsVirtualKeyCode=27)


async def _open_tab(http, port: int, url: str):
    """A new browser tab on `url` with the frame hook installed; returns (target id, ws)."""
    target = await (await http.put(f"http://127.0.0.1:{port}/json/new?about:blank")).json()
    ws = await http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
    cdp = Cdp(ws)
    await cdp.call("Page.enable")
    await cdp.call("Runtime.enable")
    await cdp.call("Page.addScriptToEvaluateOnNewDocument", source=HOOK)
    await cdp.call("Page.navigate", url=url)
    return target["id"], ws, cdp


async def _drive(port: int, url: str, shot: Path | None, runs: Path) -> dict[str, str]:
    seen: dict[str, str] = {}
    async with aiohttp.ClientSession() as http:
        tab, ws, cdp = await _open_tab(http, port, url)
        seen["home"] = await cdp.wait_for("demo", "gpt2-124m", "Recent runs")
        await cdp.call("Runtime.evaluate", expression="document.querySelector('.xterm-helper-textarea').focus()")
        before = len(await cdp.text())
        await cdp.key("?")
        seen["help"] = (await cdp.wait_for("gpttui keys", timeout=30))[before:]
        await cdp.escape()  # back to Home
        await asyncio.sleep(1.0)
        await cdp.key("r")  # run the first preset (the test's tiny 'demo')
        seen["training"] = await cdp.wait_for("detached process", timeout=60)
        status = await _wait_status(runs, lambda st: st.get("iter", 0) >= 20, 120)
        await ws.close()
        await http.get(f"http://127.0.0.1:{port}/json/close/{tab}")  # close the tab: its gpttui ends
        seen["iter_at_close"] = str(status["iter"])
        seen["run"] = status["_id"]
        tab2, ws2, cdp2 = await _open_tab(http, port, url)  # a second tab sees the run from its files
        seen["tab2"] = await cdp2.wait_for("Recent runs (1 in all", status["_id"][:12], timeout=60)
        await asyncio.sleep(2.0)  # the run's row refreshed, the first frame settled
        if shot is not None:  # the served Home screen, with the run the closed tab started
            png = await cdp2.call("Page.captureScreenshot", format="png")
            shot.write_bytes(base64.b64decode(png["data"]))
        await ws2.close()
    return seen


async def _wait_status(runs: Path, ok, timeout: float) -> dict:
    end = time.monotonic() + timeout
    st: dict = {}
    while time.monotonic() < end:
        for f in runs.glob("*/status.json"):
            try:
                st = {**json.loads(f.read_text()), "_id": f.parent.name}
            except ValueError:
                continue
            if ok(st):
                return st
        await asyncio.sleep(0.5)
    raise AssertionError(f"run status never matched in {timeout}s: {st}")


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def _served_url(server: subprocess.Popen) -> str:
    """The URL `gpttui serve` printed, token included (read before anything else is)."""
    lines = []
    for line in server.stdout:
        lines.append(line)
        m = re.search(r"then open (http://localhost:\d+/\?token=[\w-]+)", line)
        if m:
            assert any(re.search(r"ssh -N -L (\d+):localhost:\1 \S+@(?!localhost)", x) for x in lines), lines
            return m.group(1)
    raise AssertionError(f"no URL with a token printed: {''.join(lines)!r}")


async def _denied(port: int, url: str) -> str:
    """The page a browser gets without the token: its body text, and whether the page's
    terminal ever received a frame (it must not: no websocket, no app)."""
    async with aiohttp.ClientSession() as http:
        tab, ws, cdp = await _open_tab(http, port, url)
        await asyncio.sleep(3.0)
        r = await cdp.call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''",
                           returnByValue=True)
        frames = await cdp.text()
        await ws.close()
        await http.get(f"http://127.0.0.1:{port}/json/close/{tab}")
    return r["result"].get("value", "") + ("\nFRAMES:" + frames if frames else "")


def _tiny_demo(data: Path, conf: Path) -> None:
    """A user preset 'demo' (shadowing the built-in) on a small prepared dataset: trains on
    a CPU at dozens of steps a second, for long enough to outlive a closed tab."""
    import numpy as np

    folder = data / "datasets" / "e2e-tiny"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 50_000), ("val", 5_000)):
        (rng.integers(0, 200, n, dtype=np.uint16) + 100).tofile(folder / f"{split}.bin")
    (folder / "meta.json").write_text(json.dumps({
        "format_version": 1, "tokenizer": "gpt2", "vocab_size": 50257, "dtype": "uint16",
        "splits": {"train": {"tokens": 50_000, "documents": 1}, "val": {"tokens": 5_000, "documents": 1}}}))
    (conf / "presets").mkdir(parents=True, exist_ok=True)
    (conf / "presets" / "demo.toml").write_text(
        'description = "e2e tiny"\ndataset = "e2e-tiny"\ndata_source = ""\nn_layer = 1\nn_head = 2\n'
        'n_embd = 32\nblock_size = 16\nbatch_size = 2\ngradient_accumulation_steps = 1\nmax_iters = 100000\n'
        'warmup_iters = 2\nlr_decay_iters = 100000\nmin_lr = 1e-4\nlearning_rate = 1e-3\neval_interval = 1000\n'
        'eval_iters = 1\nlog_interval = 5\ndevice = "cpu"\ncompile = false\ndtype = "float32"\n'
        'checkpoint_interval_s = 0.0\n')


def test_served_home_screen_in_headless_chromium(tmp_path, isolated_dirs):
    from gpttui.paths import user_presets_dir
    from gpttui.runs import control

    data, conf = isolated_dirs
    _tiny_demo(data, conf)
    assert (user_presets_dir() / "demo.toml").is_file()
    port, devtools = _free_port(), _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-m", "gpttui", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    browser = None
    try:
        url = _served_url(server)
        _wait_port(port, server, 60)
        browser = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}", f"--remote-debugging-port={devtools}",
             "--window-size=1280,800", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _wait_port(devtools, browser, 60)
        shot = Path(os.environ["GPTTUI_SERVE_SCREENSHOT"]) if os.environ.get("GPTTUI_SERVE_SCREENSHOT") else tmp_path / "home.png"
        # without the token: 403, the page never gets a terminal, and no gpttui process starts
        for bad in (f"http://localhost:{port}/", f"http://localhost:{port}/?token=wrong"):
            text = asyncio.run(_denied(devtools, bad))
            assert "403" in text or "token" in text, text
            assert "FRAMES:" not in text and _children(server.pid) == []
        seen = asyncio.run(_drive(devtools, url, shot, data / "runs"))
        assert "demo" in seen["home"] and "gpt2-124m" in seen["home"]  # the Home screen's preset list
        assert "gpttui keys" in seen["help"]  # ? reached the app: its help screen was drawn
        assert shot.stat().st_size > 10_000
        # the run outlives its tab: it keeps training in its detached process ...
        run = data / "runs" / seen["run"]
        later = asyncio.run(_wait_status(data / "runs", lambda st: st["iter"] > int(seen["iter_at_close"]) + 20, 60))
        assert later["state"] == "training" and later["pid"] != server.pid
        # ... and obeys the control file, as a tab's stop key writes it
        control.request(run, "stop")
        assert asyncio.run(_wait_status(data / "runs", lambda st: st["state"] == "stopped", 60))["iter"] > 0
    finally:
        for f in (data / "runs").glob("*/status.json"):  # never leave a detached trainer behind
            pid = json.loads(f.read_text()).get("pid")
            if pid and json.loads(f.read_text()).get("state") not in ("stopped", "finished", "failed"):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        for p in (browser, server):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    out = server.stdout.read() if server.stdout else ""
    assert "token" in out and "Traceback" not in out


def test_serve_refuses_a_taken_port_in_one_line():
    from gpttui.cli.serve import check_port
    from gpttui.errors import GpttuiError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(GpttuiError, match=r"port \d+ on localhost is taken"):
            check_port(s.getsockname()[1])
