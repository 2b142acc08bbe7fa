"""The dungeon's exploring agent plays the game, not just the keys: it opens doors and
chests, fights what comes near, collects coins, covers new ground and holds its keys.
Frames are shrunk (the agent never looks at them)."""

import dataclasses

import pytest
import torch

from games.dungeon import levelgen as lv
from neural_engine.games import Game, load_game

BATCH, TICKS = 4, 500


@pytest.fixture(scope="module")
def run():
    game = load_game("dungeon")
    small = Game(dataclasses.replace(game.spec, width=32, height=32), game.module_name)
    sim = small.simulator(batch=BATCH)
    agent = small.agent(batch=BATCH, seed=3)
    sim.reset([200 + i for i in range(BATCH)])
    agent.reset(sim)
    doors = ((sim.world.tiles == lv.DOOR) | (sim.world.tiles == lv.LOCKED)).sum().item()
    creatures0 = _creatures(sim).sum().item()
    actions, near = [], []
    for _ in range(TICKS):
        rel = (sim.world.pos - sim.hero.pos[:, None]).abs().amax(-1)
        near.append(((rel < 48) & _creatures(sim)).any(1))
        actions.append(agent.act(sim))
        sim.step(actions[-1])
    stats = {"doors_opened": doors - ((sim.world.tiles == lv.DOOR)
                                      | (sim.world.tiles == lv.LOCKED)).sum().item(),
             "chests": (sim.world.kind == lv.CHEST_OPEN).sum().item(),
             "beaten": creatures0 - _creatures(sim).sum().item()}
    return small, sim, torch.stack(actions, 1), torch.stack(near, 1), stats


def _creatures(sim) -> torch.Tensor:
    kind = sim.world.kind
    return (kind == lv.SLIME) | (kind == lv.BAT) | (kind == lv.SKELETON)


def _mean_run(held: torch.Tensor) -> float:
    padded = torch.nn.functional.pad(held.int(), (1, 1))
    starts = ((padded[:, 1:] - padded[:, :-1]) == 1).sum().item()
    return held.sum().item() / max(starts, 1)


def test_the_agent_opens_doors_and_chests_and_fights(run):
    _, sim, _, _, stats = run
    # measured: 14 door tiles opened, 3 chests, 8 creatures beaten, 39 coins over 4 levels
    assert stats["doors_opened"] >= 4
    assert stats["chests"] >= 1
    assert stats["beaten"] >= 2
    assert sim.hero.score.sum() >= 8


def test_the_agent_swings_at_creatures_more_than_at_the_air(run):
    game, _, actions, near, _ = run
    attack = actions[..., game.spec.actions.index("attack")] > 0.5
    assert attack.float().mean() > 0.01
    assert near[attack].float().mean() > 0.5


def test_the_agent_covers_ground_and_holds_its_keys(run):
    game, sim, actions, _, _ = run
    assert (sim.visited_fraction() > 0.04).all()
    keys = actions[..., :4] > 0.5
    for i in range(4):
        assert _mean_run(keys[..., i]) > 4, game.spec.actions.buttons[i]
    idle = ~(actions > 0.5).any(-1)
    assert 0.01 < idle.float().mean() < 0.3
