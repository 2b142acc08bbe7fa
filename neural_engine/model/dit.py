"""The denoiser: a DiT over latent patches of a sequence of frames.

Input: noisy latent frames (B, F, C, h, w), each with its own noise level t in [0, 1]
and its own action. Output: the flow-matching velocity v = noise − clean for every
frame. Tokens are p×p latent patches (``tokens_per_frame`` = h/p · w/p per frame);
positions enter through 3-D rotary embeddings on queries and keys; noise level and
action enter per frame through adaLN (one shared modulation MLP, "adaLN-single",
plus a learned per-block offset), so every token of a frame is modulated alike.

With ``previous_frame`` on, every frame also sees its predecessor directly: the
predecessor's latent patch is embedded and added to the frame's own token at the same
place, and its noise level joins the frame's conditioning. Inside one call the
predecessor of frame i is frame i − 1 (as the caller gave it, noisy or clean); the
first frame's, or one the caller marks missing, is zeros at noise level 1 (nothing
known). A streaming caller passes the predecessors itself (``prev``), since the frame
before its first query lives in its own buffers.

With ``action_guidance`` on, a learned null action can stand in for the actions of any
frame (``drop_actions``): trained with actions dropped at random, the model predicts
both with and without them, and a caller can guide, v = v_none + w·(v_actions − v_none),
towards what the keys ask for (classifier-free guidance on actions, as Genie 2 does).

With ``refiner`` on, a small convolutional head at latent resolution follows the
transformer and adds a correction to its velocity, frame by frame. It sees the frame's
noisy latent, its predecessor (when the model has that path), the transformer's
velocity and a few features per latent pixel read off the last tokens, and the frame's
conditioning through a per-channel scale and shift. 3×3 convolutions can move detail
by a fraction of a token, the small shifts that most ticks are made of. Its last layer
starts at zero, so a model without it warm-starts exactly.

Attention runs in one of two ways:
- uncached (training): the keys are the tokens of this call, and a frame-level
  boolean mask (F, F) says which frame may look at which; a caller whose mask never
  changes prepares it once as a ``FrameAttention`` (``frame_attention``), which also
  names how it runs (``model/attention.py``: SDPA's dense mask, one unmasked call per
  frame, or FlexAttention's block mask; the same numbers);
- cached (streaming): each layer first writes this call's keys and values into the
  sampler's preallocated buffers at the given token slots (per row: every row of the
  batch is a stream of its own, at its own time positions), then attends over the
  whole buffer, with rotary positions the sampler assigns to every slot and row.

The layer norm with its adaLN modulation and the cached attention go through
``neural_engine.model.dispatch``, which runs them in PyTorch or as the fused kernels
of ``kernels/``; the cache names the backend.

This module knows nothing about noise schedules, windows or the KV cache's layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neural_engine.model.attention import AttentionKind, FrameAttention
from neural_engine.model.config import DenoiserConfig, WorldModelConfig
from neural_engine.model.dispatch import (gated_residual_norm, modulated_norm, norm_rotate,
                                          stream_attention, token_mask)
from neural_engine.model.rope import RotaryTable, frame_coords


@dataclass
class CachedKV:
    """Where a streaming call reads and writes keys/values (all tensors preallocated).

    k, v: (depth, B, H, Nk, hd) unrotated keys and values of every cache slot (or a
          list of depth (B, H, Nk, hd) tensors);
    dest: (B, Nq) long, the token slot each query token's key/value is written to;
    key_cos, key_sin: (B, Nk, hd/2) rotation of every slot of every row;
    frame_mask: (B, Fq, Fk) bool, which cache frame slots each query frame sees
                (Nq = Fq·P, Nk = Fk·P);
    backend: how attention and the modulated norms run (``dispatch.BACKENDS``).
    """

    k: torch.Tensor
    v: torch.Tensor
    dest: torch.Tensor
    key_cos: torch.Tensor
    key_sin: torch.Tensor
    frame_mask: torch.Tensor
    backend: str = "torch"


def previous_frames(x: torch.Tensor, t: torch.Tensor, missing: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each frame's predecessor within the call: latents (B, F, C, h, w) and levels (B, F),
    shifted one frame; the first frame's, and those where ``missing`` (B, F) is true,
    are zeros at level 1."""
    prev_x = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)
    prev_t = torch.cat([torch.ones_like(t[:, :1]), t[:, :-1]], 1)
    if missing is not None:
        prev_x = prev_x.masked_fill(missing.reshape(*missing.shape, 1, 1, 1), 0.0)
        prev_t = prev_t.masked_fill(missing, 1.0)
    return prev_x, prev_t


# Width of the sinusoidal noise-level features the time MLPs read (fixed: weights depend on it).
TIME_FEATURES = 256


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of noise levels t (...,) in [0, 1] → (..., dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = (t.float() * 1000.0)[..., None] * freqs
    return torch.cat([args.cos(), args.sin()], -1)


class RMSNorm(nn.Module):
    """The learned scale of a per-head RMS norm; ``dispatch.norm_rotate`` applies it."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = RMSNorm(dim // heads)
        self.k_norm = RMSNorm(dim // heads)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: FrameAttention | torch.Tensor | None, cache: CachedKV | None,
                layer: int) -> torch.Tensor:
        """mask: uncached, the ``FrameAttention`` (None: every token sees every token);
        cached, the token-level mask of the PyTorch backend (None: built from the cache's)."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache is None:                                          # q, k, v (B, H, N, hd)
            q = norm_rotate(q, self.q_norm.weight, cos, sin)
            k = norm_rotate(k, self.k_norm.weight, cos, sin)
            out = F.scaled_dot_product_attention(q, k, v) if mask is None else mask(q, k, v)
        else:
            q = norm_rotate(q, self.q_norm.weight, cos, sin, cache.backend)
            k = norm_rotate(k, self.k_norm.weight, None, None, cache.backend)
            keys, values = cache.k[layer], cache.v[layer]                # (B, H, Nk, hd)
            slots = cache.dest[:, None, :, None].expand_as(k)             # (B, H, Nq, hd)
            keys.scatter_(2, slots, k.to(keys.dtype))
            values.scatter_(2, slots, v.to(values.dtype))
            out = stream_attention(q, keys, values, cache.key_cos, cache.key_sin,
                                   cache.frame_mask, n // cache.frame_mask.shape[-2],
                                   cache.backend, mask)
        return self.out(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Attention and MLP, each behind a modulated norm and a gated residual.

    The block takes the residual stream x and its first modulated norm h, and returns
    the new stream with the *next* modulated norm (the next block's first, or the
    final one), so each gated residual and the norm after it are one fused step.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.attn = Attention(dim, heads)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"),
                                 nn.Linear(hidden, dim))
        self.mod_offset = nn.Parameter(torch.zeros(6, dim))  # adaLN-single per-block offset

    def factors(self, mod: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """mod (B, F, 6, D) → shift1, scale1, gate1, shift2, scale2, gate2, (B, F, 1, D)."""
        return (mod + self.mod_offset).unsqueeze(3).unbind(2)

    def forward(self, x: torch.Tensor, h: torch.Tensor, factors, after, cos, sin, mask,
                cache, layer) -> tuple[torch.Tensor, torch.Tensor]:
        # x, h (B, F, P, D); after: the (shift, scale) of the norm that follows the block
        b, f, p, d = x.shape
        backend = "torch" if cache is None else cache.backend
        _, _, gate1, shift2, scale2, gate2 = factors
        a = self.attn(h.reshape(b, f * p, d), cos, sin, mask, cache, layer).view(b, f, p, d)
        x, h = gated_residual_norm(x, gate1, a, shift2, scale2, backend)
        return gated_residual_norm(x, gate2, self.mlp(h), *after, backend)


class ResConv(nn.Module):
    """Two 3×3 convolutions behind group norms, added to their input."""

    def __init__(self, width: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, width)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))


class Refiner(nn.Module):
    """The convolutional head of ``refiner`` models; see the module docstring."""

    FEATURES = 16       # per latent pixel, read off the last tokens

    def __init__(self, latent_channels: int, dim: int, patch: int, width: int, blocks: int,
                 with_prev: bool):
        super().__init__()
        self.features = nn.Linear(dim, self.FEATURES * patch * patch)
        inputs = (3 if with_prev else 2) * latent_channels + self.FEATURES
        self.inp = nn.Conv2d(inputs, width, 3, padding=1)
        self.film = nn.Linear(dim, 2 * width)
        self.blocks = nn.ModuleList(ResConv(width) for _ in range(blocks))
        self.norm = nn.GroupNorm(8, width)
        self.out = nn.Conv2d(width, latent_channels, 3, padding=1)

    def forward(self, v: torch.Tensor, features: torch.Tensor, x: torch.Tensor,
                prev_x: torch.Tensor | None, cond: torch.Tensor) -> torch.Tensor:
        """v, x, prev_x (B, F, C, h, w), features (B, F, k, h, w), cond (B, F, D) → v."""
        parts = [x, v, features] if prev_x is None else [x, prev_x, v, features]
        y = self.inp(torch.cat([p.to(v.dtype) for p in parts], 2).flatten(0, 1))
        scale, shift = self.film(F.silu(cond)).flatten(0, 1)[..., None, None].chunk(2, 1)
        y = y * (1 + scale) + shift
        for block in self.blocks:
            y = block(y)
        return v + self.out(F.silu(self.norm(y))).view(v.shape)


class Denoiser(nn.Module):
    """Velocity prediction for a sequence of latent frames; see the module docstring."""

    def __init__(self, config: WorldModelConfig):
        super().__init__()
        self.config = config
        dn = config.denoiser
        c, _, _ = config.latent_shape
        self.rows, self.cols = config.grid
        self.patch = dn.patch
        # rows and columns in units of the registry's patch (2): a finer patch's tokens
        # lie between a coarser one's (``frame_coords``)
        self.spacing = dn.patch / DenoiserConfig().patch
        patch_dim = c * dn.patch * dn.patch
        self.embed = nn.Linear(patch_dim, dn.dim)
        self.time_mlp = nn.Sequential(nn.Linear(TIME_FEATURES, dn.dim), nn.SiLU(), nn.Linear(dn.dim, dn.dim))
        self.action_mlp = nn.Sequential(nn.Linear(config.action_dim, dn.dim), nn.SiLU(),
                                        nn.Linear(dn.dim, dn.dim))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dn.dim, 6 * dn.dim))
        self.null_action = nn.Parameter(torch.zeros(dn.dim)) if dn.action_guidance else None
        self.prev_embed = self.prev_time_mlp = None
        if dn.previous_frame:
            self.prev_embed = nn.Linear(patch_dim, dn.dim)
            self.prev_time_mlp = nn.Sequential(nn.Linear(TIME_FEATURES, dn.dim), nn.SiLU(),
                                               nn.Linear(dn.dim, dn.dim))
        self.blocks = nn.ModuleList(Block(dn.dim, dn.heads, dn.mlp_ratio)
                                    for _ in range(dn.depth))
        self.final_mod = nn.Sequential(nn.SiLU(), nn.Linear(dn.dim, 2 * dn.dim))
        self.final = nn.Linear(dn.dim, patch_dim)
        self.rope = RotaryTable(dn.head_dim, dn.rope_theta)
        self.refiner = None
        if dn.refiner:
            self.refiner = Refiner(c, dn.dim, dn.patch, dn.refiner, dn.refiner_blocks,
                                   with_prev=dn.previous_frame)
        self._init()

    def _init(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        zero = [self.modulation[-1], self.final_mod[-1], self.final]
        if self.prev_embed is not None:
            # the predecessor path starts closed, so a model without it warm-starts exactly
            zero += [self.prev_embed, self.prev_time_mlp[-1]]
        if self.refiner is not None:
            # so does the refiner: its correction starts at zero
            zero += [self.refiner.out, self.refiner.film]
        for layer in zero:
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
        """cos, sin for frames at integer time positions: (F,) → (F·P, hd/2), shared by
        every row; (B, F) → (B, F·P, hd/2), one row of positions per stream."""
        return self.rope(*frame_coords(time_pos, self.rows, self.cols, self.spacing))

    def token_mask(self, frame_mask: torch.Tensor) -> torch.Tensor:
        """Frame-level (..., Fq, Fk) bool → token-level (..., Fq·P, Fk·P)."""
        return token_mask(frame_mask, self.rows * self.cols)

    def frame_attention(self, frame_mask: torch.Tensor, kind: AttentionKind = "sdpa"
                        ) -> FrameAttention:
        """The uncached attention under ``frame_mask`` (Fq, Fk) bool, prepared once, for
        callers whose mask never changes; ``kind``: ``attention.ATTENTION_KINDS``."""
        return FrameAttention(frame_mask, self.rows * self.cols, kind)

    # -- forward -----------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor, actions: torch.Tensor,
                time_pos: torch.Tensor,
                frame_mask: torch.Tensor | FrameAttention | None = None,
                cache: CachedKV | None = None,
                prev: tuple[torch.Tensor, torch.Tensor] | None = None,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
                drop_actions: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, F, C, h, w), t (B, F), actions (B, F, A), time_pos (F,) or (B, F) → v like x.

        Uncached: ``frame_mask`` (F, F) bool says which frames each frame attends to
        (None: all), or is that mask prepared once as a ``FrameAttention``. Cached:
        ``cache`` carries the buffers, the frame-level mask of every row and the kernel
        backend. ``prev``: each frame's predecessor, latents
        like x and levels like t (``previous_frame`` models; default: shifted x).
        ``rotary``: ``self.rotary(time_pos)`` computed ahead, for callers whose positions
        never change (under torch.compile a table made inside the graph is recomputed,
        cos and sin of every element, in every kernel that reads it).
        ``drop_actions`` (B, F) bool: frames whose action the null action replaces
        (``action_guidance`` models only).
        """
        b, f = t.shape
        latents = x
        act = self.action_mlp(actions)                                   # (B, F, D)
        if drop_actions is not None:
            if self.null_action is None:
                raise ValueError("drop_actions needs a model with action_guidance")
            act = torch.where(drop_actions[..., None], self.null_action.to(act.dtype), act)
        cond = self.time_mlp(timestep_embedding(t, TIME_FEATURES).to(x.dtype)) + act
        h = self.embed(self.patchify(x))                                 # (B, F, P, D)
        prev_x = None
        if self.prev_embed is not None:
            prev_x, prev_t = previous_frames(x, t) if prev is None else prev
            cond = cond + self.prev_time_mlp(timestep_embedding(prev_t, TIME_FEATURES).to(x.dtype))
            h = h + self.prev_embed(self.patchify(prev_x.to(x.dtype)))
        mod = self.modulation(cond).view(b, f, 6, -1)                    # (B, F, 6, D)
        cos, sin = self.rotary(time_pos) if rotary is None else rotary
        mask = None
        if cache is None and frame_mask is not None:
            mask = (frame_mask if isinstance(frame_mask, FrameAttention)
                    else self.frame_attention(frame_mask))
        elif cache is not None and cache.backend == "torch":
            mask = self.token_mask(cache.frame_mask)[:, None]            # (B, 1, Nq, Nk)
        backend = "torch" if cache is None else cache.backend
        factors = [block.factors(mod) for block in self.blocks]
        final = self.final_mod(cond).unsqueeze(2).chunk(2, dim=-1)       # 2 × (B, F, 1, D)
        after = [f[:2] for f in factors[1:]] + [final]
        x, h = h, modulated_norm(h, *factors[0][:2], backend)
        for layer, block in enumerate(self.blocks):
            x, h = block(x, h, factors[layer], after[layer], cos, sin, mask, cache, layer)
        v = self.unpatchify(self.final(h))
        if self.refiner is None:
            return v
        return self.refiner(v, self.unpatchify(self.refiner.features(h)), latents, prev_x, cond)


def block_causal_mask(frames: int, device=None) -> torch.Tensor:
    """(F, F) bool: frame i attends to frames 0..i (the teacher's attention)."""
    return torch.ones(frames, frames, dtype=torch.bool, device=device).tril()
