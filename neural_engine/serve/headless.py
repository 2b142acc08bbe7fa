"""Debian's chromium, headless, driven over the DevTools protocol on a WebSocket.

``Browser.launch()`` starts ``chromium --headless`` with a throw-away profile and a
DevTools port of its own choosing (read back from the profile's
``DevToolsActivePort``), and attaches to its page. ``Page`` sends DevTools commands
(``call``) and offers what the tests and the codec bench need: open a URL, evaluate
JavaScript, press keys and move the mouse as a person would (trusted input events),
and take a screenshot. Only loopback is ever contacted.

There is no download step: the browser is the distribution's package (``apt-get
install chromium``), found on PATH or at ``$NEURAL_ENGINE_CHROMIUM``. This module
knows nothing about the engine's page.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import aiohttp

from neural_engine.errors import EngineError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
# Windows virtual key codes for the keys the tests press (DevTools wants them).
VIRTUAL_KEYS = {"KeyW": 87, "KeyA": 65, "KeyS": 83, "KeyD": 68, "KeyQ": 81, "KeyE": 69,
                "KeyP": 80, "KeyR": 82, "ArrowLeft": 37, "ArrowUp": 38, "ArrowRight": 39,
                "ArrowDown": 40, "ShiftLeft": 16, "Space": 32}


def find_chromium() -> str | None:
    named = os.environ.get("NEURAL_ENGINE_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


class Page:
    """One tab, attached over its DevTools WebSocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self.events: asyncio.Queue = asyncio.Queue()
        self.console: list[str] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            future = self._waiting.pop(data.get("id"), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif data.get("method") == "Runtime.consoleAPICalled":
                args = data["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", "")))
                                             for a in args))
            elif data.get("method") == "Runtime.exceptionThrown":
                self.console.append("exception: " + json.dumps(data["params"])[:500])
            elif "method" in data:
                self.events.put_nowait(data)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("the browser went away"))

    async def call(self, method: str, timeout: float = 30.0, **params) -> dict:
        ident = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def open(self, url: str, timeout: float = 30.0) -> None:
        await self.call("Page.enable")
        await self.call("Runtime.enable")
        await self.call("Page.navigate", url=url)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            event = await asyncio.wait_for(self.events.get(), max(left, 0.01))
            if event["method"] == "Page.loadEventFired":
                return

    async def evaluate(self, expression: str, timeout: float = 30.0):
        result = await self.call("Runtime.evaluate", timeout=timeout, expression=expression,
                                 returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30.0, every: float = 0.05):
        """Poll ``expression`` until it is truthy; its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{expression} stayed false for {timeout} s; console: "
                                   f"{self.console[-5:]}")
            await asyncio.sleep(every)

    async def key(self, code: str, down: bool, key: str | None = None) -> None:
        """A trusted key event, as a keyboard makes (``code`` as in ``KeyboardEvent.code``)."""
        key = key or (code[3:].lower() if code.startswith("Key") else code)
        await self.call("Input.dispatchKeyEvent", type="keyDown" if down else "keyUp",
                        code=code, key=key, windowsVirtualKeyCode=VIRTUAL_KEYS.get(code, 0))

    async def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                            clickCount=1)

    async def move_mouse(self, x: float, y: float) -> None:
        await self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)

    async def screenshot(self) -> bytes:
        result = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])

    async def close(self) -> None:
        self._reader.cancel()
        await self.ws.close()


class Browser:
    """A headless chromium process with a throw-away profile."""

    def __init__(self, process: subprocess.Popen, profile: tempfile.TemporaryDirectory,
                 session: aiohttp.ClientSession, port: int):
        self.process, self.profile, self.session, self.port = process, profile, session, port

    @classmethod
    async def launch(cls, size: tuple[int, int] = (800, 600), timeout: float = 30.0) -> Browser:
        binary = find_chromium()
        if binary is None:
            raise EngineError("no chromium found: apt-get install chromium (or set "
                              "NEURAL_ENGINE_CHROMIUM)")
        profile = tempfile.TemporaryDirectory(prefix="neural-engine-chromium-")
        command = [binary, "--headless=new", "--no-sandbox", "--disable-gpu",
                   "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                   "--disable-background-networking", "--disable-component-update",
                   "--disable-sync", "--mute-audio", "--remote-debugging-address=127.0.0.1",
                   "--remote-debugging-port=0", f"--user-data-dir={profile.name}",
                   f"--window-size={size[0]},{size[1]}", "about:blank"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        active = Path(profile.name) / "DevToolsActivePort"
        deadline = asyncio.get_running_loop().time() + timeout
        while not (active.is_file() and len(active.read_text().split()) >= 2):
            if process.poll() is not None or asyncio.get_running_loop().time() > deadline:
                process.kill()
                process.wait()
                _end_group(process)
                shutil.rmtree(profile.name, ignore_errors=True)
                raise EngineError(f"chromium did not start ({binary}, exit {process.poll()})")
            await asyncio.sleep(0.05)
        port = int(active.read_text().split()[0])
        return cls(process, profile, aiohttp.ClientSession(), port)

    async def page(self) -> Page:
        """The tab the browser opened with."""
        async with self.session.get(f"http://127.0.0.1:{self.port}/json/list") as response:
            targets = await response.json()
        target = next(t for t in targets if t.get("type") == "page")
        return await self._attach(target)

    async def new_page(self) -> Page:
        """Another tab."""
        async with self.session.put(f"http://127.0.0.1:{self.port}/json/new?about:blank"
                                    ) as response:
            target = await response.json()
        return await self._attach(target)

    async def _attach(self, target: dict) -> Page:
        ws = await self.session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        return Page(ws)

    async def close(self) -> None:
        await self.session.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        # chromium's helpers (renderer, crash handler) live in the process group the
        # launch opened and may still be writing the profile after the browser exits:
        # end them all before the profile goes, or its removal races their writes.
        _end_group(self.process)
        for _ in range(20):
            try:
                self.profile.cleanup()
                return
            except OSError:
                await asyncio.sleep(0.1)
        shutil.rmtree(self.profile.name, ignore_errors=True)


def _end_group(process: subprocess.Popen) -> None:
    """Kill what is left of the process group a launch opened (its helpers)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
