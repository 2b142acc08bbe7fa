"""The wire format between the page and the server.

The page sends JSON text messages, one object each, at most ``MAX_MESSAGE`` bytes::

    {"t": "key", "key": "w", "down": true, "seq": 12}   a key (an engine key name)
    {"t": "mouse", "dx": -14, "dy": 3, "seq": 13}       mouse pixels since the last one
    {"t": "blur", "seq": 14}                            the page lost focus: release all
    {"t": "pause", "on": true}                          pause or resume this player
    {"t": "reset"}                                      back to the start state
    {"t": "ping", "ts": 1234.5}                         answered by a pong with ts

``seq`` numbers the page's input messages (key, mouse, blur); every frame names the
newest one that the frame's action included, so the page measures its own
input-to-frame latency. Anything else (not JSON, not an object, another type, a
missing or extra field, a wrong type, a number out of range) is a ``ProtocolError``,
and the server drops the client that sent it.

The server sends JSON text messages (``welcome``, ``wait``, ``status``, ``released``,
``refused``, ``pong``) and one binary message per frame: a 16-byte header
(``FRAME_HEADER``: version, codec, flags, tick, ack, width, height; little-endian)
then the encoded picture.

This module knows nothing about sockets, games or frames' contents.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

from neural_engine.input.keys import KEY_NAMES

MAX_MESSAGE = 512                     # bytes of one client message
MAX_SEQ = 2**31 - 1
MAX_MOUSE = 10_000                    # pixels in one mouse message
VERSION = 1
FRAME_HEADER = struct.Struct("<BBHIIHH")  # version, codec, flags, tick, ack, width, height
FLAG_FIRST = 1                        # the first frame of a (re)started world

KINDS = ("key", "mouse", "blur", "pause", "reset", "ping")


class ProtocolError(ValueError):
    """A client message that breaks the protocol; the message says how, in one line."""


@dataclass(frozen=True)
class Key:
    key: str
    down: bool
    seq: int


@dataclass(frozen=True)
class Mouse:
    dx: int
    dy: int
    seq: int


@dataclass(frozen=True)
class Blur:
    seq: int


@dataclass(frozen=True)
class Pause:
    on: bool


@dataclass(frozen=True)
class Reset:
    pass


@dataclass(frozen=True)
class Ping:
    ts: float


ClientMessage = Key | Mouse | Blur | Pause | Reset | Ping

# Per kind: each field and its check (a function that returns the value or raises).
def _bool(value):
    if not isinstance(value, bool):
        raise ProtocolError("must be true or false")
    return value


def _int(lo: int, hi: int):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ProtocolError(f"must be an integer in [{lo}, {hi}]")
        return value
    return check


def _key_name(value):
    if not isinstance(value, str) or value not in KEY_NAMES:
        raise ProtocolError("must be one of the engine's key names")
    return value


def _time(value):
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or abs(value) > 1e15):
        raise ProtocolError("must be a finite number")
    return float(value)


_SEQ = _int(0, MAX_SEQ)
_MOUSE = _int(-MAX_MOUSE, MAX_MOUSE)
FIELDS = {
    "key": (Key, {"key": _key_name, "down": _bool, "seq": _SEQ}),
    "mouse": (Mouse, {"dx": _MOUSE, "dy": _MOUSE, "seq": _SEQ}),
    "blur": (Blur, {"seq": _SEQ}),
    "pause": (Pause, {"on": _bool}),
    "reset": (Reset, {}),
    "ping": (Ping, {"ts": _time}),
}


def parse(text: str | bytes) -> ClientMessage:
    """One client message, checked field by field; ``ProtocolError`` says what is wrong."""
    if not isinstance(text, str):
        raise ProtocolError("binary messages are not part of the protocol")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_MESSAGE:
        raise ProtocolError(f"message longer than {MAX_MESSAGE} bytes")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise ProtocolError("not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message is a JSON object")
    kind = data.get("t")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise ProtocolError(f"unknown message type {str(kind)[:20]!r} "
                            f"(types: {', '.join(KINDS)})")
    cls, fields = FIELDS[kind]
    extra = set(data) - set(fields) - {"t"}
    if extra:
        raise ProtocolError(f"{kind}: unknown field {sorted(map(str, extra))[0][:20]!r}")
    values = {}
    for name, check in fields.items():
        if name not in data:
            raise ProtocolError(f"{kind}: missing field {name!r}")
        try:
            values[name] = check(data[name])
        except ProtocolError as exc:
            raise ProtocolError(f"{kind}.{name}: {exc}") from None
    return cls(**values)


def _no_constant(name: str):
    raise ValueError(name)            # NaN and Infinity are not JSON


def frame_message(codec: int, tick: int, ack: int, width: int, height: int,
                  payload: bytes, first: bool = False) -> bytes:
    """A binary frame message: the header then the encoded picture."""
    header = FRAME_HEADER.pack(VERSION, codec, FLAG_FIRST if first else 0,
                               tick % 2**32, ack % 2**32, width, height)
    return header + payload


def read_frame(message: bytes) -> tuple[dict, bytes]:
    """A frame message's header fields and payload (the tests' and bench's client side)."""
    version, codec, flags, tick, ack, width, height = FRAME_HEADER.unpack_from(message)
    return ({"version": version, "codec": codec, "first": bool(flags & FLAG_FIRST),
             "tick": tick, "ack": ack, "width": width, "height": height},
            message[FRAME_HEADER.size:])


def text(kind: str, **fields) -> str:
    """A server text message."""
    return json.dumps({"t": kind, **fields}, separators=(",", ":"))
