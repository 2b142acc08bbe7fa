"""The dungeon's state as tensors on one device: B levels, their objects, B heroes.

``World.stack`` turns B levels from ``levelgen`` (numpy, CPU) into batched tensors on
the simulator's device. Afterwards the map changes only where doors open (``tiles``
and ``vis``); objects move, get hit, are picked up or open. ``Hero`` holds the
player of each environment. Positions are integer pixel coordinates held in float32
(exact below 2**24), so movement and collision are exact and the same on every device.

This module holds state and the table of what each object kind is (``KINDS``); the
rules that change the state live in ``sim`` and ``creatures``, the look in ``render``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from games.dungeon import levelgen as lv
from games.dungeon.tiles import autotile


@dataclass(frozen=True)
class Kind:
    """What an object kind is: body half-size (pixels), solid (blocks the hero),
    hostile (hurts on touch), hit points (0: cannot be hit), and a pickup's effect."""

    half: int = 5
    solid: bool = False
    hostile: bool = False
    hp: int = 0
    pickup: str = ""


KINDS = {
    lv.NONE: Kind(), lv.COIN: Kind(half=5, pickup="score"), lv.HEART: Kind(pickup="health"),
    lv.KEY: Kind(pickup="keys"), lv.CHEST: Kind(half=7, solid=True),
    lv.CHEST_OPEN: Kind(half=7, solid=True), lv.POT: Kind(half=6, solid=True, hp=1),
    lv.SLIME: Kind(half=6, hostile=True, hp=2), lv.BAT: Kind(half=5, hostile=True, hp=1),
    lv.SKELETON: Kind(half=6, hostile=True, hp=3), lv.PUFF: Kind(),
}


def kind_table(device: torch.device) -> dict[str, torch.Tensor]:
    """Per-kind properties as tensors indexed by kind: half, solid, hostile, hp and one
    mask per pickup effect."""
    kinds = [KINDS[k] for k in range(len(lv.KIND_NAMES))]

    def put(values, dtype) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype, device=device)

    table = {"half": put([k.half for k in kinds], torch.float32),
             "solid": put([k.solid for k in kinds], torch.bool),
             "hostile": put([k.hostile for k in kinds], torch.bool),
             "hp": put([k.hp for k in kinds], torch.float32)}
    for effect in ("score", "health", "keys"):
        table[effect] = put([k.pickup == effect for k in kinds], torch.bool)
    return table


@dataclass
class World:
    """B levels of T x T tiles with S object slots each.

    tiles:  (B, T, T) long tile codes; door: (B, T, T) long door numbers (-1: none)
    vis:    (B, T, T) long tile image shown; vis_open: the image once its door opens
    solid:  (B, T, T) bool, walls, pillars, shut doors and the tiles of chests and pots
            (what stops a body)
    walkable: (B, T, T) bool, floor and doorways (what counts for coverage)
    kind:   (B, S) long object kinds; pos: (B, S, 2) float32 centres (x, y) in pixels
    drop:   (B, S) long the kind left behind after a break or a defeat
    start:  (B, 2) float32 the hero's start (x, y) in pixels
    hp:     (B, S) float32 hit points left; timer: (B, S) long ticks in the current
            behaviour (a puff's age); vel: (B, S, 2) float32 pixels per tick
    flash:  (B, S) long ticks of the hit flash left; push: (B, S, 2) float32 knockback
            velocity, applied while ``stun`` (B, S) long ticks last
    struck: (B, S) bool, hit by the current sword swing already
    """

    tiles: torch.Tensor
    door: torch.Tensor
    vis: torch.Tensor
    vis_open: torch.Tensor
    solid: torch.Tensor
    walkable: torch.Tensor
    kind: torch.Tensor
    pos: torch.Tensor
    drop: torch.Tensor
    start: torch.Tensor
    hp: torch.Tensor
    timer: torch.Tensor
    vel: torch.Tensor
    flash: torch.Tensor
    push: torch.Tensor
    stun: torch.Tensor
    struck: torch.Tensor

    @property
    def size(self) -> int:
        return self.tiles.shape[-1]

    @classmethod
    def stack(cls, levels: Sequence[lv.Level], device: torch.device) -> "World":
        visuals = [autotile(level) for level in levels]
        objects = np.stack([level.objects for level in levels])               # (B, S, 4)
        tiles = np.stack([level.tiles for level in levels]).astype(np.int64)

        def put(array: np.ndarray, dtype=None) -> torch.Tensor:
            out = torch.from_numpy(np.ascontiguousarray(array)).to(device)
            return out if dtype is None else out.to(dtype)

        kind = put(objects[..., 2], torch.long)
        b, s = kind.shape
        zeros = torch.zeros(b, s, dtype=torch.long, device=device)
        solid = np.isin(tiles, lv.SOLID_TILES)
        rows, slots = np.nonzero(np.isin(objects[..., 2], [k for k, v in KINDS.items() if v.solid]))
        tile = objects[rows, slots, :2] // lv.TILE
        solid[rows, tile[:, 1], tile[:, 0]] = True
        return cls(
            tiles=put(tiles),
            door=put(np.stack([level.door for level in levels]), torch.long),
            vis=put(np.stack([v for v, _ in visuals]), torch.long),
            vis_open=put(np.stack([o for _, o in visuals]), torch.long),
            solid=put(solid),
            walkable=put(np.isin(tiles, (lv.FLOOR, lv.DOOR, lv.LOCKED, lv.OPEN))),
            kind=kind,
            pos=put(objects[..., :2], torch.float32),
            drop=put(objects[..., 3], torch.long),
            start=put(np.stack([level.start for level in levels]), torch.float32),
            hp=kind_table(device)["hp"][kind],
            timer=(torch.arange(s, device=device) * 5)[None].repeat(b, 1),   # out of step
            vel=torch.zeros(b, s, 2, device=device),
            flash=zeros.clone(),
            push=torch.zeros(b, s, 2, device=device),
            stun=zeros.clone(),
            struck=torch.zeros(b, s, dtype=torch.bool, device=device),
        )

    def lookup(self, grid: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``grid`` (B, T, T) at integer tiles x, y of shape (B, ...), clamped to the map."""
        t = self.size
        index = y.clamp(0, t - 1) * t + x.clamp(0, t - 1)
        flat = grid.reshape(grid.shape[0], -1)                                  # (B, T*T)
        return flat.gather(1, index.reshape(grid.shape[0], -1).long()).reshape(index.shape)

    def solid_at(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """True where the pixel (x, y) lies in a wall, pillar or shut door; (B, ...)."""
        return self.lookup(self.solid, (x // lv.TILE).long(), (y // lv.TILE).long())

    def clear(self, gone: torch.Tensor) -> None:
        """Make the tiles of the objects ``gone`` (B, S) walkable (a pot that broke)."""
        t = self.size
        tile = (self.pos // lv.TILE).long().clamp(0, t - 1)
        index = torch.where(gone, tile[..., 1] * t + tile[..., 0], t * t)           # (B, S)
        cleared = torch.zeros(gone.shape[0], t * t + 1, dtype=torch.bool, device=gone.device)
        cleared.scatter_(1, index, True)
        self.solid &= ~cleared[:, :-1].view_as(self.solid)

    def open_doors(self, number: torch.Tensor, opening: torch.Tensor) -> None:
        """Open door ``number`` (B,) where ``opening`` (B,) is True: both its tiles."""
        hit = (self.door == number[:, None, None]) & opening[:, None, None] & (self.door >= 0)
        self.tiles = torch.where(hit, lv.OPEN, self.tiles)
        self.solid &= ~hit
        self.vis = torch.where(hit, self.vis_open, self.vis)


@dataclass
class Hero:
    """The player of each of B environments; all (B,) unless shaped otherwise.

    pos (B, 2) float32 centre in pixels; facing long 0 down, 1 up, 2 left, 3 right;
    walk long ticks spent walking (the stride); swing long ticks of the sword swing
    left; cooldown long ticks before the next swing; invuln long ticks of safety after
    a hit; knock long ticks of knockback left, knock_vel (B, 2) its velocity;
    health, keys, score float32; moved float32 pixels moved in the last tick; blocked
    float32 1 where a wall or an object stopped part of the last move; use_held bool,
    the use button was down last tick (use acts on the press); deaths float32.
    """

    pos: torch.Tensor
    facing: torch.Tensor
    walk: torch.Tensor
    swing: torch.Tensor
    cooldown: torch.Tensor
    invuln: torch.Tensor
    knock: torch.Tensor
    knock_vel: torch.Tensor
    health: torch.Tensor
    keys: torch.Tensor
    score: torch.Tensor
    moved: torch.Tensor
    blocked: torch.Tensor
    use_held: torch.Tensor
    deaths: torch.Tensor

    @classmethod
    def at(cls, pos: torch.Tensor, health: float) -> "Hero":
        """Heroes standing at ``pos`` (B, 2), facing down, with ``health``."""
        b, device = pos.shape[0], pos.device
        ints = torch.zeros(b, dtype=torch.long, device=device)
        floats = torch.zeros(b, device=device)
        return cls(pos=pos.clone(), facing=ints.clone(), walk=ints.clone(), swing=ints.clone(),
                   cooldown=ints.clone(), invuln=ints.clone(), knock=ints.clone(),
                   knock_vel=torch.zeros(b, 2, device=device), health=floats + health,
                   keys=floats.clone(), score=floats.clone(), moved=floats.clone(),
                   blocked=floats.clone(), use_held=ints.bool(), deaths=floats.clone())
