"""Golden frames: scripted input replayed under fixed seeds gives the frames stored in
``tests/golden/``, for each game's simulator and for a tiny fixed world model.

Each case replays one of the game's own action scripts from its ``eval/`` folder tick by
tick through a frame source (the loop's view: ``reset(start)``, then ``step(action)``)
and keeps every ``EVERY``-th frame side by side in one PNG strip. A change in what a
player would see fails here. When the change is meant, rewrite the strips with
``python -m pytest tests/test_golden.py --update-golden`` and commit them.

The simulator is compared almost exactly, the neural source within a little more (its
float arithmetic may round differently on another CPU or torch build); both tolerances
are far below what a changed game, model or sampler gives.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pygame
import pytest

from neural_engine.games import Game, load_game
from neural_engine.packs.png import read_png
from neural_engine.packs.start import StartState
from neural_engine.runtime.frame_source import SimulatorSource
from neural_engine.runtime.session import NeuralSource
from neural_engine.sampler.stream import named_sampler

GOLDEN = Path(__file__).parent / "golden"
EVERY = 4
TICKS = 24
SCRIPTS = {"maze": "eval/walk_and_turn.toml", "dungeon": "eval/walk_about.toml"}
START = StartState(seed=7)


def replay(source, game) -> np.ndarray:
    """Frames 0, EVERY, 2·EVERY, … of the game's script, side by side: (H, k·W, 3) uint8."""
    spec = game.spec
    actions = game.script(SCRIPTS[spec.name]).actions(spec.actions, spec.tick_rate, TICKS)
    frames = [source.reset(START)]
    for action in actions:
        frames.append(source.step(action))
    return np.concatenate(frames[::EVERY], axis=1)


def write_png(path: Path, strip: np.ndarray) -> None:
    surface = pygame.image.frombuffer(np.ascontiguousarray(strip).tobytes(),
                                      (strip.shape[1], strip.shape[0]), "RGB")
    pygame.image.save(surface, str(path))


def check(name: str, strip: np.ndarray, update: bool, *, max_diff: int, mean_diff: float):
    path = GOLDEN / f"{name}.png"
    if update:
        write_png(path, strip)
        return
    if not path.is_file():
        pytest.fail(f"no golden frames at {path}; run pytest {__file__} --update-golden")
    golden = read_png(path, (strip.shape[1], strip.shape[0]))
    diff = np.abs(golden.astype(np.int16) - strip.astype(np.int16))
    assert diff.mean() <= mean_diff and diff.max() <= max_diff, (
        f"{name}: frames differ from {path.name} (max {diff.max()}, mean {diff.mean():.3f}); "
        f"if the change is meant, rerun with --update-golden")


@pytest.mark.parametrize("game_name", sorted(SCRIPTS))
def test_simulator_replays_the_golden_frames(game_name, update_golden):
    game = load_game(game_name)
    strip = replay(SimulatorSource(game), game)
    check(f"sim_{game_name}", strip, update_golden, max_diff=1, mean_diff=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["rolling", "causal"])
def test_tiny_fixed_model_replays_the_golden_frames(sampler, tiny_model, update_golden):
    maze = load_game("maze")       # at 64×64, so that the CPU replays it in seconds
    game = Game(dataclasses.replace(maze.spec, width=64, height=64), maze.module_name)
    spec = game.spec
    model = tiny_model(spec.height, spec.width, spec.actions.dim)
    cfg = named_sampler(sampler, max_frames=model.config.denoiser.max_frames)
    strip = replay(NeuralSource(game, model, cfg, device="cpu"), game)
    check(f"tiny_{sampler}", strip, update_golden, max_diff=4, mean_diff=0.1)
