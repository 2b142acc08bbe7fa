"""The schema of ``pack.toml``: frozen dataclasses, filled by ``neural_engine.schema``.

A pack names its game and, optionally, weights inside the pack; lists start states;
overrides bindings and mouse sensitivity; sets sampler options; scripts a timeline
(``neural_engine.packs.timeline``); and sets kiosk behaviour::

    game = "maze"
    title = "A guided tour"

    [[start]]
    name = "hall"
    seed = 7
    pose = [3.5, 5.5, 0.0]      # the fields game.toml's `pose` names (the maze: x, y in
                                # tiles, angle in radians); default: the map's start

    [controls]
    mouse_sensitivity = 1.5
    bindings = { forward = ["i", "up"] }

    [sampler]
    preset = "rolling"           # then any SamplerConfig field: window, sink, ring, ...
    late_binding = true

    [kiosk]
    attract_after = 20.0

Shape, types and ranges are checked here (and by each dataclass's ``check``); what
needs the game or the pack's files (button and key names, start poses, images,
weights, paths) is checked by ``neural_engine.packs.load``. Nothing here runs code
named by a pack: the game is looked up in the registry by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from neural_engine.input.keys import MOUSE_BUTTONS, check_key_name
from neural_engine.packs.timeline import TimelineSpec
from neural_engine.sampler.stream import SamplerConfig
from neural_engine.schema import bounds

MAX_NAME = 64
MAX_TEXT = 2000
# Mouse sensitivity and poses are plain numbers; far outside these they are mistakes.
MAX_COORDINATE = 1e6

Engine = Literal["auto", "sim", "neural"]


def _text_problems(key: str, text: str, limit: int) -> list[tuple[tuple, str]]:
    if len(text) > limit:
        return [((key,), f"longer than {limit} characters")]
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        return [((key,), "contains control characters")]
    return []


def name_problems(key: tuple, name: str) -> list[tuple[tuple, str]]:
    """A start-state name: non-empty, short, printable."""
    if not name.strip():
        return [(key, "must not be empty")]
    if len(name) > MAX_NAME or not name.isprintable():
        return [(key, f"must be printable and at most {MAX_NAME} characters")]
    return []


@dataclass(frozen=True)
class StartSpec:
    """Where a world starts: a simulator seed and pose, or a start image.

    ``image`` (a PNG of the game's size, inside the pack) is the neural engine's
    context frame; the simulator, which cannot start from a picture, uses ``seed``
    and ``pose``.
    """

    name: str
    seed: int = field(default=0, metadata=bounds(0, 2**62))
    pose: tuple[float, ...] | None = field(default=None, metadata=bounds(1, 8))
    image: str | None = None

    def check(self) -> list[tuple[tuple, str]]:
        problems = name_problems(("name",), self.name)
        for i, value in enumerate(self.pose or ()):
            if not math.isfinite(value) or abs(value) > MAX_COORDINATE:
                problems.append((("pose", i), f"{value} is not a finite number within "
                                 f"±{MAX_COORDINATE:g}"))
        return problems


@dataclass(frozen=True)
class Controls:
    """Whole-button binding overrides (key names as in game.toml) and mouse sensitivity."""

    bindings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    mouse_sensitivity: float = field(default=1.0, metadata=bounds(0.01, 100.0))

    def check(self) -> list[tuple[tuple, str]]:
        if not math.isfinite(self.mouse_sensitivity):
            return [(("mouse_sensitivity",), "must be a finite number")]
        return []


@dataclass(frozen=True)
class KioskSettings:
    """How a kiosk behaves; times are seconds of game time, 0 turns a timer off."""

    start: str | None = None          # where visitors start (default: the pack's first)
    attract_after: float = field(default=30.0, metadata=bounds(0.0, 86400.0))
    idle_reset: float = field(default=60.0, metadata=bounds(0.0, 86400.0))
    session_limit: float = field(default=0.0, metadata=bounds(0.0, 86400.0))
    reset_on_touch: bool = False      # a visitor's first touch starts them at ``start``
    operator_chord: tuple[str, ...] = field(default=("left ctrl", "left alt", "q"),
                                            metadata=bounds(2, 4))
    caption: str = "Press any key to play"
    session_over_caption: str = "Time is up: thank you for playing"
    show_stats: bool = False
    hang_seconds: float = field(default=20.0, metadata=bounds(2.0, 3600.0))

    def check(self) -> list[tuple[tuple, str]]:
        problems = []
        for name in ("attract_after", "idle_reset", "session_limit", "hang_seconds"):
            if not math.isfinite(getattr(self, name)):
                problems.append(((name,), "must be a finite number"))
        for i, key in enumerate(self.operator_chord):
            if (problem := check_key_name(key)) is not None:
                problems.append((("operator_chord", i), problem))
            elif key.lower() in MOUSE_BUTTONS:
                problems.append((("operator_chord", i), "the chord is made of keyboard keys"))
        if len({k.lower() for k in self.operator_chord}) != len(self.operator_chord):
            problems.append((("operator_chord",), "keys of the chord must differ"))
        problems += _text_problems("caption", self.caption, MAX_TEXT)
        problems += _text_problems("session_over_caption", self.session_over_caption, MAX_TEXT)
        return problems


@dataclass(frozen=True)
class PackSpec:
    """Everything ``pack.toml`` says. ``[sampler]`` is a ``SamplerConfig`` (after a preset)."""

    game: str
    title: str = ""
    description: str = ""
    engine: Engine = "auto"
    weights: str | None = None
    start: tuple[StartSpec, ...] = field(default=(), metadata=bounds(0, 64))
    controls: Controls = Controls()
    sampler: SamplerConfig | None = None
    timeline: TimelineSpec | None = None
    kiosk: KioskSettings | None = None

    def check(self) -> list[tuple[tuple, str]]:
        problems = _text_problems("title", self.title, 200)
        problems += _text_problems("description", self.description, MAX_TEXT)
        seen: dict[str, int] = {}
        for i, start in enumerate(self.start):
            if start.name in seen:
                problems.append((("start", i, "name"), f"{start.name!r} is already the name "
                                 f"of start[{seen[start.name]}]"))
            seen.setdefault(start.name, i)
        return problems
