"""A fixed feature space for frames, and the no-reference drift measure built on it.

Features (no learning, so every checkpoint is measured with the same ruler): the frame
average-pooled to 8×8 RGB (layout and colour), a 16-bin histogram of luma gradient
magnitude (sharpness and texture), and 8-bin histograms of each colour channel. Each
dimension is standardised over a bank of real frames of the game.

Drift of a generated frame = its distance to the nearest real frame of the bank. A
world that blurs, smears to noise or collapses to a flat colour moves away from every
real frame; a healthy one stays as close as real frames of unseen places are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neural_engine.games import Game

BANK_SEED_OFFSET = 1_000_000    # bank worlds: held-out seeds this far past the first


def frame_features(frames: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 → (N, 192 + 16 + 24) float32."""
    x = frames.permute(0, 3, 1, 2).float() / 255.0                          # (N, 3, H, W)
    pooled = F.adaptive_avg_pool2d(x, 8).flatten(1)                         # (N, 192)
    luma = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    gx = luma[..., :, 1:] - luma[..., :, :-1]
    gy = luma[..., 1:, :] - luma[..., :-1, :]
    grad = (gx[..., :-1, :] ** 2 + gy[..., :, :-1] ** 2).sqrt().flatten(1)  # (N, P)
    edges = _histogram(grad.clamp(max=0.5) / 0.5, 16)
    colours = torch.cat([_histogram(x[:, c].flatten(1), 8) for c in range(3)], 1)
    return torch.cat([pooled, edges, colours], 1)


def features_of(frames: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """``frame_features`` of many frames (N, H, W, 3), a chunk at a time."""
    return torch.cat([frame_features(part) for part in frames.split(chunk)])


def _histogram(values: torch.Tensor, bins: int) -> torch.Tensor:
    """Row-wise normalised histograms of values in [0, 1]: (N, P) → (N, bins)."""
    index = (values.clamp(0, 1) * (bins - 1e-4)).long()
    out = torch.zeros(values.shape[0], bins, device=values.device)
    out.scatter_add_(1, index, torch.ones_like(values))
    return out / values.shape[1]


class RealFrameBank:
    """Features of real frames from worlds apart from training and evaluation."""

    def __init__(self, game: Game, worlds: int = 64, ticks: int = 160, every: int = 5,
                 device: torch.device | str = "cpu"):
        base = game.spec.seeds.held_out + BANK_SEED_OFFSET   # apart from the cases
        sim = game.simulator(batch=worlds, device=device)
        agent = game.agent(batch=worlds, device=device, seed=base)
        sim.reset([base + i for i in range(worlds)])
        agent.reset(sim)
        feats = []
        for t in range(ticks):                 # drawn only on the ticks the bank keeps
            if t % every == every - 1:
                feats.append(frame_features(sim.step(agent.act(sim))))
            else:
                sim.advance(agent.act(sim))
        bank = torch.cat(feats)
        self.mean, self.std = bank.mean(0), bank.std(0).clamp_min(1e-3)
        self.bank = (bank - self.mean) / self.std                             # (N, D)

    def standardise(self, features: torch.Tensor) -> torch.Tensor:
        """Features (N, D) in the bank's units (zero mean, unit spread over real frames)."""
        return (features.to(self.mean.device) - self.mean) / self.std

    def distance(self, frames: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """(N, H, W, 3) uint8 → (N,) distance to the nearest bank frame."""
        out = []
        for part in frames.split(chunk):
            f = self.standardise(frame_features(part.to(self.bank.device)))
            out.append(torch.cdist(f, self.bank).min(1).values)
        return torch.cat(out)
