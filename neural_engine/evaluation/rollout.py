"""Rollouts: the world model dreaming a clip under given actions, from real context.

``rollout`` starts a world session of one row per clip from the real context frames,
streams it under the clip's actions, and returns the decoded frames in the order they
entered the window, so frame i is the model's answer to action i, directly comparable
with the simulator's frame i under the same actions. (When each frame is *shown* is a
separate matter: the rolling window shows it W − 1 ticks later; see bench/latency.)
The latents are kept as they leave and decoded in bulk at the end.
"""

from __future__ import annotations

import torch

from neural_engine.model.world import WorldModel
from neural_engine.runtime.world import WorldSession
from neural_engine.sampler.stream import SamplerConfig


@torch.no_grad()
def rollout(model: WorldModel, cfg: SamplerConfig, context: torch.Tensor,
            context_actions: torch.Tensor, actions: torch.Tensor, seed: int = 0,
            cuda_graphs: bool = False, late_binding: bool = False,
            frames: int | None = None) -> torch.Tensor:
    """Frames (B, T, H, W, 3) uint8 for actions (B, T, A) after context (B, Fc, H, W, 3);
    ``frames``: stop after the first that many (the later actions still enter the window,
    so the frames kept saw what follows them as the stream would have)."""
    b, t = actions.shape[:2]
    wanted = t if frames is None else min(frames, t)
    world = WorldSession(model, cfg, b, cuda_graphs=cuda_graphs, decode_graph=False)
    world.reset_frames(context, context_actions, seed=seed)
    actions = actions.to(world.device, world.dtype)
    emitted = []
    tick = 0
    while len(emitted) < wanted:
        a = actions[:, min(tick, t - 1)]
        changed = late_binding and 0 < tick < t and not torch.equal(a, actions[:, tick - 1])
        out = world.advance(a, input_changed=changed)
        if out is not None:
            emitted.append(out.clone())
        tick += 1
    return world.decode(torch.stack(emitted, 1))
