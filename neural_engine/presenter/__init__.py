"""Presenter: puts finished RGB frames on a screen or into an off-screen image.

Frames arrive as ``(H, W, 3)`` uint8 arrays, top row first, one per game tick. The
presenter uploads each into a texture made once, draws it as one quad scaled to the
output with its aspect ratio kept (black bars fill the rest), and can lay a small text
HUD over the top-left corner. A display gives it somewhere to draw: a pygame window
(``WindowDisplay``) or an off-screen framebuffer (``HeadlessDisplay``), both of which
can read back what was drawn for screenshots and recordings.

The presenter knows nothing about worlds, models, sessions or input: it does not know
where frames come from, what the keys mean, or when the next tick is due. The text the
HUD shows is handed to it ready-made.
"""

from neural_engine.presenter.display import (
    Display,
    HeadlessDisplay,
    WindowDisplay,
    display_available,
)
from neural_engine.presenter.hud import Hud, hud_lines
from neural_engine.presenter.presenter import Presenter, letterbox
from neural_engine.presenter.screenshot import save_png

__all__ = [
    "Display",
    "HeadlessDisplay",
    "Hud",
    "Presenter",
    "WindowDisplay",
    "display_available",
    "hud_lines",
    "letterbox",
    "save_png",
]
