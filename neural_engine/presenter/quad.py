"""A textured quad: the only geometry the presenter draws.

Builds, once, a shader program from the GLSL files shipped in ``shaders/`` and a
vertex array over four corners in clip space. Where the quad lands and how big it is
are decided by the framebuffer's viewport at draw time, so the same quad serves the
game frame and the HUD. Knows nothing about frames, text or displays.
"""

from __future__ import annotations

from importlib import resources

import moderngl
import numpy as np

_CORNERS = np.array([-1, -1, 1, -1, -1, 1, 1, 1], dtype="f4")  # (4, 2) as a triangle strip


def shader_source(name: str) -> str:
    """The text of ``shaders/<name>`` from the installed package."""
    return (resources.files("neural_engine.presenter") / "shaders" / name).read_text(
        encoding="utf-8"
    )


class TexturedQuad:
    """A program and a VAO that fill the current viewport with one texture."""

    def __init__(self, ctx: moderngl.Context):
        self.program = ctx.program(
            vertex_shader=shader_source("quad.vert.glsl"),
            fragment_shader=shader_source("textured.frag.glsl"),
        )
        self.program["image"].value = 0
        self._corners = ctx.buffer(_CORNERS.tobytes())
        self.vao = ctx.vertex_array(self.program, [(self._corners, "2f", "in_position")])

    def render(self, texture: moderngl.Texture) -> None:
        """Draw ``texture`` over the viewport of the framebuffer in use."""
        texture.use(location=0)
        self.vao.render(moderngl.TRIANGLE_STRIP)

    def release(self) -> None:
        self.vao.release()
        self._corners.release()
        self.program.release()
