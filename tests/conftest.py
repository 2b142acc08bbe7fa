"""Shared test set-up: no window ever opens, no test needs a GPU unless marked, one tiny
random world model for every test that needs one, and the ``--update-golden`` flag."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite the golden frames of tests/golden/ from this run "
                          "instead of comparing with them")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def random_world_model(height: int = 64, width: int = 64, actions: int = 8, *, seed: int = 0,
                       std: float | None = 0.1, randomize: str = "all",
                       dtype: torch.dtype = torch.float32, **denoiser):
    """The 'tiny' maze world model of ``height``×``width`` frames and ``actions`` inputs,
    built under ``torch.manual_seed(seed)``, in eval mode.

    ``std``: every weight of ``randomize`` ("all" or "denoiser") drawn from N(0, std²), so
    that no block starts as the identity (adaLN-Zero would); None keeps the initialisation.
    ``denoiser``: keys of the denoiser configuration overridden (``previous_frame=True``).
    """
    from neural_engine.model.config import named_config
    from neural_engine.model.world import WorldModel

    torch.manual_seed(seed)
    model = WorldModel(named_config("tiny", "maze", height, width, actions, **denoiser))
    if std is not None:
        part = {"all": model, "denoiser": model.denoiser}[randomize]
        for p in part.parameters():
            torch.nn.init.normal_(p, std=std)
    return model.to(dtype).eval()


@pytest.fixture(scope="session")
def tiny_model():
    """``tiny_model(height=64, width=64, actions=8, *, seed=0, std=0.1, ...)``: a fresh
    tiny world model with seeded random weights; see ``random_world_model``."""
    return random_world_model


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """Random weights of the tiny model for the maze (128×128, 8 actions)."""
    from neural_engine.model.weights import save_world_model

    model = random_world_model(128, 128, 8)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_world_model(path, model, dtype=torch.float32)
    return path


@pytest.fixture(scope="session")
def update_golden(request) -> bool:
    """Whether this run rewrites the golden frames (``pytest --update-golden``)."""
    return request.config.getoption("--update-golden")
