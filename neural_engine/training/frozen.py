"""The frozen encoder on training's data path: frames in, normalised latents out.

Denoiser training never updates the autoencoder; it only encodes the simulator's frames,
and on a small world model that encoding costs about as much arithmetic as the
denoiser's own step. So the encoder runs apart from the model being trained: on CUDA as
a bfloat16 copy in channels-last layout (the layout cuDNN's fastest convolutions want),
without autograd, over large chunks of frames at once.

It knows nothing about clips, pools or steps.
"""

from __future__ import annotations

import copy

import torch

from neural_engine.model.autoencoder import Autoencoder, to_unit


class FrozenEncoder:
    def __init__(self, autoencoder: Autoencoder, device: torch.device, chunk: int = 1024):
        self.cuda = torch.device(device).type == "cuda"
        self.dtype = torch.bfloat16 if self.cuda else torch.float32
        self.format = torch.channels_last if self.cuda else torch.contiguous_format
        self.encoder = copy.deepcopy(autoencoder.encoder).to(
            device=device, dtype=self.dtype, memory_format=self.format).requires_grad_(False)
        self.mean = autoencoder.latent_mean.to(device)
        self.std = autoencoder.latent_std.to(device)
        self.chunk = chunk

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., H, W, 3) uint8 → normalised latents (..., C, h, w) float32."""
        lead = frames.shape[:-3]
        flat = frames.reshape(-1, *frames.shape[-3:])
        out = []
        for part in flat.split(self.chunk):
            x = to_unit(part).to(self.dtype).contiguous(memory_format=self.format)
            out.append((self.encoder(x).float() - self.mean) / self.std)
        z = torch.cat(out)
        return z.reshape(*lead, *z.shape[1:])
