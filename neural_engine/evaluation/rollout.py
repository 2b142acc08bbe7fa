"""Rollouts: the world model dreaming a clip under given actions, from real context.

``rollout`` encodes real context frames, streams the sampler under the clip's
actions, and returns the decoded frames in the order they entered the window, so
frame i is the model's answer to action i, directly comparable with the
simulator's frame i under the same actions. (When each frame is *shown* is a
separate matter: the rolling window shows it W − 1 ticks later; see bench/latency.)
"""

from __future__ import annotations

import torch

from neural_engine.model.autoencoder import to_uint8, to_unit
from neural_engine.model.world import WorldModel
from neural_engine.sampler.stream import SamplerConfig, StreamSampler


@torch.no_grad()
def encode_frames(model: WorldModel, frames: torch.Tensor, dtype: torch.dtype,
                  chunk: int = 256) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 → normalised latents (B, T, C, h, w)."""
    b, t = frames.shape[:2]
    flat = frames.reshape(b * t, *frames.shape[2:])
    out = [model.autoencoder.encode(to_unit(flat[i:i + chunk]).to(dtype))
           for i in range(0, b * t, chunk)]
    return torch.cat(out).view(b, t, *model.config.latent_shape)


@torch.no_grad()
def decode_latents(model: WorldModel, latents: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """(B, T, C, h, w) → (B, T, H, W, 3) uint8."""
    b, t = latents.shape[:2]
    flat = latents.reshape(b * t, *latents.shape[2:])
    out = [to_uint8(model.autoencoder.decode(flat[i:i + chunk]).float())
           for i in range(0, b * t, chunk)]
    return torch.cat(out).view(b, t, model.config.height, model.config.width, 3)


@torch.no_grad()
def rollout(model: WorldModel, cfg: SamplerConfig, context: torch.Tensor,
            context_actions: torch.Tensor, actions: torch.Tensor, seed: int = 0,
            cuda_graphs: bool = False, late_binding: bool = False,
            frames: int | None = None) -> torch.Tensor:
    """Frames (B, T, H, W, 3) uint8 for actions (B, T, A) after context (B, Fc, H, W, 3);
    ``frames``: stop after the first that many (the later actions still enter the window,
    so the frames kept saw what follows them as the stream would have)."""
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    b, t = actions.shape[:2]
    wanted = t if frames is None else min(frames, t)
    sampler = StreamSampler(model.denoiser, model.schedule, cfg, b, device, dtype)
    if cuda_graphs and device.type == "cuda":
        sampler.capture()
    sampler.reset(encode_frames(model, context.to(device), dtype),
                  context_actions.to(device, dtype), seed=seed)
    actions = actions.to(device, dtype)
    emitted = []
    tick = 0
    while len(emitted) < wanted:
        a = actions[:, min(tick, t - 1)]
        changed = late_binding and 0 < tick < t and not torch.equal(a, actions[:, tick - 1])
        out = sampler.step(a, input_changed=changed)
        if out is not None:
            emitted.append(out.clone())
        tick += 1
    return decode_latents(model, torch.stack(emitted, 1))
