"""Writing frames to files without the presenter: PNG (stdlib only) and mp4 (PyAV).

Training and evaluation write sample videos on machines that may lack PyAV (the GPU
machine has no ffmpeg bindings): ``write_video`` writes an mp4 when PyAV is there and
otherwise a PNG contact sheet of the frames, and says which it wrote.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np


def encode_png(pixels: np.ndarray) -> bytes:
    """(H, W, 3) uint8 → PNG bytes."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w, _ = pixels.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), pixels.reshape(h, w * 3)], 1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def write_png(path: str | os.PathLike, pixels: np.ndarray) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(encode_png(pixels))
    os.replace(tmp, path)
    return path


def contact_sheet(frames: np.ndarray, columns: int = 8) -> np.ndarray:
    """(T, H, W, 3) → one image with the frames in rows of ``columns``."""
    t, h, w, c = frames.shape
    rows = -(-t // columns)
    sheet = np.zeros((rows * h, columns * w, c), np.uint8)
    for i, frame in enumerate(frames):
        r, col = divmod(i, columns)
        sheet[r * h:(r + 1) * h, col * w:(col + 1) * w] = frame
    return sheet


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float) -> Path:
    """Write (T, H, W, 3) uint8 frames as ``path`` (.mp4) or, without PyAV, a .png sheet."""
    path = Path(path)
    frames = np.asarray(frames, dtype=np.uint8)
    try:
        from neural_engine.runtime.recorder import Mp4Recorder
    except ImportError:
        return write_png(path.with_suffix(".png"), contact_sheet(frames))
    with Mp4Recorder(path, fps=fps, size=(frames.shape[2], frames.shape[1])) as rec:
        for frame in frames:
            rec.write(frame)
    return path
