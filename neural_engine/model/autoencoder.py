"""The autoencoder between RGB frames and latent frames.

Encoder: (B, 3, H, W) in [-1, 1] → (B, C, H/f, W/f), f = 2 ** levels; the decoder
reverses it. The decoder runs for every frame shown, so it is plain convolutions
(no normalisation layers, no attention) with few channels at full resolution.
``normalize``/``denormalize`` map raw latents to the zero-mean, unit-variance space
the denoiser works in, with statistics stored in the configuration.

It knows nothing about time, actions or diffusion.
"""

from __future__ import annotations

import torch
from torch import nn

from neural_engine.model.config import AutoencoderConfig

# Frames per autoencoder call when frames are encoded or decoded in bulk.
FRAMES_PER_CALL = 256


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Encoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        chans = cfg.channels
        layers: list[nn.Module] = [nn.Conv2d(3, chans[0], 3, padding=1)]
        for i, c in enumerate(chans):
            layers += [ResBlock(c) for _ in range(cfg.blocks)]
            nxt = chans[min(i + 1, len(chans) - 1)]
            layers.append(nn.Conv2d(c, nxt, 4, stride=2, padding=1))   # halve H and W
        layers += [ResBlock(chans[-1]) for _ in range(cfg.blocks)]
        layers += [nn.SiLU(), nn.Conv2d(chans[-1], cfg.latent_channels, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        chans = tuple(reversed(cfg.decoder_channels))      # coarse → fine
        layers: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, chans[0], 3, padding=1)]
        layers += [ResBlock(chans[0]) for _ in range(cfg.blocks)]
        for i, c in enumerate(chans):
            nxt = chans[min(i + 1, len(chans) - 1)]
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(c, nxt, 3, padding=1)]
            layers += [ResBlock(nxt) for _ in range(cfg.blocks)]
        layers += [nn.SiLU(), nn.Conv2d(chans[-1], 3, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Autoencoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        c = cfg.latent_channels
        mean = torch.tensor(cfg.latent_mean or [0.0] * c).view(1, c, 1, 1)
        std = torch.tensor(cfg.latent_std or [1.0] * c).view(1, c, 1, 1)
        self.register_buffer("latent_mean", mean, persistent=False)
        self.register_buffer("latent_std", std, persistent=False)

    def set_latent_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.latent_mean.copy_(mean.view_as(self.latent_mean))
        self.latent_std.copy_(std.view_as(self.latent_std))

    def forward(self, frames: torch.Tensor, latent_noise: float = 0.0
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training view: (reconstruction from noised raw latents, raw latents)."""
        z = self.encoder(frames)
        noisy = z + latent_noise * torch.randn_like(z) if latent_noise else z
        return self.decoder(noisy), z

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] → normalised latents (B, C, h, w)."""
        return (self.encoder(frames) - self.latent_mean) / self.latent_std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, C, h, w) → frames (B, 3, H, W), roughly in [-1, 1]."""
        return self.decoder(latents * self.latent_std + self.latent_mean)

    # -- frames as the engine holds them: uint8 (..., H, W, 3), in bulk -------------
    def encode_frames(self, frames: torch.Tensor, chunk: int = FRAMES_PER_CALL) -> torch.Tensor:
        """Frames (..., H, W, 3) uint8, on any device → normalised latents (..., C, h, w)
        on the autoencoder's device and in its dtype, ``chunk`` frames per encoder call."""
        param = next(self.parameters())
        flat = frames.reshape(-1, *frames.shape[-3:])
        out = torch.cat([self.encode(to_unit(part.to(param.device)).to(param.dtype))
                         for part in flat.split(chunk)])
        return out.view(*frames.shape[:-3], *out.shape[1:])

    def decode_frames(self, latents: torch.Tensor, chunk: int = FRAMES_PER_CALL) -> torch.Tensor:
        """Normalised latents (..., C, h, w) → frames (..., H, W, 3) uint8 on their device,
        ``chunk`` frames per decoder call."""
        flat = latents.reshape(-1, *latents.shape[-3:])
        out = torch.cat([self.to_frames(part) for part in flat.split(chunk)])
        return out.view(*latents.shape[:-3], *out.shape[1:])

    def to_frames(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (n, C, h, w) → frames (n, H, W, 3) uint8, one decoder call
        (what a captured CUDA graph replays)."""
        return to_uint8(self.decode(latents).float())


def to_unit(frames_uint8: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 → (..., 3, H, W) float in [-1, 1]."""
    return frames_uint8.movedim(-1, -3).float().div(127.5).sub(1.0)


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) float in [-1, 1] → (..., H, W, 3) uint8."""
    return frames.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).movedim(-3, -1)
