"""Scripted input: a timeline of cues in TOML, compiled to one ``Action`` per tick.

An action script is what a player would have done, written down::

    game = "maze"          # optional: refuse to run on another game
    seconds = 6.0          # optional: length (default: one second after the last cue)

    [[cue]]
    t = 0.0
    hold = ["forward"]     # from now on exactly these buttons are held

    [[cue]]
    t = 2.0
    press = ["run"]        # add to / remove from the held set
    mouse = [120.0, 0.0]   # mouse pixels (dx, dy) in total ...
    over = 1.0             # ... spread evenly over this many seconds (0: one tick)

Mouse pixels go through the same scaling as live play, so a script replays exactly
like the keyboard and mouse would. A script holds at most ``MAX_CUES`` cues, and
compiling it costs time linear in its cues and ticks, however its mouse moves overlap.
The script knows nothing about what plays it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from neural_engine import schema
from neural_engine.input.actions import Action, ActionSpace
from neural_engine.schema import bounds

MAX_CUES = 20_000           # a cue per tick for a quarter of an hour at 20 ticks/s
MAX_NAMES = 64              # button names in one hold, press or release


@dataclass(frozen=True)
class Cue:
    """A change of input at time ``t`` (seconds from the start)."""

    t: float = field(metadata=bounds(0.0, 86400.0))
    hold: tuple[str, ...] | None = field(default=None, metadata=bounds(0, MAX_NAMES))
    press: tuple[str, ...] = field(default=(), metadata=bounds(0, MAX_NAMES))
    release: tuple[str, ...] = field(default=(), metadata=bounds(0, MAX_NAMES))
    mouse: tuple[float, ...] = field(default=(), metadata=bounds(0, 2))
    over: float = field(default=0.0, metadata=bounds(0.0, 3600.0))


@dataclass(frozen=True)
class ActionScript:
    cue: tuple[Cue, ...] = field(default=(), metadata=bounds(0, MAX_CUES))
    game: str | None = None
    seconds: float | None = field(default=None, metadata=bounds(0.0, 86400.0))

    def check(self) -> list[tuple[tuple, str]]:
        times = [c.t for c in self.cue]
        if times != sorted(times):
            return [(("cue",), "cues must be in order of time t")]
        return []

    @property
    def length(self) -> float:
        """Seconds of play this script describes."""
        if self.seconds is not None:
            return self.seconds
        return (self.cue[-1].t if self.cue else 0.0) + 1.0

    def problems(self, space: ActionSpace) -> list[tuple[tuple, str]]:
        """Button names that the game does not have, as (key, message)."""
        out = []
        for i, cue in enumerate(self.cue):
            for kind in ("hold", "press", "release"):
                for j, name in enumerate(getattr(cue, kind) or ()):
                    if name not in space.buttons:
                        out.append((("cue", i, kind, j), f"unknown button {name!r} "
                                    f"(buttons: {', '.join(space.buttons)})"))
        return out

    def actions(self, space: ActionSpace, tick_rate: int, ticks: int | None = None
                ) -> list[Action]:
        """One Action per tick for ``ticks`` ticks (default: the script's length)."""
        if ticks is None:
            ticks = max(1, round(self.length * tick_rate))
        held = 0
        # Mouse pixels per tick as a difference array: each move adds its rate where it
        # starts and takes it away where it ends (linear however the moves overlap).
        rate = [[0.0, 0.0] for _ in range(ticks + 1)]
        moving = [0] * (ticks + 1)          # moves under way, likewise
        changes: dict[int, list[Cue]] = {}
        for cue in self.cue:
            start = round(cue.t * tick_rate)
            changes.setdefault(start, []).append(cue)
            if cue.mouse and start < ticks:
                span = max(1, round(cue.over * tick_rate))
                end = min(start + span, ticks)
                moving[start] += 1
                moving[end] -= 1
                for axis, move in enumerate((*cue.mouse, 0.0)[:2]):
                    rate[start][axis] += move / span
                    rate[end][axis] -= move / span
        out = []
        dx_px = dy_px = 0.0
        under_way = 0
        for tick in range(ticks):
            for cue in changes.get(tick, ()):
                if cue.hold is not None:
                    held = space.mask(cue.hold)
                held = (held | space.mask(cue.press)) & ~space.mask(cue.release)
            under_way += moving[tick]
            dx_px += rate[tick][0]
            dy_px += rate[tick][1]
            if not under_way:                # exactly still, whatever the rounding
                dx_px = dy_px = 0.0
            dx, dy = space.mouse_units(dx_px, dy_px)
            out.append(Action(held, dx, dy))
        return out


def load_script(path: str | Path, space: ActionSpace, game: str) -> ActionScript:
    """Read and check an action script for ``game``; EngineError naming file and line."""
    source = schema.TomlSource.read(path)
    script = schema.fill(ActionScript, source.data, source=source)
    problems = [f"{source.where(key)}: {message}" for key, message in script.problems(space)]
    if script.game is not None and script.game != game:
        problems.append(f"{source.where(('game',))}: script is for game {script.game!r}, "
                        f"not {game!r}")
    if problems:
        raise schema.SchemaError(problems)
    return script
