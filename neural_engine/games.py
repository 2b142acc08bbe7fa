"""Source games: their specification (``game.toml``) and the contract their code meets.

A source game lives in ``games/<name>/``: a ``game.toml`` (resolution, tick rate,
action space, default bindings) and a Python package exposing ``Simulator`` and
``Agent`` classes that follow the protocols below. The engine finds a game by name
and never knows anything game-specific beyond this contract.

Simulators are batched (B environments stepped together), deterministic given
(seed, actions), and written with torch so they run on the CPU or on the training GPU.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import torch

from neural_engine import schema
from neural_engine.errors import EngineError
from neural_engine.input.actions import ActionSpace
from neural_engine.input.keys import check_key_name
from neural_engine.schema import bounds


@dataclass(frozen=True)
class GameSpec:
    """Everything the engine needs to know about a game, read from its game.toml."""

    name: str
    title: str
    width: int = field(metadata=bounds(16, 2048))
    height: int = field(metadata=bounds(16, 2048))
    tick_rate: int = field(metadata=bounds(1, 240))
    actions: ActionSpace
    bindings: dict[str, tuple[str, ...]]

    def check(self) -> list[tuple[tuple, str]]:
        problems = []
        for axis, size in (("width", self.width), ("height", self.height)):
            if size % 8:
                problems.append(((axis,), f"{size} is not a multiple of 8"))
        for button, keys in self.bindings.items():
            if button not in self.actions.buttons:
                problems.append((("bindings", button), f"not a button of this game "
                                 f"(buttons: {', '.join(self.actions.buttons)})"))
            for i, key in enumerate(keys):
                if (problem := check_key_name(key)) is not None:
                    problems.append((("bindings", button, i), problem))
        return problems


class Simulator(Protocol):
    """A batch of B game environments, stepped together."""

    spec: GameSpec
    batch: int
    device: torch.device
    state_names: tuple[str, ...]

    def reset(self, seeds: Sequence[int], poses: torch.Tensor | None = None) -> torch.Tensor:
        """Start each environment from its seed (and pose, if given); (B, H, W, 3) uint8."""

    def step(self, actions: torch.Tensor) -> torch.Tensor:
        """Advance one tick with actions (B, A); return frames (B, H, W, 3) uint8."""

    def state(self) -> torch.Tensor:
        """The true player state (B, S) float32, named by ``state_names``."""

    def visited_fraction(self) -> torch.Tensor:
        """(B,) fraction of the reachable world visited since reset (coverage)."""


class Agent(Protocol):
    """An exploring player for a batch of environments."""

    def reset(self, sim: Simulator) -> None: ...

    def act(self, sim: Simulator) -> torch.Tensor:
        """Actions (B, A) float32 for the next tick."""


GAMES_ROOT = Path(importlib.import_module("games").__file__).parent


def available() -> list[str]:
    return sorted(p.parent.name for p in GAMES_ROOT.glob("*/game.toml"))


@lru_cache(maxsize=None)
def load_spec(name: str) -> GameSpec:
    """A game's spec by its name: one of ``available()``, never a path."""
    if name not in available():
        raise EngineError(f"unknown game {name!r} (available: {', '.join(available()) or 'none'})")
    path = GAMES_ROOT / name / "game.toml"
    return schema.load(GameSpec, path)


@dataclass(frozen=True)
class Game:
    """A game's spec and its code, found by name."""

    spec: GameSpec
    module_name: str

    def _module(self):
        return importlib.import_module(self.module_name)

    def simulator(self, batch: int = 1, device: torch.device | str = "cpu") -> Simulator:
        return self._module().Simulator(self.spec, batch=batch, device=torch.device(device))

    def agent(self, batch: int = 1, device: torch.device | str = "cpu", seed: int = 0) -> Agent:
        return self._module().Agent(self.spec, batch=batch, device=torch.device(device),
                                    seed=seed)


def load_game(name: str) -> Game:
    spec = load_spec(name)
    return Game(spec=spec, module_name=f"games.{name}")
