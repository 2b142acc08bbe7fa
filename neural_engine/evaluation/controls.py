"""Scripted control tests: does the generated world answer the keys, stop at walls, and
stay the same world?

A game's ``eval/controls.toml`` lists tests in held-out worlds. Each starts at the map's
start pose with a few idle context frames and then plays an action script (or no
input). The simulator replays the same actions for the truth. What a test measures
depends on its kind:

- ``follow``: per-tick accuracy of the probe's classes of every scored motion target
  (``[control]`` in game.toml; the maze's turn, move, strafe) on the generated frames
  against the true motion (every test reports these);
- ``hold``: a held key: of the ticks on which the simulator moves along ``axis``, the
  share the probe reads as moving the same way;
- ``blocked``: walking into a wall: of the ticks on which ``button`` is held but the
  simulator does not move along ``axis`` (a wall stops it), the share on which the
  generated view still moves the button's way;
- ``loop``: a full turn in place: PSNR of the last frame against the frame at
  ``before`` seconds (the simulator returns to the same view);
- ``still``: no input: PSNR against the truth at each horizon of ``STILL_HORIZONS``.

This module knows the tests and their scores, not where generated frames come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from neural_engine import schema
from neural_engine.data.clips import record_play
from neural_engine.errors import EngineError
from neural_engine.evaluation.cases import Replay
from neural_engine.evaluation.metrics import psnr
from neural_engine.games import GAMES_ROOT, Game
from neural_engine.input.script import load_script
from neural_engine.sampler.stream import CONTEXT_FRAMES
from neural_engine.schema import bounds

STILL_HORIZONS = (1, 10, 30, 60)        # seconds at which stillness is read
Kind = Literal["follow", "hold", "blocked", "loop", "still"]


@dataclass(frozen=True)
class ControlTest:
    name: str
    kind: Kind
    seeds: tuple[int, ...] = field(metadata=bounds(1, 1024))
    script: str | None = None           # an action script beside controls.toml; else idle
    seconds: float | None = field(default=None, metadata=bounds(0.1, 3600.0))
    axis: str | None = None             # a motion target of the game's [control] table
    button: str | None = None           # blocked: the button that pushes against the wall
    sign: Literal[-1, 1] = 1            # blocked: the way the button moves along ``axis``
    before: float = field(default=0.0, metadata=bounds(0.0, 3600.0))    # loop: seconds

    def check(self) -> list[tuple[tuple, str]]:
        problems = []
        if self.kind in ("hold", "blocked") and self.axis is None:
            problems.append((("axis",), f"a {self.kind} test names the motion it measures"))
        if self.kind == "blocked" and self.button is None:
            problems.append((("button",), "a blocked test names the button it holds"))
        if self.script is None and self.seconds is None:
            problems.append((("seconds",), "a test without a script needs its length"))
        return problems


@dataclass(frozen=True)
class ControlSet:
    test: tuple[ControlTest, ...]
    context: int = field(default=CONTEXT_FRAMES, metadata=bounds(1, 16))


def load_controls(game: Game, path: Path | None = None) -> tuple[ControlSet, Path]:
    """The game's tests, each checked against its game: held-out seeds, a motion target
    of its ``[control]`` table as the axis, a button of its action space."""
    path = path or GAMES_ROOT / game.spec.name / "eval" / "controls.toml"
    if not path.is_file():
        raise EngineError("no control tests for this game", where=str(path))
    controls = schema.load(ControlSet, path)
    spec, problems = game.spec, []
    for test in controls.test:
        if min(test.seeds) < spec.seeds.held_out:
            problems.append(f"{test.name}: seeds must be held out (at least "
                            f"{spec.seeds.held_out})")
        if test.axis is not None and test.axis not in spec.control.names:
            problems.append(f"{test.name}: axis {test.axis!r} is not a motion target of the "
                            f"game ({', '.join(spec.control.names)})")
        if test.button is not None and test.button not in spec.actions.buttons:
            problems.append(f"{test.name}: {test.button!r} is not a button of the game")
    if problems:
        raise EngineError("; ".join(problems), where=str(path))
    return controls, path.parent


@torch.no_grad()
def materialize_test(game: Game, controls: ControlSet, test: ControlTest, folder: Path,
                     worlds: int, seconds: float | None = None, cap: float | None = None
                     ) -> Replay:
    """The first ``worlds`` seeds of ``test`` played in the simulator; ``seconds``
    replaces its length, ``cap`` limits it (profiles that shorten the tests)."""
    space, rate = game.spec.actions, game.spec.tick_rate
    script = None
    if test.script is not None:
        script = load_script(folder / test.script, space, game.spec.name)
    length = seconds or test.seconds or script.length
    if cap is not None:
        length = min(length, cap)
    ticks = max(2, round(length * rate))
    actions = torch.zeros(ticks, space.dim)
    if script is not None:
        actions = space.encode(script.actions(space, rate, ticks))
    seeds = list(test.seeds[:worlds])
    b, c = len(seeds), controls.context
    plan = torch.cat([torch.zeros(c, space.dim), actions])[None].expand(b, -1, -1)
    sim = game.simulator(batch=b, device="cpu")
    sim.reset(seeds)
    frames, acts, states = record_play(sim, _NoAgent(), c + ticks, lambda t, a: plan[:, t])
    names = [f"{test.name}/{i}" for i in range(b)]
    return Replay(names, frames[:, :c], acts[:, :c], acts[:, c:], frames[:, c:],
                  states[:, c:], tuple(sim.state_names))


class _NoAgent:
    """Stands in for the agent where every action comes from the script."""

    def act(self, sim) -> torch.Tensor:
        return torch.zeros(sim.batch, sim.spec.actions.dim)


def true_classes(game: Game, replay: Replay) -> torch.Tensor:
    """(B, T − 1, M) classes of the true motion between consecutive frames."""
    return game.spec.control.classes(game.motion(replay.states, replay.state_names))


def axis_accuracy(read: torch.Tensor, truth: torch.Tensor, axes: tuple[str, ...],
                  scored: tuple[str, ...]) -> dict[str, float]:
    """Per-tick class accuracy of each scored axis: readings and truth (..., M) classes
    over the motion targets ``axes``."""
    hits = (read == truth).float().flatten(0, -2).mean(0)
    return {axis: hits[axes.index(axis)].item() for axis in scored}


def held_fraction(read: torch.Tensor, truth: torch.Tensor, i: int) -> tuple[float, int]:
    """Of the ticks where the truth moves along axis ``i``, the share read the same way."""
    moving = truth[..., i] != 0
    count = int(moving.sum())
    hits = ((read[..., i] == truth[..., i]) & moving).sum().item()
    return (hits / count if count else float("nan")), count


def blocked_fraction(read: torch.Tensor, truth: torch.Tensor, replay: Replay, i: int,
                     sign: int, button_index: int) -> tuple[float, int]:
    """Of the ticks where the button is held but the truth does not move along axis
    ``i``, the share on which the reading still moves the button's way (``sign``)."""
    held = replay.actions[:, 1:, button_index] > 0.5              # pair t → t + 1
    stopped = held & (truth[..., i] == 0)
    count = int(stopped.sum())
    moving = ((read[..., i] == sign) & stopped).sum().item()
    return (moving / count if count else float("nan")), count


def loop_closure(frames: torch.Tensor, before_tick: int) -> torch.Tensor:
    """(B,) PSNR of the last frame of (B, T, H, W, 3) against the frame at ``before_tick``."""
    return psnr(frames[:, -1], frames[:, before_tick])


def stillness(frames: torch.Tensor, truth: torch.Tensor, rate: int) -> dict[str, float]:
    """PSNR against the truth, mean over the second that ends at each horizon reached."""
    p = psnr(frames, truth)                                               # (B, T)
    return {f"{h}s": p[:, (h - 1) * rate:h * rate].mean().item()
            for h in STILL_HORIZONS if h * rate <= p.shape[1]}
