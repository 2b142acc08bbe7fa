"""Saving a frame or a read-back output as a PNG file, atomically.

The image is written to a temporary file in the target's folder and renamed into
place, so the target path only ever holds a complete PNG. Uses pygame's image module,
which needs no display. Knows nothing about where the pixels came from.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pygame

from neural_engine.errors import EngineError
from neural_engine.files import publish


def save_png(path: str | os.PathLike, pixels: np.ndarray) -> Path:
    """Write ``pixels`` ``(h, w, 3)`` uint8, top row first, to ``path`` as PNG; return the path."""
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(
            f"pixels must be uint8 of shape (h, w, 3), got {pixels.dtype} {pixels.shape}"
        )
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise EngineError("cannot save screenshot: the folder does not exist", where=str(path))
    height, width, _ = pixels.shape
    image = pygame.image.frombuffer(np.ascontiguousarray(pixels), (width, height), "RGB")
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.stem}.", suffix=".png")
    except OSError as error:
        raise EngineError(f"cannot save screenshot: {error.strerror}", where=str(path)) from None
    os.close(handle)
    try:
        pygame.image.save(image, temporary)
        publish(temporary, path)
    except (OSError, pygame.error) as error:
        Path(temporary).unlink(missing_ok=True)
        reason = error.strerror if isinstance(error, OSError) else str(error)
        raise EngineError(f"cannot save screenshot: {reason}", where=str(path)) from None
    return path
