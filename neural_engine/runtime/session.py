"""The neural frame source: a world model streaming frames under the player's actions.

``NeuralSource`` meets the same interface as the simulator source. ``reset(start)``
renders a few context frames with the game's simulator at the start state, encodes
them and hands them to the sampler (the first become the attention sink); each
``step(action)`` runs one sampler tick and decodes the frame that left the window.
While the window is still filling (the first W − 1 ticks) it shows the last context
frame. On CUDA the sampler pass and the decoder are captured as CUDA graphs.

The session hides latents, the cache and the schedule from the game loop.
"""

from __future__ import annotations

import numpy as np
import torch

from neural_engine.games import Game
from neural_engine.input.actions import Action
from neural_engine.model.autoencoder import to_uint8, to_unit
from neural_engine.model.dispatch import resolve_backend
from neural_engine.model.world import WorldModel
from neural_engine.packs.start import StartState
from neural_engine.sampler.stream import (CONTEXT_FRAMES, CudaGraphPass, SamplerConfig,
                                          StreamSampler)


class NeuralSource:
    name = "neural"

    def __init__(self, game: Game, model: WorldModel, sampler: SamplerConfig,
                 device: torch.device | str = "cpu", context_frames: int = CONTEXT_FRAMES,
                 cuda_graphs: bool = True, kernels: str = "torch"):
        self.spec = game.spec
        self.device = torch.device(device)
        self.kernels = resolve_backend(kernels, self.device)
        self.model = model
        self.dtype = next(model.parameters()).dtype
        self.context_frames = context_frames
        self.sim = game.simulator(batch=1, device="cpu")
        self.sampler = StreamSampler(model.denoiser, model.schedule, sampler, batch=1,
                                     device=self.device, dtype=self.dtype, kernels=self.kernels)
        self.sampler_config = sampler
        self._action = torch.zeros(1, self.spec.actions.dim, device=self.device, dtype=self.dtype)
        # the action is written on the host, then copied to the device in one transfer
        self._action_host = torch.zeros(1, self.spec.actions.dim, dtype=self.dtype,
                                        pin_memory=self.device.type == "cuda")
        self._frame = torch.zeros(1, self.spec.height, self.spec.width, 3, dtype=torch.uint8,
                                  device=self.device)
        self._host = torch.zeros(self.spec.height, self.spec.width, 3, dtype=torch.uint8,
                                 pin_memory=self.device.type == "cuda")
        self._last_action: Action | None = None
        self._decode_graph = None
        if self.device.type == "cuda" and cuda_graphs:
            self.sampler.capture()
            self._decode_graph = CudaGraphPass(self._decode, self.device)

    @torch.no_grad()
    def _decode(self) -> None:
        frame = self.model.autoencoder.decode(self.sampler.out)      # (1, 3, H, W)
        self._frame.copy_(to_uint8(frame.float()))

    @torch.no_grad()
    def reset(self, start: StartState) -> np.ndarray:
        poses = None if start.pose is None else torch.tensor([start.pose], dtype=torch.float32)
        frames = [self.sim.reset([start.seed], poses)]
        idle = torch.zeros(1, self.spec.actions.dim)
        for _ in range(self.context_frames - 1):
            frames.append(self.sim.step(idle))
        clip = torch.stack(frames, 1).to(self.device)                 # (1, Fc, H, W, 3)
        latents = self.model.autoencoder.encode(to_unit(clip[0]).to(self.dtype))
        actions = torch.zeros(1, len(frames), self.spec.actions.dim, device=self.device,
                              dtype=self.dtype)
        self.sampler.reset(latents.unsqueeze(0), actions, seed=start.seed)
        self._last_action = None
        self._host.copy_(clip[0, -1].cpu())
        return self._host.numpy().copy()

    @torch.no_grad()
    def step(self, action: Action) -> np.ndarray:
        self.spec.actions.write(action, self._action_host[0])
        self._action.copy_(self._action_host, non_blocking=True)
        changed = self._last_action is not None and action != self._last_action
        self._last_action = action
        latent = self.sampler.step(self._action, input_changed=changed)
        if latent is None:                       # the window is still filling
            return self._host.numpy().copy()
        if self._decode_graph is not None:
            self._decode_graph.replay()
        else:
            self._decode()
        self._host.copy_(self._frame[0])
        return self._host.numpy().copy()
