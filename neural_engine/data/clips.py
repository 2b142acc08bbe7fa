"""Training data on the fly: clips of play from the batched simulator on the training device.

No disk in the loop: B environments run on the training device, driven by the game's
exploring agent, and every ``next()`` steps them ``clip_len`` ticks and returns what
happened. Episodes last ``episode_ticks`` and then restart in new worlds. Each
episode's first frame is kept as its "anchor" (for training the attention sink on a
frame from long ago).

A stage that trains on latents passes its frozen encoder (``encode``): each refill of
the pool is then encoded once, in large chunks, and clips carry their latents. With
``reuse`` = K, every refill is served K times over (the first pass in order, each later
one in a seeded shuffle), so one simulated and encoded frame feeds K steps: the data's
cost per step falls K-fold, at the price of fresher data.

``training_agent`` plays the game's training player where it has one (every control
pressed more often) instead of its exploring agent.

``read_frames`` = N draws, keeps and encodes only each clip's first N frames (for a
stage that reads no more, such as the distillation, which starts its rollouts from a
few true frames and generates the rest): the later ticks are simulated without
drawing (``Simulator.advance``), and the clip's ``frames`` and ``latents`` are
(B, N, ...) while its actions and states stay whole. Drawing was most of the
simulator's cost, and encoding most of the refill's. ``encode_anchor`` = False leaves
the anchor's latents out (a stage that never reads them; the anchor frame stays).

Everything derives from (seed, number of clips drawn): ``state_dict`` is that count,
and ``load_state_dict`` replays the current episode up to it, so a resumed run sees
exactly the clips an uninterrupted run would have seen.

``held_out_clips`` gives the fixed evaluation cases: worlds whose seeds start at the
game's ``[seeds] held_out``, which training never draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from neural_engine.games import Game

# Training worlds take seeds below this; held-out evaluation worlds start here. A game
# may move the line (game.toml's [seeds] held_out); this is the default it takes.
HELD_OUT_SEED_BASE = 1 << 30


def episode_seed(base_seed: int, index: int, below: int = HELD_OUT_SEED_BASE) -> int:
    """A well-mixed world seed for episode ``index`` of a run seeded ``base_seed``, below
    ``below`` (the game's first held-out seed)."""
    z = (base_seed * 0x9E3779B97F4A7C15 + index + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) % below


@dataclass
class Clip:
    """frames (B, T, H, W, 3) uint8 and actions (B, T, A): actions[:, t] produced frames[:, t];
    anchor (B, H, W, 3) uint8: the first frame of each clip's episode; states (B, T, S):
    the true state after each tick."""

    frames: torch.Tensor
    actions: torch.Tensor
    anchor: torch.Tensor
    states: torch.Tensor | None = None
    latents: torch.Tensor | None = None        # (B, T, C, h, w), with an encoder
    anchor_latents: torch.Tensor | None = None  # (B, C, h, w)


class SimClips:
    """Clips of ``batch`` environments from a pool of ``pool`` simulated together.

    Simulating is launch-bound (a step of 1,024 environments costs about what one
    costs), so a large pool is stepped ``clip_len`` ticks at a time and handed out
    ``batch`` clips per ``next()``.
    """

    def __init__(self, game: Game, batch: int, clip_len: int, device: torch.device | str,
                 seed: int = 0, episode_ticks: int = 400, pool: int | None = None,
                 encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 reuse: int = 1, training_agent: bool = False,
                 read_frames: int | None = None, encode_anchor: bool = True):
        self.game, self.batch, self.clip_len = game, batch, clip_len
        self.read_frames = clip_len if read_frames is None else max(1, min(read_frames, clip_len))
        self.device = torch.device(device)
        self.seed = seed
        self.pool = max(batch, pool or batch)
        self.encode, self.reuse = encode, max(1, reuse)
        self.encode_anchor = encode_anchor
        self.training_agent = training_agent
        self.latents = self.anchor_latents = None
        self.order: list[torch.Tensor] = []
        self.per_pass = self.pool // batch
        self.per_refill = self.per_pass * self.reuse
        self.refills_per_episode = max(1, episode_ticks // clip_len)
        self.drawn = 0
        self.sim = game.simulator(batch=self.pool, device=self.device)
        self.agent = None
        self.anchor: torch.Tensor | None = None
        self.frames = torch.zeros(self.pool, self.read_frames, game.spec.height, game.spec.width, 3,
                                  dtype=torch.uint8, device=self.device)
        self.actions = torch.zeros(self.pool, clip_len, game.spec.actions.dim,
                                   device=self.device)
        self.states = torch.zeros(self.pool, clip_len, len(self.sim.state_names),
                                  device=self.device)

    def _start_episode(self, episode: int) -> None:
        below = self.game.spec.seeds.held_out
        seeds = [episode_seed(self.seed, episode * self.pool + b, below) for b in range(self.pool)]
        self.anchor = self.sim.reset(seeds).clone()
        self.agent = self.game.agent(batch=self.pool, device=self.device,
                                     seed=episode_seed(self.seed + 7919, episode),
                                     training=self.training_agent)
        self.agent.reset(self.sim)

    def _refill(self, refill: int, record: bool = True) -> None:
        episode, index = divmod(refill, self.refills_per_episode)
        if index == 0 or self.agent is None:
            self._start_episode(episode)
        for t in range(self.clip_len):
            action = self.agent.act(self.sim)
            if record and t < self.read_frames:
                self.frames[:, t] = self.sim.step(action)
            else:
                self.sim.advance(action)
            if record:
                self.actions[:, t] = action
                self.states[:, t] = self.sim.state()
        if record:
            self._prepare(refill)

    def _prepare(self, refill: int) -> None:
        """Encode the refill (with an encoder) and draw the order of its later passes."""
        if self.encode is not None:
            self.latents = self.encode(self.frames)
            if self.encode_anchor:
                self.anchor_latents = self.encode(self.anchor[:, None])[:, 0]
        g = torch.Generator().manual_seed(episode_seed(self.seed + 104_729, refill))
        self.order = [torch.arange(self.pool)] + [torch.randperm(self.pool, generator=g)
                                                  for _ in range(self.reuse - 1)]

    def next(self) -> Clip:
        refill, part = divmod(self.drawn, self.per_refill)
        if part == 0:
            self._refill(refill)
        self.drawn += 1
        serve, slot = divmod(part, self.per_pass)
        rows = self.order[serve][slot * self.batch:(slot + 1) * self.batch].to(self.device)
        if serve == 0:                  # in order: plain slices, as without reuse
            rows = slice(slot * self.batch, (slot + 1) * self.batch)
        clip = Clip(self.frames[rows].clone(), self.actions[rows].clone(), self.anchor[rows],
                    self.states[rows].clone())
        if self.latents is not None:
            clip.latents = self.latents[rows]
            if self.anchor_latents is not None:
                clip.anchor_latents = self.anchor_latents[rows]
        return clip

    def state_dict(self) -> dict:
        return {"drawn": self.drawn}

    def load_state_dict(self, state: dict) -> None:
        """Continue after ``drawn`` clips: replay the current episode up to that point."""
        self.drawn = int(state["drawn"])
        refill, part = divmod(self.drawn, self.per_refill)
        done = refill if part else refill - 1          # the last refill already made
        first = (max(done, 0) // self.refills_per_episode) * self.refills_per_episode
        self.agent = None
        for r in range(first, done + 1):
            self._refill(r, record=r == done and part > 0)


def record_play(sim, agent, ticks: int, choose=None, keep: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Step ``sim`` ``ticks`` times under ``agent``; ``choose(t, action)`` may replace its
    action. Returns frames (B, T, H, W, 3), actions (B, T, A), states (B, T, S) if kept;
    without ``keep`` nothing is drawn."""
    frames, actions, states = [], [], []
    for t in range(ticks):
        action = agent.act(sim)
        if choose is not None:
            action = choose(t, action)
        if not keep:
            sim.advance(action)
            continue
        frames.append(sim.step(action))
        actions.append(action)
        states.append(sim.state())
    if not keep:
        return None
    return torch.stack(frames, 1), torch.stack(actions, 1), torch.stack(states, 1)


def held_out_clips(game: Game, count: int, length: int, device: torch.device | str,
                   warmup: int = 20, first: int = 0) -> Clip:
    """``count`` fixed evaluation clips of ``length`` frames from held-out worlds.

    Frame 0 of each clip is the world after ``warmup`` ticks of the agent; its action is
    the one that produced it. Same arguments, same clips, on any run.
    """
    sim = game.simulator(batch=count, device=device)
    base = game.spec.seeds.held_out
    seeds = [base + first + i for i in range(count)]
    anchor = sim.reset(seeds).clone()
    agent = game.agent(batch=count, device=device, seed=base + first)
    agent.reset(sim)
    record_play(sim, agent, warmup, keep=False)
    frames, actions, states = record_play(sim, agent, length)
    return Clip(frames, actions, anchor, states)
