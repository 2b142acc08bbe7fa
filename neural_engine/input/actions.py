"""A game's action space and the per-tick ``Action``.

Each game fixes a set of buttons (held or not held this tick) and the mouse axes it
reads (dx, dy). One tick's input is an ``Action``: a bitmask over the buttons plus
mouse motion in normalised units (one unit is ``pixels_per_unit`` mouse pixels in a
tick, clipped to [-1, 1]). Everything downstream (simulator, dataset, world model)
consumes the same flat vector, ``(A,) = buttons as 0/1, then mouse axes``.

This module knows nothing about pygame, keys or how actions are produced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

import torch

from neural_engine.schema import bounds

MouseAxis = Literal["dx", "dy"]


@dataclass(frozen=True)
class Action:
    """One tick of input: held buttons as a bitmask, mouse motion in [-1, 1]."""

    buttons: int = 0
    dx: float = 0.0
    dy: float = 0.0


IDLE = Action()


def pressed(actions: torch.Tensor) -> torch.Tensor:
    """(..., A) action vectors → (...,) bool: a button held or the mouse moved. The
    no-op (``IDLE``: nothing held, no motion) is the zero vector."""
    return actions.ne(0).any(-1)


@dataclass(frozen=True)
class ActionSpace:
    """The buttons and mouse axes of one game, in the order the models see them."""

    buttons: tuple[str, ...] = field(metadata=bounds(1, 30))
    mouse_axes: tuple[MouseAxis, ...] = ("dx",)
    mouse_pixels_per_unit: float = field(default=40.0, metadata=bounds(1e-3, 1e6))

    def check(self) -> list[tuple[tuple, str]]:
        problems = []
        if len(set(self.buttons)) != len(self.buttons):
            problems.append((("buttons",), "button names must be unique"))
        if len(set(self.mouse_axes)) != len(self.mouse_axes):
            problems.append((("mouse_axes",), "mouse axes must be unique"))
        return problems

    @property
    def dim(self) -> int:
        """Length of the flat action vector."""
        return len(self.buttons) + len(self.mouse_axes)

    def index(self, name: str) -> int | None:
        """Place of a button or mouse axis in the flat action vector (None: not in it)."""
        if name in self.buttons:
            return self.buttons.index(name)
        if name in self.mouse_axes:
            return len(self.buttons) + self.mouse_axes.index(name)
        return None

    def bit(self, button: str) -> int:
        return 1 << self.buttons.index(button)

    def mask(self, names: Iterable[str]) -> int:
        """Bitmask of the named buttons (names must belong to this space)."""
        out = 0
        for name in names:
            out |= self.bit(name)
        return out

    def held(self, action: Action) -> list[str]:
        return [b for i, b in enumerate(self.buttons) if action.buttons >> i & 1]

    def mouse_units(self, dx_pixels: float, dy_pixels: float, sensitivity: float = 1.0
                    ) -> tuple[float, float]:
        """Mouse pixels accumulated over a tick → clipped normalised units (a motion that
        is not a finite number is no motion)."""
        scale = sensitivity / self.mouse_pixels_per_unit

        def clip(v: float) -> float:
            v *= scale
            return max(-1.0, min(1.0, v)) if math.isfinite(v) else 0.0

        return (clip(dx_pixels) if "dx" in self.mouse_axes else 0.0,
                clip(dy_pixels) if "dy" in self.mouse_axes else 0.0)

    def write(self, action: Action, out: torch.Tensor) -> torch.Tensor:
        """Write one action into ``out`` (A,) in place and return it; allocates nothing."""
        for i in range(len(self.buttons)):
            out[i] = float(action.buttons >> i & 1)
        for j, axis in enumerate(self.mouse_axes):
            out[len(self.buttons) + j] = action.dx if axis == "dx" else action.dy
        return out

    def encode(self, actions: Sequence[Action], device: torch.device | str = "cpu"
               ) -> torch.Tensor:
        """Actions → (B, A) float32."""
        out = torch.zeros(len(actions), self.dim)
        for row, action in zip(out, actions):
            self.write(action, row)
        return out.to(device)

    def decode(self, vector: torch.Tensor) -> Action:
        """(A,) → Action; buttons are held where the value is above one half."""
        values = vector.detach().float().cpu().tolist()
        nb = len(self.buttons)
        mask = sum(1 << i for i in range(nb) if values[i] > 0.5)
        axes = dict(zip(self.mouse_axes, values[nb:]))
        return Action(mask, axes.get("dx", 0.0), axes.get("dy", 0.0))
