"""Shared pack fixtures: write a pack folder from text, tiny random weights, a start image."""

import shutil
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "games" / "maze" / "packs"


@pytest.fixture
def write_pack(tmp_path):
    """write_pack(text, **files) → the folder of a pack with pack.toml = text."""

    def write(text: str, folder: str = "pack", **files) -> Path:
        root = tmp_path / folder
        root.mkdir(parents=True, exist_ok=True)
        (root / "pack.toml").write_text(text)
        for name, content in files.items():
            path = root / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        return root

    return write


@pytest.fixture
def shipped(tmp_path):
    """copy(name) → a copy of a shipped pack in tmp_path."""

    def copy(name: str) -> Path:
        return Path(shutil.copytree(SHIPPED / name, tmp_path / name))

    return copy


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
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


@pytest.fixture(scope="session")
def hall_png() -> bytes:
    return (SHIPPED / "snapshot" / "hall.png").read_bytes()
