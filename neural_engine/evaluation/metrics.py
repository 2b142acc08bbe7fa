"""Full-reference image metrics between generated and true frames.

PSNR in dB over 8-bit frames (identical frames give ``PSNR_CAP``), and SSIM with an
11×11 Gaussian window (σ = 1.5) on luma, as Wang et al. (2004) define it. Both take
uint8 tensors (..., H, W, 3) and reduce over the image only, so callers can keep
batch and time axes for per-horizon curves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PSNR_CAP = 100.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 pairs → (...,) dB, capped at PSNR_CAP for identical frames."""
    mse = (a.float() - b.float()).pow(2).mean((-3, -2, -1))
    return (10 * torch.log10(255.0 ** 2 / mse.clamp_min(1e-10))).clamp(max=PSNR_CAP)


def _luma(x: torch.Tensor) -> torch.Tensor:
    x = x.float() / 255.0
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]        # (..., H, W)


def _gaussian(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    g = torch.exp(-(torch.arange(size, device=device) - size // 2).float() ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]                              # (1, 1, k, k)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 pairs → (...,) mean SSIM of luma in [-1, 1] (1 = identical)."""
    lead = a.shape[:-3]
    x = _luma(a).reshape(-1, 1, *a.shape[-3:-1])
    y = _luma(b).reshape(-1, 1, *b.shape[-3:-1])
    w = _gaussian(device=a.device)
    mu_x, mu_y = F.conv2d(x, w), F.conv2d(y, w)
    sxx = F.conv2d(x * x, w) - mu_x ** 2
    syy = F.conv2d(y * y, w) - mu_y ** 2
    sxy = F.conv2d(x * y, w) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    value = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)
             / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2)))
    return value.mean((-3, -2, -1)).reshape(lead)
