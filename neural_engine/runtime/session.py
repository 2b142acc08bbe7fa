"""The neural frame source: a world model streaming frames under the player's actions.

``NeuralSource`` meets the same interface as the simulator source, over a world session
of one row (``runtime/world.py``, which encodes, samples, decodes and, on CUDA, replays
its CUDA graphs). ``reset(start)`` takes the start's context frames (``StartFrames``:
the game's simulator at the start state) and starts the session from them (the first
become the attention sink); each ``step(action)`` writes the action on the host, copies
it to the device in one transfer, flags late binding when the held input changed, and
runs one tick. While the window is still filling (the first W − 1 ticks) it shows the
last context frame.

The source hides latents, the cache and the schedule from the game loop.
"""

from __future__ import annotations

import numpy as np
import torch

from neural_engine.games import Game
from neural_engine.input.actions import Action
from neural_engine.model.world import WorldModel
from neural_engine.packs.start import StartState
from neural_engine.runtime.start_frames import StartFrames
from neural_engine.runtime.world import WorldSession
from neural_engine.sampler.stream import CONTEXT_FRAMES, SamplerConfig


class NeuralSource:
    name = "neural"
    images = False               # start from an ``ImageStart``'s picture (``image_start``)

    def __init__(self, game: Game, model: WorldModel, sampler: SamplerConfig,
                 device: torch.device | str = "cpu", context_frames: int = CONTEXT_FRAMES,
                 cuda_graphs: bool = True, kernels: str = "torch"):
        self.spec = game.spec
        self.model = model
        self.world = WorldSession(model, sampler, 1, device, cuda_graphs=cuda_graphs,
                                  kernels=kernels)
        self.device, self.dtype = self.world.device, self.world.dtype
        self.kernels = self.world.kernels
        self.sampler_config = sampler
        self.context_frames = context_frames
        self.start_frames = StartFrames(game, context_frames, images=self.images)
        self._action = torch.zeros(1, self.spec.actions.dim, device=self.device, dtype=self.dtype)
        # the action is written on the host, then copied to the device in one transfer
        self._action_host = torch.zeros(1, self.spec.actions.dim, dtype=self.dtype,
                                        pin_memory=self.device.type == "cuda")
        self._host = torch.zeros(self.spec.height, self.spec.width, 3, dtype=torch.uint8,
                                 pin_memory=self.device.type == "cuda")
        self._last_action: Action | None = None

    @torch.no_grad()
    def reset(self, start: StartState) -> np.ndarray:
        context = self.start_frames(start)                            # (Fc, H, W, 3)
        self.world.reset_frames(context[None], seed=start.seed)
        self._last_action = None
        self._host.copy_(context[-1])
        return self._host.numpy().copy()

    @torch.no_grad()
    def step(self, action: Action) -> np.ndarray:
        self.spec.actions.write(action, self._action_host[0])
        self._action.copy_(self._action_host, non_blocking=True)
        changed = self._last_action is not None and action != self._last_action
        self._last_action = action
        frames, ready = self.world.step(self._action, changed)
        if ready[0]:                             # else the window is still filling
            self._host.copy_(frames[0])
        return self._host.numpy().copy()
