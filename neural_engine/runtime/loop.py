"""The fixed-tick game loop: input ▸ frame source ▸ presenter ▸ (recorder), every tick.

Each tick it reads the window's events (engine controls first: Esc quit, F11
fullscreen, P pause, R reset, F12 screenshot; everything else goes to the driver),
asks the driver for this tick's action, steps the frame source, draws the frame with
the HUD, and hands the picture to the recorder. In real time it sleeps to the next
tick; headless it runs as fast as the source allows (a recording still has exactly
one frame per tick at the game's rate). It measures the achieved tick rate and the
time each part of a frame takes, and shows them on the HUD.

The loop knows nothing about what produces the frames or how they are drawn.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from neural_engine.input.actions import Action
from neural_engine.runtime.drivers import Driver, KeyboardDriver
from neural_engine.runtime.frame_source import FrameSource, StartState


@dataclass
class LoopStats:
    """What a run measured; times in milliseconds, medians over all ticks."""

    ticks: int = 0
    seconds: float = 0.0
    step_ms: list[float] = field(default_factory=list)
    present_ms: list[float] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)

    @property
    def tick_rate(self) -> float:
        return self.ticks / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        med = lambda xs: statistics.median(xs) if xs else 0.0  # noqa: E731
        return (f"{self.ticks} ticks in {self.seconds:.2f} s ({self.tick_rate:.1f} ticks/s); "
                f"median per frame: source step {med(self.step_ms):.2f} ms, "
                f"present {med(self.present_ms):.2f} ms")


class RateMeter:
    """Ticks per second over the last ``window`` ticks."""

    def __init__(self, window: int = 30):
        self.times: deque[float] = deque(maxlen=window)

    def tick(self, now: float) -> None:
        self.times.append(now)

    @property
    def rate(self) -> float:
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


class GameLoop:
    def __init__(self, source: FrameSource, start: StartState, driver: Driver, display,
                 presenter, hud=None, recorder=None, realtime: bool = True,
                 max_ticks: int | None = None, screenshot_dir: Path = Path(".")):
        self.source = source
        self.start = start
        self.driver = driver
        self.display = display
        self.presenter = presenter
        self.hud = hud
        self.recorder = recorder
        self.realtime = realtime
        self.max_ticks = max_ticks
        self.screenshot_dir = Path(screenshot_dir)
        self.period = 1.0 / source.spec.tick_rate
        self.paused = False
        self.running = False
        self.stats = LoopStats()
        self.meter = RateMeter()
        self.frame = None
        self.last_action = Action()

    # -- controls -----------------------------------------------------------------
    def _events(self) -> None:
        if not getattr(self.display, "has_events", False):
            return
        import pygame

        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                self.running = False
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE:
                self.running = False
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_F11:
                if self.recorder is None:  # a recording keeps one picture size
                    self.display.toggle_fullscreen()
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_p:
                self.paused = not self.paused
                self.display.grab_input(not self.paused)
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_r:
                self.reset()
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_F12:
                self.screenshot()
            elif event.type == pygame.VIDEORESIZE:
                self.display.resize((event.w, event.h))
            elif isinstance(self.driver, KeyboardDriver):
                self.driver.handle(event)

    def reset(self) -> None:
        self.driver.reset(self.start)
        self.frame = self.source.reset(self.start)

    def screenshot(self) -> Path:
        from neural_engine.presenter.screenshot import save_png

        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.screenshot_dir / f"screenshot-{stamp}-{self.stats.ticks:06d}.png"
        save_png(path, self.display.read_pixels())
        self.stats.screenshots.append(path)
        return path

    # -- one tick -----------------------------------------------------------------
    def _hud_lines(self) -> list[str]:
        spec = self.source.spec
        held = spec.actions.held(self.last_action)
        step = self.stats.step_ms[-1] if self.stats.step_ms else 0.0
        present = self.stats.present_ms[-1] if self.stats.present_ms else 0.0
        lines = [f"{spec.title} [{self.source.name}]  {self.meter.rate:5.1f} ticks/s "
                 f"(target {spec.tick_rate})",
                 f"{step + present:5.1f} ms/frame  (step {step:.1f}, draw {present:.1f})",
                 "keys: " + (" ".join(held) if held else "-")]
        if self.paused:
            lines.append("PAUSED (P to resume)")
        return lines

    def _tick(self) -> None:
        t0 = time.perf_counter()
        if not self.paused:
            self.last_action = self.driver.next_action()
            self.frame = self.source.step(self.last_action)
        t1 = time.perf_counter()
        self._present()
        t2 = time.perf_counter()
        if not self.paused:
            self.stats.step_ms.append((t1 - t0) * 1e3)
            self.stats.present_ms.append((t2 - t1) * 1e3)
            self.stats.ticks += 1
        self.meter.tick(t2)

    def _present(self) -> None:
        if self.hud is not None:
            self.hud.set_lines(self._hud_lines())
        self.presenter.draw(self.display.target, self.frame, self.hud)
        if self.recorder is not None and not self.paused:
            self.recorder.write(self.display.read_pixels())
        self.display.flip()

    def run(self) -> LoopStats:
        """Play until quit, the tick limit, or the end of a scripted driver."""
        self.running = True
        self.reset()
        begin = deadline = time.perf_counter()
        while self.running:
            self._events()
            if not self.running:
                break
            self._tick()
            if self.max_ticks is not None and self.stats.ticks >= self.max_ticks:
                break
            if self.driver.finished and self.max_ticks is None:
                break
            if self.realtime:
                deadline += self.period
                delay = deadline - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -4 * self.period:
                    deadline = time.perf_counter()  # fell behind: do not try to catch up
        self.stats.seconds = time.perf_counter() - begin
        return self.stats
