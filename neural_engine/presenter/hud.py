"""A few lines of text over a dark, semi-transparent box in the output's top-left corner.

Text is rendered with pygame's font module (its bundled font; no display needed) into
an RGBA image, uploaded as a texture only when the lines or the output's scale change,
and drawn with alpha blending over whatever is already in the framebuffer. The font
size follows the output size, so the HUD reads the same in a 512×512 window and in
fullscreen.

The HUD knows nothing about what its lines mean; ``hud_lines`` formats the usual
ones (rate, frame time, held keys, a caption) from numbers the caller measured.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import moderngl
import pygame

from neural_engine.presenter.quad import TexturedQuad

TEXT_RGB = (235, 235, 235)
BOX_RGBA = (0, 0, 0, 150)


def hud_lines(
    fps: float, frame_ms: float, keys: Sequence[str] = (), caption: str = ""
) -> list[str]:
    """The standard HUD text: rate and frame time, held keys, then an optional caption."""
    lines = [f"{fps:5.1f} fps  {frame_ms:5.1f} ms/frame", "keys: " + (" ".join(keys) or "-")]
    if caption:
        lines.append(caption)
    return lines


class Hud:
    """Text lines drawn in the top-left corner of any framebuffer handed to ``draw``.

    ``font_px`` is the text height for an output whose smaller side is
    ``reference_px``; other outputs scale it proportionally (at least ``min_px``).
    """

    def __init__(
        self,
        ctx: moderngl.Context,
        font_px: int = 18,
        reference_px: int = 512,
        min_px: int = 12,
    ):
        pygame.font.init()
        self.ctx = ctx
        self.font_px = font_px
        self.reference_px = reference_px
        self.min_px = min_px
        self._quad = TexturedQuad(ctx)
        self._lines: tuple[str, ...] = ()
        self._uploaded: tuple[tuple[str, ...], int] | None = None
        self._texture: moderngl.Texture | None = None
        self._fonts: dict[int, pygame.font.Font] = {}

    @property
    def lines(self) -> tuple[str, ...]:
        return self._lines

    def set_lines(self, lines: Iterable[str]) -> None:
        """Show ``lines`` from the next ``draw`` on; the same lines again cost nothing."""
        self._lines = tuple(lines)

    def text_px(self, output_size: tuple[int, int]) -> int:
        """The text height in pixels for an output of ``output_size`` (width, height)."""
        return max(self.min_px, round(self.font_px * min(output_size) / self.reference_px))

    def draw(self, target: moderngl.Framebuffer) -> None:
        """Blend the HUD over the top-left corner of ``target``; nothing if there are no lines."""
        if not self._lines:
            return
        text_px = self.text_px(target.size)
        if self._uploaded != (self._lines, text_px):
            self._upload(self._render(text_px))
            self._uploaded = (self._lines, text_px)
        box_w, box_h = self._texture.size
        margin = text_px // 2
        target.use()
        target.viewport = (margin, target.height - margin - box_h, box_w, box_h)
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        self._quad.render(self._texture)
        self.ctx.disable(moderngl.BLEND)

    def release(self) -> None:
        self._quad.release()
        if self._texture is not None:
            self._texture.release()
            self._texture = None
        self._uploaded = None

    def _font(self, text_px: int) -> pygame.font.Font:
        if text_px not in self._fonts:
            self._fonts[text_px] = pygame.font.Font(None, text_px)
        return self._fonts[text_px]

    def _render(self, text_px: int) -> pygame.Surface:
        """The box with the lines on it, top row first, as an RGBA surface."""
        font = self._font(text_px)
        rendered = [font.render(line, True, TEXT_RGB) for line in self._lines]
        pad = max(2, text_px // 3)
        line_h = font.get_linesize()
        width = max(text.get_width() for text in rendered) + 2 * pad
        step = 2 * text_px  # the box grows in steps, so it does not jitter as digits change
        width = math.ceil(width / step) * step
        height = line_h * len(rendered) + 2 * pad
        box = pygame.Surface((width, height), pygame.SRCALPHA)
        box.fill(BOX_RGBA)
        for row, text in enumerate(rendered):
            box.blit(text, (pad, pad + row * line_h))
        return box

    def _upload(self, box: pygame.Surface) -> None:
        pixels = pygame.image.tobytes(box, "RGBA")
        if self._texture is None or self._texture.size != box.get_size():
            if self._texture is not None:
                self._texture.release()
            self._texture = self.ctx.texture(box.get_size(), components=4)
            self._texture.filter = moderngl.NEAREST, moderngl.NEAREST
            self._texture.repeat_x = False
            self._texture.repeat_y = False
        self._texture.write(pixels)
