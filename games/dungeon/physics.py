"""Moving boxes through the tile map and against each other, in whole pixels.

A body is a square of half-size ``half`` centred on its position: it covers pixels
``x - half`` to ``x + half - 1`` on each axis. ``slide`` moves bodies along x, stops
them at the first solid tile, then along y from there (so they slide along walls and
never enter one); steps are shorter than a tile. ``stop_at_boxes`` does the same
against other bodies (the hero against chests and pots). ``overlap`` says which pairs
of bodies touch. All of it works on any batch shape (B, ...) and is exact, because
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
    stopped = []
    for axis in (0, 1):
        s = step[..., axis]
        target = pos[..., axis] + s
        lead = torch.where(s > 0, target + half - 1, target - half)              # leading edge
        other = pos[..., 1 - axis]
        sides = (other - half, other + half - 1)
        hit = torch.zeros_like(s, dtype=torch.bool)
        for side in sides:
            hit |= world.solid_at(lead, side) if axis == 0 else world.solid_at(side, lead)
        hit &= s != 0
        edge = (lead / TILE).floor() * TILE
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


def stop_at_boxes(before: torch.Tensor, after: torch.Tensor, half: float, boxes: torch.Tensor,
                  box_half: torch.Tensor, solid: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Move bodies (B, 2) from ``before`` towards ``after`` one axis at a time, stopping
    at the ``solid`` (B, N) boxes (B, N, 2) with half-sizes ``box_half`` (B, N) that they
    did not overlap before. Returns positions (B, 2) and (B,) bool: stopped."""
    pos = before
    free_before = ~overlap(before, half, boxes, box_half)                     # (B, N)
    stopped = torch.zeros(before.shape[0], dtype=torch.bool, device=before.device)
    for axis in (0, 1):
        target = after[:, axis]
        moved = torch.stack([target, pos[:, 1]] if axis == 0 else [pos[:, 0], target], -1)
        hits = overlap(moved, half, boxes, box_half) & solid & free_before   # (B, N)
        s = (target - pos[:, axis])[:, None]
        edge = torch.where(s > 0, boxes[..., axis] - box_half - half,
                           boxes[..., axis] + box_half + half)               # (B, N)
        edge = torch.where(hits, edge, torch.where(s > 0, float("inf"), float("-inf")))
        limit = torch.where(s[:, 0] > 0, edge.min(1).values, edge.max(1).values)
        hit = hits.any(1)
        new = torch.where(hit, limit, target)
        pos = torch.stack([new, pos[:, 1]] if axis == 0 else [pos[:, 0], new], -1)
        stopped |= hit
    return pos, stopped
