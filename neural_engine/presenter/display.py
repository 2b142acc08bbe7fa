"""Where the presenter draws: a pygame window or an off-screen image.

Both displays offer the same small interface (``Display``): a ModernGL context ``ctx``,
the output ``size`` in pixels, a ``target`` framebuffer to draw into, ``flip()`` to
show what was drawn, ``read_pixels()`` to read it back (top row first) and ``close()``.
In both, ``target`` is an off-screen framebuffer owned by the display, so reading back
never depends on the state of a window's swap chain; the window's ``flip()`` copies it
to the screen and swaps buffers.

Displays know nothing about frames, HUDs or input: the caller owns the pygame event
queue and tells a window when it was resized.
"""

from __future__ import annotations

import os
import sys
from typing import Protocol

import moderngl
import numpy as np
import pygame

from neural_engine.errors import EngineError

GL_VERSION = 330  # the shaders are GLSL 3.30 core
_HEADLESS_DRIVERS = ("dummy", "offscreen")


class Display(Protocol):
    """What the presenter and the game loop need from any display."""

    ctx: moderngl.Context
    size: tuple[int, int]
    target: moderngl.Framebuffer
    has_events: bool  # whether pygame's event queue carries this display's input

    def flip(self) -> None: ...

    def read_pixels(self, out: np.ndarray | None = None) -> np.ndarray: ...

    def close(self) -> None: ...


def display_available() -> bool:
    """Whether a window could be opened here: a desktop session SDL can reach.

    SDL quietly falls back to its off-screen driver when it cannot reach a desktop,
    so the driver it picks is checked, not only the environment.
    """
    if os.environ.get("SDL_VIDEODRIVER", "").lower() in _HEADLESS_DRIVERS:
        return False
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return False
    was_initialised = pygame.display.get_init()
    try:
        pygame.display.init()
        return pygame.display.get_driver() not in _HEADLESS_DRIVERS
    except pygame.error:
        return False
    finally:
        if not was_initialised:
            pygame.display.quit()


class _FramebufferDisplay:
    """The part both displays share: an off-screen colour target of ``size`` and its readback."""

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int]):
        self.ctx = ctx
        self.size = _checked_size(size)
        self.target = self._make_target()
        self._closed = False

    def resize(self, size: tuple[int, int]) -> None:
        """Make the output ``size`` (width, height) pixels; the next draw fills it."""
        size = _checked_size(size)
        if size == self.size:
            return
        self._release_target()
        self.size = size
        self.target = self._make_target()

    def read_pixels(self, out: np.ndarray | None = None) -> np.ndarray:
        """What was last drawn into ``target`` as ``(h, w, 3)`` uint8, top row first.

        Pass ``out`` (same shape and dtype) to reuse an array instead of allocating one.
        """
        self.target.read_into(self._readback, components=3, alignment=1)
        upright = self._readback[::-1]  # GL rows run bottom to top
        if out is None:
            return upright.copy()
        np.copyto(out, upright)
        return out

    def _make_target(self) -> moderngl.Framebuffer:
        width, height = self.size
        self._colour = self.ctx.renderbuffer(self.size, components=4)
        self._readback = np.empty((height, width, 3), dtype=np.uint8)
        return self.ctx.framebuffer(color_attachments=[self._colour])

    def _release_target(self) -> None:
        self.target.release()
        self._colour.release()

    def close(self) -> None:
        """Release the framebuffer and the context (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        self._release_target()
        self.ctx.release()
        self._close_window()

    def _close_window(self) -> None:
        """What a display with a window does after its GL resources are gone."""


class HeadlessDisplay(_FramebufferDisplay):
    """An off-screen output of ``size`` (width, height) pixels on a standalone GL context.

    Tries EGL first (works without any window system, e.g. Mesa's llvmpipe on a
    server), then the platform's default backend.
    """

    has_events = False

    def __init__(self, size: tuple[int, int]):
        super().__init__(_standalone_context(), size)

    def flip(self) -> None:
        """Nothing to show off-screen; present for the common interface."""


class WindowDisplay(_FramebufferDisplay):
    """A pygame window with an OpenGL context; ``size`` is its drawable size.

    The caller forwards window-size events to ``resize`` (pygame's ``VIDEORESIZE`` or
    ``WINDOWSIZECHANGED``); ``toggle_fullscreen`` resizes by itself. ``resizable=False``
    keeps the user from dragging the size (fullscreen still changes it). ``vsync`` makes
    ``flip`` wait for the screen's next refresh (up to one refresh interval, time the
    game loop may need), where the driver allows it.
    """

    has_events = True

    def __init__(
        self,
        size: tuple[int, int],
        title: str,
        fullscreen: bool = False,
        resizable: bool = True,
        vsync: bool = False,
    ):
        size = _checked_size(size)
        if not display_available():
            raise EngineError(
                "no display to open a window on (DISPLAY and WAYLAND_DISPLAY unset or unreachable, "
                "or SDL_VIDEODRIVER is dummy); run headless or record to a video file instead",
                where="display",
            )
        try:
            pygame.display.init()
            pygame.display.gl_set_attribute(pygame.GL_CONTEXT_MAJOR_VERSION, GL_VERSION // 100)
            pygame.display.gl_set_attribute(pygame.GL_CONTEXT_MINOR_VERSION, GL_VERSION % 100 // 10)
            pygame.display.gl_set_attribute(
                pygame.GL_CONTEXT_PROFILE_MASK, pygame.GL_CONTEXT_PROFILE_CORE
            )
            if sys.platform == "darwin":
                pygame.display.gl_set_attribute(pygame.GL_CONTEXT_FORWARD_COMPATIBLE_FLAG, True)
            flags = pygame.OPENGL | pygame.DOUBLEBUF | (pygame.RESIZABLE if resizable else 0)
            try:
                pygame.display.set_mode(size, flags, vsync=int(vsync))
            except pygame.error:
                pygame.display.set_mode(size, flags)  # no vsync on this driver: run unsynced
            pygame.display.set_caption(title)
            ctx = moderngl.create_context(require=GL_VERSION)
        except (pygame.error, moderngl.Error) as error:
            pygame.display.quit()
            raise EngineError(
                f"cannot open an OpenGL {GL_VERSION / 100:.1f} window: {error}", where="display"
            ) from None
        super().__init__(ctx, pygame.display.get_window_size())
        if fullscreen:
            self.toggle_fullscreen()

    @property
    def fullscreen(self) -> bool:
        return bool(pygame.display.is_fullscreen())

    def toggle_fullscreen(self) -> None:
        """Switch between a window and fullscreen, and take the new size."""
        pygame.display.toggle_fullscreen()
        self.resize(pygame.display.get_window_size())

    def grab_input(self, grab: bool) -> None:
        """Keep the mouse in the window, hidden, reporting unbounded relative motion."""
        pygame.event.set_grab(grab)
        pygame.mouse.set_visible(not grab)

    def flip(self) -> None:
        """Copy ``target`` to the window and swap buffers."""
        self.ctx.copy_framebuffer(self.ctx.screen, self.target)
        pygame.display.flip()

    def _close_window(self) -> None:
        pygame.display.quit()


def _checked_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = (int(n) for n in size)
    if width < 1 or height < 1:
        raise EngineError(
            f"output size must be at least 1×1 pixels, got {width}×{height}", where="display"
        )
    return width, height


def _standalone_context() -> moderngl.Context:
    failures = []
    for backend in ("egl", None):
        try:
            if backend is None:
                return moderngl.create_standalone_context(require=GL_VERSION)
            return moderngl.create_standalone_context(require=GL_VERSION, backend=backend)
        except Exception as error:  # backends fail in their own ways: ImportError, OSError, ...
            failures.append(f"{backend or 'default'}: {error}")
    raise EngineError(
        f"no OpenGL {GL_VERSION / 100:.1f} context for headless rendering "
        f"({'; '.join(failures)}); install Mesa's EGL and GL drivers "
        "(Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri)",
        where="display",
    )
