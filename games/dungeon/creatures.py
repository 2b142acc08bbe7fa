"""How the dungeon's creatures move, each kind by its own rule, all slots at once.

Every creature lives in cycles of ``period`` ticks of its own timer: at the start of
a cycle it picks a way to go (towards the hero when the hero is within ``chase_range``
pixels, with the kind's chance, else a random one of its directions), glides at
``speed`` pixels a tick for the cycle's first ``glide`` ticks and rests for the rest.
When a wall stops it, it bounces back (bats) or picks a new way (the rest).

* slimes hop: cycles of 28 ticks, gliding 14 at one pixel a tick; two hops in three
  go for a hero within five tiles;
* bats flutter: cycles of 12 ticks, always flying, two pixels a tick, eight ways; a
  hero within four tiles draws them half the time;
* skeletons march: cycles of 40 ticks, one pixel a tick, towards a hero within six
  tiles three times in four.

A creature that was hit is pushed back for a few ticks instead (``World.stun``), and
a puff of smoke turns into what it leaves behind (``World.drop``) after nine ticks.

Randomness is a counter-based hash of (the world's key, the slot, the tick), so a
creature's choices depend on nothing but its world and time: the same on every device
and batch size, and without a generator to carry. This module knows the creatures'
rules; it knows nothing about the hero's controls or the picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from games.dungeon import levelgen as lv
from games.dungeon.physics import slide
from games.dungeon.world import World

DIRS = ((0, 1), (0, -1), (-1, 0), (1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))
PUFF_TICKS = 9
_MASK = 0x7FFFFFFF


@dataclass(frozen=True)
class Gait:
    """How one kind moves (ticks, pixels); ``chase`` is the chance of going for a hero
    in range, as 1 - 1/n for n = ``chase_every``."""

    period: int
    glide: int
    speed: float
    ways: int
    chase_every: int
    chase_range: float
    bounces: bool = False


GAITS = {lv.SLIME: Gait(28, 14, 1.0, 4, 3, 80.0),
         lv.BAT: Gait(12, 12, 2.0, 8, 2, 64.0, bounces=True),
         lv.SKELETON: Gait(40, 40, 1.0, 4, 4, 96.0)}


def noise(key: torch.Tensor, slot: torch.Tensor, tick: torch.Tensor, salt: int) -> torch.Tensor:
    """A hash in [0, 2**31) of int64 tensors that broadcast together; no generator."""
    h = (key * 0x2545F491 + slot * 0x6C8E9CF5 + tick * 0x1B873593 + salt * 0x5BD1E995) & _MASK
    for mult in (0x27D4EB2F, 0x165667B1):
        h = ((h ^ (h >> 15)) * mult) & _MASK
    return h ^ (h >> 13)


def _toward(rel: torch.Tensor) -> torch.Tensor:
    """Unit steps (..., 2) along the dominant axis of ``rel`` (..., 2)."""
    horizontal = rel[..., 0].abs() >= rel[..., 1].abs()
    return rel.sign() * torch.stack([horizontal, ~horizontal], -1)


class Creatures:
    """Moves the creatures of a ``World``; ``step`` once per tick."""

    def __init__(self, device: torch.device):
        self.dirs = torch.tensor(DIRS, dtype=torch.float32, device=device)
        kinds = len(lv.KIND_NAMES)
        none = Gait(1, 0, 0.0, 4, 1, 0.0)
        gaits = [GAITS.get(k, none) for k in range(kinds)]

        def table(name: str, dtype=torch.float32) -> torch.Tensor:
            return torch.tensor([getattr(g, name) for g in gaits], dtype=dtype, device=device)

        self.period, self.glide = table("period", torch.long), table("glide", torch.long)
        self.ways, self.chase_every = table("ways", torch.long), table("chase_every", torch.long)
        self.speed, self.chase_range = table("speed"), table("chase_range")
        self.bounces = table("bounces", torch.bool)
        self.moves = torch.tensor([k in GAITS for k in range(kinds)], device=device)

    def step(self, world: World, hero_pos: torch.Tensor, key: torch.Tensor,
             tick: torch.Tensor, half: torch.Tensor) -> None:
        """Advance every creature one tick; ``key`` (B,) the worlds' hash keys, ``tick``
        (B,) the tick about to be played, ``half`` (B, S) the bodies' half-sizes."""
        kind = world.kind
        slot = torch.arange(kind.shape[1], device=kind.device)[None]
        r = noise(key[:, None], slot, tick[:, None], 1)                            # (B, S)
        rel = hero_pos[:, None] - world.pos                                        # (B, S, 2)
        timer = world.timer + 1
        phase = timer % self.period[kind]
        chase = ((r % self.chase_every[kind]) != 0) & (
            rel.abs().amax(-1) < self.chase_range[kind])
        way = self.dirs[(r >> 8) % self.ways[kind]]
        fresh = torch.where(chase[..., None], _toward(rel), way) * self.speed[kind, None]
        vel = torch.where((phase == 1)[..., None], fresh, world.vel)
        vel = torch.where(((phase < self.glide[kind]) & self.moves[kind])[..., None], vel, 0.0)

        stunned = (world.stun > 0)[..., None]
        pos, stopped = slide(world, world.pos, torch.where(stunned, world.push, vel), half)
        # what stopped them: bats bounce back, the others pick a new way at once
        blocked = stopped & ~stunned
        turned = self.dirs[noise(key[:, None], slot, tick[:, None], 2) % 4] * self.speed[kind, None]
        bounce = self.bounces[kind, None]
        vel = torch.where(blocked & bounce, -vel, vel)
        vel = torch.where(blocked.any(-1, keepdim=True) & ~bounce, turned, vel)
        world.pos = torch.where(self.moves[kind, None], pos, world.pos)
        world.vel = vel
        world.stun = (world.stun - 1).clamp_min(0)
        world.flash = (world.flash - 1).clamp_min(0)

        done = (kind == lv.PUFF) & (timer >= PUFF_TICKS)
        world.kind = torch.where(done, world.drop, kind)
        world.timer = torch.where(done, 0, timer)
        world.hp = torch.where(done, 0.0, world.hp)
