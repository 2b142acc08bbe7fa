"""Moving boxes through the tile map and against each other, in whole pixels.

A body is a square of half-size ``half`` centred on its position: it covers pixels
``x - half`` to ``x + half - 1`` on each axis. ``slide`` moves bodies along x, stops
them at the first solid tile, then along y from there (so they slide along walls and
never enter one); steps are shorter than a tile. ``overlap`` says which pairs of
bodies touch. All of it works on any batch shape (B, ...) and is exact, because
positions are whole pixels.

This module knows the map only through ``World.solid_at``; it knows nothing about
who is moving or why.
"""

from __future__ import annotations

import torch

from games.dungeon.levelgen import TILE
from games.dungeon.world import World


def slide(world: World, pos: torch.Tensor, step: torch.Tensor, half: torch.Tensor | float
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bodies at ``pos`` (B, ..., 2) moved by ``step`` (B, ..., 2) until a solid tile;
    returns the new positions and (B, ..., 2) bool: which axis was stopped."""
    half = torch.as_tensor(half, dtype=pos.dtype, device=pos.device)
    corners = torch.stack([-half, half - 1], -1)                              # (..., 2)
    stopped = []
    for axis in (0, 1):
        s = step[..., axis]
        target = pos[..., axis] + s
        lead = target + torch.where(s > 0, half - 1, -half)                    # leading edge
        sides = pos[..., 1 - axis, None] + corners                             # (..., 2)
        ahead = lead[..., None].expand_as(sides)
        solid = world.solid_at(ahead, sides) if axis == 0 else world.solid_at(sides, ahead)
        hit = solid.any(-1) & (s != 0)
        edge = (lead // TILE) * TILE
        stop = torch.where(s > 0, edge - half, edge + TILE + half)
        new = torch.where(hit, stop, target)
        pos = torch.stack([new, pos[..., 1]] if axis == 0 else [pos[..., 0], new], -1)
        stopped.append(hit)
    return pos, torch.stack(stopped, -1)


def overlap(a: torch.Tensor, half_a: torch.Tensor | float, b: torch.Tensor,
            half_b: torch.Tensor) -> torch.Tensor:
    """(B, N) True where body ``a`` (B, 2) overlaps body n of ``b`` (B, N, 2)."""
    reach = torch.as_tensor(half_a, device=b.device) + half_b                  # (B, N)
    return ((a[:, None] - b).abs() < reach[..., None]).all(-1)
