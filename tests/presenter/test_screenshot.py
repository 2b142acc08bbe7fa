"""Screenshots round-trip exactly and never leave partial or stray files."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

from neural_engine.errors import EngineError  # noqa: E402
from neural_engine.presenter.screenshot import save_png  # noqa: E402


def test_png_round_trip_is_exact(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (23, 37, 3), dtype=np.uint8)
    path = save_png(tmp_path / "shot.png", pixels)
    loaded = pygame.image.load(str(path))
    assert loaded.get_size() == (37, 23)
    back = np.frombuffer(pygame.image.tobytes(loaded, "RGB"), dtype=np.uint8).reshape(23, 37, 3)
    np.testing.assert_array_equal(back, pixels)
    assert os.listdir(tmp_path) == ["shot.png"]


def test_saving_again_replaces_the_file(tmp_path):
    save_png(tmp_path / "shot.png", np.zeros((4, 4, 3), dtype=np.uint8))
    save_png(tmp_path / "shot.png", np.full((4, 4, 3), 200, dtype=np.uint8))
    loaded = pygame.image.load(str(tmp_path / "shot.png"))
    assert loaded.get_at((0, 0))[:3] == (200, 200, 200)
    assert os.listdir(tmp_path) == ["shot.png"]


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(EngineError, match="folder does not exist"):
        save_png(tmp_path / "nowhere" / "shot.png", np.zeros((4, 4, 3), dtype=np.uint8))
    assert os.listdir(tmp_path) == []


def test_a_folder_in_the_way_is_a_user_error_and_leaves_nothing(tmp_path):
    (tmp_path / "shot.png").mkdir()
    with pytest.raises(EngineError, match="cannot save screenshot"):
        save_png(tmp_path / "shot.png", np.zeros((4, 4, 3), dtype=np.uint8))
    assert os.listdir(tmp_path) == ["shot.png"]


def test_pixels_must_be_rgb_uint8(tmp_path):
    with pytest.raises(ValueError):
        save_png(tmp_path / "shot.png", np.zeros((4, 4), dtype=np.uint8))
