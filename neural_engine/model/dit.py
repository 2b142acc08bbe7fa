"""The denoiser: a DiT over latent patches of a sequence of frames.

Input: noisy latent frames (B, F, C, h, w), each with its own noise level t in [0, 1]
and its own action. Output: the flow-matching velocity v = noise − clean for every
frame. Tokens are p×p latent patches (``tokens_per_frame`` = h/p · w/p per frame);
positions enter through 3-D rotary embeddings on queries and keys; noise level and
action enter per frame through adaLN (one shared modulation MLP, "adaLN-single",
plus a learned per-block offset), so every token of a frame is modulated alike.

Attention runs in one of two ways:
- uncached (training): the keys are the tokens of this call, and a frame-level
  boolean mask (F, F) says which frame may look at which;
- cached (streaming): each layer first writes this call's keys and values into the
  sampler's preallocated buffers at the given token slots, then attends over the
  whole buffer, with rotary positions the sampler assigns to every slot.

This module knows nothing about noise schedules, windows or the KV cache's layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neural_engine.model.config import WorldModelConfig
from neural_engine.model.rope import RotaryTable, frame_coords, rotate


@dataclass
class CachedKV:
    """Where a streaming call reads and writes keys/values (all tensors preallocated).

    k, v: (depth, B, H, Nk, hd) unrotated keys and values of every cache slot (or a
          list of depth (B, H, Nk, hd) tensors);
    dest: (Nq,) long, the slot each query token's key/value is written to;
    key_cos, key_sin: (Nk, hd/2) rotation of every slot; mask: (Nq, Nk) bool.
    """

    k: torch.Tensor
    v: torch.Tensor
    dest: torch.Tensor
    key_cos: torch.Tensor
    key_sin: torch.Tensor
    mask: torch.Tensor


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of noise levels t (...,) in [0, 1] → (..., dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = (t.float() * 1000.0)[..., None] * freqs
    return torch.cat([args.cos(), args.sin()], -1)


class RMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, 1e-6)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = RMSNorm(dim // heads)
        self.k_norm = RMSNorm(dim // heads)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor | None, cache: CachedKV | None, layer: int) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)                     # (B, H, N, hd)
        q = rotate(q, cos, sin)
        if cache is None:
            k = rotate(k, cos, sin)
        else:
            cache.k[layer].index_copy_(2, cache.dest, k.to(cache.k[layer].dtype))
            cache.v[layer].index_copy_(2, cache.dest, v.to(cache.v[layer].dtype))
            k = rotate(cache.k[layer], cache.key_cos, cache.key_sin).to(q.dtype)
            v = cache.v[layer].to(q.dtype)
            mask = cache.mask
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"),
                                 nn.Linear(hidden, dim))
        self.mod_offset = nn.Parameter(torch.zeros(6, dim))  # adaLN-single per-block offset

    def forward(self, x: torch.Tensor, mod: torch.Tensor, cos, sin, mask, cache, layer):
        # x (B, F, P, D); mod (B, F, 6, D) → six (B, F, 1, D) factors
        b, f, p, d = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = (
            mod + self.mod_offset).unsqueeze(3).unbind(2)
        h = self.norm1(x) * (1 + scale1) + shift1
        h = self.attn(h.reshape(b, f * p, d), cos, sin, mask, cache, layer).view(b, f, p, d)
        x = x + gate1 * h
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + gate2 * self.mlp(h)


class Denoiser(nn.Module):
    """Velocity prediction for a sequence of latent frames; see the module docstring."""

    def __init__(self, config: WorldModelConfig):
        super().__init__()
        self.config = config
        dn = config.denoiser
        c, _, _ = config.latent_shape
        self.rows, self.cols = config.grid
        self.patch = dn.patch
        patch_dim = c * dn.patch * dn.patch
        self.embed = nn.Linear(patch_dim, dn.dim)
        self.time_mlp = nn.Sequential(nn.Linear(256, dn.dim), nn.SiLU(), nn.Linear(dn.dim, dn.dim))
        self.action_mlp = nn.Sequential(nn.Linear(config.action_dim, dn.dim), nn.SiLU(),
                                        nn.Linear(dn.dim, dn.dim))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dn.dim, 6 * dn.dim))
        self.blocks = nn.ModuleList(Block(dn.dim, dn.heads, dn.mlp_ratio)
                                    for _ in range(dn.depth))
        self.final_norm = nn.LayerNorm(dn.dim, elementwise_affine=False, eps=1e-6)
        self.final_mod = nn.Sequential(nn.SiLU(), nn.Linear(dn.dim, 2 * dn.dim))
        self.final = nn.Linear(dn.dim, patch_dim)
        self.rope = RotaryTable(dn.head_dim, dn.rope_theta)
        self._init()

    def _init(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for layer in (self.modulation[-1], self.final_mod[-1], self.final):
            nn.init.zeros_(layer.weight)   # adaLN-Zero: every block starts as identity
            nn.init.zeros_(layer.bias)

    # -- layout ------------------------------------------------------------------
    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, C, h, w) → (B, F, P, C·p·p)."""
        b, f, c, h, w = x.shape
        p = self.patch
        x = x.view(b, f, c, h // p, p, w // p, p)
        return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(b, f, (h // p) * (w // p), c * p * p)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, P, C·p·p) → (B, F, C, h, w)."""
        b, f, _, _ = x.shape
        p, rows, cols = self.patch, self.rows, self.cols
        x = x.view(b, f, rows, cols, -1, p, p)
        return x.permute(0, 1, 4, 2, 5, 3, 6).reshape(b, f, -1, rows * p, cols * p)

    def rotary(self, time_pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (F·P, hd/2) for frames at integer time positions (F,)."""
        return self.rope(*frame_coords(time_pos, self.rows, self.cols))

    def token_mask(self, frame_mask: torch.Tensor) -> torch.Tensor:
        """Frame-level (Fq, Fk) bool → token-level (Fq·P, Fk·P)."""
        p = self.rows * self.cols
        return frame_mask.repeat_interleave(p, 0).repeat_interleave(p, 1)

    # -- forward -----------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor, actions: torch.Tensor,
                time_pos: torch.Tensor, frame_mask: torch.Tensor | None = None,
                cache: CachedKV | None = None) -> torch.Tensor:
        """x (B, F, C, h, w), t (B, F), actions (B, F, A), time_pos (F,) → v like x.

        Uncached: ``frame_mask`` (F, F) bool says which frames each frame attends to
        (None: all). Cached: ``cache`` carries the buffers and the token-level mask.
        """
        b, f = t.shape
        cond = self.time_mlp(timestep_embedding(t, 256).to(x.dtype)) + self.action_mlp(actions)
        mod = self.modulation(cond).view(b, f, 6, -1)                    # (B, F, 6, D)
        h = self.embed(self.patchify(x))                                 # (B, F, P, D)
        cos, sin = self.rotary(time_pos)
        mask = None
        if cache is None and frame_mask is not None:
            mask = self.token_mask(frame_mask)
        for layer, block in enumerate(self.blocks):
            h = block(h, mod, cos, sin, mask, cache, layer)
        shift, scale = self.final_mod(cond).unsqueeze(2).chunk(2, dim=-1)  # (B, F, 1, D)
        h = self.final_norm(h) * (1 + scale) + shift
        return self.unpatchify(self.final(h))


def block_causal_mask(frames: int, device=None) -> torch.Tensor:
    """(F, F) bool: frame i attends to frames 0..i (the teacher's attention)."""
    return torch.ones(frames, frames, dtype=torch.bool, device=device).tril()
