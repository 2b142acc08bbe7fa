"""Ceilings: what bounds the one-step gates of a world model, before any sampler runs.

On the workload's one-step points (true context frames, then the true next frame),
over the points whose next frame changes (``score.changing``), three frames are each
scored against the true next frame with PSNR, SSIM and the sharpness ratio:

- the autoencoder's reconstruction, ``decode(encode(truth))``: a model using this
  autoencoder draws the truth no better than its decoder does, so these bound every
  sampler of every denoiser trained on it;
- the denoiser's posterior mean: its x0 prediction for the next frame at noise level
  exactly 1, from the clean true context and the true actions, in the training's
  uncached block-causal layout, decoded. Trained on a squared error, that prediction
  is the mean of the next frames the denoiser thinks possible: the best PSNR a sampler
  of it can expect on average from true context. A sample is sharper and scores lower;
  the mean is blurred where the model is unsure;
- the last true context frame, copied: the baseline a model must beat.

It knows the world model's parts (autoencoder, denoiser, schedule), not samplers,
windows or caches; ``score.py`` stays model-agnostic.
"""

from __future__ import annotations

import torch

from neural_engine.evaluation.cases import Replay
from neural_engine.evaluation.metrics import psnr, sharpness_ratio, ssim
from neural_engine.evaluation.score import changing
from neural_engine.model.dit import block_causal_mask, previous_frames
from neural_engine.model.world import WorldModel

ROWS = ("autoencoder", "posterior_mean", "copy")
METRICS = ("psnr", "ssim", "sharpness")


def _place(model: WorldModel) -> tuple[torch.device, torch.dtype]:
    param = next(model.parameters())
    return param.device, param.dtype


@torch.no_grad()
def reconstruct(model: WorldModel, frames: torch.Tensor) -> torch.Tensor:
    """Frames (N, H, W, 3) uint8 → the autoencoder's reconstructions (N, H, W, 3) uint8."""
    ae = model.autoencoder
    return ae.decode_frames(ae.encode_frames(frames)).cpu()


@torch.no_grad()
def posterior_mean(model: WorldModel, context: torch.Tensor, context_actions: torch.Tensor,
                   action: torch.Tensor, seed: int = 0, chunk: int = 256) -> torch.Tensor:
    """The denoiser's x0 prediction at noise level 1 of the frame after ``context``
    (N, Fc, H, W, 3) uint8, led to by ``context_actions`` (N, Fc, A), produced by
    ``action`` (N, A): frames (N, H, W, 3) uint8.

    Frames (the last of the context, at most the model's ``max_frames`` − 1 of them,
    then the noise) sit at positions 0..F − 1 under the block-causal mask, the context
    clean (level 0), the next frame at level 1; plain conditional on the actions. The
    noise (N, C, h, w) is drawn at once on the CPU from ``seed``, so a point's frame
    depends neither on ``chunk`` (points per denoiser call) nor on the device.
    """
    device, dtype = _place(model)
    fc = min(context.shape[1], model.config.denoiser.max_frames - 1)
    f, n = fc + 1, context.shape[0]
    noise = torch.randn(n, *model.config.latent_shape,
                        generator=torch.Generator().manual_seed(seed))
    attention = model.denoiser.frame_attention(block_causal_mask(f, device))
    positions = torch.arange(f, device=device)
    levels = torch.zeros(f, device=device)
    levels[-1] = 1.0
    uses_prev = model.config.denoiser.previous_frame
    out = []
    for lo in range(0, n, chunk):
        rows = slice(lo, lo + chunk)
        ctx = context[rows, -fc:]                                       # (b, Fc, H, W, 3)
        b = ctx.shape[0]
        z = model.autoencoder.encode_frames(ctx)                         # (b, Fc, C, h, w)
        x = torch.cat([z, noise[rows, None].to(device, dtype)], 1)      # (b, F, C, h, w)
        t = levels.expand(b, f)                                         # (b, F)
        actions = torch.cat([context_actions[rows, -fc:], action[rows, None]], 1)
        v = model.denoiser(x, t, actions.to(device, dtype), positions, frame_mask=attention,
                           prev=previous_frames(x, t) if uses_prev else None)
        x0 = model.schedule.x0_from_v(x[:, -1], v[:, -1], t[:, -1])
        out.append(model.autoencoder.decode_frames(x0).cpu())
    return torch.cat(out)


def _against(frames: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """PSNR and SSIM (means) and the sharpness ratio of frames (N, H, W, 3) vs the truth."""
    return {"psnr": psnr(frames, truth).mean().item(), "ssim": ssim(frames, truth).mean().item(),
            "sharpness": sharpness_ratio(frames, truth)}


def ceilings(model: WorldModel, replay: Replay, seed: int = 0, chunk: int = 256) -> dict:
    """The section of the module docstring on the one-step points ``replay``: counts,
    then per row of ``ROWS`` its ``METRICS`` (None where no point changes)."""
    changed = changing(replay)
    out = {"points": len(changed), "changing": int(changed.sum()),
           "context_frames": min(replay.context.shape[1], model.config.denoiser.max_frames - 1)}
    if not changed.any():
        return out | {row: dict.fromkeys(METRICS) for row in ROWS}
    truth = replay.truth[changed, 0]
    mean = posterior_mean(model, replay.context[changed], replay.context_actions[changed],
                          replay.actions[changed, 0], seed, chunk)
    return out | {"autoencoder": _against(reconstruct(model, truth), truth),
                  "posterior_mean": _against(mean, truth),
                  "copy": _against(replay.context[changed, -1], truth)}
