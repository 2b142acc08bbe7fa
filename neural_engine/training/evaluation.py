"""Quick held-out checks run during training: rollouts against the simulator.

Every evaluation of a stage streams each named sampler from real context on fixed
held-out worlds under the agent's actions, and compares with the simulator's frames:
PSNR over the first second and the first two seconds, SSIM, and a motion ratio
(mean frame-to-frame change of the generated frames over that of the true frames; a
world drifting towards stillness shows it falling below 1). A side-by-side sample
(truth | model) of the first world is written beside the checkpoints. The full
evaluation with reports lives in ``neural_engine.evaluation``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from neural_engine.evaluation.metrics import psnr, ssim
from neural_engine.evaluation.rollout import rollout
from neural_engine.games import Game
from neural_engine.model.world import WorldModel
from neural_engine.sampler.stream import SamplerConfig, named_sampler
from neural_engine.training.clips import held_out_clips
from neural_engine.video import write_video

CONTEXT = 2


def sampler_for(name: str, steps: int, max_frames: int) -> SamplerConfig:
    """A named sampler sized to the model (``steps``: the teacher's, or the causal one's)."""
    cfg = named_sampler(name, max_frames, teacher_steps=steps or None)
    if name == "causal" and steps:
        cfg = replace(cfg, steps_per_tick=steps)
    return cfg


def motion(frames: torch.Tensor) -> torch.Tensor:
    """Mean absolute change between consecutive frames (B, T, H, W, 3) → scalar."""
    return (frames[:, 1:].float() - frames[:, :-1].float()).abs().mean()


@torch.no_grad()
def evaluate_rollouts(game: Game, model: WorldModel, folder: Path, step: int, worlds: int,
                      frames: int, samplers: dict[str, int]) -> dict[str, float]:
    device = next(model.parameters()).device
    clip = held_out_clips(game, worlds, frames + CONTEXT, device)
    truth = clip.frames[:, CONTEXT:]
    rate = game.spec.tick_rate
    out: dict[str, float] = {}
    for name, steps in samplers.items():
        cfg = sampler_for(name, steps, model.config.denoiser.max_frames)
        gen = rollout(model, cfg, clip.frames[:, :CONTEXT], clip.actions[:, :CONTEXT],
                      clip.actions[:, CONTEXT:], seed=1)
        p = psnr(gen, truth)                                                  # (B, T)
        out[f"{name}_psnr_1s"] = p[:, :rate].mean().item()
        out[f"{name}_psnr_2s"] = p[:, :2 * rate].mean().item()
        out[f"{name}_ssim_2s"] = ssim(gen[:, :2 * rate], truth[:, :2 * rate]).mean().item()
        out[f"{name}_motion_ratio"] = (motion(gen) / motion(truth).clamp_min(1e-6)).item()
        side = torch.cat([truth[0], gen[0]], 2).cpu().numpy()                # (T, H, 2W, 3)
        write_video(folder / f"sample-{name}-{step:07d}.mp4", side, fps=rate)
    return out
