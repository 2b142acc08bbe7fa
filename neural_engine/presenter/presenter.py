"""Draws one game frame per tick into a framebuffer, letterboxed, with an optional HUD.

The frame texture is created once at the frame's size and rewritten every tick; one
quad, made once, is drawn into a viewport that keeps the frame's aspect ratio inside
the output, and the rest of the output is cleared to black. Nothing is allocated per
frame beyond the texture upload itself.

The presenter knows nothing about where frames come from or where the framebuffer
ends up (a window or an off-screen image): it is handed both at draw time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import moderngl
import numpy as np

from neural_engine.errors import EngineError
from neural_engine.presenter.quad import TexturedQuad

if TYPE_CHECKING:
    from neural_engine.presenter.hud import Hud

Filter = Literal["nearest", "linear"]

_FILTERS = {
    "nearest": (moderngl.NEAREST, moderngl.NEAREST),
    "linear": (moderngl.LINEAR, moderngl.LINEAR),
}


def letterbox(
    output_size: tuple[int, int], frame_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The largest viewport ``(x, y, w, h)`` of the frame's aspect ratio, centred in the output.

    Sizes are ``(width, height)`` in pixels; ``x, y`` count from the bottom-left corner
    as GL viewports do. The bars left over on two sides stay black.
    """
    out_w, out_h = output_size
    frame_w, frame_h = frame_size
    scale = min(out_w / frame_w, out_h / frame_h)
    w = max(1, min(out_w, round(frame_w * scale)))
    h = max(1, min(out_h, round(frame_h * scale)))
    return (out_w - w) // 2, (out_h - h) // 2, w, h


class Presenter:
    """Uploads ``(H, W, 3)`` uint8 frames (top row first) and draws them letterboxed.

    ``filter`` picks how the frame is magnified: ``"nearest"`` keeps hard pixel edges,
    ``"linear"`` blends neighbours. It may be changed between frames.
    """

    def __init__(
        self, ctx: moderngl.Context, frame_size: tuple[int, int], filter: Filter = "nearest"
    ):
        width, height = frame_size
        self.ctx = ctx
        self.frame_size = (int(width), int(height))
        self._frame_shape = (self.frame_size[1], self.frame_size[0], 3)  # (H, W, 3)
        self._texture = ctx.texture(self.frame_size, components=3, alignment=1)
        self._texture.repeat_x = False
        self._texture.repeat_y = False
        self.filter = filter
        self._quad = TexturedQuad(ctx)
        self._viewport_for: tuple[tuple[int, int], tuple[int, int, int, int]] | None = None

    @property
    def filter(self) -> Filter:
        return self._filter

    @filter.setter
    def filter(self, name: Filter) -> None:
        if name not in _FILTERS:
            raise EngineError(
                f"unknown filter {name!r}; choose one of {', '.join(sorted(_FILTERS))}",
                where="presenter",
            )
        self._filter = name
        self._texture.filter = _FILTERS[name]

    def viewport(self, output_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """Where the frame lands in an output of ``output_size``; see ``letterbox``."""
        if self._viewport_for is None or self._viewport_for[0] != output_size:
            self._viewport_for = (output_size, letterbox(output_size, self.frame_size))
        return self._viewport_for[1]

    def draw(
        self, target: moderngl.Framebuffer, frame: np.ndarray, hud: Hud | None = None
    ) -> None:
        """Draw ``frame`` (H, W, 3) uint8 letterboxed into ``target``, bars black, then the HUD."""
        if frame.shape != self._frame_shape or frame.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 of shape {self._frame_shape}, got {frame.dtype} {frame.shape}"
            )
        self._texture.write(np.ascontiguousarray(frame))
        target.use()
        target.clear(0.0, 0.0, 0.0, 1.0)
        target.viewport = self.viewport(target.size)
        self._quad.render(self._texture)
        if hud is not None:
            hud.draw(target)

    def release(self) -> None:
        self._quad.release()
        self._texture.release()
