"""Held-out evaluation cases, fixed in the repository so every checkpoint does the same work.

A game's ``eval/cases.toml`` lists worlds by seed (all at or above the game's
``[seeds] held_out``, which training never draws) and who plays each: the exploring
agent, or an action script from the same folder. ``materialize`` replays them in the
simulator: the context frames the model starts from, the actions of every tick, and
the true frames and states those actions produce: the ground truth of every rollout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from neural_engine import schema
from neural_engine.data.clips import record_play
from neural_engine.errors import EngineError
from neural_engine.games import GAMES_ROOT, Game
from neural_engine.input.script import load_script
from neural_engine.sampler.stream import CONTEXT_FRAMES
from neural_engine.schema import bounds


@dataclass(frozen=True)
class Case:
    name: str
    seed: int = field(metadata=bounds(1, 2**62))      # held out: checked against the game
    script: str | None = None          # an action script beside cases.toml; else the agent


@dataclass(frozen=True)
class CaseSet:
    case: tuple[Case, ...]
    context: int = field(default=CONTEXT_FRAMES, metadata=bounds(1, 16))
    warmup: int = field(default=20, metadata=bounds(0, 10000))   # agent ticks before context
    agent_seed: int = 0


@dataclass
class Replay:
    """context (B, Fc, H, W, 3) uint8 + its actions (B, Fc, A); actions (B, T, A) and the
    true frames (B, T, H, W, 3) uint8 and states (B, T, S) they produce."""

    names: list[str]
    context: torch.Tensor
    context_actions: torch.Tensor
    actions: torch.Tensor
    truth: torch.Tensor
    states: torch.Tensor
    state_names: tuple[str, ...]


def load_cases(game: Game, path: Path | None = None) -> tuple[CaseSet, Path]:
    path = path or GAMES_ROOT / game.spec.name / "eval" / "cases.toml"
    if not path.is_file():
        raise EngineError("no evaluation cases for this game", where=str(path))
    cases = schema.load(CaseSet, path)
    low = [c.name for c in cases.case if c.seed < game.spec.seeds.held_out]
    if low:
        raise EngineError(f"cases {', '.join(low)} take training seeds (held-out seeds start "
                          f"at {game.spec.seeds.held_out})", where=str(path))
    return cases, path.parent


@torch.no_grad()
def materialize(game: Game, cases: CaseSet, folder: Path, ticks: int,
                device: torch.device | str = "cpu", only: int | None = None) -> Replay:
    chosen = list(cases.case[:only] if only else cases.case)
    b, space = len(chosen), game.spec.actions
    scripted = torch.zeros(b, ticks + cases.context, space.dim)
    is_script = torch.zeros(b, dtype=torch.bool)
    for i, case in enumerate(chosen):
        if case.script is not None:
            script = load_script(folder / case.script, space, game.spec.name)
            actions = script.actions(space, game.spec.tick_rate, ticks)
            scripted[i, cases.context:] = space.encode(actions)
            is_script[i] = True
    sim = game.simulator(batch=b, device=device)
    agent = game.agent(batch=b, device=device, seed=cases.agent_seed)
    sim.reset([c.seed for c in chosen])
    agent.reset(sim)
    scripted, is_script = scripted.to(device), is_script.to(device)[:, None]
    # scripted cases stand still through the warm-up and the context, then follow the script
    record_play(sim, agent, cases.warmup,
                lambda t, a: torch.where(is_script, torch.zeros_like(a), a), keep=False)
    frames, actions, states = record_play(
        sim, agent, cases.context + ticks, lambda t, a: torch.where(is_script, scripted[:, t], a))
    c = cases.context
    return Replay([case.name for case in chosen], frames[:, :c], actions[:, :c],
                  actions[:, c:], frames[:, c:], states[:, c:], tuple(sim.state_names))
