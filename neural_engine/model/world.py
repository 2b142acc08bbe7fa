"""A world model: one game's autoencoder and denoiser under one configuration."""

from __future__ import annotations

from torch import nn

from neural_engine.model.autoencoder import Autoencoder
from neural_engine.model.config import WorldModelConfig
from neural_engine.model.dit import Denoiser
from neural_engine.model.schedule import FlowSchedule


class WorldModel(nn.Module):
    def __init__(self, config: WorldModelConfig):
        super().__init__()
        self.config = config
        self.autoencoder = Autoencoder(config.autoencoder)
        self.denoiser = Denoiser(config)

    @property
    def schedule(self) -> FlowSchedule:
        return FlowSchedule(self.config.time_shift)
