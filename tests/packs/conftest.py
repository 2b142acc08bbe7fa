"""Shared pack fixtures: write a pack folder from text, tiny random weights, a start image."""

import shutil
from pathlib import Path

import pytest

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
def hall_png() -> bytes:
    return (SHIPPED / "snapshot" / "hall.png").read_bytes()
