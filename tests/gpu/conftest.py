"""What the GPU tests share: the default-size model with small random weights."""

import pytest
import torch

from neural_engine.model.config import named_config
from neural_engine.model.world import WorldModel


@pytest.fixture
def small_model():
    """``small_model(dtype, **denoiser)``: the 'small' maze model on CUDA (denoiser keys
    overridden), seeded random weights."""

    def make(dtype: torch.dtype, **denoiser) -> WorldModel:
        torch.manual_seed(0)
        m = WorldModel(named_config("small", "maze", 128, 128, 8, **denoiser))
        for p in m.parameters():
            torch.nn.init.normal_(p, std=0.02)
        return m.to("cuda", dtype).eval()

    return make
