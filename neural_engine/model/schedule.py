"""The flow-matching noise schedule: all of the diffusion arithmetic, in one place.

A latent at noise level t in [0, 1] is x_t = (1 − t)·x0 + t·ε; the denoiser predicts
the velocity v = ε − x0. Samplers ask this module for noise levels and for one step
from level t to a lower level s, and never repeat its formulas:

- ``step`` with ``noise=None`` is the deterministic Euler (DDIM-like) step
  x_s = x_t + (s − t)·v;
- with ``noise`` it is the re-noising step used by few-step distilled samplers:
  estimate x0, then x_s = (1 − s)·x0 + s·noise with fresh noise.

A time shift k > 1 (as in SD3) moves levels towards high noise: t' = k·t / (1 + (k − 1)·t).
"""

from __future__ import annotations

import torch


class FlowSchedule:
    def __init__(self, shift: float = 1.0):
        self.shift = shift

    def warp(self, t: torch.Tensor) -> torch.Tensor:
        k = self.shift
        return k * t / (1 + (k - 1) * t)

    def levels(self, steps: int) -> torch.Tensor:
        """(steps + 1,) increasing levels from exactly 0 to exactly 1."""
        return self.warp(torch.linspace(0.0, 1.0, steps + 1))

    def sample_t(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
                 device=None) -> torch.Tensor:
        """Training noise levels: logit-normal, warped like the sampling levels."""
        u = torch.randn(shape, generator=generator, device=device)
        return self.warp(torch.sigmoid(u))

    @staticmethod
    def _b(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Broadcast per-frame levels (..., F) against latents (..., F, C, h, w)."""
        return t.reshape(*t.shape, *([1] * (x.dim() - t.dim()))).to(x.dtype)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = self._b(t, x0)
        return (1 - t) * x0 + t * noise

    def velocity_target(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return noise - x0

    def x0_from_v(self, x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x_t - self._b(t, x_t) * v

    def noise_from_v(self, x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x_t + (1 - self._b(t, x_t)) * v

    def step(self, x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
             noise: torch.Tensor | None = None) -> torch.Tensor:
        """From level t to level s < t (per frame), deterministic or re-noised."""
        if noise is None:
            return x_t + (self._b(s, x_t) - self._b(t, x_t)) * v
        return self.add_noise(self.x0_from_v(x_t, v, t), noise, s)
