"""The fixed-tick game loop: input ▸ frame source ▸ presenter ▸ (recorder), every tick.

Each tick it reads the window's events (engine controls first: Esc quit, F11
fullscreen, P pause, R reset, F12 screenshot, F5 reload a pack; everything else goes
to the director, if there is one, else to the driver), lets the director act (a
scenario pack's timeline events, a kiosk's timers), asks the driver for this tick's
action, steps the frame source, draws the frame with the HUD, and hands the picture
to the recorder. R, F5 and F12 act once per tick however often they were pressed in
it (a storm of resets rebuilds the world once). In real time it sleeps to the next
tick; headless it runs as fast as the source allows (a recording still has exactly
one frame per tick at the game's rate). It measures the achieved tick rate and the
time each part of a frame takes (over the last ``STATS_WINDOW`` ticks, so a run of
days keeps constant memory), and shows them on the HUD.

When the machine cannot keep the tick rate in real time, game time slows evenly:
every tick is still one tick of game time, and the driver is told the pace (achieved
over target rate) so that mouse motion, which the player makes in wall-clock time,
turns the view at the same slowed pace as the keys move it; the HUD says so.

A *locked* loop (kiosk mode) has no engine controls at all: closing the window,
Esc, F11, P, R, F12 and F5 do nothing, and only the director can end the run.

The loop knows nothing about what produces the frames or how they are drawn, nor
about packs or kiosks beyond the small ``Director`` interface.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from neural_engine.input.actions import Action
from neural_engine.packs.start import StartState
from neural_engine.runtime.drivers import Driver, KeyboardDriver
from neural_engine.runtime.frame_source import FrameSource

# Per-tick times kept for the medians: a few minutes of play, not the whole run.
STATS_WINDOW = 10_000
# Below this fraction of the tick rate, real-time play counts as slowed (HUD, pace).
SLOW = 0.95


@dataclass
class LoopStats:
    """What a run measured; times in milliseconds, medians over the last ticks."""

    ticks: int = 0
    seconds: float = 0.0
    step_ms: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    present_ms: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    screenshots: list[Path] = field(default_factory=list)
    stopped: str = ""             # why the run ended

    @property
    def tick_rate(self) -> float:
        return self.ticks / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        med = lambda xs: statistics.median(xs) if xs else 0.0  # noqa: E731
        return (f"{self.ticks} ticks in {self.seconds:.2f} s ({self.tick_rate:.1f} ticks/s); "
                f"median per frame: source step {med(self.step_ms):.2f} ms, "
                f"present {med(self.present_ms):.2f} ms")


# How often the HUD's numbers (rate, frame time) are refreshed: between refreshes its
# text, and so its texture, stays the same unless keys, pause or captions change.
HUD_REFRESH_S = 0.25


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


class Director(Protocol):
    """Runs a show around the loop (a scenario pack, a kiosk): see ``show.director``."""

    def handle(self, loop: GameLoop, event) -> None:
        """An input event the engine's controls did not take."""

    def before_tick(self, loop: GameLoop) -> None:
        """Before the driver is asked for an action: may restart the world or swap drivers."""

    def restart(self, loop: GameLoop) -> None:
        """R: start the show over."""

    def reload(self, loop: GameLoop) -> None:
        """F5: read the show's files again."""

    def hud_lines(self) -> list[str]:
        """Lines to show below the loop's own (captions)."""


class GameLoop:
    def __init__(self, source: FrameSource, start: StartState, driver: Driver, display,
                 presenter, hud=None, recorder=None, realtime: bool = True,
                 max_ticks: int | None = None, screenshot_dir: Path = Path("."),
                 director: Director | None = None, locked: bool = False,
                 show_stats: bool = True):
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
        self.director = director
        self.locked = locked
        self.show_stats = show_stats
        self.period = 1.0 / source.spec.tick_rate
        self.paused = False
        self.running = False
        self.stats = LoopStats()
        self.meter = RateMeter()
        self.frame = None
        self.last_action = Action()
        self._done: set[int] = set()         # R, F5, F12 already acted on this tick
        self._hud_numbers: tuple[float, float, float] | None = None
        self._hud_sampled = 0.0
        self._readback: np.ndarray | None = None   # (H, W, 3) for the recorder, reused

    # -- controls -----------------------------------------------------------------
    def _events(self) -> None:
        if not getattr(self.display, "has_events", False):
            return
        import pygame

        for event in pygame.event.get():   # each event costs O(1): a storm cannot stall
            if self._control(event, pygame):
                continue
            if self.director is not None:
                self.director.handle(self, event)
            elif isinstance(self.driver, KeyboardDriver):
                self.driver.handle(event)
        self._done.clear()

    def _control(self, event, pygame) -> bool:
        """Act on an engine control; whether ``event`` was one (a locked loop has none)."""
        kind = event.type
        if kind == pygame.VIDEORESIZE:
            self.display.resize((event.w, event.h))
            return True
        if kind == pygame.QUIT:
            if not self.locked:
                self.stop("the window was closed")
            return True
        if kind != pygame.KEYDOWN or self.locked:
            return False
        key = event.key
        if key in (pygame.K_r, pygame.K_F12, pygame.K_F5):
            if key in self._done:
                return True                   # once per tick, however often it is pressed
            self._done.add(key)
        if key == pygame.K_ESCAPE:
            self.stop("Esc")
        elif key == pygame.K_F11:
            if self.recorder is None:  # a recording keeps one picture size
                self.display.toggle_fullscreen()
        elif key == pygame.K_p:
            self.paused = not self.paused
            self.display.grab_input(not self.paused)
        elif key == pygame.K_r:
            if self.director is not None:
                self.director.restart(self)
            else:
                self.reset()
        elif key == pygame.K_F12:
            self.screenshot()
        elif key == pygame.K_F5 and self.director is not None:
            self.director.reload(self)
        else:
            return False
        return True

    def stop(self, reason: str) -> None:
        """End the run after this tick, saying why."""
        self.running = False
        self.stats.stopped = reason

    @property
    def pace(self) -> float:
        """Game time per wall-clock time, 1 when the tick rate is kept (or not paced)."""
        if not self.realtime or len(self.meter.times) < self.meter.times.maxlen:
            return 1.0
        rate = self.meter.rate / self.source.spec.tick_rate
        return rate if rate < SLOW else 1.0

    def reset(self) -> None:
        """The driver and the world back to the start state."""
        self.driver.reset(self.start)
        self.reset_world(self.start)

    def reset_world(self, start: StartState) -> None:
        """The world (only) to ``start``, which becomes the loop's start state."""
        self.start = start
        self.frame = self.source.reset(start)

    def screenshot(self) -> Path:
        from neural_engine.presenter.screenshot import save_png

        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.screenshot_dir / f"screenshot-{stamp}-{self.stats.ticks:06d}.png"
        save_png(path, self.display.read_pixels())
        self.stats.screenshots.append(path)
        return path

    # -- one tick -----------------------------------------------------------------
    def _hud_lines(self) -> list[str]:
        lines = self._stats_lines() if self.show_stats else []
        if self.pace < 1.0 and (self.show_stats or not self.locked):
            lines.append(f"this machine keeps {self.meter.rate:.0f} of "
                         f"{self.source.spec.tick_rate} ticks/s: game time at "
                         f"{self.pace:.0%}")
        if self.director is not None:
            lines += self.director.hud_lines()
        return lines

    def _stats_numbers(self) -> tuple[float, float, float]:
        """(ticks/s, step ms, draw ms) as last sampled; sampled every HUD_REFRESH_S."""
        now = time.perf_counter()
        if self._hud_numbers is None or now - self._hud_sampled >= HUD_REFRESH_S:
            step = self.stats.step_ms[-1] if self.stats.step_ms else 0.0
            present = self.stats.present_ms[-1] if self.stats.present_ms else 0.0
            self._hud_numbers, self._hud_sampled = (self.meter.rate, step, present), now
        return self._hud_numbers

    def _stats_lines(self) -> list[str]:
        spec = self.source.spec
        held = spec.actions.held(self.last_action)
        rate, step, present = self._stats_numbers()
        lines = [f"{spec.title} [{self.source.name}]  {rate:5.1f} ticks/s "
                 f"(target {spec.tick_rate})",
                 f"{step + present:5.1f} ms/frame  (step {step:.1f}, draw {present:.1f})",
                 "keys: " + (" ".join(held) if held else "-")]
        if self.paused:
            lines.append("PAUSED (P to resume)")
        return lines

    def _tick(self) -> None:
        t0 = time.perf_counter()
        if not self.paused:
            if self.director is not None:
                self.director.before_tick(self)
            self.last_action = self.driver.next_action(self.pace)
            self.frame = self.source.step(self.last_action)
        t1 = time.perf_counter()
        self._present()
        t2 = time.perf_counter()
        if not self.paused:
            self.stats.step_ms.append((t1 - t0) * 1e3)
            self.stats.present_ms.append((t2 - t1) * 1e3)
            self.stats.ticks += 1
        self.meter.tick(t2)

    def _read_frame(self) -> np.ndarray:
        """What was drawn, into one array reused while the output size holds."""
        width, height = self.display.size
        if self._readback is None or self._readback.shape != (height, width, 3):
            self._readback = np.empty((height, width, 3), dtype=np.uint8)
        return self.display.read_pixels(out=self._readback)

    def _present(self) -> None:
        if self.hud is not None:
            self.hud.set_lines(self._hud_lines())
        self.presenter.draw(self.display.target, self.frame, self.hud)
        if self.recorder is not None and not self.paused:
            self.recorder.write(self._read_frame())
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
                self.stop(f"played the {self.max_ticks} ticks asked for")
                break
            if self.driver.finished and self.max_ticks is None:
                self.stop(f"the {self.driver.name} ended")
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
