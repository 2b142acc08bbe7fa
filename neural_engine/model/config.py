"""World-model configuration: one frozen dataclass per component, and named sizes.

A configuration travels with its weights (as JSON in the safetensors metadata) and
is filled through ``neural_engine.schema``, so a TOML file, a checkpoint and the CLI
all meet the same checks. Every size downstream is derived from here: tokens per
frame, head size, the temporal positions the model was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from neural_engine.schema import bounds


@dataclass(frozen=True)
class AutoencoderConfig:
    """Frames (3, H, W) in [-1, 1] ↔ latents (C, H/f, W/f), f = 2 ** len(channels)."""

    latent_channels: int = field(default=16, metadata=bounds(1, 64))
    channels: tuple[int, ...] = field(default=(32, 64, 128), metadata=bounds(1, 5))
    decoder_channels: tuple[int, ...] = field(default=(32, 64, 128), metadata=bounds(1, 5))
    blocks: int = field(default=1, metadata=bounds(0, 4))
    # Latents are normalised to zero mean, unit variance per channel for the denoiser;
    # these are measured after autoencoder training and stored with the weights.
    latent_mean: tuple[float, ...] = ()
    latent_std: tuple[float, ...] = ()

    def check(self) -> list[tuple[tuple, str]]:
        problems = []
        if len(self.decoder_channels) != len(self.channels):
            problems.append((("decoder_channels",), "needs as many levels as channels"))
        for name in ("latent_mean", "latent_std"):
            values = getattr(self, name)
            if values and len(values) != self.latent_channels:
                problems.append(((name,), f"needs {self.latent_channels} values"))
        return problems

    @property
    def downsample(self) -> int:
        return 2 ** len(self.channels)


@dataclass(frozen=True)
class DenoiserConfig:
    """A DiT over latent patches with 3-D rotary positions and per-frame adaLN."""

    dim: int = field(default=256, metadata=bounds(16, 4096))
    depth: int = field(default=8, metadata=bounds(1, 64))
    heads: int = field(default=4, metadata=bounds(1, 64))
    mlp_ratio: float = field(default=3.0, metadata=bounds(1.0, 8.0))
    patch: int = field(default=2, metadata=bounds(1, 8))
    # Temporal positions seen in training: no sampler may place a frame beyond them.
    max_frames: int = field(default=13, metadata=bounds(2, 1024))
    rope_theta: float = field(default=10000.0, metadata=bounds(1.0, 1e7))
    # Each frame's tokens also take in their predecessor's latent patch at the same place
    # (and its noise level): a direct path for what stays put or shifts a little between
    # ticks, which attention over 64 coarse tokens learns slowly.
    previous_frame: bool = False
    # A convolutional head at latent resolution after the transformer (channels; 0: off).
    # It sees the frame's noisy latent, its predecessor (with ``previous_frame``), the
    # transformer's velocity and per-pixel features, and adds a correction: 3×3
    # convolutions move detail by fractions of a token, which 64 coarse tokens cannot.
    refiner: int = field(default=0, metadata=bounds(0, 1024))
    refiner_blocks: int = field(default=2, metadata=bounds(0, 16))
    # A learned "no action known" embedding that stands in for a frame's action, so the
    # model learns both p(frame | actions) and p(frame) and guidance can push a sample
    # towards what the keys ask for (classifier-free guidance on actions).
    action_guidance: bool = False

    def check(self) -> list[tuple[tuple, str]]:
        if self.dim % self.heads:
            return [(("heads",), f"dim {self.dim} is not divisible by {self.heads} heads")]
        if (self.dim // self.heads) % 8:
            return [(("heads",), "head size must be a multiple of 8 (3-D rotary split)")]
        if self.refiner % 8:
            return [(("refiner",), "refiner channels must be a multiple of 8 (group norm)")]
        return []

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads


@dataclass(frozen=True)
class WorldModelConfig:
    """Everything needed to rebuild a world model for one game."""

    game: str
    height: int = field(metadata=bounds(16, 2048))
    width: int = field(metadata=bounds(16, 2048))
    action_dim: int = field(metadata=bounds(1, 64))
    autoencoder: AutoencoderConfig = AutoencoderConfig()
    denoiser: DenoiserConfig = DenoiserConfig()
    # Flow-matching time shift (SD3): > 1 spends more steps at high noise.
    time_shift: float = field(default=1.0, metadata=bounds(0.1, 10.0))

    def check(self) -> list[tuple[tuple, str]]:
        f = self.autoencoder.downsample * self.denoiser.patch
        if self.height % f or self.width % f:
            return [((), f"frame {self.height}x{self.width} is not divisible by {f} "
                         "(autoencoder downsampling × patch size)")]
        return []

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of one latent frame."""
        f = self.autoencoder.downsample
        return (self.autoencoder.latent_channels, self.height // f, self.width // f)

    @property
    def grid(self) -> tuple[int, int]:
        """Patch rows and columns of one frame."""
        _, h, w = self.latent_shape
        return (h // self.denoiser.patch, w // self.denoiser.patch)

    @property
    def tokens_per_frame(self) -> int:
        rows, cols = self.grid
        return rows * cols


MODEL_SIZES: dict[str, tuple[AutoencoderConfig, DenoiserConfig]] = {
    # For tests and CPU smoke runs: seconds to build and run.
    "tiny": (AutoencoderConfig(latent_channels=4, channels=(8, 16, 16),
                               decoder_channels=(8, 16, 16), blocks=0),
             DenoiserConfig(dim=32, depth=2, heads=2, patch=2)),
    # The shipped default: ~6 M denoiser parameters (+1.4 M autoencoder: 15 MB in fp16),
    # 64 tokens per 128×128 frame.
    "small": (AutoencoderConfig(), DenoiserConfig()),
    # More capacity when there is compute to train it.
    "base": (AutoencoderConfig(latent_channels=8, channels=(48, 96, 192),
                               decoder_channels=(32, 64, 128), blocks=2),
             DenoiserConfig(dim=384, depth=12, heads=6)),
}
# The registry's names as a typed choice: a schema field of this type refuses any other
# name where the configuration is read, with the sizes listed.
ModelSize = Literal[tuple(MODEL_SIZES)]
# Temporal positions every registry size is trained on (the samplers fit their rings to it).
TRAINED_FRAMES = DenoiserConfig().max_frames


def named_config(size: str, game: str, height: int, width: int, action_dim: int,
                 **denoiser_overrides) -> WorldModelConfig:
    """A registry size for a game's frame and action sizes."""
    from neural_engine.errors import EngineError

    if size not in MODEL_SIZES:
        raise EngineError(f"unknown model size {size!r} (sizes: {', '.join(MODEL_SIZES)})")
    ae, dn = MODEL_SIZES[size]
    return WorldModelConfig(game=game, height=height, width=width, action_dim=action_dim,
                            autoencoder=ae, denoiser=replace(dn, **denoiser_overrides))


# -- how large a configuration from a file may be ------------------------------------
# A weights file carries its own configuration; before anything is allocated for it,
# each size is held to the registry's largest (the refiner, which no registry size
# uses, to the largest width), the tokens per frame to 4x the largest size's at the
# same frame size (a patch of half the size), and the parameter count (counted by
# ``model.weights`` on the meta device) to twice the largest size's, which leaves room
# for the optional parts (predecessor path, refiner).
PARAMETER_HEADROOM = 2.0
TOKEN_HEADROOM = 4


def _too_large(limits: dict[str, tuple[float, float]]) -> list[str]:
    return [f"{name} {value:g} is larger than the largest model size allows ({limit:g})"
            for name, (value, limit) in limits.items() if value > limit]


def autoencoder_size_problems(ae: AutoencoderConfig, prefix: str = "autoencoder.") -> list[str]:
    """Where an autoencoder configuration is larger than the registry's largest."""
    aes = [a for a, _ in MODEL_SIZES.values()]
    return _too_large({
        f"{prefix}latent_channels": (ae.latent_channels, max(a.latent_channels for a in aes)),
        f"{prefix}channels": (max(ae.channels), max(max(a.channels) for a in aes)),
        f"{prefix}decoder_channels": (max(ae.decoder_channels),
                                      max(max(a.decoder_channels) for a in aes)),
        f"{prefix}levels": (len(ae.channels), max(len(a.channels) for a in aes)),
        f"{prefix}blocks": (ae.blocks, max(a.blocks for a in aes)),
    })


def size_problems(config: WorldModelConfig) -> list[str]:
    """Where ``config`` is larger than the registry's largest size (see above)."""
    dns = [dn for _, dn in MODEL_SIZES.values()]
    widest = max(dn.dim for dn in dns)
    dn = config.denoiser
    problems = autoencoder_size_problems(config.autoencoder) + _too_large({
        "denoiser.dim": (dn.dim, widest),
        "denoiser.depth": (dn.depth, max(d.depth for d in dns)),
        "denoiser.heads": (dn.heads, max(d.heads for d in dns)),
        "denoiser.mlp_ratio": (dn.mlp_ratio, max(d.mlp_ratio for d in dns)),
        "denoiser.refiner": (dn.refiner, widest),
    })
    tokens = TOKEN_HEADROOM * largest_config(config).tokens_per_frame
    if config.tokens_per_frame > tokens:
        problems.append(f"{config.tokens_per_frame} tokens per frame is more than the "
                        f"largest model size allows at {config.width}×{config.height} "
                        f"({tokens})")
    return problems


def largest_config(config: WorldModelConfig) -> WorldModelConfig:
    """The registry's largest size (by denoiser width × depth) at ``config``'s frame and
    action sizes."""
    name = max(MODEL_SIZES, key=lambda n: MODEL_SIZES[n][1].dim ** 2 * MODEL_SIZES[n][1].depth)
    return named_config(name, config.game, config.height, config.width, config.action_dim)
