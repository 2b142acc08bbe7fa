"""Kiosk mode: a pack that runs unattended for days in front of passers-by.

``KioskDirector`` extends the pack director with a kiosk's rules, all counted in
ticks of game time so that they are exact and testable:

- *attract mode*: after ``attract_after`` seconds without input the pack's timeline
  plays in a loop from its start, under the kiosk's caption; any touch of the
  controls hands control back to the visitor (at the kiosk's start state if
  ``reset_on_touch``);
- *idle reset*: after ``idle_reset`` seconds without input the world goes back to
  the kiosk's start state (once per idle spell);
- *session limit*: a visitor's session (from their first touch) lasts at most
  ``session_limit`` seconds; then the kiosk thanks them and returns to attract mode
  (or to the start state when there is no timeline);
- *operator chord*: the only way out. The loop runs locked (no Esc, no window close);
  holding every key of ``operator_chord`` together ends the run with exit code 0;
- a *heartbeat* each second, so that the watchdog (``show.watchdog``) can tell a
  hung game from a busy one.

Every change of state is logged (logger ``neural_engine.kiosk``). The kiosk knows
nothing about windows or frame sources.
"""

from __future__ import annotations

import logging

from neural_engine.input.actions import IDLE
from neural_engine.input.keys import key_code
from neural_engine.packs import ScenarioPack
from neural_engine.packs.start import StartState
from neural_engine.show.director import MapperFactory, PackDirector, is_touch
from neural_engine.runtime.drivers import KeyboardDriver
from neural_engine.show.watchdog import Heartbeat

log = logging.getLogger("neural_engine.kiosk")


class KioskDirector(PackDirector):
    """Attract mode, idle reset, session limit and the operator chord (module docstring)."""

    def __init__(self, pack: ScenarioPack, keyboard: KeyboardDriver, *,
                 heartbeat: Heartbeat | None = None, make_mapper: MapperFactory | None = None):
        super().__init__(pack, keyboard, takeover=True, make_mapper=make_mapper,
                         loop_timeline=True)
        settings = pack.kiosk
        self.settings = settings
        rate = pack.game.tick_rate
        ticks = lambda seconds: round(seconds * rate) if seconds > 0 else None
        self.attract_after = ticks(settings.attract_after) if self.timeline else None
        self.idle_reset = ticks(settings.idle_reset)
        self.session_limit = ticks(settings.session_limit)
        self.heartbeat = heartbeat
        self.chord = frozenset(key_code(k) for k in settings.operator_chord)
        self._chord_held: set[int] = set()
        self.attracting = self.attract_after is not None
        self.in_session = False
        self.idle = 0               # ticks without input
        self.session = 0            # ticks since the visitor's first touch
        self._idle_reset_done = False

    @property
    def start(self) -> StartState:
        return self.timeline_start if self.attracting else self.pack.kiosk_start

    @property
    def driver(self):
        return self.timeline if self.attracting else self.keyboard

    @property
    def kiosk_start(self) -> StartState:
        return self.pack.kiosk_start

    # -- the Director interface ---------------------------------------------------
    def handle(self, loop, event) -> None:
        import pygame

        if event.type == pygame.KEYDOWN and event.key in self.chord:
            self._chord_held.add(event.key)
            if self._chord_held == self.chord:
                log.info("kiosk: operator chord held: quitting")
                loop.stop("the operator chord")
                return
        elif event.type == pygame.KEYUP:
            self._chord_held.discard(event.key)
        elif event.type == pygame.WINDOWFOCUSLOST:
            self._chord_held.clear()
        self.keyboard.handle(event)
        if is_touch(event):
            self.idle = 0
            if not self.in_session:
                self._begin_session(loop)

    def before_tick(self, loop) -> None:
        if self.heartbeat is not None:
            self.heartbeat.beat()
        self.tick += 1
        if not self.attracting:
            self._player_rules(loop)
        if self.attracting:
            self.timeline_events(loop)

    def _player_rules(self, loop) -> None:
        """Session limit, attract mode and idle reset while a visitor may be playing."""
        self.idle = self.idle + 1 if loop.last_action == IDLE else 0   # ticks played idle
        limit = self.session_limit
        if limit is not None and self.in_session and self.session >= limit:
            log.info("kiosk: session limit (%.0f s) reached", self.settings.session_limit)
            self._end_session(loop)
            self.notify(self.settings.session_over_caption, seconds=4.0)
        elif self.attract_after is not None and self.idle >= self.attract_after:
            log.info("kiosk: no input for %.0f s: attract mode", self.settings.attract_after)
            self._end_session(loop)
        elif (self.idle_reset is not None and self.idle >= self.idle_reset
              and not self._idle_reset_done):
            log.info("kiosk: no input for %.0f s: back to the start", self.settings.idle_reset)
            self.in_session = False
            self._idle_reset_done = True
            self.keyboard.reset(self.kiosk_start)
            loop.reset_world(self.kiosk_start)
        if self.in_session:
            self.session += 1                                         # ticks played

    def hud_lines(self) -> list[str]:
        lines = super().hud_lines()
        if self.attracting and self.settings.caption:
            lines = [*self.settings.caption.splitlines(), *lines]
        return lines

    def restart(self, loop) -> None:
        """Locked loops never ask; nothing to do."""

    def reload(self, loop) -> None:
        """Locked loops never ask; nothing to do."""

    # -- state changes ------------------------------------------------------------
    def _begin_session(self, loop) -> None:
        self.in_session = True
        self.session = 0
        self._idle_reset_done = False
        if self.attracting:
            self.attracting = False
            loop.driver = self.keyboard
            self._caption = ()
            log.info("kiosk: a visitor took over from attract mode")
        else:
            log.info("kiosk: a visitor started playing")
        if self.settings.reset_on_touch:
            loop.reset_world(self.kiosk_start)

    def _end_session(self, loop) -> None:
        """Back to attract mode (or to the start state without a timeline)."""
        self.in_session = False
        self.idle = 0
        self._idle_reset_done = False
        self._chord_held.clear()
        self.keyboard.reset(self.kiosk_start)
        if self.attract_after is not None:
            self.attracting = True
            self.timeline.reset(self.timeline_start)
            loop.driver = self.timeline
            loop.reset_world(self.timeline_start)
        else:
            loop.reset_world(self.kiosk_start)
