"""The dungeon simulator: B heroes, each in its own level, stepped together.

Each tick, in order:

1. the hero walks: three pixels a tick along one axis, two along each on a diagonal,
   facing the way it walks (on a diagonal it keeps its facing if that is one of the
   two). It does not walk while its sword swings, and a hero that was hit is knocked
   back instead for a few ticks. Walls, pillars and shut doors stop it (sliding along
   them); so do the tiles of chests and pots;
2. *attack* starts a swing of the sword when none is under way and the last one has
   cooled down (holding it swings again and again); *use*, on the tick it is pressed,
   opens the door in front of the hero (a locked one only with a key, which it uses up)
   or the chest in front of it (five coins);
3. the creatures move (``creatures``);
4. the sword, in the middle ticks of a swing, hits what it touches once per swing: a
   creature loses a hit point, flashes and is pushed away, a pot breaks; at no hit
   points left either turns to a puff of smoke and then into its drop;
5. a creature that touches the hero takes a heart (then the hero is safe for a while
   and knocked away from it); at no hearts the hero starts again where it began, with
   all its hearts, its keys and coins kept;
6. the hero picks up what it touches: coins, hearts (up to five) and keys.

Everything is batched torch on one device with no host sync in ``step``; levels are
generated on the CPU from the seeds (``levelgen``). Positions are whole pixels, so the
same seeds and actions give the same frames bit for bit on any device.

The simulator knows the action layout only through the game's ``ActionSpace``
(buttons found by name); it knows nothing about agents, datasets or models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from games.dungeon import levelgen as lv
from games.dungeon.creatures import Creatures
from games.dungeon.levelgen import TILE, LevelConfig, generate
from games.dungeon.physics import overlap, slide
from games.dungeon.render import Renderer
from games.dungeon.world import Hero, World, kind_table
from neural_engine.errors import EngineError
from neural_engine.games import GameSpec, Ticking

BUTTONS = ("up", "down", "left", "right", "attack", "use")
FACING = torch.tensor([[0, 1], [0, -1], [-1, 0], [1, 0]])      # down, up, left, right


@dataclass(frozen=True)
class Rules:
    """How the hero moves and fights (pixels and ticks)."""

    speed: int = 3                  # pixels a tick along one axis
    diagonal: int = 2               # pixels a tick along each axis on a diagonal
    half: int = 5                   # the hero's half-size
    swing: int = 10                 # ticks a sword swing lasts ...
    strike: tuple[int, int] = (3, 8)   # ... and the swing ticks left in which it hits
    cooldown: int = 3               # ticks between swings
    reach: int = 14                 # the sword's centre ahead of the hero's
    blade: int = 8                  # the sword's half-size
    push: int = 4                   # knockback, pixels a tick
    push_ticks: int = 5
    safe_ticks: int = 36            # after a hit the hero cannot be hurt again this long
    health: int = 5
    chest_coins: int = 5


class Simulator(Ticking):
    """B dungeon environments on one device; see the module docstring for the rules."""

    state_names = ("x", "y", "facing", "health", "keys", "score", "moved", "blocked",
                   "swinging", "deaths")

    def __init__(self, spec: GameSpec, batch: int = 1, device: torch.device | str = "cpu",
                 levels: LevelConfig = LevelConfig(), rules: Rules = Rules()):
        missing = [name for name in BUTTONS if name not in spec.actions.buttons]
        if missing:
            raise EngineError(f"the dungeon needs buttons {', '.join(missing)}", where=spec.name)
        self.spec, self.batch, self.device = spec, batch, torch.device(device)
        self.levels, self.rules = levels, rules
        self._button = torch.tensor([spec.actions.index(name) for name in BUTTONS],
                                    device=self.device)
        self.renderer = Renderer(spec.width, spec.height, self.device)
        self.creatures = Creatures(self.device)
        self.kinds = kind_table(self.device)
        self.facing = FACING.to(self.device, torch.float32)
        self.world: World | None = None

    # ----------------------------------------------------------------- episode
    def reset(self, seeds: Sequence[int], poses: torch.Tensor | None = None) -> torch.Tensor:
        """New levels from ``seeds`` (B,), heroes at ``poses`` (B, 2) in tiles (x, y) or
        the levels' starts; frames (B, H, W, 3) uint8."""
        if len(seeds) != self.batch:
            raise EngineError(f"reset got {len(seeds)} seeds for a batch of {self.batch}")
        self.world = World.stack([generate(int(s), self.levels) for s in seeds], self.device)
        if poses is None:
            start = self.world.start
        else:
            poses = poses.to(self.device, torch.float32)
            if poses.shape != (self.batch, 2):
                raise EngineError(f"poses must be ({self.batch}, 2): x, y in tiles; "
                                  f"got {tuple(poses.shape)}")
            start = (poses * TILE).round()
            if not bool(self._body_free(start).all()):
                raise EngineError("a start pose puts the hero inside a wall")
        self.spawn = start.clone()
        self.hero = Hero.at(start, self.rules.health)
        self.key = torch.tensor([int(s) % 0x7FFFFFFF for s in seeds], device=self.device)
        self.tick = torch.zeros(self.batch, dtype=torch.long, device=self.device)
        self.visited = torch.zeros_like(self.world.walkable)
        self._visit()
        return self.render()

    def advance(self, actions: torch.Tensor) -> None:
        """One tick of the rules with actions (B, A), drawing nothing (``step``, from
        ``Ticking``, is this and ``render``)."""
        held = self.checked(actions)[:, self._button] > 0.5                     # (B, 6)
        up, down, left, right, attack, use = held.unbind(1)
        self.tick = self.tick + 1
        self._walk(up, down, left, right)
        self._attack(attack)
        self._use(use)
        half = self.kinds["half"][self.world.kind]                                # (B, S)
        self.creatures.step(self.world, self.hero.pos, self.key, self.tick, half)
        self._strike(half)
        self._hurt(half)
        self._pick_up(half)
        self._visit()

    def render(self) -> torch.Tensor:
        """The current view (B, H, W, 3) uint8."""
        return self.renderer.render(self.world, self.hero, self.tick)

    # ----------------------------------------------------------------- reading
    def state(self) -> torch.Tensor:
        """(B, S) float32 named by ``state_names``: position in tiles, facing (0 down,
        1 up, 2 left, 3 right), hearts, keys, coins, pixels moved in the last tick, 1 where
        something stopped part of it, 1 while the sword swings, times sent back to start."""
        h = self.hero
        return torch.stack([h.pos[:, 0] / TILE, h.pos[:, 1] / TILE, h.facing.float(), h.health,
                            h.keys, h.score, h.moved, h.blocked, (h.swing > 0).float(),
                            h.deaths], -1)

    def visited_fraction(self) -> torch.Tensor:
        """(B,) share of walkable tiles the hero has stood on since reset."""
        walkable = self.world.walkable
        return (self.visited & walkable).sum((1, 2)).float() / walkable.sum((1, 2)).float()

    # ----------------------------------------------------------------- the hero
    def _body_free(self, pos: torch.Tensor) -> torch.Tensor:
        h = self.rules.half
        corners = torch.tensor([[-h, -h], [-h, h - 1], [h - 1, -h], [h - 1, h - 1]],
                               device=self.device, dtype=torch.float32)
        points = pos[:, None] + corners                                            # (B, 4, 2)
        return ~self.world.solid_at(points[..., 0], points[..., 1]).any(-1)

    def _walk(self, up, down, left, right) -> None:
        r, hero = self.rules, self.hero
        dx = right.float() - left.float()
        dy = down.float() - up.float()
        diagonal = (dx != 0) & (dy != 0)
        speed = torch.where(diagonal, float(r.diagonal), float(r.speed))
        step = torch.stack([dx, dy], -1) * speed[:, None]
        walking = (step != 0).any(-1) & (hero.swing == 0)
        # facing: the one axis walked; on a diagonal keep the facing if it is one of them
        along = self.facing[hero.facing]                                           # (B, 2)
        keeps = diagonal & (((along[:, 0] == dx) & (dx != 0)) | ((along[:, 1] == dy) & (dy != 0)))
        wanted = torch.where(dy > 0, 0, torch.where(dy < 0, 1, torch.where(dx < 0, 2, 3)))
        turn = walking & ~keeps
        hero.facing = torch.where(turn, wanted, hero.facing)
        knocked = hero.knock > 0
        step = torch.where(knocked[:, None], hero.knock_vel,
                           torch.where(walking[:, None], step, 0.0))
        before = hero.pos
        pos, stopped = slide(self.world, before, step, float(r.half))
        hero.pos = pos
        hero.moved = (pos - before).abs().sum(-1)
        hero.blocked = stopped.any(-1).float()
        hero.walk = torch.where(walking & ~knocked, hero.walk + 1, 0)
        hero.knock = (hero.knock - 1).clamp_min(0)
        hero.invuln = (hero.invuln - 1).clamp_min(0)

    def _attack(self, attack: torch.Tensor) -> None:
        r, hero = self.rules, self.hero
        ready = (hero.swing == 0) & (hero.cooldown == 0) & (hero.knock == 0)
        start = attack & ready
        hero.cooldown = torch.where((hero.swing == 1), r.cooldown,
                                    (hero.cooldown - 1).clamp_min(0))
        hero.swing = torch.where(start, r.swing, (hero.swing - 1).clamp_min(0))
        self.world.struck = torch.where(start[:, None], False, self.world.struck)

    def _front(self, distance: float) -> torch.Tensor:
        """(B, 2) the point ``distance`` pixels ahead of the hero's centre."""
        return self.hero.pos + self.facing[self.hero.facing] * distance

    def _use(self, use: torch.Tensor) -> None:
        hero, world = self.hero, self.world
        pressed = use & ~hero.use_held
        hero.use_held = use
        point = self._front(self.rules.half + 4)
        tx, ty = (point / TILE).floor().long().unbind(-1)
        tile = world.lookup(world.tiles, tx, ty)
        number = world.lookup(world.door, tx, ty)
        has_key = hero.keys >= 1
        unlock = pressed & (tile == lv.LOCKED) & has_key
        opens = pressed & ((tile == lv.DOOR) | unlock)
        world.open_doors(number, opens)
        hero.keys = hero.keys - unlock.float()
        chest = pressed[:, None] & (world.kind == lv.CHEST) & overlap(
            point, 4.0, world.pos, self.kinds["half"][world.kind])
        world.kind = torch.where(chest, lv.CHEST_OPEN, world.kind)
        hero.score = hero.score + chest.sum(1) * self.rules.chest_coins

    # ----------------------------------------------------------------- contact
    def _strike(self, half: torch.Tensor) -> None:
        r, hero, world = self.rules, self.hero, self.world
        lo, hi = r.strike
        active = (hero.swing >= lo) & (hero.swing <= hi)
        hittable = (self.kinds["hp"][world.kind] > 0) & (world.hp > 0) & ~world.struck
        hit = active[:, None] & hittable & overlap(self._front(r.reach), float(r.blade),
                                                   world.pos, half)               # (B, S)
        world.struck |= hit
        world.hp = world.hp - hit.float()
        world.flash = torch.where(hit, 8, world.flash)
        moves = self.kinds["hostile"][world.kind]
        push = (self.facing[hero.facing] * r.push)[:, None].expand_as(world.push)
        world.push = torch.where((hit & moves)[..., None], push, world.push)
        world.stun = torch.where(hit & moves, r.push_ticks, world.stun)
        beaten = hit & (world.hp <= 0)
        world.clear(beaten & ~moves)
        world.kind = torch.where(beaten, lv.PUFF, world.kind)
        world.timer = torch.where(beaten, 0, world.timer)
        world.vel = torch.where(beaten[..., None], 0.0, world.vel)

    def _hurt(self, half: torch.Tensor) -> None:
        r, hero, world = self.rules, self.hero, self.world
        touching = overlap(hero.pos, float(r.half), world.pos, half) & (
            self.kinds["hostile"][world.kind])                                     # (B, S)
        distance = torch.where(touching, (world.pos - hero.pos[:, None]).abs().sum(-1),
                               float("inf"))
        nearest = distance.argmin(1)
        hurt = touching.any(1) & (hero.invuln == 0)
        away = hero.pos - world.pos[torch.arange(self.batch, device=self.device), nearest]
        horizontal = away[:, 0].abs() >= away[:, 1].abs()
        push = torch.stack([torch.where(horizontal, away[:, 0].sign(), 0.0),
                            torch.where(horizontal, 0.0, away[:, 1].sign())], -1) * r.push
        hero.health = hero.health - hurt.float()
        hero.invuln = torch.where(hurt, r.safe_ticks, hero.invuln)
        hero.knock = torch.where(hurt, r.push_ticks, hero.knock)
        hero.knock_vel = torch.where(hurt[:, None], push, hero.knock_vel)
        hero.swing = torch.where(hurt, 0, hero.swing)
        dead = hero.health <= 0
        hero.pos = torch.where(dead[:, None], self.spawn, hero.pos)
        hero.health = torch.where(dead, float(r.health), hero.health)
        hero.knock = torch.where(dead, 0, hero.knock)
        hero.deaths = hero.deaths + dead.float()

    def _pick_up(self, half: torch.Tensor) -> None:
        hero, world, kinds = self.hero, self.world, self.kinds
        touching = overlap(hero.pos, float(self.rules.half), world.pos, half)      # (B, S)
        kind = world.kind
        taken = touching & (kinds["score"][kind] | kinds["health"][kind] | kinds["keys"][kind])
        hero.score = hero.score + (taken & kinds["score"][kind]).sum(1)
        hero.keys = hero.keys + (taken & kinds["keys"][kind]).sum(1)
        hearts = hero.health + (taken & kinds["health"][kind]).sum(1)
        hero.health = hearts.clamp_max(float(self.rules.health))
        world.kind = torch.where(taken, lv.NONE, kind)

    def _visit(self) -> None:
        t = self.world.size
        tile = (self.hero.pos / TILE).floor().long().clamp(0, t - 1)
        index = (tile[:, 1] * t + tile[:, 0])[:, None]
        self.visited.view(self.batch, t * t).scatter_(1, index, True)
