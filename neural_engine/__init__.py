"""neural_engine: an interactive neural game engine.

A player's keyboard and mouse become per-tick actions; an action-conditioned world
model (or, for reference and data, the game's own simulator) turns them into frames;
a ModernGL presenter shows each frame. The package tree follows that flow:
``input`` ▸ ``model`` ▸ ``sampler`` ▸ ``runtime`` ▸ ``presenter``, with ``show``
(directors, kiosk, watchdog) beside the game loop, ``packs`` (scenario data), ``data``,
``training`` and ``evaluation`` beside them, ``serve`` for browsers and ``cli`` at the
edge. docs/architecture.md walks through the rooms.
"""

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

__version__ = "0.1.0"
