"""Line charts as PNG files, drawn with pygame (already a dependency) and no display.

Enough for the evaluation report: several named series over a shared x axis, axis
ticks with labels, a legend and a title. It knows nothing about what is plotted.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
           (140, 86, 75), (23, 190, 207), (127, 127, 127)]


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * step:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def line_chart(path: str | Path, series: dict[str, tuple[list[float], list[float]]],
               title: str, xlabel: str, ylabel: str, size: tuple[int, int] = (720, 440)
               ) -> Path:
    """Write a chart of ``{name: (xs, ys)}`` to ``path`` (PNG)."""
    pygame.font.init()
    width, height = size
    surface = pygame.Surface(size)
    surface.fill((255, 255, 255))
    font = pygame.font.Font(None, 20)
    big = pygame.font.Font(None, 26)
    left, right, top, bottom = 70, 20, 40, 60
    xs = [x for xs_, _ in series.values() for x in xs_]
    ys = [y for _, ys_ in series.values() for y in ys_ if math.isfinite(y)]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    pad = (y1 - y0) * 0.08 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    x1 = x1 if x1 > x0 else x0 + 1.0

    def px(x: float, y: float) -> tuple[int, int]:
        u = left + (x - x0) / (x1 - x0) * (width - left - right)
        v = height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)
        return round(u), round(v)

    axis = (60, 60, 60)
    pygame.draw.line(surface, axis, (left, height - bottom), (width - right, height - bottom))
    pygame.draw.line(surface, axis, (left, top), (left, height - bottom))
    for t in _ticks(x0, x1):
        u, _ = px(t, y0)
        pygame.draw.line(surface, (225, 225, 225), (u, top), (u, height - bottom))
        label = font.render(f"{t:g}", True, axis)
        surface.blit(label, (u - label.get_width() // 2, height - bottom + 6))
    for t in _ticks(y0, y1):
        _, v = px(x0, t)
        pygame.draw.line(surface, (225, 225, 225), (left, v), (width - right, v))
        label = font.render(f"{t:.3g}", True, axis)
        surface.blit(label, (left - label.get_width() - 6, v - label.get_height() // 2))
    for i, (name, (sx, sy)) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = [px(x, y) for x, y in zip(sx, sy) if math.isfinite(y)]
        if len(points) > 1:
            pygame.draw.lines(surface, colour, False, points, 2)
        for p in points if len(points) < 40 else ():
            pygame.draw.circle(surface, colour, p, 3)
        label = font.render(name, True, colour)
        surface.blit(label, (width - right - 160, top + 6 + 18 * i))
    heading = big.render(title, True, (0, 0, 0))
    surface.blit(heading, ((width - heading.get_width()) // 2, 10))
    xl = font.render(xlabel, True, axis)
    surface.blit(xl, ((width - xl.get_width()) // 2, height - 24))
    yl = pygame.transform.rotate(font.render(ylabel, True, axis), 90)
    surface.blit(yl, (8, (height - yl.get_height()) // 2))
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    pygame.image.save(surface, str(tmp))
    os.replace(tmp, path)
    return path
