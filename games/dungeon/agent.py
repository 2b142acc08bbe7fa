"""An exploring player for the dungeon, batched, that plays the way people do.

Each environment is in one behaviour mode at a time and switches after a random
duration: EXPLORE (walk down a distance field over the map towards the nearest place
not yet seen on screen, a coin, heart or key, or a closed chest), WANDER (walk one of
eight ways until a wall stops it), IDLE (hands off), FIGHT (entered when a creature
comes near: line up with it on an axis, face it and swing; sometimes the player
ignores it instead) and BACKUP (entered when the keys are held but the hero hardly
moves: walk off a random way).

Keys are held, not flickered: a direction is held until the hero is within a pixel
or two of where it is going (and only pressed again beyond four), and swings come in
short bursts. The rare buttons get used as people use them: *use* on the door the
path runs into (and on a chest in front), now and then at nothing; *attack* in
fights and, from a bored player, at the air. All randomness comes from one seeded
``torch.Generator``; there is no Python loop over environments and no host sync.

The agent reads only the simulator's public surface: ``hero``, ``world`` (tiles,
objects), ``visited`` and ``tick``. It knows nothing about rendering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from games.dungeon import levelgen as lv
from games.dungeon.levelgen import TILE
from games.dungeon.sim import Simulator
from neural_engine.games import GameSpec

EXPLORE, WANDER, IDLE, FIGHT, BACKUP = range(5)
DIRS8 = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))


@dataclass(frozen=True)
class AgentConfig:
    """Behaviour mix and timings (ticks, pixels)."""

    # Chance of EXPLORE, WANDER and IDLE at a switch (FIGHT and BACKUP come from events).
    mode_weights: tuple[float, ...] = (0.62, 0.18, 0.2)
    mode_ticks: tuple[tuple[int, int], ...] = ((80, 300), (20, 80), (5, 30), (30, 90),
                                              (6, 14))           # EXPLORE..BACKUP
    fight_chance: float = 0.12       # per tick with a creature near: start a fight
    fight_range: float = 40.0        # pixels: a creature this near can start a fight
    sight: int = 3                   # tiles around one stood on that count as seen
    field_every: int = 8             # ticks between distance-field updates
    field_horizon: int = 64          # tiles the distance field looks ahead
    swing_share: float = 0.008       # chance per tick of a burst of swings at nothing
    use_share: float = 0.006         # chance per tick of pressing use at nothing
    stuck_window: int = 12           # ticks over which progress is checked
    stuck_distance: float = 4.0      # pixels: less than this with keys held is stuck


class Agent:
    """Plays B environments of a ``Simulator``; ``act`` gives (B, A) float32 actions."""

    def __init__(self, spec: GameSpec, batch: int = 1, device: torch.device | str = "cpu",
                 seed: int = 0, config: AgentConfig = AgentConfig()):
        self.spec, self.batch, self.device = spec, batch, torch.device(device)
        self.seed, self.config = seed, config
        self._button = {name: spec.actions.index(name) for name in spec.actions.buttons}
        self._dirs = torch.tensor(DIRS8, dtype=torch.float32, device=self.device)
        self._offsets = torch.tensor([[0, -1], [0, 1], [-1, 0], [1, 0]], device=self.device)
        self._facing = torch.tensor([[0, 1], [0, -1], [-1, 0], [1, 0]], device=self.device)
        c = config
        self._cdf = torch.tensor(c.mode_weights, device=self.device).cumsum(0)
        self._cdf = self._cdf / self._cdf[-1]
        ticks = torch.tensor(c.mode_ticks, device=self.device, dtype=torch.float32)
        self._ticks_lo, self._ticks_span = ticks[:, 0], ticks[:, 1] - ticks[:, 0]

    def reset(self, sim: Simulator) -> None:
        """Start a fresh episode for the simulator's current levels."""
        b, dev = self.batch, self.device
        self.gen = torch.Generator(device=dev)
        self.gen.manual_seed(self.seed)
        self.tick = 0

        def zeros(dtype=torch.long) -> torch.Tensor:
            return torch.zeros(b, device=dev, dtype=dtype)

        self.mode, self.timer = zeros(), zeros()
        self.wander = self._dirs[zeros()]
        self.held = torch.zeros(b, 2, device=dev)              # the direction keys held
        self.swinging, self.using = zeros(), zeros()
        self.history = sim.hero.pos[:, None].repeat(1, self.config.stuck_window, 1)
        self.walking = zeros()
        t = sim.world.size
        self.field = torch.full((b, t, t), math.inf, device=dev)

    # ------------------------------------------------------------------- acting
    def act(self, sim: Simulator) -> torch.Tensor:
        """Actions (B, A) float32 for the next tick."""
        c, hero = self.config, sim.hero
        pos = hero.pos
        noise = torch.rand(self.batch, 12, generator=self.gen, device=self.device)
        if self.tick % c.field_every == 0:
            self._update_field(sim)
        self.tick += 1

        enemy, enemy_rel = self._nearest_creature(sim)
        stuck = self._stuck(pos)
        self._switch_modes(noise, stuck, enemy, enemy_rel)
        carrot, door_ahead, chest_rel = self._carrot(sim, pos)

        want = torch.zeros(self.batch, 2, device=self.device)
        explore = self.mode == EXPLORE
        want = torch.where(explore[:, None], self._approach(carrot - pos), want)
        wander = (self.mode == WANDER) | (self.mode == BACKUP)
        blocked = hero.blocked > 0
        redraw = wander & blocked & (noise[:, 3] < 0.3)
        self.wander = torch.where(redraw[:, None], self._direction(noise[:, 4]), self.wander)
        want = torch.where(wander[:, None], self.wander, want)
        fight = self.mode == FIGHT
        fight_want, strike = self._fight(hero, enemy_rel)
        want = torch.where(fight[:, None], fight_want, want)
        chest_near = explore & (chest_rel.abs().max(-1).values < 22)
        want = torch.where(chest_near[:, None], self._face(chest_rel), want)
        self.held = want

        # the rare buttons: bursts of swings and single presses of use
        burst = (self.swinging == 0) & (noise[:, 5] < c.swing_share)
        self.swinging = torch.where(burst, (4 + noise[:, 6] * 12).long(),
                                    (self.swinging - 1).clamp_min(0))
        attack = (fight & strike) | (self.swinging % 4 >= 2)
        press_use = (explore & door_ahead & blocked) | chest_near | (noise[:, 7] < c.use_share)
        use = press_use & (self.tick % 4 == 0)

        out = torch.zeros(self.batch, self.spec.actions.dim, device=self.device)
        keys = {"up": want[:, 1] < 0, "down": want[:, 1] > 0, "left": want[:, 0] < 0,
                "right": want[:, 0] > 0, "attack": attack, "use": use}
        for name, held in keys.items():
            out[:, self._button[name]] = held.float()
        self._remember(pos, (want != 0).any(-1) & (hero.swing == 0))
        return out

    # ------------------------------------------------------------ mode control
    def _stuck(self, pos: torch.Tensor) -> torch.Tensor:
        c = self.config
        slot = self.tick % c.stuck_window
        progress = (pos - self.history[:, slot]).abs().sum(-1)
        walked = self.walking >= c.stuck_window
        return walked & (progress < c.stuck_distance) & (self.mode != BACKUP)

    def _remember(self, pos: torch.Tensor, walking: torch.Tensor) -> None:
        self.history[:, self.tick % self.config.stuck_window] = pos
        self.walking = torch.where(walking, self.walking + 1, 0)

    def _switch_modes(self, noise: torch.Tensor, stuck: torch.Tensor, enemy: torch.Tensor,
                      enemy_rel: torch.Tensor) -> None:
        c = self.config
        self.timer = self.timer - 1
        near = enemy & (enemy_rel.abs().max(-1).values < c.fight_range)
        calm = (self.mode == EXPLORE) | (self.mode == WANDER) | (self.mode == IDLE)
        provoked = near & calm & (noise[:, 0] < c.fight_chance)
        lost = (self.mode == FIGHT) & ~(enemy & (enemy_rel.abs().max(-1).values < 72))
        switch = (self.timer <= 0) | stuck | provoked | lost
        drawn = torch.searchsorted(self._cdf, noise[:, 1:2].contiguous())[:, 0]
        drawn = drawn.clamp_max(len(self._cdf) - 1)
        new = torch.where(stuck, BACKUP, torch.where(provoked, FIGHT, drawn))
        ticks = self._ticks_lo[new] + noise[:, 2] * self._ticks_span[new]
        self.mode = torch.where(switch, new, self.mode)
        self.timer = torch.where(switch, ticks.long(), self.timer)
        fresh = switch & ((new == WANDER) | (new == BACKUP))
        self.wander = torch.where(fresh[:, None], self._direction(noise[:, 8]), self.wander)
        self.walking = torch.where(switch, 0, self.walking)

    def _direction(self, u: torch.Tensor) -> torch.Tensor:
        """One of the eight directions (B, 2) from uniforms u (B,)."""
        return self._dirs[(u * len(DIRS8)).long().clamp_max(len(DIRS8) - 1)]

    # ------------------------------------------------------------------ goals
    def _update_field(self, sim: Simulator) -> None:
        """Steps (B, T, T) from each passable tile to the nearest goal: a tile not yet
        seen, a coin, heart or key, or the tile next to a closed chest."""
        world, hero = sim.world, sim.hero
        tiles = world.tiles
        k = 2 * self.config.sight + 1
        seen = F.max_pool2d(sim.visited.float()[:, None], k, 1, self.config.sight)[:, 0] > 0
        passable = (tiles == lv.FLOOR) | (tiles == lv.OPEN) | (tiles == lv.DOOR)
        passable |= (tiles == lv.LOCKED) & (hero.keys >= 1)[:, None, None]
        goal = world.walkable & ~seen & passable
        t = world.size
        tile = (world.pos / TILE).floor().long().clamp(0, t - 1)                  # (B, S, 2)
        flat = tile[..., 1] * t + tile[..., 0]                                     # (B, S)
        kind = world.kind
        wanted = (kind == lv.COIN) | (kind == lv.HEART) | (kind == lv.KEY)
        goal = self._mark(goal, flat, wanted)
        blocks = (kind == lv.POT) | (kind == lv.CHEST) | (kind == lv.CHEST_OPEN)
        passable = ~self._mark(~passable, flat, blocks)
        chest = self._mark(torch.zeros_like(goal), flat, kind == lv.CHEST)
        beside = F.max_pool2d(chest.float()[:, None], 3, 1, 1)[:, 0] > 0
        goal |= beside & passable & ~chest
        field = torch.where(goal & passable, 0.0, math.inf)
        for _ in range(self.config.field_horizon):
            p = F.pad(field, (1, 1, 1, 1), value=math.inf)
            near = torch.minimum(torch.minimum(p[:, :-2, 1:-1], p[:, 2:, 1:-1]),
                                 torch.minimum(p[:, 1:-1, :-2], p[:, 1:-1, 2:]))
            field = torch.where(passable, torch.minimum(field, near + 1), math.inf)
        self.field = field

    def _mark(self, grid: torch.Tensor, flat: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        """``grid`` (B, T, T) bool with the tiles ``flat`` (B, S) set where ``where``."""
        marks = torch.zeros(grid.shape[0], grid[0].numel() + 1, dtype=torch.bool,
                            device=grid.device)
        index = torch.where(where, flat, grid[0].numel())
        marks.scatter_(1, index, True)
        return grid | marks[:, :-1].view_as(grid)

    def _carrot(self, sim: Simulator, pos: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The centre (B, 2) of the next tile down the distance field, whether that tile
        is a shut door, and the offset (B, 2) to the nearest closed chest."""
        world = sim.world
        tile = (pos / TILE).floor().long()                                          # (B, 2)
        around = tile[:, None] + self._offsets                                      # (B, 4, 2)
        d = world.lookup(self.field, around[..., 0], around[..., 1])                # (B, 4)
        here = world.lookup(self.field, tile[:, 0], tile[:, 1])
        best, which = d.min(1)
        step = around.gather(1, which[:, None, None].expand(-1, 1, 2))[:, 0]
        target = torch.where(((best < here) & best.isfinite())[:, None], step, tile)
        next_tile = world.lookup(world.tiles, target[:, 0], target[:, 1])
        door = (next_tile == lv.DOOR) | (next_tile == lv.LOCKED)
        rel = world.pos - pos[:, None]                                              # (B, S, 2)
        distance = torch.where(world.kind == lv.CHEST, rel.abs().max(-1).values, math.inf)
        nearest = distance.argmin(1)
        chest_rel = rel[torch.arange(self.batch, device=self.device), nearest]
        chest_rel = torch.where(distance.min(1).values.isfinite()[:, None], chest_rel, math.inf)
        return (target.float() + 0.5) * TILE, door, chest_rel

    def _approach(self, rel: torch.Tensor) -> torch.Tensor:
        """Direction keys (B, 2) towards an offset in pixels, with hysteresis: pressed
        beyond four pixels, held until within one."""
        far = rel.abs() > 4
        keep = (self.held != 0) & (self.held == rel.sign()) & (rel.abs() > 1)
        return torch.where(far | keep, rel.sign(), 0.0)

    @staticmethod
    def _face(rel: torch.Tensor) -> torch.Tensor:
        """One direction key (B, 2): along the larger axis of ``rel``."""
        horizontal = rel[:, 0].abs() >= rel[:, 1].abs()
        return torch.stack([torch.where(horizontal, rel[:, 0].sign(), 0.0),
                            torch.where(horizontal, 0.0, rel[:, 1].sign())], -1)

    # ---------------------------------------------------------------- fighting
    def _nearest_creature(self, sim: Simulator) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) whether there is a creature, and the offset (B, 2) to the nearest one."""
        world = sim.world
        kind = world.kind
        hostile = (kind == lv.SLIME) | (kind == lv.BAT) | (kind == lv.SKELETON)
        rel = world.pos - sim.hero.pos[:, None]
        distance = torch.where(hostile, rel.abs().max(-1).values, math.inf)
        nearest = distance.argmin(1)
        return (distance.min(1).values.isfinite(),
                rel[torch.arange(self.batch, device=self.device), nearest])

    def _fight(self, hero, rel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Direction keys (B, 2) to line up with a creature at ``rel`` and face it, and
        (B,) whether to swing now."""
        horizontal = rel[:, 0].abs() >= rel[:, 1].abs()
        along = torch.where(horizontal, rel[:, 0], rel[:, 1])
        across = torch.where(horizontal, rel[:, 1], rel[:, 0])
        lined = across.abs() < 8
        close = along.abs() < 26
        facing = self._facing[hero.facing]
        toward = self._face(rel)
        facing_it = (facing.float() == toward).all(-1)
        # approach along the axis, correct across it; at range, only turn to face it
        go_along = torch.where(close, 0.0, along.sign())
        go_across = torch.where(lined, 0.0, across.sign())
        want = torch.stack([torch.where(horizontal, go_along, go_across),
                            torch.where(horizontal, go_across, go_along)], -1)
        turn = lined & close & ~facing_it
        want = torch.where(turn[:, None], toward, want)
        strike = lined & close & facing_it & (self.tick % 3 != 0)
        return want, strike
