"""Serving tests: an in-process server on loopback, the simulator's rows that remember
what they did, and a WebSocket player that keeps what it receives."""

from __future__ import annotations

import argparse
import asyncio
import json
from contextlib import asynccontextmanager

import numpy as np
import pytest
import torch

pytest.importorskip("aiohttp", reason="serving needs aiohttp (the serve extra)")
pytest.importorskip("PIL", reason="serving needs Pillow (the serve extra)")

import aiohttp  # noqa: E402

from neural_engine.cli.serve import build_floor  # noqa: E402
from neural_engine.games import load_game  # noqa: E402
from neural_engine.packs import ScenarioPack  # noqa: E402
from neural_engine.serve import protocol  # noqa: E402
from neural_engine.serve.codec import decode, make_codec  # noqa: E402
from neural_engine.serve.rows import SimRows  # noqa: E402
from neural_engine.serve.server import Server, ServerSettings, start  # noqa: E402

GAME = load_game("maze")


class RecordingRows(SimRows):
    """The simulator's rows, remembering each world's start and the actions it stepped."""

    def __init__(self, game, capacity):
        super().__init__(game, capacity)
        self.starts: dict[int, list] = {}         # seat → [start, action, action, ...]
        self.worlds: list[tuple[int, list]] = []  # every world ever started, in order

    def start(self, seat, start):
        self.starts[seat] = [start]
        self.worlds.append((seat, self.starts[seat]))
        return super().start(seat, start)

    def step(self, actions):
        for seat in range(self.capacity):
            if self.live[seat]:
                self.starts[seat].append(actions[seat].clone())
        return super().step(actions)


def replay(world: list, ticks: int) -> np.ndarray:
    """The simulator's frame after ``ticks`` steps of a recorded world."""
    start, actions = world[0], world[1:]
    sim = GAME.simulator(batch=1)
    poses = None if start.pose is None else torch.tensor([start.pose])
    frame = sim.reset([start.seed], poses)[0]
    for action in actions[:ticks]:
        frame = sim.step(action[None])[0]
    return frame.numpy()


def make_server(capacity=2, pack=None, codec="png", waiting=8, release_after=60.0,
                session_limit=None, grace=0.0, rate=120.0, burst=240):
    pack = pack or ScenarioPack.bare(GAME.spec)
    args = argparse.Namespace(max_players=capacity, max_waiting=waiting,
                              release_after=release_after, session_limit=session_limit,
                              reconnect_grace=grace)
    rows = RecordingRows(GAME, capacity)
    chosen = make_codec(codec)
    floor = build_floor(args, GAME, pack, rows, chosen, pack.bindings(), 1.0)
    return Server(floor, rows, chosen, ServerSettings(message_rate=rate, message_burst=burst))


@asynccontextmanager
async def running(server):
    runner, port = await start(server, "127.0.0.1", 0)
    try:
        yield port
    finally:
        await runner.cleanup()


class Player:
    """A WebSocket client that keeps every text and frame it receives."""

    def __init__(self, session, ws):
        self.session, self.ws = session, ws
        self.texts: list[dict] = []
        self.frames: list[tuple[dict, bytes]] = []
        self.seq = 0
        self.closed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def join(cls, port, query="", headers=None):
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(f"http://127.0.0.1:{port}/ws{query}", headers=headers)
        return cls(session, ws)

    async def _read(self):
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.texts.append(json.loads(msg.data))
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self.frames.append(protocol.read_frame(msg.data))
        self.closed.set()

    def kinds(self, kind):
        return [t for t in self.texts if t["t"] == kind]

    @property
    def row(self):
        return self.kinds("welcome")[-1]["row"]

    async def send(self, **message):
        await self.ws.send_str(json.dumps(message))

    async def key(self, name, down=True):
        self.seq += 1
        await self.send(t="key", key=name, down=down, seq=self.seq)

    async def until(self, condition, timeout=20.0):
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"gave up waiting; texts: {self.texts[-3:]}")
            await asyncio.sleep(0.02)

    def picture(self, index=-1) -> np.ndarray:
        header, payload = self.frames[index]
        return decode(header["codec"], payload, header["width"], header["height"])

    async def leave(self):
        await self.ws.close()
        await self.session.close()
        self._reader.cancel()
