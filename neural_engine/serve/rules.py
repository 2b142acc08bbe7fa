"""A kiosk's rules for one row of the server, counted in ticks of game time.

Over the network every browser is a thin kiosk and every row of the pool follows the
rules of ``show.kiosk`` with the pack's ``[kiosk]`` settings:

- *attract mode*: while nobody plays the row (from the moment it is seated, and again
  after ``attract_after`` seconds without input) the pack's timeline plays on it in a
  loop under the kiosk's caption; the first touch hands the row to the player (at the
  kiosk's start state when ``reset_on_touch``);
- *idle reset*: ``idle_reset`` seconds without input send the world back to the
  kiosk's start state, once per idle spell;
- *session limit*: a player's session (from their first touch) lasts at most
  ``session_limit`` seconds; then the row thanks them and goes back to attract mode
  (or to the start state without a timeline).

A row is *yieldable* while nobody plays it: in attract mode, after a session ended,
or after ``release_after`` seconds without input (after the idle reset). The floor
gives a yieldable row to a player who is waiting and puts its holder at the back of
the queue; with nobody waiting, the row stays where it is. So idle players are reset,
then released, and a row changes hands only when someone wants it.

``tick(action, touched)`` returns what the row does this tick. The rules know nothing
about sockets, frames or the pool.
"""

from __future__ import annotations

from dataclasses import dataclass

from neural_engine.input.actions import IDLE, Action
from neural_engine.packs import ScenarioPack
from neural_engine.packs.start import StartState
from neural_engine.packs.timeline import TimelineEvent
from neural_engine.runtime.drivers import TimelineDriver, timeline_start

SESSION_OVER_SECONDS = 4.0


@dataclass(frozen=True)
class Turn:
    """What one row does in one tick."""

    action: Action
    restart: StartState | None     # the world restarts here before the action applies
    mode: str                      # "attract" or "play"
    caption: tuple[str, ...]
    session_over: bool = False


class SeatRules:
    """Attract mode, idle reset, session limit and yielding for one row."""

    def __init__(self, pack: ScenarioPack, release_after: float,
                 session_limit: float | None = None):
        settings = pack.kiosk
        self.pack, self.settings = pack, settings
        rate = pack.game.tick_rate
        ticks = lambda seconds: round(seconds * rate) if seconds > 0 else None  # noqa: E731
        timeline = pack.timeline(loop=True)
        self.timeline = TimelineDriver(timeline) if timeline is not None else None
        self.attract_after = ticks(settings.attract_after) if self.timeline else None
        self.idle_reset = ticks(settings.idle_reset)
        limit = settings.session_limit if session_limit is None else session_limit
        self.session_limit = ticks(limit)
        self.limit_seconds = limit
        self.release_after = ticks(release_after)
        self.rate = rate
        self.tick = 0
        self.attracting = self.timeline is not None
        self.in_session = False
        self.ended = False              # a session ended and nobody has touched since
        self.idle = 0                   # ticks without input
        self.session = 0                # ticks since the player's first touch
        self._idle_reset_done = False
        self._caption: tuple[str, ...] = ()       # the timeline's
        self._caption_until = 0
        self._notice: tuple[str, ...] = ()        # the row's own (session over)
        self._notice_until = 0
        if self.timeline is not None:
            self.timeline.reset(self.timeline_start)
        self._world_start = self.start

    # -- where the row stands ------------------------------------------------------
    @property
    def timeline_start(self) -> StartState:
        return timeline_start(self.pack, self.timeline)

    @property
    def start(self) -> StartState:
        """Where the row's world starts when it is seated."""
        return self.timeline_start if self.attracting else self.pack.kiosk_start

    @property
    def yieldable(self) -> bool:
        """Whether nobody plays this row (see the module docstring)."""
        idle_long = self.release_after is not None and self.idle >= self.release_after
        return self.attracting or self.ended or idle_long

    @property
    def mode(self) -> str:
        return "attract" if self.attracting else "play"

    def caption(self) -> tuple[str, ...]:
        """The notice, the kiosk's caption in attract mode, then the timeline's caption."""
        lines = self._caption if self.tick < self._caption_until else ()
        if self.attracting and self.settings.caption:
            lines = (*self.settings.caption.splitlines(), *lines)
        if self.tick < self._notice_until:
            lines = (*self._notice, *lines)
        return lines

    # -- one tick ------------------------------------------------------------------
    def turn(self, action: Action, touched: bool) -> Turn:
        """The row's tick: ``action`` is the player's, ``touched`` whether they used the
        controls since the last tick."""
        self.tick += 1
        restart = None
        if touched:
            self.idle = 0
            if not self.in_session:
                restart = self._begin_session()
        over = False
        if not self.attracting:
            over, reset = self._player_rules(action)
            restart = reset or restart
        if self.attracting:
            event = self.timeline.due()          # a tick's cues, merged into one
            if self.timeline.wrapped:
                restart = self.timeline_start
            if event is not None:
                restart = self._apply(event) or restart
            action = self.timeline.next_action()
        if restart is not None:
            self._world_start = restart
        return Turn(action, restart, self.mode, self.caption(), over)

    def restart(self) -> StartState:
        """The player pressed reset: their world goes back to the kiosk's start."""
        self.idle = 0
        self._idle_reset_done = False
        if self.attracting:
            self.timeline.reset(self.timeline_start)
        self._world_start = self.timeline_start if self.attracting else self.pack.kiosk_start
        return self._world_start

    def _player_rules(self, action: Action) -> tuple[bool, StartState | None]:
        self.idle = self.idle + 1 if action == IDLE else 0
        limit = self.session_limit
        if limit is not None and self.in_session and self.session >= limit:
            restart = self._end_session()
            self._notice = tuple(self.settings.session_over_caption.splitlines())
            self._notice_until = self.tick + round(SESSION_OVER_SECONDS * self.rate)
            return True, restart
        if self.attract_after is not None and self.idle >= self.attract_after:
            return False, self._end_session()
        restart = None
        if (self.idle_reset is not None and self.idle >= self.idle_reset
                and not self._idle_reset_done):
            self.in_session = False
            self._idle_reset_done = True
            restart = self.pack.kiosk_start
        if self.in_session:
            self.session += 1
        return False, restart

    def _begin_session(self) -> StartState | None:
        self.in_session, self.ended = True, False
        self.session = 0
        self._idle_reset_done = False
        was_attracting, self.attracting = self.attracting, False
        if was_attracting:
            self._caption = ()
        return self.pack.kiosk_start if self.settings.reset_on_touch else None

    def _end_session(self) -> StartState:
        self.in_session = False
        self.ended = True
        self.idle = 0
        self._idle_reset_done = False
        if self.attract_after is not None:
            self.attracting = True
            self.timeline.reset(self.timeline_start)
            return self.timeline_start
        return self.pack.kiosk_start

    def _apply(self, event: TimelineEvent) -> StartState | None:
        restart = None
        if event.start is not None:
            restart = self.pack.start_state(event.start)
        elif event.reset:
            restart = self._world_start
        if event.caption is not None:
            self.show(event.caption, event.caption_ticks)
        return restart

    def show(self, caption: str, ticks: int) -> None:
        self._caption = tuple(caption.splitlines())
        self._caption_until = self.tick + max(1, ticks)
