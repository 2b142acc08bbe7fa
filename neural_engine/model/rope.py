"""3-D rotary position embeddings over (time, row, column) of latent patches.

A head of size ``hd`` rotates ``hd/2`` pairs of channels; a quarter of the pairs turn
with the token's time position and the rest are split between its row and column.
Positions are computed from the coordinates on the fly (integers; half steps along rows
and columns at patch 1, see ``frame_coords``), so the sampler can give cached keys new
time positions as the stream grows (keys are cached unrotated).

Pairs are laid out "half-split": channel i pairs with channel i + hd/2.
"""

from __future__ import annotations

import torch


def axis_pairs(head_dim: int) -> tuple[int, int, int]:
    """How many rotary pairs turn with time, row and column."""
    pairs = head_dim // 2
    t = max(1, pairs // 4)
    r = (pairs - t) // 2
    return t, r, pairs - t - r


class RotaryTable(torch.nn.Module):
    """Turns (time, row, column) token coordinates into rotation cos/sin tables."""

    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        self.head_dim = head_dim
        parts, axis = [], []
        for index, n in enumerate(axis_pairs(head_dim)):
            parts.append(theta ** (-torch.arange(n, dtype=torch.float32) / n))
            axis += [index] * n
        self.register_buffer("inv_freq", torch.cat(parts), persistent=False)      # (hd/2,)
        self.register_buffer("axis", torch.tensor(axis), persistent=False)        # (hd/2,)

    def forward(self, time: torch.Tensor, row: torch.Tensor, col: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (..., N, hd/2) for N tokens with coordinates (..., N) each."""
        dtype = self.inv_freq.dtype
        coords = torch.stack([time.to(dtype), row.to(dtype), col.to(dtype)], -1)  # (..., N, 3)
        theta = coords[..., self.axis] * self.inv_freq                     # (..., N, hd/2)
        return theta.cos(), theta.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Apply the rotation to x (..., N, hd) with cos, sin (N, hd/2) or broadcastable to
    (..., N, hd/2)."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def frame_coords(frames: torch.Tensor, rows: int, cols: int, spacing: float = 1.0
                 ) -> tuple[torch.Tensor, ...]:
    """Token coordinates for frames at time positions ``frames`` (..., F) → three
    (..., F·rows·cols): one stream's frames, or one row of frames per stream.

    ``spacing``: the distance between neighbouring tokens of a row or column, in units
    of the registry's patch (``patch / 2``): 1 for a patch of 2, whose coordinates are
    the integers as ever; 0.5 for a patch of 1, whose tokens then lie where the halves
    of a patch-2 token did, so the rotation between two places on the frame does not
    depend on the patch (a warm start across patch sizes keeps its spatial attention).
    """
    device = frames.device
    f, p = frames.shape[-1], rows * cols
    size = (*frames.shape[:-1], f * p)
    r = torch.arange(rows, device=device).repeat_interleave(cols)        # (P,)
    c = torch.arange(cols, device=device).repeat(rows)                   # (P,)
    if spacing != 1.0:
        r, c = r * spacing, c * spacing
    return (frames.repeat_interleave(p, dim=-1), r.repeat(f).expand(size),
            c.repeat(f).expand(size))
