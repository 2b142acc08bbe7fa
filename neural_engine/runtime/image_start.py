"""Starting the neural engine from a picture: a start state that carries a PNG.

``ImageStartSource`` is the neural frame source that, given an ``ImageStart``
(``packs.start``), encodes the image as every context frame instead of rendering the
simulator at the seed and pose; other starts reset as usual.

It knows start states and PNG files, not whole packs; it reads one PNG per image, once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from neural_engine.model.autoencoder import to_unit
from neural_engine.packs.start import ImageStart, StartState
from neural_engine.runtime.session import NeuralSource


class ImageStartSource(NeuralSource):
    """``NeuralSource`` that can start from an image (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._images: dict[str, np.ndarray] = {}

    def image(self, path: str) -> np.ndarray:
        """(H, W, 3) uint8 of the start image, read once."""
        if path not in self._images:
            from neural_engine.packs.png import read_png

            self._images[path] = read_png(Path(path), (self.spec.width, self.spec.height))
        return self._images[path]

    def clear_images(self) -> None:
        """Forget the images read so far (their files may have changed)."""
        self._images.clear()

    @torch.no_grad()
    def reset(self, start: StartState) -> np.ndarray:
        if not isinstance(start, ImageStart) or not start.image:
            return super().reset(start)
        image = self.image(start.image)
        frame = torch.from_numpy(image)                                    # (H, W, 3)
        clip = frame.to(self.device).expand(self.context_frames, -1, -1, -1)  # (Fc, H, W, 3)
        latents = self.model.autoencoder.encode(to_unit(clip).to(self.dtype))  # (Fc, C, h, w)
        actions = torch.zeros(1, self.context_frames, self.spec.actions.dim,
                              device=self.device, dtype=self.dtype)
        self.sampler.reset(latents.unsqueeze(0), actions, seed=start.seed)
        self._last_action = None
        self._host.copy_(frame)
        return image.copy()
