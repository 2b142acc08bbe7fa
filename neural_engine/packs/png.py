"""Start images: PNG files read within bounds before any decoder sees them.

A PNG's image data is a zlib stream, and a few megabytes of it can inflate to
gigabytes; ancillary chunks (colour profiles, compressed text) are inflated by
decoders too. ``read_png`` therefore walks the chunks itself: it checks the header
(the game's frame size, a bit depth and colour type PNG allows), the CRC of every
chunk, and inflates the image data with the output capped at exactly the size the
header implies, refusing a stream that would give more or less. Only then is a
minimal PNG (header, palette, transparency, the image data recompressed, end) handed
to pygame to decode. Nothing else in the file reaches a decoder.

This module knows PNG, not packs.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from neural_engine.errors import EngineError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Colour type → (channels, allowed bit depths).
COLOUR_TYPES = {0: (1, (1, 2, 4, 8, 16)), 2: (3, (8, 16)), 3: (1, (1, 2, 4, 8)),
                4: (2, (8, 16)), 6: (4, (8, 16))}
KEPT = (b"IHDR", b"PLTE", b"tRNS")          # chunks handed on besides the image data
# Adam7 passes: (first column, first row, column step, row step).
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2))
INFLATE_PIECE = 1 << 16


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header; EngineError if it is not a PNG."""
    if len(data) < 24 or not data.startswith(SIGNATURE) or data[12:16] != b"IHDR":
        raise EngineError("not a PNG image")
    return struct.unpack(">II", data[16:24])


def raw_size(width: int, height: int, depth: int, channels: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines (a filter byte per row) the header implies."""
    passes = ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        cols, rows = max(0, (width - x0 + dx - 1) // dx), max(0, (height - y0 + dy - 1) // dy)
        if cols and rows:
            total += rows * (1 + (cols * channels * depth + 7) // 8)
    return total


def _name(kind: bytes) -> str:
    text = kind.decode("latin-1")
    return text if text.isalpha() else repr(kind)


def _chunks(data: bytes):
    """(type, payload) of each chunk after the signature, CRCs checked."""
    pos = len(SIGNATURE)
    while pos < len(data):
        if pos + 12 > len(data):
            raise EngineError("corrupt PNG image (a chunk is cut short)")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise EngineError(f"corrupt PNG image (chunk {_name(kind)} is cut short)")
        payload = data[pos + 8:pos + 8 + length]
        if zlib.crc32(kind + payload) & 0xFFFFFFFF != struct.unpack(">I", data[end - 4:end])[0]:
            raise EngineError(f"corrupt PNG image (chunk {_name(kind)} fails its CRC)")
        yield kind, payload
        if kind == b"IEND":
            return
        pos = end
    raise EngineError("corrupt PNG image (no IEND chunk: cut short?)")


def _inflate(compressed: list[bytes], expected: int) -> bytes:
    """The image data inflated, refused unless it is exactly ``expected`` bytes."""
    inflater = zlib.decompressobj()
    out = bytearray()
    try:
        for piece in compressed:
            while piece:
                out += inflater.decompress(piece, expected + 1 - len(out))
                if len(out) > expected:
                    raise EngineError(f"the PNG's image data inflates to more than the "
                                      f"{expected} bytes its size needs")
                piece = inflater.unconsumed_tail
                if inflater.eof:
                    break
            if inflater.eof:
                break
    except zlib.error as exc:
        raise EngineError(f"corrupt PNG image (image data: {exc})") from None
    if not inflater.eof or len(out) != expected:
        raise EngineError(f"corrupt PNG image (its image data ends after {len(out)} of "
                          f"{expected} bytes)")
    return bytes(out)


def minimal_png(data: bytes, size: tuple[int, int]) -> bytes:
    """``data`` checked (module docstring) and rebuilt from its critical chunks."""
    width, height = png_size(data)
    if (width, height) != tuple(size):
        raise EngineError(f"image is {width}×{height} pixels; the game's frames are "
                          f"{size[0]}×{size[1]}")
    kept: dict[bytes, bytes] = {}
    compressed: list[bytes] = []
    for kind, payload in _chunks(data):
        if kind == b"IDAT":
            compressed.append(payload)
        elif kind in KEPT:
            if kind in kept:
                raise EngineError(f"corrupt PNG image (two {_name(kind)} chunks)")
            kept[kind] = payload
        elif kind != b"IEND" and kind[0:1].isupper():
            raise EngineError(f"PNG chunk {_name(kind)} is not one this reader knows")
    ihdr = kept[b"IHDR"]
    if len(ihdr) != 13:
        raise EngineError("corrupt PNG image (its header is not 13 bytes)")
    _, _, depth, colour, method, filtering, interlace = struct.unpack(">IIBBBBB", ihdr)
    channels, depths = COLOUR_TYPES.get(colour, (0, ()))
    if depth not in depths or method or filtering or interlace > 1:
        raise EngineError(f"not a PNG this reader knows (bit depth {depth}, colour type "
                          f"{colour}, interlace {interlace})")
    if colour == 3 and b"PLTE" not in kept:
        raise EngineError("corrupt PNG image (a palette image without a palette)")
    raw = _inflate(compressed, raw_size(width, height, depth, channels, bool(interlace)))
    chunks = [(k, kept[k]) for k in KEPT if k in kept] + [(b"IDAT", zlib.compress(raw, 1)),
                                                          (b"IEND", b"")]
    return SIGNATURE + b"".join(struct.pack(">I", len(p)) + k + p
                                + struct.pack(">I", zlib.crc32(k + p) & 0xFFFFFFFF)
                                for k, p in chunks)


def read_png(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The image at ``path`` as (H, W, 3) uint8, top row first; it must be ``size`` (w, h)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EngineError(f"cannot read: {exc.strerror}", where=str(path)) from None
    try:
        clean = minimal_png(data, size)
    except EngineError as exc:
        raise EngineError(exc.message, where=str(path)) from None
    import pygame

    try:
        with _quiet_stderr():                 # libpng prints its own complaints there
            surface = pygame.image.load(io.BytesIO(clean), "start.png")
        pixels = pygame.image.tobytes(surface, "RGB")
    except (pygame.error, ValueError) as exc:
        raise EngineError(f"corrupt PNG image ({exc})", where=str(path)) from None
    return np.frombuffer(pixels, dtype=np.uint8).reshape(size[1], size[0], 3).copy()


@contextmanager
def _quiet_stderr():
    """Silence what C libraries write to file descriptor 2 (the error is reported instead)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
