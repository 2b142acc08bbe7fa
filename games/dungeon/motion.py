"""The dungeon's true motion, the hook its ``[control]`` table describes.

The camera is centred on the hero, so the hero's step between two states is the
scroll of the whole view (the HUD aside): dx and dy in tiles, positive right and down.
A hero sent back to the start makes one large step; nothing else jumps.
"""

from __future__ import annotations

import torch


def motion(fields: torch.Tensor) -> torch.Tensor:
    """(..., T, 2) states x, y → (..., T - 1, 2) dx, dy."""
    return fields[..., 1:, :] - fields[..., :-1, :]
