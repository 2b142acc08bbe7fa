"""What a game says about how its control is measured: the ``[control]`` table of
``game.toml``.

The engine's evaluation asks whether a world model answers the player's input. It
cannot know what "moving" means in a game it has never seen, so each game says it:

- ``state``: the fields of the simulator's state (``Simulator.state_names``) that its
  motion is computed from, in the order the game's ``motion`` hook reads them (the
  maze: x, y, angle; the dungeon: x, y);
- ``motion``: the motion targets that hook returns per pair of consecutive ticks, in
  order, each with the typical size of one tick's value (``scale``: what a motion probe
  divides by), a ``dead_zone`` (a value within it counts as no motion), the names of
  its three classes (below, within and above the dead zone), and whether the probe's
  classes of it are ``scored``;
- ``latency``: the buttons the response-latency test holds from a standstill (their
  effect must be visible in the next frame of the simulator).

The scripted control tests themselves (held keys, zigzags, walking into a wall, a
round trip that comes back to the same view, standing still) are listed in the game's
``eval/controls.toml`` (``neural_engine.evaluation.controls``); each test's ``axis``
names one of the motion targets here.

``Control.classes`` turns motion into classes; ``neural_engine.games.Game.motion``
computes the true motion of recorded states through the game's hook. This module
knows the schema; it knows nothing about probes, models or any particular game.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from neural_engine.schema import bounds


@dataclass(frozen=True)
class MotionTarget:
    """One motion component per tick, e.g. the maze's turn in radians."""

    name: str
    scale: float = field(metadata=bounds(1e-6, 1e6))
    dead_zone: float = field(metadata=bounds(0.0, 1e6))
    classes: tuple[str, ...] = field(default=("negative", "none", "positive"),
                                     metadata=bounds(3, 3))
    scored: bool = True


@dataclass(frozen=True)
class Control:
    """The ``[control]`` table; see the module docstring."""

    state: tuple[str, ...] = field(metadata=bounds(1, 16))
    motion: tuple[MotionTarget, ...] = field(metadata=bounds(1, 8))
    latency: tuple[str, ...] = field(metadata=bounds(1, 8))

    def check(self) -> list[tuple[tuple, str]]:
        problems = []
        for what, names in (("state", self.state), ("motion", [m.name for m in self.motion])):
            if len(set(names)) != len(names):
                problems.append(((what,), "names must be unique"))
        for i, target in enumerate(self.motion):
            if len(set(target.classes)) != 3:
                problems.append((("motion", i, "classes"), "three different names"))
            if target.dead_zone >= target.scale:
                problems.append((("motion", i, "dead_zone"), f"{target.dead_zone} is not "
                                 f"below the scale {target.scale}"))
        return problems

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.motion)

    @property
    def scored(self) -> tuple[str, ...]:
        """The targets whose classes the probe is scored on."""
        return tuple(m.name for m in self.motion if m.scored)

    def scales(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(M,) float32 the typical size of each target."""
        return torch.tensor([m.scale for m in self.motion], device=device)

    def classes(self, motion: torch.Tensor) -> torch.Tensor:
        """Motion (..., M) → classes (..., M) long in {-1, 0, 1}: below, within, above
        each target's dead zone (class names: ``MotionTarget.classes``)."""
        dead = torch.tensor([m.dead_zone for m in self.motion], device=motion.device)
        return torch.where(motion.abs() > dead, motion.sign(), 0).long()
