"""How the dungeon's creatures move, each kind by its own rule, all slots at once.

* slimes hop: 14 ticks gliding one pixel a tick, 14 ticks resting; each hop goes
  towards the hero when it is near (two hops in three), else a random way;
* bats flutter: every 12 ticks a new heading of eight, two pixels a tick, and they
  bounce off walls; a near hero draws them half the time;
* skeletons march one pixel a tick along an axis and pick a new way every 40 ticks or
  when a wall stops them, towards a hero within six tiles three times in four.

A creature that was hit is pushed back for a few ticks instead (``World.stun``), and
a puff of smoke turns into what it leaves behind (``World.drop``) after nine ticks.

Randomness is a counter-based hash of (the world's key, the slot, the tick), so a
creature's choices depend on nothing but its world and time: the same on every device
and batch size, and without a generator to carry. This module knows the creatures'
rules; it knows nothing about the hero's controls or the picture.
"""

from __future__ import annotations

import torch

from games.dungeon import levelgen as lv
from games.dungeon.physics import slide
from games.dungeon.world import World

DIRS4 = ((0, 1), (0, -1), (-1, 0), (1, 0))
DIRS8 = DIRS4 + ((1, 1), (1, -1), (-1, 1), (-1, -1))
PUFF_TICKS = 9
_MASK = 0x7FFFFFFF


def noise(key: torch.Tensor, slot: torch.Tensor, tick: torch.Tensor, salt: int) -> torch.Tensor:
    """A hash in [0, 2**31) of int64 tensors that broadcast together; no generator."""
    h = (key * 0x2545F491 + slot * 0x6C8E9CF5 + tick * 0x1B873593 + salt * 0x5BD1E995) & _MASK
    for mult in (0x27D4EB2F, 0x165667B1):
        h = ((h ^ (h >> 15)) * mult) & _MASK
    return h ^ (h >> 13)


def _toward(rel: torch.Tensor) -> torch.Tensor:
    """Unit steps (..., 2) along the dominant axis of ``rel`` (..., 2)."""
    horizontal = rel[..., 0].abs() >= rel[..., 1].abs()
    x = torch.where(horizontal, rel[..., 0].sign(), 0.0)
    y = torch.where(horizontal, 0.0, rel[..., 1].sign())
    return torch.stack([x, y], -1)


class Creatures:
    """Moves the creatures of a ``World``; ``step`` once per tick."""

    def __init__(self, device: torch.device):
        self.dirs4 = torch.tensor(DIRS4, dtype=torch.float32, device=device)
        self.dirs8 = torch.tensor(DIRS8, dtype=torch.float32, device=device)

    def step(self, world: World, hero_pos: torch.Tensor, key: torch.Tensor,
             tick: torch.Tensor, half: torch.Tensor) -> None:
        """Advance every creature one tick; ``key`` (B,) the worlds' hash keys, ``tick``
        (B,) the tick about to be played, ``half`` (B, S) the bodies' half-sizes."""
        kind, s = world.kind, world.kind.shape[1]
        slot = torch.arange(s, device=kind.device)[None]
        t = tick[:, None]
        r = noise(key[:, None], slot, t, 1)                                         # (B, S)
        rel = hero_pos[:, None] - world.pos                                         # (B, S, 2)
        near = rel.abs().max(-1).values
        timer = world.timer + 1

        slime_turn = (timer % 28) == 1
        slime_dir = torch.where(((r % 3) != 0)[..., None] & (near < 80)[..., None],
                                _toward(rel), self.dirs4[(r // 3) % 4])
        slime_vel = torch.where(slime_turn[..., None], slime_dir, world.vel)
        slime_vel = torch.where(((timer % 28) > 14)[..., None], 0.0, slime_vel)

        bat_turn = ((t + slot * 7) % 12) == 0
        bat_dir = torch.where(((r % 2) == 0)[..., None] & (near < 64)[..., None],
                              _toward(rel), self.dirs8[(r // 2) % 8])
        bat_vel = torch.where(bat_turn[..., None], 2 * bat_dir, world.vel)

        skel_turn = (timer % 40) == 1
        skel_dir = torch.where(((r % 4) != 0)[..., None] & (near < 96)[..., None],
                               _toward(rel), self.dirs4[(r // 4) % 4])
        skel_vel = torch.where(skel_turn[..., None], skel_dir, world.vel)

        vel = torch.where((kind == lv.SLIME)[..., None], slime_vel, world.vel)
        vel = torch.where((kind == lv.BAT)[..., None], bat_vel, vel)
        vel = torch.where((kind == lv.SKELETON)[..., None], skel_vel, vel)
        creature = (kind == lv.SLIME) | (kind == lv.BAT) | (kind == lv.SKELETON)
        vel = torch.where(creature[..., None], vel, 0.0)

        stunned = world.stun > 0
        step = torch.where(stunned[..., None], world.push, vel)
        pos, stopped = slide(world, world.pos, step, half)
        # bats bounce off what stopped them; skeletons turn round at once
        bounce = stopped & ((kind == lv.BAT)[..., None]) & ~stunned[..., None]
        vel = torch.where(bounce, -vel, vel)
        turn = stopped.any(-1) & (kind == lv.SKELETON) & ~stunned
        turned = self.dirs4[noise(key[:, None], slot, t, 2) % 4]
        vel = torch.where(turn[..., None], turned, vel)
        world.pos = torch.where(creature[..., None], pos, world.pos)
        world.vel = vel
        world.stun = (world.stun - 1).clamp_min(0)
        world.flash = (world.flash - 1).clamp_min(0)
        world.timer = torch.where(turn, 0, timer)

        done = (kind == lv.PUFF) & (world.timer >= PUFF_TICKS)
        world.kind = torch.where(done, world.drop, world.kind)
        world.timer = torch.where(done, 0, world.timer)
        world.hp = torch.where(done, 0.0, world.hp)
