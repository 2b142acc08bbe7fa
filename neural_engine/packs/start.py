"""Where a world starts: the start states a pack (or a command line) names.

``StartState`` is a world seed and, optionally, the player's pose; ``ImageStart`` is a
start state that also carries the path of a start image (the game's frame size,
checked when its pack was loaded), which the neural engine encodes as its context
frames. They are data only: the frame sources of ``runtime`` read them, and a source
that cannot start from an image (the simulator) sees an ``ImageStart`` as its seed and
pose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neural_engine.schema import bounds


@dataclass(frozen=True)
class StartState:
    """Where a world starts: a world seed and, optionally, the player's pose."""

    seed: int = field(default=0, metadata=bounds(0, 2**62))
    pose: tuple[float, ...] | None = None


@dataclass(frozen=True)
class ImageStart(StartState):
    """A start state whose first frame, for the neural engine, is the image at ``image``."""

    image: str = ""
