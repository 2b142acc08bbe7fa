"""The maze's true motion, the hook its ``[control]`` table describes.

Between consecutive states the player turns (radians, positive to the right: the
angle grows from +x towards +y, which is down the map), moves forward and strafes
sideways (tiles, in the heading of the second state: the simulator turns first and then
moves along the new heading, so running while turning is no strafe; strafe positive to
the right). The engine's motion probe learns to read these three from frames (``turn``,
``move`` and ``strafe`` in game.toml's ``[control]``).
"""

from __future__ import annotations

import math

import torch


def motion(fields: torch.Tensor) -> torch.Tensor:
    """(..., T, 3) states x, y, angle → (..., T - 1, 3) turn, move, strafe."""
    x, y, a = fields.unbind(-1)
    turn = torch.remainder(a[..., 1:] - a[..., :-1] + math.pi, 2 * math.pi) - math.pi
    dx, dy = x[..., 1:] - x[..., :-1], y[..., 1:] - y[..., :-1]
    c, s = a[..., 1:].cos(), a[..., 1:].sin()
    return torch.stack([turn, dx * c + dy * s, -dx * s + dy * c], -1)
