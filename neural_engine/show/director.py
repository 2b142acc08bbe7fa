"""Playing a scenario pack around the game loop: its timeline, captions, takeover, reload.

A ``PackDirector`` has two drivers that take turns: the pack's timeline (its scripted
input, with events: captions, resets, start-state switches) and the player (the
keyboard in a window; the exploring agent headless, when the pack has no timeline).
The timeline plays first; a touch of the controls (a key, a mouse button, mouse
motion) hands control to the player, and so does the end of a timeline that does not
loop. Captions show on the HUD for their time. R starts the show over; F5 reads the
pack again (a broken edit is reported and the old pack keeps playing), rebuilding
the key bindings and, when the weights or sampler changed, the frame source.

The director meets the loop's ``Director`` interface; it knows nothing about frames,
the window or how the loop paces itself. ``show.kiosk`` builds on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from neural_engine.errors import EngineError
from neural_engine.input.mapper import ActionMapper
from neural_engine.packs import ScenarioPack, load_pack
from neural_engine.packs.start import StartState
from neural_engine.packs.timeline import TimelineEvent
from neural_engine.runtime.drivers import (Driver, KeyboardDriver, TimelineDriver,
                                           timeline_start)
from neural_engine.runtime.frame_source import FrameSource
from neural_engine.runtime.image_start import ImageStartSource

log = logging.getLogger("neural_engine.pack")

MapperFactory = Callable[[ScenarioPack], ActionMapper]
SourceFactory = Callable[[ScenarioPack], FrameSource]


def is_touch(event) -> bool:
    """Whether a pygame event is someone using the controls."""
    import pygame

    kind = event.type
    if kind == pygame.MOUSEMOTION:
        return tuple(event.rel) != (0, 0)
    return kind in (pygame.KEYDOWN, pygame.MOUSEBUTTONDOWN, pygame.MOUSEWHEEL,
                    pygame.JOYBUTTONDOWN, pygame.CONTROLLERBUTTONDOWN)


def _engine_of(pack: ScenarioPack) -> tuple:
    """What the frame source depends on: a change means building a new one."""
    stamp = None
    if pack.weights is not None:
        try:
            info = pack.weights.stat()
            stamp = (str(pack.weights), info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = (str(pack.weights), "gone")
    return pack.spec.engine, stamp, pack.spec.sampler


class PackDirector:
    """Timeline first, then the player; captions; R restarts, F5 reloads the pack."""

    def __init__(self, pack: ScenarioPack, player: Driver | None, *, takeover: bool = True,
                 make_mapper: MapperFactory | None = None,
                 make_source: SourceFactory | None = None, loop_timeline: bool | None = None):
        self.pack = pack
        self.player = player
        self.keyboard = player if isinstance(player, KeyboardDriver) else None
        self.takeover = takeover
        self.make_mapper = make_mapper
        self.make_source = make_source
        self.loop_timeline = loop_timeline
        self.tick = 0
        self._caption: tuple[str, ...] = ()
        self._caption_until = 0
        self._notice: tuple[str, ...] = ()       # the engine's own messages (reload)
        self._notice_until = 0
        self._set_pack(pack)

    def _set_pack(self, pack: ScenarioPack) -> None:
        self.pack = pack
        timeline = pack.timeline(loop=self.loop_timeline)
        self.timeline = TimelineDriver(timeline) if timeline is not None else None

    # -- what the loop starts with ------------------------------------------------
    @property
    def timeline_start(self) -> StartState:
        return timeline_start(self.pack, self.timeline)

    @property
    def start(self) -> StartState:
        return self.timeline_start

    @property
    def driver(self) -> Driver:
        if self.timeline is not None or self.player is None:
            return self.timeline
        return self.player

    # -- the Director interface ---------------------------------------------------
    def handle(self, loop, event) -> None:
        if self.keyboard is not None:
            self.keyboard.handle(event)
        if (self.takeover and self.keyboard is not None and loop.driver is self.timeline
                and is_touch(event)):
            log.info("pack: the player took over from the timeline")
            loop.driver = self.keyboard

    def before_tick(self, loop) -> None:
        self.tick += 1
        self.timeline_events(loop)

    def timeline_events(self, loop) -> None:
        """While the timeline drives: apply its event due at this tick."""
        if self.timeline is None or loop.driver is not self.timeline:
            return
        event = self.timeline.due()
        if self.timeline.wrapped and (event is None or event.start is None):
            loop.reset_world(self.timeline_start)
        if event is not None:
            self.apply(loop, event)
        if self.timeline.finished and self.player is not None:
            self.player.reset(loop.start)
            loop.driver = self.player

    def restart(self, loop) -> None:
        self._caption = ()
        loop.driver = self.driver
        loop.start = self.start
        loop.reset()

    def reload(self, loop) -> None:
        try:
            pack = load_pack(self.pack.folder)
            if pack.game.name != self.pack.game.name:
                raise EngineError(f"the pack now names game {pack.game.name!r}: restart to "
                                  "change games")
            mapper = self.make_mapper(pack) if self.make_mapper is not None else None
            source = None
            if self.make_source is not None and _engine_of(pack) != _engine_of(self.pack):
                source = self.make_source(pack)
        except EngineError as exc:
            lines = str(exc).splitlines()
            for line in lines:
                log.error("pack: reload failed: %s", line)
            self.notify(f"reload failed: {lines[0]}" + (f" (+{len(lines) - 1} more)"
                                                        if len(lines) > 1 else ""), seconds=6.0)
            return
        if source is not None:
            loop.source = source
        elif isinstance(loop.source, ImageStartSource):
            loop.source.clear_images()
        if mapper is not None and self.keyboard is not None:
            self.keyboard.mapper = mapper
        self._set_pack(pack)
        self.restart(loop)
        log.info("pack: reloaded %s", pack.folder)
        self.notify(f"reloaded {pack.title}", seconds=2.0)

    def hud_lines(self) -> list[str]:
        lines = list(self._notice) if self.tick < self._notice_until else []
        return lines + (list(self._caption) if self.tick < self._caption_until else [])

    # -- events -------------------------------------------------------------------
    def apply(self, loop, event: TimelineEvent) -> None:
        if event.start is not None:
            loop.reset_world(self.pack.start_state(event.start))
        elif event.reset:
            loop.reset_world(loop.start)
        if event.caption is not None:
            self.show(event.caption, ticks=event.caption_ticks)

    def show(self, caption: str, *, seconds: float | None = None, ticks: int | None = None
             ) -> None:
        """Put ``caption`` on the HUD for a time (from this tick on)."""
        self._caption = tuple(caption.splitlines())
        self._caption_until = self.tick + self._ticks(seconds, ticks)

    def notify(self, message: str, seconds: float) -> None:
        """An engine message above the caption, for ``seconds``."""
        self._notice = (message,)
        self._notice_until = self.tick + self._ticks(seconds, None)

    def _ticks(self, seconds: float | None, ticks: int | None) -> int:
        if ticks is None:
            ticks = round((seconds or 0.0) * self.pack.game.tick_rate)
        return max(1, ticks)
