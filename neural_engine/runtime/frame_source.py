"""Frame sources: where the frames on screen come from.

Every source meets one interface, ``reset(start) -> frame`` and
``step(action) -> frame``, with frames as (H, W, 3) uint8 numpy arrays, top row
first. The ground-truth simulator is one source; the neural world model's session is
another. The game loop, the recorder and the presenter cannot tell them apart.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from neural_engine.games import Game, GameSpec
from neural_engine.input.actions import Action
from neural_engine.packs.start import StartState


class FrameSource(Protocol):
    spec: GameSpec
    name: str

    def reset(self, start: StartState) -> np.ndarray:
        """Begin a new world; return its first frame (H, W, 3) uint8."""

    def step(self, action: Action) -> np.ndarray:
        """Advance one tick under ``action``; return the new frame (H, W, 3) uint8."""


class SimulatorSource:
    """The game's own simulator, one environment, as a frame source."""

    name = "sim"

    def __init__(self, game: Game, device: str | torch.device = "cpu"):
        self.spec = game.spec
        self.sim = game.simulator(batch=1, device=device)
        self._action = torch.zeros(1, self.spec.actions.dim, device=self.sim.device)

    def reset(self, start: StartState) -> np.ndarray:
        poses = None
        if start.pose is not None:
            poses = torch.tensor([start.pose], dtype=torch.float32, device=self.sim.device)
        return self.sim.reset([start.seed], poses)[0].cpu().numpy()

    def step(self, action: Action) -> np.ndarray:
        self.spec.actions.write(action, self._action[0])
        return self.sim.step(self._action)[0].cpu().numpy()
