"""The HUD darkens and writes only the top-left corner, at a size that follows the output."""

import numpy as np

from neural_engine.presenter.hud import Hud, hud_lines
from neural_engine.presenter.presenter import Presenter

GREY = np.full((128, 128, 3), 128, dtype=np.uint8)
LINES = hud_lines(19.96, 3.25, ["w", "left shift"], caption="maze: dreamed")


def draw(display, output_size, hud):
    display.resize(output_size)
    presenter = Presenter(display.ctx, (128, 128))
    presenter.draw(display.target, GREY, hud=hud)
    pixels = display.read_pixels()
    presenter.release()
    return pixels


def changed_box(before, after):
    rows, cols = np.nonzero((before != after).any(axis=2))
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_hud_changes_only_the_top_left_corner(display):
    hud = Hud(display.ctx)
    hud.set_lines(LINES)
    plain = draw(display, (512, 512), None)
    with_hud = draw(display, (512, 512), hud)
    top, bottom, left, right = changed_box(plain, with_hud)
    margin = hud.text_px((512, 512)) // 2
    assert (top, left) == (margin, margin)
    assert bottom < 256 and right < 384
    box = with_hud[top : bottom + 1, left : right + 1].astype(int)
    assert box.min() < 80  # the box darkens the frame
    assert box.max() > 200  # and the text is light
    hud.release()


def test_hud_grows_with_the_output(display):
    hud = Hud(display.ctx)
    hud.set_lines(LINES)
    assert hud.text_px((512, 512)) == 18
    assert hud.text_px((1920, 1080)) == 38
    assert hud.text_px((128, 128)) == hud.min_px
    small = changed_box(draw(display, (512, 512), None), draw(display, (512, 512), hud))
    large = changed_box(draw(display, (1024, 1024), None), draw(display, (1024, 1024), hud))
    assert large[1] - large[0] > 1.8 * (small[1] - small[0])
    hud.release()


def test_text_is_rendered_again_only_when_it_changes(display, monkeypatch):
    hud = Hud(display.ctx)
    renders = []
    original = hud._render
    monkeypatch.setattr(hud, "_render", lambda px: renders.append(px) or original(px))
    hud.set_lines(LINES)
    for _ in range(3):
        draw(display, (512, 512), hud)
    hud.set_lines(list(LINES))
    draw(display, (512, 512), hud)
    assert len(renders) == 1
    hud.set_lines(["other"])
    draw(display, (512, 512), hud)
    assert len(renders) == 2
    hud.release()


def test_a_hud_without_lines_draws_nothing(display):
    hud = Hud(display.ctx)
    np.testing.assert_array_equal(draw(display, (256, 256), None), draw(display, (256, 256), hud))
    hud.release()


def test_hud_lines_formats_rate_time_keys_and_caption():
    assert hud_lines(20.0, 4.5) == [" 20.0 fps    4.5 ms/frame", "keys: -"]
    assert hud_lines(59.9, 16.7, ["a", "d"], "hello")[1:] == ["keys: a d", "hello"]
