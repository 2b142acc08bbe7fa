"""The exploring agent: it covers new ground, holds keys like a person, and uses
both the turn keys and the mouse. Rendering is shrunk (the agent never looks at
frames) and maps are small so that a run of a few hundred ticks says something."""

import dataclasses
from collections import deque

import numpy as np
import pytest
import torch

from games.maze import Agent, Simulator
from games.maze.agent import AgentConfig
from games.maze.mapgen import MapConfig
from neural_engine.games import load_spec

SPEC = dataclasses.replace(load_spec("maze"), width=32, height=32)
BUTTONS = SPEC.actions.buttons
BATCH, TICKS = 4, 400


def play(seed: int, ticks: int = TICKS, maps: int = 1000):
    sim = Simulator(SPEC, batch=BATCH, maps=MapConfig(cells=6))
    agent = Agent(SPEC, batch=BATCH, seed=seed)
    sim.reset([maps + i for i in range(BATCH)])
    agent.reset(sim)
    actions, travelled = [], torch.zeros(BATCH)
    for _ in range(ticks):
        a = agent.act(sim)
        assert a.shape == (BATCH, SPEC.actions.dim) and a.dtype == torch.float32
        actions.append(a)
        sim.step(a)
        travelled += sim.state()[:, sim.state_names.index("moved")]
    return sim, torch.stack(actions, 1), travelled                          # (B, N, A)


@pytest.fixture(scope="module")
def run():
    return play(seed=1)


def mean_run_length(held: torch.Tensor) -> float:
    """Mean length of runs of True along the last axis of (B, N) bools."""
    padded = torch.nn.functional.pad(held.int(), (1, 1))
    starts = ((padded[:, 1:] - padded[:, :-1]) == 1).sum().item()
    return held.sum().item() / max(starts, 1)


def test_agent_covers_new_ground(run):
    sim, _, travelled = run
    t = sim.world.tiles
    visited = sim.visited_fraction()
    tiles = visited * sim.world.walkable.reshape(BATCH, t * t).sum(1)
    # Measured over four agent seeds (4 maps of 6x6 cells, 400 ticks): mean coverage
    # 0.29-0.41 with 0.81-0.98 new tiles per tile walked. Walking forward with a random
    # mouse covers 0.19, 0.35 new tiles per tile walked.
    assert visited.mean() > 0.2
    assert (tiles / travelled.clamp_min(1)).mean() > 0.6


def test_agent_holds_keys_like_a_person(run):
    _, actions, _ = run
    keys = actions[..., :len(BUTTONS)] > 0.5                                  # (B, N, K)
    for name in ("forward", "turn_left", "turn_right", "run"):
        held = keys[..., BUTTONS.index(name)]
        assert held.any(), name
        assert mean_run_length(held) > 4, name
    assert keys[..., BUTTONS.index("forward")].float().mean() > 0.4
    idle = ~keys.any(-1) & (actions[..., -1].abs() < 1e-6)
    assert idle.float().mean() > 0.01


def test_agent_turns_with_keys_and_mouse(run):
    _, actions, _ = run
    turning_keys = (actions[..., BUTTONS.index("turn_left")]
                    + actions[..., BUTTONS.index("turn_right")])
    mouse = actions[..., len(BUTTONS) + SPEC.actions.mouse_axes.index("dx")]
    assert (turning_keys > 0).float().mean() > 0.05
    assert (mouse.abs() > 0.05).float().mean() > 0.1
    assert (mouse > 0.05).any() and (mouse < -0.05).any()
    assert mouse.abs().max() <= 1


def test_agent_is_deterministic_per_seed():
    _, a, _ = play(seed=2, ticks=40)
    _, b, _ = play(seed=2, ticks=40)
    _, c, _ = play(seed=3, ticks=40)  # same maps, another agent
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def _path_distances(walkable: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    dist = np.full(walkable.shape, -1)
    dist[start] = 0
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if walkable[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return dist


def test_agent_heads_for_the_unexplored_place():
    # Everything is marked visited except a patch some 12 steps of corridor away;
    # an explorer that prefers new ground walks there, a wanderer mostly does not.
    explorer = AgentConfig(mode_weights=(1, 0, 0, 0, 0, 0), run_share=0, strafe_share=0)
    sim = Simulator(SPEC, batch=2, maps=MapConfig(cells=6))
    agent = Agent(SPEC, batch=2, seed=0, config=explorer)
    sim.reset([7, 8])
    targets = []
    for b in range(2):
        walkable = sim.world.walkable[b].numpy()
        x, y = sim.state()[b, :2].int().tolist()
        dist = _path_distances(walkable, (y, x))
        ty, tx = np.argwhere(dist == min(12, dist.max()))[0]
        rows, cols = np.indices(walkable.shape)
        far = np.maximum(abs(rows - ty), abs(cols - tx)) > 2
        sim.visited[b] = torch.from_numpy(walkable & far)
        targets.append((tx + 0.5, ty + 0.5))
    agent.reset(sim)
    targets = torch.tensor(targets, dtype=torch.float32)
    closest = torch.full((2,), float("inf"))
    for _ in range(300):
        sim.step(agent.act(sim))
        closest = torch.minimum(closest, (sim.state()[:, :2] - targets).norm(dim=-1))
    assert (closest < 1.5).all()


def key_shares(agent_cls, seed=5, ticks=600):
    """Share of ticks each button is held, and of ticks pushing forward while not moving."""
    sim = Simulator(SPEC, batch=8, maps=MapConfig(cells=6))
    agent = agent_cls(SPEC, batch=8, seed=seed)
    sim.reset([3000 + i for i in range(8)])
    agent.reset(sim)
    held, actions = torch.zeros(SPEC.actions.dim), []
    for _ in range(ticks):
        a = agent.act(sim)
        sim.step(a)
        actions.append(a)
    a = torch.stack(actions)
    return {b: (a[..., i] > 0.5).float().mean().item() for i, b in enumerate(BUTTONS)}, a


def test_the_training_player_presses_the_rare_keys_more_and_leaves_the_explorer_alone():
    from games.maze import TrainingAgent

    explorer, before = key_shares(Agent)
    trainer, actions = key_shares(TrainingAgent)
    for rare in ("back", "strafe_left", "strafe_right"):
        assert trainer[rare] > 2 * explorer[rare] and trainer[rare] > 0.02, rare
    assert all(trainer[b] > 0 for b in BUTTONS)
    # same seed, same actions: deterministic, and the explorer's stream is its own
    assert torch.equal(key_shares(TrainingAgent)[1], actions)
    assert torch.equal(key_shares(Agent)[1], before)
