"""A batch of maze maps as tensors on one device.

``World.stack`` turns B maps from ``mapgen`` (numpy, CPU) into batched tensors on the
simulator's device; afterwards only ``present`` changes (pickups taken). Everything
else is read-only. The world knows nothing about the player, rays or pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from games.maze.mapgen import SPRITE_KINDS, MazeMap


@dataclass
class World:
    """B maps of T x T tiles with S sprite slots each.

    walls:    (B, T, T) int32, 0 free, k + 1 for wall kind k
    floor:    (B, T, T) int32 floor kind;  ceiling: (B, T, T) int32 ceiling kind
    walkable: (B, T, T) bool, free tiles without a solid sprite
    sprite_xy:     (B, S, 2) float32 sprite centres (x, y)
    sprite_kind:   (B, S) long, index into ``SPRITE_KINDS`` (0 in unused slots)
    sprite_radius: (B, S) float32 collision radius, 0 for walk-through sprites
    sprite_pickup: (B, S) bool
    present:       (B, S) bool, slot used and not yet picked up
    start:         (B, 3) float32 start poses (x, y, angle)
    """

    walls: torch.Tensor
    floor: torch.Tensor
    ceiling: torch.Tensor
    walkable: torch.Tensor
    sprite_xy: torch.Tensor
    sprite_kind: torch.Tensor
    sprite_radius: torch.Tensor
    sprite_pickup: torch.Tensor
    present: torch.Tensor
    start: torch.Tensor

    @property
    def tiles(self) -> int:
        return self.walls.shape[-1]

    @classmethod
    def stack(cls, maps: Sequence[MazeMap], device: torch.device) -> "World":
        walls = np.stack([m.walls for m in maps]).astype(np.int32)    # (B, T, T)
        sprites = np.stack([m.sprites for m in maps])                 # (B, S, 3)
        kind = sprites[..., 2].astype(np.int64)                       # (B, S), -1 unused
        used = kind >= 0
        kind = np.maximum(kind, 0)
        radius = np.array([k.radius for k in SPRITE_KINDS], dtype=np.float32)[kind] * used
        pickup = np.array([k.pickup for k in SPRITE_KINDS])[kind] & used
        walkable = walls == 0
        b, s = np.nonzero(radius > 0)
        walkable[b, sprites[b, s, 1].astype(np.int64), sprites[b, s, 0].astype(np.int64)] = False

        def put(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array)).to(device)

        return cls(
            walls=put(walls),
            floor=put(np.stack([m.floor for m in maps]).astype(np.int32)),
            ceiling=put(np.stack([m.ceiling for m in maps]).astype(np.int32)),
            walkable=put(walkable),
            sprite_xy=put(sprites[..., :2]),
            sprite_kind=put(kind),
            sprite_radius=put(radius),
            sprite_pickup=put(pickup),
            present=put(used),
            start=put(np.stack([m.start for m in maps])),
        )

    def lookup(self, grid: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``grid`` (B, T, T) at integer tiles x, y of shape (B, ...), clamped to the map."""
        t = self.tiles
        index = y.clamp(0, t - 1) * t + x.clamp(0, t - 1)
        return self.lookup_index(grid, index)

    def lookup_index(self, grid: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``grid`` (B, T, T) at flat tile indices ``y * T + x`` of shape (B, ...)."""
        flat = grid.reshape(grid.shape[0], -1)                        # (B, T*T)
        found = flat.gather(1, index.reshape(grid.shape[0], -1).long())
        return found.reshape(index.shape)
