"""Image metrics between generated and true frames, and of frames on their own.

- PSNR in dB over 8-bit frames (identical frames give ``PSNR_CAP``);
- SSIM with an 11×11 Gaussian window (σ = 1.5) on luma, as Wang et al. (2004) define it;
- high-frequency energy: the mean absolute Laplacian of luma (8-bit scale), the
  measure of sharpness; a generated-over-true ratio well below 1 is blur, well above 1
  is noise;
- the Fréchet distance between two sets of feature vectors (Gaussians fitted to each),
  as FID computes it, here in any fixed feature space.

The per-frame metrics take uint8 tensors (..., H, W, 3) and reduce over the image only,
so callers can keep batch and time axes for per-horizon curves.
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


LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def high_frequency(frames: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """(..., H, W, 3) uint8 → (...,) mean |Laplacian| of luma on the 0–255 scale."""
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])
    kernel = LAPLACIAN.to(frames.device)[None, None]
    out = [F.conv2d(_luma(part)[:, None] * 255.0, kernel).abs().mean((1, 2, 3))
           for part in flat.split(chunk)]
    return (torch.cat(out) if out else torch.zeros(0, device=frames.device)).reshape(lead)


def sharpness_ratio(generated: torch.Tensor, truth: torch.Tensor) -> float:
    """Generated over true high-frequency energy, each summed over the frames given."""
    return (high_frequency(generated).sum() / high_frequency(truth).sum().clamp_min(1e-6)).item()


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, D) and b (M, D)."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    # Tr sqrt(A B) = Tr sqrt(A^½ B A^½), which is symmetric positive semi-definite
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    middle = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    value = (mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * middle
    return max(value.item(), 0.0)
