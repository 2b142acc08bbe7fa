"""A pack's timeline: the action-script format with events, compiled to ticks.

A timeline is an action script (``neural_engine.input.script``: ``[[cue]]`` tables
with ``t``, ``hold``, ``press``, ``release``, ``mouse``, ``over``) whose cues may also
carry events::

    [[timeline.cue]]
    t = 4.0
    hold = ["forward"]
    caption = "The great hall"   # shown on the HUD ...
    caption_seconds = 3.0        # ... for this long
    start = "hall"               # switch to this start state (the world restarts there)
    reset = true                 # restart the world at the current start state

The cues are written inline in ``pack.toml`` (``[[timeline.cue]]``) or in a TOML
file of the pack (``[timeline] file = "tour.toml"``, holding ``[[cue]]`` tables as an
action script does). ``compile_timeline`` turns the script into one ``Action`` per
tick (the action script's own compiler: same scaling as live input) and the events
due at each tick. It knows nothing about what plays the timeline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from neural_engine.input.actions import Action, ActionSpace
from neural_engine.input.script import MAX_CUES, ActionScript, Cue
from neural_engine.schema import bounds

# A timeline is precompiled to one Action per tick: an hour at 240 ticks/s at most.
MAX_SECONDS = 3600.0
MAX_MOUSE_PIXELS = 1e6
MAX_CAPTION = 500


@dataclass(frozen=True)
class PackCue(Cue):
    """An action-script cue that may also show a caption, reset, or switch start state."""

    caption: str | None = None
    caption_seconds: float = field(default=4.0, metadata=bounds(0.05, MAX_SECONDS))
    reset: bool = False
    start: str | None = None

    def check(self) -> list[tuple[tuple, str]]:
        problems = []
        for name in ("t", "over", "caption_seconds"):
            if not math.isfinite(getattr(self, name)):
                problems.append(((name,), "must be a finite number"))
        for i, value in enumerate(self.mouse):
            if not math.isfinite(value) or abs(value) > MAX_MOUSE_PIXELS:
                problems.append((("mouse", i), f"{value} is not a finite number of pixels "
                                 f"within ±{MAX_MOUSE_PIXELS:g}"))
        if self.caption is not None:
            if len(self.caption) > MAX_CAPTION:
                problems.append((("caption",), f"longer than {MAX_CAPTION} characters"))
            elif any(ord(c) < 32 and c != "\n" for c in self.caption):
                problems.append((("caption",), "contains control characters"))
        return problems


@dataclass(frozen=True)
class PackScript(ActionScript):
    """An action script whose cues are ``PackCue``s: the format of a timeline file."""

    cue: tuple[PackCue, ...] = field(default=(), metadata=bounds(0, MAX_CUES))


@dataclass(frozen=True)
class TimelineSpec:
    """``[timeline]`` in pack.toml: inline cues or a file of them, and how they play."""

    cue: tuple[PackCue, ...] = field(default=(), metadata=bounds(0, MAX_CUES))
    file: str | None = None
    seconds: float | None = field(default=None, metadata=bounds(0.05, MAX_SECONDS))
    loop: bool = False
    start: str | None = None          # where the timeline begins (default: the first start)

    def check(self) -> list[tuple[tuple, str]]:
        if self.file is not None and self.cue:
            return [(("file",), "give the cues inline or in a file, not both")]
        if self.seconds is not None and not math.isfinite(self.seconds):
            return [(("seconds",), "must be a finite number")]
        return []


@dataclass(frozen=True)
class TimelineEvent:
    """What happens at one tick besides the input."""

    caption: str | None = None
    caption_ticks: int = 0
    reset: bool = False
    start: str | None = None


@dataclass(frozen=True)
class CompiledTimeline:
    """One action per tick, the event due at each tick (at most one), and how it plays."""

    actions: tuple[Action, ...]
    events: Mapping[int, TimelineEvent]
    loop: bool = False
    start: str | None = None

    @property
    def ticks(self) -> int:
        return len(self.actions)


def compile_timeline(script: PackScript, space: ActionSpace, tick_rate: int,
                     loop: bool = False, start: str | None = None) -> CompiledTimeline:
    """Actions and events per tick; cues beyond the script's length never happen.

    The cues of one tick make one event, as they would play: the last caption
    shows, and the world restarts once, where the last start switch (or, after it, a
    reset) puts it. So a tick costs at most one restart, however many cues share it.
    """
    actions = script.actions(space, tick_rate)
    events: dict[int, TimelineEvent] = {}
    for cue in script.cue:
        if cue.caption is None and not cue.reset and cue.start is None:
            continue
        tick = round(cue.t * tick_rate)
        if tick >= len(actions):
            continue
        event = events.get(tick, TimelineEvent())
        if cue.caption is not None:
            event = replace(event, caption=cue.caption,
                            caption_ticks=max(1, round(cue.caption_seconds * tick_rate)))
        if cue.start is not None:
            event = replace(event, start=cue.start, reset=False)
        elif cue.reset:
            event = replace(event, reset=event.start is None)
        events[tick] = event
    return CompiledTimeline(tuple(actions), events, loop=loop, start=start)
