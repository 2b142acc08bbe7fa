"""The maze simulator: B players, each in its own map, stepped together.

Each tick the player turns (turn keys at a fixed rate, mouse dx on top), then moves
along its new heading (forward/back, strafes; diagonal input is not faster; run
multiplies the speed), without momentum. Collision is axis-separated against wall
tiles with a square body of half-size ``radius`` (so the player slides along walls
and never overlaps one), then the body is pushed out of solid sprites (pillars,
barrels, plants). Treasures within ``pickup_radius`` are taken and counted in the
score. The tile under the player is marked visited.

Everything is batched torch on one device with no host sync in ``step``; maps are
generated on the CPU from the seeds (``mapgen``) so they do not depend on the device.
Same seeds and same actions give the same frames bit for bit on one device.

The simulator knows the action layout only through the game's ``ActionSpace``
(buttons found by name); it knows nothing about agents, datasets or models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from games.maze.mapgen import MapConfig, generate
from games.maze.raycast import cast
from games.maze.render import Camera, Renderer
from games.maze.world import World
from neural_engine.errors import EngineError
from neural_engine.games import GameSpec, Ticking

BUTTONS = ("forward", "back", "strafe_left", "strafe_right", "turn_left", "turn_right", "run")


@dataclass(frozen=True)
class Physics:
    """How the player moves."""

    walk_speed: float = 2.4        # tiles per second
    run_factor: float = 1.8
    turn_speed: float = 135.0      # degrees per second with a turn key held
    mouse_yaw: float = 0.25        # radians per tick at mouse dx = 1
    radius: float = 0.2            # half-size of the player's body, tiles
    pickup_radius: float = 0.5


def wrap_angle(angle: torch.Tensor) -> torch.Tensor:
    """Angles into [-pi, pi)."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


class Simulator(Ticking):
    """B maze environments on one device; see the module docstring for the rules."""

    state_names = ("x", "y", "angle", "score", "moved", "blocked")

    def __init__(self, spec: GameSpec, batch: int = 1, device: torch.device | str = "cpu",
                 maps: MapConfig = MapConfig(), physics: Physics = Physics(),
                 camera: Camera = Camera()):
        missing = [name for name in BUTTONS if name not in spec.actions.buttons]
        if missing:
            raise EngineError(f"the maze needs buttons {', '.join(missing)}", where=spec.name)
        self.spec, self.batch, self.device = spec, batch, torch.device(device)
        self.maps, self.physics = maps, physics
        self._button = {name: spec.actions.index(name) for name in BUTTONS}
        self._mouse_dx = spec.actions.index("dx")
        self._step_len = physics.walk_speed / spec.tick_rate
        self._turn_step = math.radians(physics.turn_speed) / spec.tick_rate
        self.renderer = Renderer(spec.width, spec.height, camera, self.device)
        self.world: World | None = None

    # ----------------------------------------------------------------- episode

    def reset(self, seeds: Sequence[int], poses: torch.Tensor | None = None) -> torch.Tensor:
        """New maps from ``seeds`` (B,), players at ``poses`` (B, 3) or the maps' starts."""
        if len(seeds) != self.batch:
            raise EngineError(f"reset got {len(seeds)} seeds for a batch of {self.batch}")
        self.world = World.stack([generate(int(s), self.maps) for s in seeds], self.device)
        pose = self.world.start if poses is None else poses.to(self.device, torch.float32)
        if pose.shape != (self.batch, 3):
            raise EngineError(f"poses must be ({self.batch}, 3), got {tuple(pose.shape)}")
        self.pos = pose[:, :2].clone()                                             # (B, 2)
        self.angle = wrap_angle(pose[:, 2].clone())                                # (B,)
        if poses is not None and not bool(self._body_free(self.pos).all()):
            raise EngineError("a start pose puts the player inside a wall")
        self.score = torch.zeros(self.batch, device=self.device)
        self.moved = torch.zeros(self.batch, device=self.device)
        self.blocked = torch.zeros(self.batch, device=self.device)
        self.visited = torch.zeros_like(self.world.walkable)                       # (B, T, T)
        self._visit()
        return self.render()

    def advance(self, actions: torch.Tensor) -> None:
        """One tick of the rules with actions (B, A), drawing nothing (``step``, from
        ``Ticking``, is this and ``render``)."""
        a = self.checked(actions)
        pressed = (a[:, :len(self.spec.actions.buttons)] > 0.5).float()           # (B, buttons)
        held = {name: pressed[:, i] for name, i in self._button.items()}           # each (B,)
        yaw = (held["turn_right"] - held["turn_left"]) * self._turn_step
        if self._mouse_dx is not None:
            yaw = yaw + a[:, self._mouse_dx].clamp(-1, 1) * self.physics.mouse_yaw
        self.angle = wrap_angle(self.angle + yaw)

        ahead = held["forward"] - held["back"]
        aside = held["strafe_right"] - held["strafe_left"]
        c, s = self.angle.cos(), self.angle.sin()
        move = torch.stack([ahead * c - aside * s, ahead * s + aside * c], -1)    # (B, 2)
        move = move / move.norm(dim=-1, keepdim=True).clamp_min(1.0)
        move = move * (self._step_len * (1 + (self.physics.run_factor - 1) * held["run"]))[:, None]

        before = self.pos
        wanted = before + move
        pos = self._slide(before, move)
        pos = self._push_out(pos)
        self.blocked = ((pos - wanted).norm(dim=-1) > 1e-4).float()
        self.moved = (pos - before).norm(dim=-1)
        self.pos = pos
        self._pick_up()
        self._visit()

    def render(self) -> torch.Tensor:
        """The current view (B, H, W, 3) uint8."""
        return self.renderer.render(self.world, self.pos, self.angle)

    # ------------------------------------------------------------------ reading

    def state(self) -> torch.Tensor:
        """(B, S) float32 named by ``state_names``: pose, score, distance moved in the last
        tick, and 1 where a wall or sprite stopped part of the last move."""
        return torch.stack([self.pos[:, 0], self.pos[:, 1], self.angle, self.score,
                            self.moved, self.blocked], -1)

    def visited_fraction(self) -> torch.Tensor:
        """(B,) share of walkable tiles stood on since reset."""
        walkable = self.world.walkable
        seen = (self.visited & walkable).sum((1, 2)).float()
        return seen / walkable.sum((1, 2)).float()

    def probe(self, angles: torch.Tensor) -> torch.Tensor:
        """Distances (B, R) to the nearest wall along headings ``angles`` (R,) or (B, R)
        relative to each player's, capped at the camera's reach. Sprites are ignored."""
        heading = self.angle[:, None] + angles.to(self.device)                     # (B, R)
        rays = torch.stack([heading.cos(), heading.sin()], -1)                     # (B, R, 2)
        return cast(self.world, self.pos, rays, self.renderer.camera.reach).dist

    # ---------------------------------------------------------------- physics

    def _solid(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """True where the tile containing point (x, y) is a wall; any shape (B, ...)."""
        return self.world.lookup(self.world.walls, x.floor().long(), y.floor().long()) > 0

    def _body_free(self, pos: torch.Tensor) -> torch.Tensor:
        """(B,) True where the square body at ``pos`` (B, 2) overlaps no wall."""
        r = self.physics.radius
        corners = torch.tensor([[-r, -r], [-r, r], [r, -r], [r, r]], device=self.device)
        points = pos[:, None] + corners                                            # (B, 4, 2)
        return ~self._solid(points[..., 0], points[..., 1]).any(-1)

    def _slide(self, pos: torch.Tensor, move: torch.Tensor) -> torch.Tensor:
        """Move along x, stop at walls, then along y from there (axis-separated sliding)."""
        r, eps = self.physics.radius, 1e-3
        for axis in (0, 1):
            step = move[:, axis]
            target = pos[:, axis] + step
            lead = target + torch.sign(step) * r                                   # leading edge
            other = pos[:, 1 - axis]
            sides = torch.stack([other - r, other + r], -1)                        # (B, 2)
            along = lead[:, None].expand(-1, 2)
            hit = (self._solid(along, sides) if axis == 0 else self._solid(sides, along)).any(-1)
            edge = lead.floor()
            stop = torch.where(step > 0, edge - r - eps, edge + 1 + r + eps)
            new = torch.where(hit, stop, target)
            pos = torch.stack([new, pos[:, 1]] if axis == 0 else [pos[:, 0], new], -1)
        return pos

    def _push_out(self, pos: torch.Tensor) -> torch.Tensor:
        """Push the body out of solid sprites' circles (sprites are placed so that this
        never pushes it into a wall)."""
        world = self.world
        rel = pos[:, None] - world.sprite_xy                                       # (B, S, 2)
        dist = rel.norm(dim=-1).clamp_min(1e-6)                                    # (B, S)
        reach = torch.where(world.sprite_radius > 0, world.sprite_radius + self.physics.radius, 0.0)
        depth = (reach - dist).clamp_min(0)
        return pos + (rel * (depth / dist)[..., None]).sum(1)

    def _pick_up(self) -> None:
        world = self.world
        dist = (world.sprite_xy - self.pos[:, None]).norm(dim=-1)                  # (B, S)
        taken = world.present & world.sprite_pickup & (dist < self.physics.pickup_radius)
        world.present &= ~taken
        self.score = self.score + taken.sum(1)

    def _visit(self) -> None:
        t = self.world.tiles
        tile = self.pos.floor().long()
        index = (tile[:, 1].clamp(0, t - 1) * t + tile[:, 0].clamp(0, t - 1))[:, None]  # (B, 1)
        self.visited.view(self.batch, t * t).scatter_(1, index, True)
