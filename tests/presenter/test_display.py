"""Headless displays size and read back; a window without a desktop is a clear user error."""

import moderngl
import numpy as np
import pytest

from neural_engine.errors import EngineError
from neural_engine.presenter.display import HeadlessDisplay, WindowDisplay, display_available


def test_no_window_without_a_desktop(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert not display_available()
    with pytest.raises(EngineError, match="no display"):
        WindowDisplay((512, 512), "test")


def test_resize_changes_target_and_readback(display):
    display.resize((30, 20))
    assert display.size == (30, 20) and display.target.size == (30, 20)
    display.target.clear(1.0, 0.0, 0.0, 1.0)
    display.flip()
    pixels = display.read_pixels()
    assert pixels.shape == (20, 30, 3) and pixels.dtype == np.uint8
    assert (pixels == (255, 0, 0)).all()


def test_sizes_below_one_pixel_are_refused(display):
    with pytest.raises(EngineError, match="at least 1×1"):
        display.resize((0, 10))


def test_close_releases_the_gl_objects_and_is_idempotent(display):
    # display: skip where no GL context can be made
    headless = HeadlessDisplay((8, 8))
    owned = (headless.target, headless._colour, headless.ctx)
    assert not any(isinstance(o.mglo, moderngl.InvalidObject) for o in owned)
    headless.close()
    assert all(isinstance(o.mglo, moderngl.InvalidObject) for o in owned)
    headless.close()                    # a second close finds nothing left to release
    assert all(isinstance(o.mglo, moderngl.InvalidObject) for o in owned)
