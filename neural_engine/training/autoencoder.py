"""Stage 1: the autoencoder, trained on frames from the simulator.

Loss: MSE + L1 between the frame and its reconstruction from slightly noised latents
(so the decoder tolerates the imprecise latents a denoiser produces) plus a small
penalty on latent magnitude (so the noise cannot be escaped by scaling up), and, with
``edge_weight`` > 0, an L1 between the two images' horizontal and vertical differences
(off: meant to charge for blurred edges, it lowered the sharpness it was meant to
raise in the twelfth session's A/B, docs/experiments.md). Its gate is reconstruction PSNR on held-out
worlds (≥ 30 dB for the maze); the evaluation also reads the sharpness ratio of the
reconstructions (``evaluation.metrics.sharpness_ratio``), which bounds the sharpness
of every world model that decodes through it. On export the per-channel latent mean
and standard deviation over training frames are measured and stored in the
configuration, so the denoiser works with unit-variance latents.

``train = "decoder"`` tunes the decoder of an existing autoencoder (``init``: an
autoencoder or world-model file) with its encoder frozen: the latents, their
statistics and so every denoiser trained on them stay valid, and ``neural-engine ship
--decoder`` puts the new decoder into a world model without retraining it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from neural_engine.data.clips import SimClips, held_out_clips
from neural_engine.errors import EngineError
from neural_engine.evaluation.metrics import psnr, sharpness_ratio
from neural_engine.games import Game
from neural_engine.model.autoencoder import Autoencoder, to_uint8, to_unit
from neural_engine.model.config import MODEL_SIZES, ModelSize
from neural_engine.model.weights import load_autoencoder, save_autoencoder
from neural_engine.schema import bounds
from neural_engine.training.trainer import Distributed, wrap
from neural_engine.video import contact_sheet, write_png

EXPORT_NAME = "autoencoder.safetensors"


@dataclass(frozen=True)
class AutoencoderTraining:
    size: ModelSize = "small"
    batch: int = field(default=64, metadata=bounds(1, 4096))
    lr: float = field(default=3e-4, metadata=bounds(0.0, 1.0))
    latent_noise: float = field(default=0.05, metadata=bounds(0.0, 1.0))
    latent_penalty: float = field(default=1e-4, metadata=bounds(0.0, 1.0))
    episode_ticks: int = field(default=400, metadata=bounds(1, 100000))
    pool: int = field(default=256, metadata=bounds(1, 65536))  # environments simulated at once
    eval_worlds: int = field(default=32, metadata=bounds(1, 4096))
    # The weight of the L1 between the images' finite differences (0: off). Measured in
    # the twelfth session's A/B (docs/experiments.md): at 1 and 5 it lowered sharpness.
    edge_weight: float = field(default=0.0, metadata=bounds(0.0, 100.0))
    # "all": encoder and decoder; "decoder": the decoder of ``init``, its encoder frozen.
    train: Literal["all", "decoder"] = "all"


def edge_loss(rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L1 between the horizontal and vertical differences of two (B, 3, H, W) images."""
    return (F.l1_loss(rec.diff(dim=-1), x.diff(dim=-1))
            + F.l1_loss(rec.diff(dim=-2), x.diff(dim=-2)))


class AutoencoderStage:
    name = "ae"

    def __init__(self, game: Game, cfg: AutoencoderTraining, device: torch.device,
                 env: Distributed = Distributed(), seed: int = 0, init: Path | None = None):
        """``init``: start from this autoencoder (an autoencoder or world-model file; its
        configuration replaces ``size``'s); ``train = "decoder"`` needs one."""
        self.game, self.cfg, self.device, self.env = game, cfg, device, env
        if cfg.train == "decoder" and init is None:
            raise EngineError('train = "decoder" tunes an existing autoencoder\'s decoder: '
                              'name it with --init (an autoencoder or world-model file)')
        torch.manual_seed(seed)
        if init is None:
            self.ae = Autoencoder(MODEL_SIZES[cfg.size][0]).to(device)
        else:
            self.ae = load_autoencoder(init).float().to(device)
        trained = self.ae.parameters()
        if cfg.train == "decoder":
            self.ae.encoder.requires_grad_(False)
            trained = self.ae.decoder.parameters()
        self.train_ae = wrap(self.ae, env)
        self.optim = torch.optim.AdamW(trained, lr=cfg.lr, weight_decay=0.0,
                                       betas=(0.9, 0.99))
        self.modules = {"autoencoder": self.ae}
        self.optimizers = {"autoencoder": self.optim}
        self.clips = SimClips(game, cfg.batch, 1, device, seed=seed * 1000 + env.rank,
                              episode_ticks=cfg.episode_ticks, pool=cfg.pool)
        self.autocast = device.type == "cuda"
        self._eval = None

    def items_per_step(self) -> int:
        return self.cfg.batch

    def data_state(self) -> dict:
        return self.clips.state_dict()

    def load_data_state(self, state: dict) -> None:
        self.clips.load_state_dict(state)

    def train_step(self, step: int) -> dict[str, float]:
        x = to_unit(self.clips.next().frames[:, 0])                       # (B, 3, H, W)
        with torch.autocast("cuda", torch.bfloat16, enabled=self.autocast):
            rec, z = self.train_ae(x, self.cfg.latent_noise)
        rec = rec.float()
        loss = (F.mse_loss(rec, x) + F.l1_loss(rec, x)
                + self.cfg.latent_penalty * z.float().pow(2).mean())
        if self.cfg.edge_weight:
            loss = loss + self.cfg.edge_weight * edge_loss(rec, x)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.ae.parameters(), 1.0)
        self.optim.step()
        return {"loss": loss.item(), "psnr": psnr(to_uint8(rec.detach()),
                                                  to_uint8(x)).mean().item()}

    @torch.no_grad()
    def evaluate(self, folder: Path, step: int) -> dict[str, float]:
        if self._eval is None:
            clip = held_out_clips(self.game, self.cfg.eval_worlds, 8, self.device)
            self._eval = clip.frames.flatten(0, 1)                          # (N, H, W, 3)
        self.ae.eval()
        recs = []
        for chunk in self._eval.split(128):
            with torch.autocast("cuda", torch.bfloat16, enabled=self.autocast):
                rec = self.ae.decoder(self.ae.encoder(to_unit(chunk))).float()
            recs.append(to_uint8(rec))
        self.ae.train()
        rec = torch.cat(recs)
        value = psnr(rec, self._eval).mean().item()
        pairs = torch.stack([self._eval[:8], rec[:8]], 1).flatten(0, 1).cpu().numpy()
        write_png(folder / f"ae-samples-{step:07d}.png", contact_sheet(pairs, columns=8))
        return {"psnr_heldout": value, "sharpness_heldout": sharpness_ratio(rec, self._eval),
                "frames": len(self._eval)}

    @torch.no_grad()
    def latent_stats(self, batches: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of raw latents over fresh training frames."""
        probe = SimClips(self.game, self.cfg.batch, 1, self.device, seed=99_991)
        zs = [self.ae.encoder(to_unit(probe.next().frames[:, 0])).float() for _ in range(batches)]
        z = torch.cat(zs).transpose(0, 1).flatten(1)                       # (C, N·h·w)
        return z.mean(1), z.std(1)

    def export(self, folder: Path) -> Path:
        """The autoencoder with its latent statistics: measured now, or, with the encoder
        frozen, the ones it started with (the latents are those a denoiser learned)."""
        info = {"stage": "ae", "train": self.cfg.train}
        if self.cfg.train == "decoder":
            return save_autoencoder(folder / EXPORT_NAME, self.ae, info=info)
        mean, std = self.latent_stats()
        cfg = replace(self.ae.cfg, latent_mean=tuple(mean.tolist()),
                      latent_std=tuple(std.clamp_min(1e-3).tolist()))
        final = Autoencoder(cfg).to(self.device)
        final.load_state_dict(self.ae.state_dict())
        final.set_latent_stats(mean, std.clamp_min(1e-3))
        return save_autoencoder(folder / EXPORT_NAME, final, info=info)
