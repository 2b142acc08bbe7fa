"""How fast a game's simulator makes frames: the rate at which it can feed training.

For each batch size B it resets B worlds, warms up, then steps them for a number of
ticks, driven either by the game's exploring agent (what training does)
or by fixed random input (the simulator alone). The clock stops after one device
synchronisation at the end, so the steps run without a host sync, as they do in
training. Frames per second = B x ticks / seconds.

    python -m neural_engine.cli.throughput --game dungeon --batch 1,256 --device cpu
    python -m neural_engine.cli.throughput --game dungeon --batch 1,256,1024,4096 --device cuda

It knows the game contract (``Simulator``, ``Agent``) and nothing about any game.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from neural_engine.errors import EngineError
from neural_engine.games import Game


@dataclass(frozen=True)
class Rate:
    batch: int
    ticks: int
    seconds: float
    agent: bool

    @property
    def frames_per_second(self) -> float:
        return self.batch * self.ticks / self.seconds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(game: Game, batch: int, ticks: int, device: torch.device | str = "cpu",
            agent: bool = True, warmup: int = 5, seed: int = 0) -> Rate:
    """Frames per second of ``batch`` worlds stepped ``ticks`` times (after ``warmup``)."""
    if batch < 1 or ticks < 1:
        raise EngineError("batch and ticks must be at least 1")
    device = torch.device(device)
    sim = game.simulator(batch=batch, device=device)
    sim.reset([seed + i for i in range(batch)])
    player = None
    if agent:
        player = game.agent(batch=batch, device=device, seed=seed)
        player.reset(sim)
    gen = torch.Generator(device=device).manual_seed(seed)
    space = game.spec.actions

    def action() -> torch.Tensor:
        if player is not None:
            return player.act(sim)
        keys = (torch.rand(batch, len(space.buttons), generator=gen, device=device) < 0.3)
        mouse = torch.rand(batch, len(space.mouse_axes), generator=gen, device=device) * 2 - 1
        return torch.cat([keys.float(), mouse], 1)

    for _ in range(warmup):
        sim.step(action())
    _sync(device)
    start = time.perf_counter()
    for _ in range(ticks):
        sim.step(action())
    _sync(device)
    return Rate(batch, ticks, time.perf_counter() - start, agent)
