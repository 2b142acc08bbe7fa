"""The frames of every row, stepped together: the simulator's, or the world model's.

``Rows`` is what the server steps each tick: ``start(seat, start)`` begins a world in
a row and returns its first frame, ``stop(seat)`` ends it, and ``step(actions)``
advances every live row under its action (one row of ``actions`` (N, A) per seat)
and returns the rows that have a new frame, each (H, W, 3) uint8 (views of a buffer
that the next step overwrites). ``delay`` is how many ticks after an action the
first frame conditioned on it comes out.

- ``SimRows``: the game's ground-truth simulator, one environment per row (a game's
  simulator resets all its environments at once, so each row has its own); delay 0.
- ``NeuralRows``: the world model's ``WorldSession``, all rows in one batched pass (a
  CUDA graph on a GPU), one host copy of all frames per tick. A row's context frames
  (``StartFrames``) are rendered by the simulator at its start state (or are its start
  image); it shows the last of them until its window has filled; delay W − 1.

Rows know nothing about players, sockets or codecs; all calls come from one thread.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from neural_engine.errors import EngineError
from neural_engine.games import Game
from neural_engine.packs.start import StartState
from neural_engine.runtime.start_frames import StartFrames
from neural_engine.runtime.world import WorldSession
from neural_engine.sampler.stream import CONTEXT_FRAMES


class Rows(Protocol):
    name: str
    capacity: int
    delay: int

    def start(self, seat: int, start: StartState) -> np.ndarray: ...

    def stop(self, seat: int) -> None: ...

    def step(self, actions: torch.Tensor) -> dict[int, np.ndarray]: ...


def _poses(start: StartState) -> torch.Tensor | None:
    return None if start.pose is None else torch.tensor([start.pose], dtype=torch.float32)


class SimRows:
    """One simulator environment per row, stepped one after another on the CPU."""

    name = "sim"
    delay = 0

    def __init__(self, game: Game, capacity: int):
        self.game, self.capacity = game, capacity
        self.sims = [game.simulator(batch=1, device="cpu") for _ in range(capacity)]
        self.live = [False] * capacity

    def start(self, seat: int, start: StartState) -> np.ndarray:
        self.live[seat] = True
        return self.sims[seat].reset([start.seed], _poses(start))[0].numpy()

    def stop(self, seat: int) -> None:
        self.live[seat] = False

    def step(self, actions: torch.Tensor) -> dict[int, np.ndarray]:
        return {seat: self.sims[seat].step(actions[seat:seat + 1])[0].numpy()
                for seat in range(self.capacity) if self.live[seat]}


class NeuralRows:
    """The world model's session; seat i may sit in any of its rows."""

    name = "neural"

    def __init__(self, game: Game, world: WorldSession, context_frames: int = CONTEXT_FRAMES):
        spec = game.spec
        self.spec, self.world, self.capacity = spec, world, world.capacity
        self.delay = world.sampler.cfg.window - 1
        self.start_frames = StartFrames(game, context_frames, images=True)
        self.slot_of: dict[int, int] = {}
        n, a = world.capacity, spec.actions.dim
        cuda = world.device.type == "cuda"
        self._actions = torch.zeros(n, a, pin_memory=cuda)               # (N, A) by row
        self._previous = torch.zeros(n, a)
        self._device_actions = torch.zeros(n, a, device=world.device, dtype=world.dtype)
        self._host = torch.zeros(n, spec.height, spec.width, 3, dtype=torch.uint8,
                                 pin_memory=cuda)                        # (N, H, W, 3)
        self._frames = self._host.numpy()

    def start(self, seat: int, start: StartState) -> np.ndarray:
        if seat in self.slot_of:
            self.stop(seat)
        context = self.start_frames(start)                              # (Fc, H, W, 3)
        slot = self.world.join_frames(context, seed=start.seed)
        self.slot_of[seat] = slot
        self._previous[slot] = 0.0
        return context[-1].numpy().copy()

    def stop(self, seat: int) -> None:
        slot = self.slot_of.pop(seat, None)
        if slot is None:
            raise EngineError(f"seat {seat} has no world")
        self.world.leave(slot)

    def step(self, actions: torch.Tensor) -> dict[int, np.ndarray]:
        if not self.slot_of:
            return {}
        self._actions.zero_()
        for seat, slot in self.slot_of.items():
            self._actions[slot] = actions[seat]
        changed = (self._actions != self._previous).any(1).tolist()
        self._previous.copy_(self._actions)
        self._device_actions.copy_(self._actions, non_blocking=True)
        frames, ready = self.world.step(self._device_actions, changed)
        if not any(ready):
            return {}
        self._host.copy_(frames)                              # one copy for every row
        return {seat: self._frames[slot] for seat, slot in self.slot_of.items()
                if ready[slot]}
