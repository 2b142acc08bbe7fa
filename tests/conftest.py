"""Shared test set-up: no window ever opens, and no test needs a GPU unless marked."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """Random weights of the tiny model for the maze (128×128, 8 actions)."""
    from neural_engine.model.config import named_config
    from neural_engine.model.weights import save_world_model
    from neural_engine.model.world import WorldModel

    torch.manual_seed(0)
    model = WorldModel(named_config("tiny", "maze", 128, 128, 8))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_world_model(path, model, dtype=torch.float32)
    return path
