"""Start frames: the clean context frames a start state gives a neural stream.

``StartFrames(start)`` is (Fc, H, W, 3) uint8 on the CPU: the game's simulator
rendered at the start's seed and pose and then idle for Fc − 1 ticks, or, when it
takes images and the start is an ``ImageStart`` with a picture, that picture as every
context frame. The world session encodes them; its frame source shows the last one
until the window has filled.

It knows start states, the game's simulator and PNG files (each read once, until
``clear_images``), not sessions, latents or packs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from neural_engine.games import Game
from neural_engine.packs.start import ImageStart, StartState
from neural_engine.sampler.stream import CONTEXT_FRAMES


class StartFrames:
    """Context frames of start states for one game (see the module docstring)."""

    def __init__(self, game: Game, frames: int = CONTEXT_FRAMES, images: bool = False):
        self.spec, self.frames, self.images = game.spec, frames, images
        self.sim = game.simulator(batch=1, device="cpu")
        self._images: dict[str, np.ndarray] = {}

    def __call__(self, start: StartState) -> torch.Tensor:
        """(Fc, H, W, 3) uint8 context frames of ``start``."""
        if self.images and isinstance(start, ImageStart) and start.image:
            frame = torch.from_numpy(self.image(start.image))                 # (H, W, 3)
            return frame.expand(self.frames, -1, -1, -1)
        poses = None if start.pose is None else torch.tensor([start.pose], dtype=torch.float32)
        frames = [self.sim.reset([start.seed], poses)[0]]
        idle = torch.zeros(1, self.spec.actions.dim)
        for _ in range(self.frames - 1):
            frames.append(self.sim.step(idle)[0])
        return torch.stack(frames)

    def image(self, path: str) -> np.ndarray:
        """(H, W, 3) uint8 of a start image, read once."""
        if path not in self._images:
            from neural_engine.packs.png import read_png

            self._images[path] = read_png(Path(path), (self.spec.width, self.spec.height))
        return self._images[path]

    def clear_images(self) -> None:
        """Forget the images read so far (their files may have changed)."""
        self._images.clear()
