"""The floor: who holds which row, who waits, and what each tick asks of the rows.

Every connected client either holds a seat (a row of the pool) or waits in a line
of at most ``max_waiting``; anyone beyond is refused. A free row goes to the first
in line. A row whose holder does not play (``SeatRules.yieldable``: attract mode,
a session that ended, or a long idle spell) goes to the first in line while anyone
waits, and its holder joins the back of the line. A client that loses its
connection keeps its seat for ``reconnect_grace`` seconds (the row steps on, idle)
and takes it back by presenting the seat's token; a client dropped for breaking
the rules loses its seat at once.

Each tick has three phases so that the rows are only ever touched by one thread:
``plan()`` (here, on the server's event loop) turns every seat's input into the
tick's actions and lists the rows to start or stop; ``run_tick`` (on the rows'
thread) does that, steps the rows and encodes the frames of the clients that can
take one; ``deliver()`` (back here) sends them. A client that is still sending its
last frame gets no new one: its frame is skipped, never queued, so a slow client
costs neither memory nor encoding.

The floor knows nothing about aiohttp: a client is anything with ``peer``,
``send_text``, ``send_frame``, ``wants_frame`` and ``close``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from neural_engine.games import GameSpec
from neural_engine.packs import ScenarioPack
from neural_engine.packs.start import StartState
from neural_engine.runtime.loop import RateMeter
from neural_engine.schema import bounds
from neural_engine.serve import protocol
from neural_engine.serve.codec import Codec
from neural_engine.serve.rows import Rows
from neural_engine.serve.rules import SeatRules
from neural_engine.serve.seat import Seat

log = logging.getLogger("neural_engine.serve")

STATUS_SECONDS = 1.0           # how often every client hears the floor's numbers
ENCODE_IN_PARALLEL = 8         # frames in a tick before encoding spreads over threads


class Client(Protocol):
    peer: str

    def send_text(self, text: str) -> None: ...

    def send_frame(self, data: bytes) -> None: ...

    @property
    def wants_frame(self) -> bool: ...

    def close(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True)
class FloorSettings:
    """How many play, how many wait, and when a row changes hands (seconds)."""

    max_players: int = field(default=8, metadata=bounds(1, 1024))
    max_waiting: int = field(default=32, metadata=bounds(0, 4096))
    release_after: float = field(default=60.0, metadata=bounds(0.0, 86400.0))
    session_limit: float | None = None     # None: the pack's [kiosk] session_limit
    reconnect_grace: float = field(default=10.0, metadata=bounds(0.0, 3600.0))


class Refused(Exception):
    """A client the floor cannot take; the message is for them and for the log."""


@dataclass
class TickPlan:
    tick: int
    ops: list[tuple[int, StartState | None]]      # per row: start here (None: stop)
    actions: torch.Tensor                         # (N, A), one row per seat
    stepped: list[int]                            # seats whose row steps this tick
    wanted: set[int]                              # seats whose client takes a frame


@dataclass
class TickResult:
    frames: dict[int, bytes]                      # seat → encoded frame
    step_s: float = 0.0                           # starting, stopping and stepping rows
    encode_s: float = 0.0                         # encoding the frames


def run_tick(rows: Rows, codec: Codec, plan: TickPlan, encoder: Executor | None = None
             ) -> TickResult:
    """The rows' side of a tick: start and stop rows, step them, encode wanted frames
    (on ``encoder``'s threads when given: Pillow lets go of the GIL while it encodes)."""
    t0 = time.perf_counter()
    firsts = {}
    for seat, start in plan.ops:
        if start is None:
            rows.stop(seat)
            firsts.pop(seat, None)
        else:
            firsts[seat] = rows.start(seat, start)
    new = rows.step(plan.actions)
    t1 = time.perf_counter()
    chosen = {}
    for seat in plan.wanted:
        frame = new.get(seat)
        if frame is None:
            frame = firsts.get(seat)
        if frame is not None:
            chosen[seat] = frame
    if encoder is None or len(chosen) < ENCODE_IN_PARALLEL:
        frames = {seat: codec.encode(frame) for seat, frame in chosen.items()}
    else:
        frames = dict(zip(chosen, encoder.map(codec.encode, chosen.values())))
    return TickResult(frames, t1 - t0, time.perf_counter() - t1)


class Floor:
    def __init__(self, spec: GameSpec, pack: ScenarioPack, settings: FloorSettings,
                 bindings: dict[str, tuple[str, ...]], sensitivity: float, rows_delay: int,
                 welcome: dict[str, Any], codec: Codec):
        self.spec, self.pack, self.settings = spec, pack, settings
        self.bindings, self.sensitivity = bindings, sensitivity
        self.delay, self.welcome, self.codec = rows_delay, welcome, codec
        self.rate = spec.tick_rate
        self.seats: list[Seat | None] = [None] * settings.max_players
        self.line: deque[Client] = deque()
        self.seat_of: dict[Client, Seat] = {}
        self.tick = 0
        self.meter = RateMeter(window=2 * spec.tick_rate)
        self._actions = torch.zeros(settings.max_players, spec.actions.dim)   # (N, A)
        self._ops: list[tuple[int, StartState | None]] = []
        self._restarted: set[int] = set()

    # -- clients come and go -------------------------------------------------------
    def arrive(self, client: Client, token: str | None = None) -> str:
        """Seat, resume or queue a new client: "seated", "resumed" or "waiting"."""
        if token:
            seat = next((s for s in self.seats if s is not None and s.client is None
                         and secrets.compare_digest(s.token, token)), None)
            if seat is not None:
                seat.client, seat.grace_until = client, None
                self.seat_of[client] = seat
                log.info("serve: %s took back row %d", client.peer, seat.index)
                self._welcome(seat, resumed=True)
                return "resumed"
        free = self._free_row()
        if free is not None and not self.line:
            self._seat(client, free)
            return "seated"
        if len(self.line) >= self.settings.max_waiting:
            raise Refused(f"the server is full ({self.settings.max_players} playing, "
                          f"{len(self.line)} waiting)")
        self.line.append(client)
        self._tell_line()
        return "waiting"

    def depart(self, client: Client, keep: bool = True) -> None:
        """A client's connection ended; ``keep``: hold its seat for the grace time."""
        seat = self.seat_of.pop(client, None)
        if seat is None:
            if client in self.line:
                self.line.remove(client)
                self._tell_line()
            return
        grace = round(self.settings.reconnect_grace * self.rate)
        seat.client = None
        seat.lost()
        if keep and grace > 0:
            seat.grace_until = self.tick + grace
        else:
            self._free(seat)

    def receive(self, client: Client, message: protocol.ClientMessage) -> None:
        seat = self.seat_of.get(client)
        if isinstance(message, protocol.Ping):
            client.send_text(protocol.text("pong", ts=message.ts))
        elif seat is not None:
            seat.receive(message)

    @property
    def players(self) -> int:
        return sum(s is not None for s in self.seats)

    # -- seats ---------------------------------------------------------------------
    def _free_row(self) -> int | None:
        return next((i for i, s in enumerate(self.seats) if s is None), None)

    def _seat(self, client: Client, row: int) -> Seat:
        rules = SeatRules(self.pack, self.settings.release_after, self.settings.session_limit)
        seat = Seat(row, client, secrets.token_urlsafe(18), self.spec.actions, self.bindings,
                    self.sensitivity, rules, self.delay)
        self.seats[row] = seat
        self.seat_of[client] = seat
        self._restart(seat, rules.start)
        log.info("serve: %s seated at row %d (%d/%d playing)", client.peer, row,
                 self.players, len(self.seats))
        self._welcome(seat)
        return seat

    def _welcome(self, seat: Seat, resumed: bool = False) -> None:
        seat.sent_status = None
        seat.client.send_text(protocol.text("welcome", **self.welcome, token=seat.token,
                                            row=seat.index, resumed=resumed))

    def _free(self, seat: Seat) -> None:
        self.seats[seat.index] = None
        self._ops.append((seat.index, None))
        log.info("serve: row %d free (%d/%d playing)", seat.index, self.players,
                 len(self.seats))

    def _restart(self, seat: Seat, start: StartState) -> None:
        self._ops.append((seat.index, start))
        self._restarted.add(seat.index)
        seat.restarted()

    def _tell_line(self) -> None:
        for place, client in enumerate(self.line, 1):
            client.send_text(protocol.text("wait", position=place, capacity=len(self.seats),
                                           waiting=len(self.line)))

    # -- one tick ------------------------------------------------------------------
    def plan(self) -> TickPlan:
        """Seat the line, apply every seat's rules, and gather the tick's actions."""
        self.tick += 1
        for seat in self.seats:
            if seat is not None and seat.grace_until is not None and self.tick >= seat.grace_until:
                log.info("serve: row %d: its player did not come back", seat.index)
                self._free(seat)
        while self.line and (row := self._free_row()) is not None:
            self._seat(self.line.popleft(), row)
            self._tell_line()
        self._actions.zero_()
        stepped = []
        for seat in self.seats:
            if seat is None:
                continue
            turn = seat.turn()
            if self.line and seat.client is not None and (turn.session_over
                                                          or seat.rules.yieldable):
                self._hand_over(seat, "session" if turn.session_over else "idle")
            else:
                if turn.restart is not None:
                    self._restart(seat, turn.restart)
                self.spec.actions.write(turn.action, self._actions[seat.index])
            stepped.append(seat.index)         # a handed-over row starts idle
        wanted = set()
        for index in stepped:
            seat = self.seats[index]
            if seat.client is None or seat.paused:
                continue
            if seat.client.wants_frame:
                wanted.add(index)
            else:
                seat.frames_dropped += 1       # still sending the last one: skip this
        ops, self._ops = self._ops, []
        return TickPlan(self.tick, ops, self._actions, stepped, wanted)

    def _hand_over(self, seat: Seat, reason: str) -> None:
        """Give a row that nobody plays to the first in line; its holder queues again."""
        holder = seat.client
        message = (seat.rules.settings.session_over_caption if reason == "session"
                   else "You were idle, so your row went to a waiting player")
        log.info("serve: row %d: %s handed over (%s)", seat.index, holder.peer, reason)
        holder.send_text(protocol.text("released", reason=reason, message=message))
        del self.seat_of[holder]
        self.seats[seat.index] = None
        newcomer = self.line.popleft()
        self.line.append(holder)
        self._seat(newcomer, seat.index)
        self._tell_line()

    def deliver(self, plan: TickPlan, result: TickResult, now: float) -> None:
        """Send each seat its frame and, now and then, the floor's numbers."""
        self.meter.tick(now)
        height, width = self.spec.height, self.spec.width
        for index in plan.stepped:
            seat = self.seats[index]
            if seat is not None:
                seat.stepped()
        for index, payload in result.frames.items():
            seat = self.seats[index]
            if seat is None or seat.client is None:
                continue
            first = index in self._restarted
            seat.client.send_frame(protocol.frame_message(
                self.codec.id, seat.world_ticks, seat.ack, width, height, payload, first))
            seat.frames_sent += 1
        self._restarted -= set(result.frames)
        periodic = self.tick % max(1, round(STATUS_SECONDS * self.rate)) == 0
        for seat in self.seats:
            if seat is None or seat.client is None:
                continue
            status = seat.status()
            if periodic or status != seat.sent_status:
                seat.sent_status = status
                mode, caption, paused = status
                seat.client.send_text(protocol.text(
                    "status", mode=mode, caption=list(caption), paused=paused,
                    tick_rate=round(self.meter.rate, 2), players=self.players,
                    waiting=len(self.line), dropped=seat.frames_dropped))
