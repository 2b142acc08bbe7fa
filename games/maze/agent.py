"""An exploring player for the maze, batched, that moves the way people do.

Each environment is in one behaviour mode at a time and switches after a random
duration: EXPLORE (head for the nearest unexplored tile along a distance field over
the map, so coverage grows), WANDER (pick the most open, least explored direction
from a fan of probe rays, with some noise), FOLLOW (keep a hand on the left or right
wall), LOOK (stand and look around with mouse sweeps or turn-key bursts, sometimes
strafing), IDLE (hands off) and BACKUP (entered when the player pushes the move keys
but hardly moves: step back while turning, then wander off).

Keys are held, not flickered: turning by key uses hysteresis (press when the heading
error is large, release when it is small), running and strafing come in segments of
many ticks, and each segment decides whether it steers with the turn keys or with
smooth mouse motion, so both turn inputs are used. All randomness comes from one
seeded ``torch.Generator``; there is no Python loop over environments and no host
sync per tick.

The agent reads only the simulator's public surface: ``state()``, ``probe()``,
``visited`` and ``world.walkable``. It knows nothing about rendering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from games.maze.sim import Simulator, wrap_angle
from neural_engine.games import GameSpec

EXPLORE, WANDER, FOLLOW, LOOK, IDLE, BACKUP = range(6)


@dataclass(frozen=True)
class AgentConfig:
    """Behaviour mix and timings (ticks)."""

    # Chance of each mode at a switch, EXPLORE to IDLE (BACKUP comes only from being
    # stuck); with the durations below the share of time is about 50, 18, 14, 12, 6 %.
    mode_weights: tuple[float, ...] = (0.21, 0.14, 0.11, 0.26, 0.28)
    mode_ticks: tuple[tuple[int, int], ...] = ((80, 300), (40, 160), (40, 160), (15, 60),
                                              (5, 30), (6, 14))           # EXPLORE..BACKUP
    mouse_share: float = 0.45        # segments that steer with the mouse
    run_share: float = 0.3           # run segments
    strafe_share: float = 0.15       # strafe segments
    press_error: float = 0.4         # radians: start a turn-key burst
    release_error: float = 0.08      # radians: end it
    walk_error: float = 1.0          # radians: stop walking to turn first
    field_every: int = 8             # ticks between distance-field updates
    field_horizon: int = 48          # tiles the distance field looks ahead
    stuck_window: int = 12           # ticks over which progress is checked
    stuck_distance: float = 0.25     # tiles: less than this while walking is stuck


class Agent:
    """Plays B environments of a ``Simulator``; ``act`` gives (B, A) float32 actions."""

    def __init__(self, spec: GameSpec, batch: int = 1, device: torch.device | str = "cpu",
                 seed: int = 0, config: AgentConfig = AgentConfig()):
        self.spec, self.batch, self.device = spec, batch, torch.device(device)
        self.seed, self.config = seed, config
        self._button = {name: spec.actions.index(name) for name in spec.actions.buttons}
        self._mouse_dx = spec.actions.index("dx")
        # 16 probe rays every 22.5 degrees: 0 at index 8, +-45 at 10/6, +-90 at 12/4
        self._rays = torch.linspace(-math.pi, math.pi, 17, device=self.device)[:-1]  # (R,)
        self._offsets = torch.tensor([[0, -1], [0, 1], [-1, 0], [1, 0]], device=self.device)
        self._steps = torch.tensor([0.75, 1.5, 2.25, 3.0, 4.0, 5.0], device=self.device)
        c = config
        self._cdf = torch.tensor(c.mode_weights, device=self.device).cumsum(0)
        self._cdf = self._cdf / self._cdf[-1]
        ticks = torch.tensor(c.mode_ticks, device=self.device, dtype=torch.float32)
        self._ticks_lo, self._ticks_span = ticks[:, 0], ticks[:, 1] - ticks[:, 0]

    def reset(self, sim: Simulator) -> None:
        """Start a fresh episode for the simulator's current maps."""
        b, dev = self.batch, self.device
        self.gen = torch.Generator(device=dev)
        self.gen.manual_seed(self.seed)
        self.tick = 0
        self._mouse_yaw = sim.physics.mouse_yaw

        def zeros(dtype=torch.float32) -> torch.Tensor:
            return torch.zeros(b, device=dev, dtype=dtype)

        self.mode, self.timer = zeros(torch.long), zeros(torch.long)
        self.goal, self.goal_timer = sim.state()[:, 2].clone(), zeros(torch.long)
        self.turn_key, self.mouse = zeros(), zeros()
        self.use_mouse, self.side = zeros(torch.bool), torch.ones(b, device=dev)
        self.run, self.run_timer = zeros(torch.bool), zeros(torch.long)
        self.strafe, self.strafe_timer = zeros(), zeros(torch.long)
        self.sweep_phase, self.sweep_rate, self.sweep_amp = zeros(), zeros(), zeros()
        self.history = sim.state()[:, None, :2].repeat(1, self.config.stuck_window, 1)  # (B, N, 2)
        self.walking = zeros(torch.long)
        self.field = torch.full_like(sim.world.walkable, math.inf, dtype=torch.float32)
        self.seen = sim.visited.clone()

    # ------------------------------------------------------------------- acting

    def act(self, sim: Simulator) -> torch.Tensor:
        """Actions (B, A) float32 for the next tick."""
        c = self.config
        state = sim.state()
        pos, angle = state[:, :2], state[:, 2]
        noise = torch.rand(self.batch, 16, generator=self.gen, device=self.device)  # (B, 16)
        if self.tick % c.field_every == 0:
            self._update_field(sim)
        self.tick += 1
        probes = sim.probe(self._rays)                                             # (B, R)

        stuck = self._stuck(pos)
        self._switch_modes(noise, stuck, probes)
        self._segments(noise)
        self._aim(sim, pos, angle, noise, probes)

        error = wrap_angle(self.goal - angle)
        mode = self.mode
        moving = (mode == EXPLORE) | (mode == WANDER) | (mode == FOLLOW)
        steer = moving | (mode == BACKUP)
        self._steer(error, steer & ~self.use_mouse, steer & self.use_mouse, noise)
        self._look(mode == LOOK, noise)
        backing = mode == BACKUP
        self.turn_key = torch.where(backing, self.side, self.turn_key)
        self.mouse = torch.where(backing | (mode == IDLE), 0.0, self.mouse)

        forward = moving & (error.abs() < c.walk_error)
        strafing = (moving | (mode == LOOK)) & (self.strafe != 0)
        out = torch.zeros(self.batch, self.spec.actions.dim, device=self.device)
        keys = {
            "forward": forward, "back": backing,
            "strafe_left": strafing & (self.strafe < 0),
            "strafe_right": strafing & (self.strafe > 0),
            "turn_left": self.turn_key < 0, "turn_right": self.turn_key > 0,
            "run": self.run & moving,
        }
        for name, held in keys.items():
            if name in self._button:
                out[:, self._button[name]] = held.float()
        if self._mouse_dx is not None:
            out[:, self._mouse_dx] = self.mouse.clamp(-1, 1)
        self._remember(pos, forward | backing)
        return out

    # ------------------------------------------------------------ mode control

    def _stuck(self, pos: torch.Tensor) -> torch.Tensor:
        """(B,) True where the move keys were held all window long with little progress."""
        c = self.config
        slot = self.tick % c.stuck_window
        progress = (pos - self.history[:, slot]).norm(dim=-1)
        walked = self.walking >= c.stuck_window
        return walked & (progress < c.stuck_distance) & (self.mode != BACKUP)

    def _remember(self, pos: torch.Tensor, walking: torch.Tensor) -> None:
        self.history[:, self.tick % self.config.stuck_window] = pos
        self.walking = torch.where(walking, self.walking + 1, 0)

    def _switch_modes(self, noise: torch.Tensor, stuck: torch.Tensor, probes: torch.Tensor
                      ) -> None:
        self.timer = self.timer - 1
        switch = (self.timer <= 0) | stuck
        drawn = torch.searchsorted(self._cdf, noise[:, 0:1].contiguous())[:, 0]
        drawn = drawn.clamp_max(len(self._cdf) - 1)
        after_backup = self.mode == BACKUP
        new_mode = torch.where(stuck, BACKUP, torch.where(after_backup, WANDER, drawn))
        ticks = self._ticks_lo[new_mode] + noise[:, 1] * self._ticks_span[new_mode]
        self.mode = torch.where(switch, new_mode, self.mode)
        self.timer = torch.where(switch, ticks.long(), self.timer)
        self.goal_timer = torch.where(switch, 0, self.goal_timer)
        self.use_mouse = torch.where(switch, noise[:, 2] < self.config.mouse_share, self.use_mouse)
        self.turn_key = torch.where(switch, 0.0, self.turn_key)
        self.walking = torch.where(switch, 0, self.walking)
        open_side = torch.where(probes[:, 12] > probes[:, 4], 1.0, -1.0)
        coin = torch.where(noise[:, 3] < 0.5, 1.0, -1.0)
        self.side = torch.where(switch, torch.where(stuck, open_side, coin), self.side)
        self.sweep_phase = torch.where(switch, noise[:, 4] * 2 * math.pi, self.sweep_phase)
        self.sweep_rate = torch.where(switch, 0.08 + 0.2 * noise[:, 5], self.sweep_rate)
        self.sweep_amp = torch.where(switch, 0.2 + 0.6 * noise[:, 6], self.sweep_amp)

    def _segments(self, noise: torch.Tensor) -> None:
        """Run and strafe come in held segments of random length."""
        c = self.config
        self.run_timer = self.run_timer - 1
        renew = self.run_timer <= 0
        self.run = torch.where(renew, noise[:, 7] < c.run_share, self.run)
        self.run_timer = torch.where(renew, (20 + noise[:, 8] * 100).long(), self.run_timer)
        self.strafe_timer = self.strafe_timer - 1
        renew = self.strafe_timer <= 0
        start = noise[:, 9] < c.strafe_share
        direction = torch.where(noise[:, 10] < 0.5, -1.0, 1.0)
        self.strafe = torch.where(renew, torch.where(start, direction, 0.0), self.strafe)
        length = torch.where(start, 6 + noise[:, 11] * 20, 20 + noise[:, 11] * 80)
        self.strafe_timer = torch.where(renew, length.long(), self.strafe_timer)

    # ------------------------------------------------------------------ goals

    def _aim(self, sim: Simulator, pos: torch.Tensor, angle: torch.Tensor, noise: torch.Tensor,
             probes: torch.Tensor) -> None:
        """Update the goal heading of the moving modes from probe distances (B, R)."""
        front = probes[:, 8]
        carrot, has_target = self._carrot(sim, pos)
        toward = torch.atan2(carrot[:, 1] - pos[:, 1], carrot[:, 0] - pos[:, 0])
        self.goal_timer = self.goal_timer - 1
        wander_due = (self.goal_timer <= 0) | (front < 1.0)
        wander = self._wander_goal(sim, pos, angle, probes)
        explore = self.mode == EXPLORE
        fallback = explore & ~has_target
        use_wander = ((self.mode == WANDER) | fallback) & wander_due
        self.goal = torch.where(explore & has_target, toward, self.goal)
        self.goal = torch.where(use_wander, wander, self.goal)
        self.goal_timer = torch.where(use_wander, (15 + noise[:, 12] * 30).long(), self.goal_timer)
        follow = self.mode == FOLLOW
        self.goal = torch.where(follow, self._follow_goal(angle, probes), self.goal)

    def _update_field(self, sim: Simulator) -> None:
        """Steps (B, T, T) from each walkable tile to the nearest unexplored one, where
        explored means within one tile of a tile stood on; inf beyond the horizon."""
        walkable = sim.world.walkable
        seen = F.max_pool2d(sim.visited.float()[:, None], 3, stride=1, padding=1)[:, 0] > 0
        field = torch.where(walkable & ~seen, 0.0, math.inf)
        for _ in range(self.config.field_horizon):
            p = F.pad(field, (1, 1, 1, 1), value=math.inf)                        # (B, T+2, T+2)
            near = torch.minimum(torch.minimum(p[:, :-2, 1:-1], p[:, 2:, 1:-1]),
                                 torch.minimum(p[:, 1:-1, :-2], p[:, 1:-1, 2:]))
            field = torch.where(walkable, torch.minimum(field, near + 1), math.inf)
        self.field = field
        self.seen = seen

    def _carrot(self, sim: Simulator, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A point two tiles down the distance field (B, 2), and (B,) whether there is one."""
        world = sim.world
        tile = pos.floor().long()                                                  # (B, 2)
        here = world.lookup(self.field, tile[:, 0], tile[:, 1])

        def descend(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            around = t[:, None] + self._offsets                                         # (B, 4, 2)
            d = world.lookup(self.field, around[..., 0], around[..., 1])          # (B, 4)
            best, which = d.min(1)
            return around.gather(1, which[:, None, None].expand(-1, 1, 2))[:, 0], best

        first, d1 = descend(tile)
        second, _ = descend(first)
        target = torch.where((d1 > 0)[:, None], second, first)
        return target.float() + 0.5, here.isfinite() & (here > 0)

    def _wander_goal(self, sim: Simulator, pos: torch.Tensor, angle: torch.Tensor,
                     dist: torch.Tensor) -> torch.Tensor:
        """Heading (B,) of the most open, least explored probe ray, with noise."""
        heading = angle[:, None] + self._rays                                      # (B, R)
        direction = torch.stack([heading.cos(), heading.sin()], -1)                # (B, R, 2)
        points = pos[:, None, None] + direction[:, :, None] * self._steps[:, None]  # (B, R, J, 2)
        tiles = points.floor().long()
        unseen = ~sim.world.lookup(self.seen, tiles[..., 0], tiles[..., 1])        # (B, R, J)
        unseen = unseen & (self._steps < dist[..., None])
        jitter = torch.rand(dist.shape, generator=self.gen, device=self.device)
        score = (0.35 * dist.clamp_max(6) + unseen.float().sum(-1) - 0.6 * self._rays.abs()
                 + 1.5 * jitter)
        return heading.gather(1, score.argmax(1, keepdim=True))[:, 0]

    def _follow_goal(self, angle: torch.Tensor, probes: torch.Tensor) -> torch.Tensor:
        """Keep the wall on ``side`` (+1 right) about half a tile away."""
        s = self.side
        right = s > 0
        front = probes[:, 8]
        diag = torch.where(right, probes[:, 10], probes[:, 6])
        beside = torch.where(right, probes[:, 12], probes[:, 4])
        keep = angle + s * ((diag - 0.85) * 0.6).clamp(-0.3, 0.3)
        goal = torch.where(beside > 1.3, angle + s * math.pi / 2, keep)
        goal = torch.where(front < 0.9, angle - s * math.pi / 2, goal)
        reached = wrap_angle(self.goal - angle).abs() < 0.15
        return torch.where(reached | (front < 0.9), goal, self.goal)

    # ---------------------------------------------------------------- turning

    def _steer(self, error: torch.Tensor, by_key: torch.Tensor, by_mouse: torch.Tensor,
               noise: torch.Tensor) -> None:
        c = self.config
        press = (self.turn_key == 0) & (error.abs() > c.press_error)
        release = (self.turn_key != 0) & ((error.abs() < c.release_error)
                                          | (error.sign() != self.turn_key))
        key = torch.where(press, error.sign(), torch.where(release, 0.0, self.turn_key))
        self.turn_key = torch.where(by_key, key, torch.where(by_mouse, 0.0, self.turn_key))
        target = (0.5 * error / self._mouse_yaw).clamp(-1, 1) + 0.06 * (noise[:, 13] - 0.5)
        smooth = 0.5 * self.mouse + 0.5 * target
        self.mouse = torch.where(by_mouse, smooth, 0.0)

    def _look(self, looking: torch.Tensor, noise: torch.Tensor) -> None:
        """Mouse sweeps, or turn-key bursts of random length, while standing."""
        self.sweep_phase = self.sweep_phase + self.sweep_rate
        sweep = self.sweep_amp * self.sweep_phase.sin()
        self.mouse = torch.where(looking & self.use_mouse, sweep, self.mouse)
        flip = noise[:, 14] < 0.08
        direction = torch.where(noise[:, 15] < 0.5, -1.0, 1.0)
        burst = torch.where(flip, torch.where(self.turn_key == 0, direction, 0.0), self.turn_key)
        self.turn_key = torch.where(looking & ~self.use_mouse, burst, self.turn_key)
