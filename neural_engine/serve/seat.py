"""One player's row: their input, their kiosk rules, and what their frames answer.

A ``Seat`` is the server's counterpart of the pygame loop's keyboard driver. Input
messages feed an ``ActionMapper`` (the pygame loop's own class, keyed by the
engine's key names): held keys are a set, mouse pixels are summed, and ``tick()``
turns them into this tick's ``Action`` and clears the motion, exactly as a window's
events between two ticks would. The seat remembers the newest input number the
action included, tick by tick, so that a frame can say which input it answers
(``ack``: the frame of tick t was conditioned on the action of tick t − delay).

Pause holds the player's action at idle (the row steps on, idle) and stops their
frames; reset asks for the start state. The seat knows nothing about sockets or the
pool; the floor moves seats between connections.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from neural_engine.input.actions import IDLE, Action, ActionSpace
from neural_engine.input.mapper import ActionMapper
from neural_engine.serve import protocol
from neural_engine.serve.rules import SeatRules, Turn


class Seat:
    def __init__(self, index: int, client: Any, token: str, space: ActionSpace,
                 bindings: dict[str, tuple[str, ...]], sensitivity: float,
                 rules: SeatRules, delay: int):
        self.index, self.client, self.token = index, client, token
        self.mapper = ActionMapper(space, bindings, sensitivity, code_of=str.lower)
        self.rules = rules
        self.delay = delay
        self.paused = False
        self.touched = False                # the controls were used since the last tick
        self.reset_asked = False
        self.seq = 0                        # newest input message number received
        self.history: deque[int] = deque(maxlen=delay + 1)   # seq of each tick's action
        self.world_ticks = 0                # ticks since the world (re)started
        self.grace_until: int | None = None  # floor tick until which a lost client may return
        self.sent_status: tuple | None = None
        self.frames_sent = 0
        self.frames_dropped = 0

    # -- input ---------------------------------------------------------------------
    def receive(self, message: protocol.ClientMessage) -> None:
        """One checked client message (pings are the server's business)."""
        if isinstance(message, protocol.Key):
            self._number(message.seq)
            if self.paused:
                return
            if message.down:
                self.mapper.key_down(message.key)
                self.touched = True
            else:
                self.mapper.key_up(message.key)
        elif isinstance(message, protocol.Mouse):
            self._number(message.seq)
            if not self.paused and (message.dx or message.dy):
                self.mapper.mouse_motion(message.dx, message.dy)
                self.touched = True
        elif isinstance(message, protocol.Blur):
            self._number(message.seq)
            self.mapper.release_all()
        elif isinstance(message, protocol.Pause):
            self.paused = message.on
            self.mapper.release_all()
        elif isinstance(message, protocol.Reset):
            self.reset_asked = True

    def _number(self, seq: int) -> None:
        self.seq = max(self.seq, seq)

    def lost(self) -> None:
        """The client went away: nothing is held any more."""
        self.mapper.release_all()
        self.touched = False

    # -- one tick ------------------------------------------------------------------
    def turn(self) -> Turn:
        """This tick's action through the kiosk rules."""
        action = self.mapper.tick()
        touched = self.touched and self.client is not None
        self.touched = False
        if self.paused or self.client is None:
            action, touched = IDLE, False
        turn = self.rules.turn(action, touched)
        if self.reset_asked:
            self.reset_asked = False
            turn = Turn(turn.action, self.rules.restart(), turn.mode, turn.caption,
                        turn.session_over)
        return turn

    def restarted(self) -> None:
        self.history.clear()
        self.world_ticks = 0

    def stepped(self) -> None:
        """The row stepped under this tick's action (which included input ``seq``)."""
        self.history.append(self.seq)
        self.world_ticks += 1

    @property
    def ack(self) -> int:
        """The newest input number the frame of this tick was conditioned on."""
        return self.history[0] if len(self.history) > self.delay else 0

    def status(self) -> tuple:
        return (self.rules.mode, self.rules.caption(), self.paused)
