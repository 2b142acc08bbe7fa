"""Frames to bytes for the wire: PNG, JPEG or raw RGB, chosen by name.

A codec turns one (H, W, 3) uint8 frame (top row first) into the payload of a frame
message; the page decodes PNG and JPEG with the browser's image decoder
(``createImageBitmap``) and raw RGB by copying it into an ``ImageData``. Which one
the server uses by default was chosen by measuring bytes per frame, encode time here
and decode time in the browser (``docs/serve.md``; ``python -m
neural_engine.serve.codec_bench`` repeats it).

PNG and JPEG need Pillow (the ``serve`` extra); raw needs nothing. This module knows
nothing about sockets or games.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from neural_engine.errors import EngineError


@dataclass(frozen=True)
class Codec:
    name: str
    id: int                      # in the frame header
    mime: str                    # for the page's decoder ("" = raw RGB)
    lossless: bool
    encode: Callable[[np.ndarray], bytes]


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise EngineError("PNG and JPEG frames need Pillow: pip install pillow "
                          "(or use --codec raw)") from None
    return Image


def _raw(frame: np.ndarray) -> bytes:
    return np.ascontiguousarray(frame, dtype=np.uint8).tobytes()


def _pillow_encoder(kind: str, **options) -> Callable[[np.ndarray], bytes]:
    """A frame encoder through Pillow: ``kind`` "PNG" or "JPEG" with its save options."""
    image_type = _pillow()

    def encode(frame: np.ndarray) -> bytes:
        out = io.BytesIO()
        image_type.fromarray(frame).save(out, kind, **options)
        return out.getvalue()
    return encode


def _png(level: int) -> Callable[[np.ndarray], bytes]:
    return _pillow_encoder("PNG", compress_level=level)


def _jpeg(quality: int) -> Callable[[np.ndarray], bytes]:
    return _pillow_encoder("JPEG", quality=quality)


CODECS = ("png", "jpeg", "raw")


def make_codec(name: str, quality: int = 85) -> Codec:
    """The named codec; ``quality`` is JPEG's (1-95)."""
    if name == "raw":
        return Codec("raw", 0, "", True, _raw)
    if name == "png":
        return Codec("png", 1, "image/png", True, _png(1))
    if name == "jpeg":
        if not 1 <= quality <= 95:
            raise EngineError(f"--quality {quality}: JPEG quality is between 1 and 95")
        return Codec("jpeg", 2, "image/jpeg", False, _jpeg(quality))
    raise EngineError(f"unknown codec {name!r} (codecs: {', '.join(CODECS)})")


def encoder_pool(threads: int) -> ThreadPoolExecutor | None:
    """Threads that encode frames (None for one: encode in the caller's thread).

    Call it before the tick's thread is pinned to a core (``runtime.affinity``):
    threads inherit the mask of the thread that starts them, so each encoder takes
    back the cores this process had when the pool was made.
    """
    if threads <= 1:
        return None
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None

    def unpin() -> None:
        if cores is not None:
            os.sched_setaffinity(0, cores)
    return ThreadPoolExecutor(threads, thread_name_prefix="encode", initializer=unpin)


def decode(codec_id: int, payload: bytes, width: int, height: int) -> np.ndarray:
    """A payload back to (H, W, 3) uint8 (the tests' and bench's client side)."""
    if codec_id == 0:
        return np.frombuffer(payload, np.uint8).reshape(height, width, 3)
    image = _pillow().open(io.BytesIO(payload))
    return np.asarray(image.convert("RGB"))
