"""The presenter puts a frame's pixels where they belong: quadrants, bars, filtering."""

import numpy as np
import pytest

from neural_engine.errors import EngineError
from neural_engine.presenter.presenter import Presenter, letterbox

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
# A 2×2 frame, top row first: red | green over blue | white.
QUADRANTS = np.array([[RED, GREEN], [BLUE, WHITE]], dtype=np.uint8)


def present(display, output_size, frame, filter="nearest"):
    display.resize(output_size)
    height, width, _ = frame.shape
    presenter = Presenter(display.ctx, (width, height), filter=filter)
    presenter.draw(display.target, frame)
    pixels = display.read_pixels()
    presenter.release()
    return pixels


@pytest.mark.parametrize(
    "output, frame, viewport",
    [
        ((200, 100), (2, 2), (50, 0, 100, 100)),
        ((100, 200), (2, 2), (0, 50, 100, 100)),
        ((512, 512), (128, 128), (0, 0, 512, 512)),
        ((1920, 1080), (128, 128), (420, 0, 1080, 1080)),
        ((640, 480), (160, 90), (0, 60, 640, 360)),
    ],
)
def test_letterbox_centres_the_largest_viewport_of_the_frame_aspect(output, frame, viewport):
    assert letterbox(output, frame) == viewport


def test_nearest_keeps_quadrants_and_bars_are_black_in_a_wide_output(display):
    pixels = present(display, (200, 100), QUADRANTS)
    assert pixels.shape == (100, 200, 3)
    assert (pixels[:, :50] == 0).all() and (pixels[:, 150:] == 0).all()
    assert (pixels[:50, 50:100] == RED).all()
    assert (pixels[:50, 100:150] == GREEN).all()
    assert (pixels[50:, 50:100] == BLUE).all()
    assert (pixels[50:, 100:150] == WHITE).all()


def test_bars_go_above_and_below_in_a_tall_output(display):
    pixels = present(display, (100, 200), QUADRANTS)
    assert (pixels[:50] == 0).all() and (pixels[150:] == 0).all()
    assert (pixels[50:100, :50] == RED).all()
    assert (pixels[150 - 1, 99] == WHITE).all()


def test_linear_blends_the_four_colours_at_the_centre(display):
    pixels = present(display, (200, 100), QUADRANTS, filter="linear").astype(float)
    centre = pixels[49:51, 99:101].reshape(-1, 3)
    expected = QUADRANTS.reshape(-1, 3).mean(axis=0)
    assert np.abs(centre - expected).max() < 8
    assert (pixels[2, 52] == RED).all()  # the corner texel stays pure (edges clamp)
    assert (pixels[:, :50] == 0).all()


def test_integer_upscale_with_nearest_repeats_each_pixel(display):
    frame = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    pixels = present(display, (512, 512), frame)
    np.testing.assert_array_equal(pixels, frame.repeat(4, axis=0).repeat(4, axis=1))


def test_each_draw_shows_the_newest_frame(display):
    display.resize((64, 64))
    presenter = Presenter(display.ctx, (2, 2))
    presenter.draw(display.target, QUADRANTS)
    presenter.draw(display.target, np.full((2, 2, 3), 77, dtype=np.uint8))
    assert (display.read_pixels() == 77).all()
    presenter.filter = "linear"
    assert presenter.filter == "linear"
    presenter.release()


def test_read_pixels_can_fill_a_given_array(display):
    display.resize((200, 100))
    presenter = Presenter(display.ctx, (2, 2))
    presenter.draw(display.target, QUADRANTS)
    out = np.empty((100, 200, 3), dtype=np.uint8)
    assert display.read_pixels(out) is out
    assert (out[0, 60] == RED).all()
    presenter.release()


def test_unknown_filter_and_wrong_frames_are_refused(display):
    with pytest.raises(EngineError, match="unknown filter"):
        Presenter(display.ctx, (2, 2), filter="bicubic")
    presenter = Presenter(display.ctx, (2, 2))
    with pytest.raises(ValueError):
        presenter.draw(display.target, np.zeros((3, 2, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        presenter.draw(display.target, np.zeros((2, 2, 3), dtype=np.float32))
    presenter.release()
