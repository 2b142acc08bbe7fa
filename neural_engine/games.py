"""Source games: their specification (``game.toml``) and the contract their code meets.

A source game lives in ``games/<name>/``: a ``game.toml`` (resolution, tick rate,
action space, default bindings, the fields of a start pose, which seeds are held out,
how its control is measured) and a Python package exposing ``Simulator`` and
``Agent`` classes that follow the protocols below, and a ``motion(fields)`` hook: the
true motion between consecutive states (see ``neural_engine.control``). The engine
finds a game by name and never knows anything game-specific beyond this contract;
``games/games.toml`` names the game that plays when nobody names one.

Simulators are batched (B environments stepped together), deterministic given
(seed, actions), and written with torch so they run on the CPU or on the training GPU.
``docs/adding_a_game.md`` walks through writing one; ``tests/games/test_contract.py``
checks every game under ``games/`` against this contract.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import torch

from neural_engine import schema
from neural_engine.control import Control
from neural_engine.errors import EngineError
from neural_engine.input.actions import ActionSpace
from neural_engine.input.keys import check_key_name
from neural_engine.schema import bounds


@dataclass(frozen=True)
class Seeds:
    """How a game's world seeds are split: training draws seeds below ``held_out``;
    every held-out world (evaluation cases, validation clips, the drift measure's bank
    of real frames) takes a seed at or above it."""

    held_out: int = field(default=1 << 30, metadata=bounds(1, 2**62))


@dataclass(frozen=True)
class GameSpec:
    """Everything the engine needs to know about a game, read from its game.toml.

    ``pose`` names the state fields a start pose gives (the maze: x, y, angle), in the
    order a pack's ``pose = [...]`` lists them; ``control`` says how the evaluation
    measures that the world answers the input (``neural_engine.control``); ``seeds``
    which world seeds are held out of training.
    """

    name: str
    title: str
    width: int = field(metadata=bounds(16, 2048))
    height: int = field(metadata=bounds(16, 2048))
    tick_rate: int = field(metadata=bounds(1, 240))
    actions: ActionSpace
    bindings: dict[str, tuple[str, ...]]
    pose: tuple[str, ...] = field(metadata=bounds(1, 8))
    control: Control
    seeds: Seeds = Seeds()

    def check(self) -> list[tuple[tuple, str]]:
        problems = []
        for i, button in enumerate(self.control.latency):
            if button not in self.actions.buttons:
                problems.append((("control", "latency", i), f"not a button of this game "
                                 f"(buttons: {', '.join(self.actions.buttons)})"))
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
        """Start each environment from its seed and, if given, its pose (B, P): the state
        fields ``GameSpec.pose`` names, in the state's units; a pose the game refuses
        (inside a wall) raises EngineError. Frames (B, H, W, 3) uint8."""

    def advance(self, actions: torch.Tensor) -> None:
        """Advance one tick with actions (B, A), drawing nothing: the rules alone. A
        consumer that reads no frame of some ticks (training data past the frames a
        stage reads, an agent's warm-up) saves the renderer's work, usually most of a
        tick's cost."""

    def render(self) -> torch.Tensor:
        """The current view (B, H, W, 3) uint8; it changes no state."""

    def step(self, actions: torch.Tensor) -> torch.Tensor:
        """``advance`` then ``render``: one tick, and the frame it leaves (B, H, W, 3)
        uint8. Frames and states are the same whichever ticks were drawn."""

    def state(self) -> torch.Tensor:
        """The true player state (B, S) float32, named by ``state_names``."""

    def visited_fraction(self) -> torch.Tensor:
        """(B,) fraction of the reachable world visited since reset (coverage)."""


class Ticking:
    """What a batched simulator may inherit instead of writing it again: ``step`` as
    ``advance`` then ``render``, and the checks of the actions ``advance`` receives.
    Needs ``spec``, ``batch``, ``device`` and a ``world`` that is None before reset."""

    def step(self, actions: torch.Tensor) -> torch.Tensor:
        """Advance one tick with actions (B, A); frames (B, H, W, 3) uint8."""
        self.advance(actions)
        return self.render()

    def checked(self, actions: torch.Tensor) -> torch.Tensor:
        """``actions`` (B, A) as float32 on the device; EngineError before a reset or
        for another shape."""
        if self.world is None:
            raise EngineError("step() before reset()")
        if actions.shape != (self.batch, self.spec.actions.dim):
            raise EngineError(f"actions must be ({self.batch}, {self.spec.actions.dim}), "
                              f"got {tuple(actions.shape)}")
        return actions.to(self.device, torch.float32)


class Agent(Protocol):
    """An exploring player for a batch of environments."""

    def reset(self, sim: Simulator) -> None: ...

    def act(self, sim: Simulator) -> torch.Tensor:
        """Actions (B, A) float32 for the next tick."""


GAMES_ROOT = Path(importlib.import_module("games").__file__).parent
SETTINGS = GAMES_ROOT / "games.toml"


def available() -> list[str]:
    return sorted(p.parent.name for p in GAMES_ROOT.glob("*/game.toml"))


@dataclass(frozen=True)
class GamesSettings:
    """``games/games.toml``: settings about the collection of games."""

    default: str


def default_game() -> str:
    """The game that plays when no command-line option or pack names one."""
    settings = schema.load(GamesSettings, SETTINGS)
    if settings.default not in available():
        raise EngineError(f"default: unknown game {settings.default!r} (available: "
                          f"{', '.join(available()) or 'none'})", where=str(SETTINGS))
    return settings.default


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

    @property
    def folder(self) -> Path:
        return GAMES_ROOT / self.spec.name

    def motion(self, states: torch.Tensor, state_names: Sequence[str]) -> torch.Tensor:
        """True motion (..., T - 1, M) between consecutive states (..., T, S) named by
        ``state_names``, through the game's ``motion`` hook; M = the ``[control]``
        table's motion targets, in order."""
        control = self.spec.control
        missing = [n for n in control.state if n not in state_names]
        if missing:
            raise EngineError(f"[control] state names {', '.join(missing)}, which the "
                              f"state lacks (it has {', '.join(state_names)})",
                              where=self.spec.name)
        fields = states[..., [list(state_names).index(n) for n in control.state]]
        out = self._module().motion(fields)
        expected = (*states.shape[:-2], states.shape[-2] - 1, len(control.motion))
        if tuple(out.shape) != expected:
            raise EngineError(f"the motion hook returned {tuple(out.shape)}, not {expected}",
                              where=self.spec.name)
        return out

    def script(self, relative: str):
        """An action script of the game's folder (an evaluation case, a control test)."""
        from neural_engine.input.script import load_script

        return load_script(self.folder / relative, self.spec.actions, self.spec.name)

    def simulator(self, batch: int = 1, device: torch.device | str = "cpu") -> Simulator:
        return self._module().Simulator(self.spec, batch=batch, device=torch.device(device))

    def agent(self, batch: int = 1, device: torch.device | str = "cpu", seed: int = 0,
              training: bool = False) -> Agent:
        """The game's exploring agent; ``training``: its ``TrainingAgent`` where the game
        has one (a player for training data that presses every control more often)."""
        module = self._module()
        cls = getattr(module, "TrainingAgent", module.Agent) if training else module.Agent
        return cls(self.spec, batch=batch, device=torch.device(device), seed=seed)


def load_game(name: str | None = None) -> Game:
    """The game called ``name`` (default: ``default_game()``)."""
    spec = load_spec(name if name is not None else default_game())
    return Game(spec=spec, module_name=f"games.{spec.name}")
