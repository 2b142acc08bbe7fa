"""The web server: the page, one WebSocket per player, and the tick, on aiohttp.

``Server`` serves exactly the page's own files (read once from the package; every
other path is a 404), and ``/ws``, where each connection becomes a ``Connection``
handed to the ``Floor``. A task ticks at the game's rate: the floor plans on the
event loop, the rows step and the frames are encoded on one worker thread (so the
event loop keeps reading input while the pool computes), and the floor delivers.

Limits, each refusal logged in one line (logger ``neural_engine.serve``):

- a client message is at most ``MAX_MESSAGE`` bytes (aiohttp closes the socket on a
  bigger one) and must parse (``protocol.parse``); a client sends at most
  ``message_rate`` messages a second (a token bucket of ``message_burst``);
  breaking either drops that client and frees its row at once;
- a WebSocket from a page of another origin is refused (a page elsewhere cannot
  play on a player's behalf); clients without an Origin (scripts) are let in;
- at most ``max_players`` play and ``max_waiting`` wait; others are told so;
- a frame is sent only when the last one has left (``Connection.wants_frame``) and a
  socket's kernel buffer is kept small, so a slow client's frames are skipped instead
  of piling up; a send that takes longer than ``send_timeout`` drops the client;
  WebSocket pings find clients that vanished without closing.

It knows nothing about what the rows compute.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from neural_engine.schema import bounds
from neural_engine.serve import protocol
from neural_engine.serve.codec import Codec, encoder_pool
from neural_engine.serve.floor import Floor, Refused, run_tick
from neural_engine.serve.rows import Rows

log = logging.getLogger("neural_engine.serve")

STATIC = {"/": ("index.html", "text/html"), "/play.js": ("play.js", "text/javascript"),
          "/play.css": ("play.css", "text/css")}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SOCKET_BUFFER = 64 * 1024       # bytes the kernel may hold for one client
WRITE_BUFFER = 32 * 1024        # bytes waiting in user space before frames are skipped
MAX_TOKEN = 64


@dataclass(frozen=True)
class ServerSettings:
    message_rate: float = field(default=120.0, metadata=bounds(1.0, 10_000.0))
    message_burst: int = field(default=240, metadata=bounds(1, 100_000))
    send_timeout: float = field(default=10.0, metadata=bounds(0.1, 600.0))
    heartbeat: float = field(default=10.0, metadata=bounds(0.1, 600.0))


class TokenBucket:
    """At most ``rate`` events a second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.last = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class Connection:
    """One player's WebSocket: a bounded outbox (texts, at most one frame) and its sender."""

    def __init__(self, ws: web.WebSocketResponse, peer: str, transport, timeout: float):
        self.ws, self.peer, self.transport, self.timeout = ws, peer, transport, timeout
        self.texts: deque[str] = deque(maxlen=64)
        self.frame: bytes | None = None
        self.sending = False
        self.bytes_sent = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None

    # -- the floor's side (never blocks) -------------------------------------------
    def send_text(self, text: str) -> None:
        self.texts.append(text)
        self._wake.set()

    def send_frame(self, data: bytes) -> None:
        self.frame = data
        self._wake.set()

    @property
    def wants_frame(self) -> bool:
        buffered = self.transport.get_write_buffer_size() if self.transport else 0
        return not self.sending and self.frame is None and buffered < WRITE_BUFFER

    def close(self, code: int, reason: str) -> None:
        asyncio.ensure_future(self.ws.close(code=code, message=reason.encode()[:120]))

    # -- the sender ----------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.ensure_future(self._send_loop())

    async def stop(self) -> None:
        """End the sender. A flag as well as a cancel: ``wait_for`` may swallow a
        cancel that arrives as its send completes (Python 3.11)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=self.timeout)

    async def _send_loop(self) -> None:
        ws = self.ws
        while not ws.closed and not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                while self.texts and not ws.closed:
                    await asyncio.wait_for(ws.send_str(self.texts.popleft()), self.timeout)
                if self.frame is not None and not ws.closed:
                    data, self.frame = self.frame, None
                    self.sending = True
                    await asyncio.wait_for(ws.send_bytes(data), self.timeout)
                    self.bytes_sent += len(data)
                    self.sending = False
            except asyncio.TimeoutError:
                log.warning("serve: refused %s: a send took over %.0f s (dropped)",
                            self.peer, self.timeout)
                await ws.close(code=1008, message=b"too slow")
            except ConnectionError:
                return


def _same_origin(origin: str, host: str) -> bool:
    try:
        return urlsplit(origin).netloc.lower() == host.lower()
    except ValueError:
        return False


def _page_files() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("neural_engine.serve") / "static"
    return {path: ((folder / name).read_bytes(), kind) for path, (name, kind) in STATIC.items()}


class Server:
    """The aiohttp application around one floor and its rows."""

    def __init__(self, floor: Floor, rows: Rows, codec: Codec,
                 settings: ServerSettings = ServerSettings(),
                 thread_init: Callable[[], None] | None = None, encode_threads: int = 1):
        self.floor, self.rows, self.codec, self.settings = floor, rows, codec, settings
        self.files = _page_files()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="rows",
                                           initializer=thread_init)
        self.encoder = encoder_pool(encode_threads)
        self.connections: set[Connection] = set()
        self.refusals = 0
        self.step_seconds = self.encode_seconds = 0.0    # the rows' thread, in total
        self.failed: BaseException | None = None
        self.stopped = asyncio.Event()
        self._count = 0
        self._ticker: asyncio.Task | None = None
        self.app = web.Application(middlewares=[self._guard], client_max_size=1024)
        self.app.router.add_get("/ws", self._websocket)
        for path in self.files:
            self.app.router.add_get(path, self._file)
        self.app.on_startup.append(self._start_ticking)
        self.app.on_shutdown.append(self._shutdown)

    def refuse(self, who: str, why: str) -> None:
        self.refusals += 1
        log.warning("serve: refused %s: %s", who, why)

    # -- HTTP ----------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler):
        peer = request.remote or "?"
        if request.method not in ("GET", "HEAD"):
            self.refuse(peer, f"{request.method} {request.path[:80]} (only GET)")
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            self.refuse(peer, f"GET {request.path[:80]}: no such file")
            raise
        if not response.prepared:
            response.headers.update(HEADERS)
        return response

    async def _file(self, request: web.Request) -> web.Response:
        body, kind = self.files[request.path]
        return web.Response(body=body, content_type=kind, charset="utf-8")

    # -- WebSocket -----------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        self._count += 1
        peer = f"{request.remote}#{self._count}"
        origin = request.headers.get("Origin")
        if origin is not None and not _same_origin(origin, request.host):
            self.refuse(peer, f"a page of another origin ({origin[:80]})")
            raise web.HTTPForbidden(text="this server only plays its own page")
        ws = web.WebSocketResponse(max_msg_size=protocol.MAX_MESSAGE,
                                   heartbeat=self.settings.heartbeat, compress=False)
        await ws.prepare(request)
        transport = request.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        conn = Connection(ws, peer, transport, self.settings.send_timeout)
        token = request.query.get("resume", "")
        if len(token) > MAX_TOKEN or not token.replace("-", "").replace("_", "").isalnum():
            token = ""
        try:
            self.floor.arrive(conn, token or None)
        except Refused as exc:
            self.refuse(peer, str(exc))
            await ws.send_str(protocol.text("refused", reason="full", message=str(exc)))
            await ws.close(code=1013, message=b"full")
            return ws
        self.connections.add(conn)
        conn.start()
        keep = True
        try:
            keep = await self._read(ws, conn)
        finally:
            self.connections.discard(conn)
            self.floor.depart(conn, keep=keep)
            await conn.stop()
            if not ws.closed:
                await ws.close()
        return ws

    async def _read(self, ws: web.WebSocketResponse, conn: Connection) -> bool:
        """Feed the floor until the client leaves (True) or breaks a rule (False)."""
        bucket = TokenBucket(self.settings.message_rate, self.settings.message_burst)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                if not bucket.take():
                    return await self._drop(ws, conn, f"more than {self.settings.message_rate:g} "
                                      "messages a second")
                try:
                    message = protocol.parse(msg.data)
                except protocol.ProtocolError as exc:
                    return await self._drop(ws, conn, str(exc))
                self.floor.receive(conn, message)
            elif msg.type == WSMsgType.BINARY:
                return await self._drop(ws, conn, "binary messages are not part of the protocol")
            elif msg.type == WSMsgType.ERROR:
                return await self._drop(ws, conn, f"{ws.exception()}"[:120] or "socket error")
        return True

    async def _drop(self, ws, conn: Connection, why: str) -> bool:
        """Tell a client which rule it broke, then close its socket."""
        self.refuse(conn.peer, f"{why} (dropped)")
        await conn.stop()
        try:
            await asyncio.wait_for(ws.send_str(protocol.text("refused", reason="protocol",
                                                             message=why)), 1.0)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        await ws.close(code=1008, message=b"protocol")
        return False

    # -- the tick ------------------------------------------------------------------
    async def _start_ticking(self, app) -> None:
        self._ticker = asyncio.ensure_future(self._tick_forever())

    async def _shutdown(self, app) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for conn in list(self.connections):
            await conn.ws.close(code=1001, message=b"server shutting down")
        self.executor.shutdown(wait=True)
        if self.encoder is not None:
            self.encoder.shutdown(wait=True)

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.floor.rate
        deadline = loop.time()
        try:
            while True:
                plan = self.floor.plan()
                result = await loop.run_in_executor(self.executor, run_tick, self.rows,
                                                    self.codec, plan, self.encoder)
                self.floor.deliver(plan, result, loop.time())
                self.step_seconds += result.step_s
                self.encode_seconds += result.encode_s
                deadline += period
                delay = deadline - loop.time()
                if delay < -4 * period:
                    deadline = loop.time()          # fell behind: do not try to catch up
                await asyncio.sleep(max(delay, 0.0))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:                # noqa: BLE001 - the rows failed
            log.exception("serve: the tick failed; stopping")
            self.failed = exc
            self.stopped.set()


async def start(server: Server, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Listen on ``host:port`` (0: any free port); returns the runner and the port."""
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False,
                           shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner, runner.addresses[0][1]
