"""Starting the neural engine from a picture: a start state that carries a PNG.

``ImageStartSource`` is the neural frame source whose start frames take pictures: given
an ``ImageStart`` (``packs.start``) with an image, the image is every context frame
instead of the simulator's frames at the seed and pose; other starts reset as usual.
The image is read once (``StartFrames``) until ``clear_images``.

It knows start states and PNG files, not whole packs.
"""

from __future__ import annotations

import numpy as np

from neural_engine.runtime.session import NeuralSource


class ImageStartSource(NeuralSource):
    """``NeuralSource`` that can start from an image (see the module docstring)."""

    images = True

    def image(self, path: str) -> np.ndarray:
        """(H, W, 3) uint8 of the start image, read once."""
        return self.start_frames.image(path)

    def clear_images(self) -> None:
        """Forget the images read so far (their files may have changed)."""
        self.start_frames.clear_images()
