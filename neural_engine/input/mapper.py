"""Live input: pygame events in, one ``Action`` per tick out.

Bindings are data: a table from key code to the bitmask of the buttons it holds,
built once from the game's bindings (and any overrides). Between ticks the mapper
keeps the set of held keys and sums mouse motion; ``tick()`` turns that into an
``Action`` and clears the motion. Any number of events per tick costs a set update
each, so a key storm cannot slow a tick down. Losing window focus releases every key.
Mouse motion that is not a finite number (a broken driver's NaN) is ignored, and the
sum is held within ``MAX_MOUSE_PIXELS``, so it can neither turn at full speed nor
overflow.

The mapper knows nothing about the window, the game loop's own controls (quit,
pause, ...) or what the actions do.
"""

from __future__ import annotations

import math
from typing import Callable, Hashable, Mapping, Sequence

from neural_engine.errors import EngineError
from neural_engine.input.actions import Action, ActionSpace
from neural_engine.input.keys import MOUSE_CODE_BASE, check_key_name, key_code

# Keys the game loop keeps for itself; bindings may not take them.
RESERVED_KEYS = frozenset({"escape", "f11", "f12", "f5", "p", "r"})
# Mouse pixels summed within a tick are held to this (far beyond what clips to ±1).
MAX_MOUSE_PIXELS = 1e6


def merge_bindings(base: Mapping[str, Sequence[str]], overrides: Mapping[str, Sequence[str]],
                   space: ActionSpace, where: str = "bindings") -> dict[str, tuple[str, ...]]:
    """The game's bindings with whole-button overrides applied, checked against the space."""
    merged = {button: tuple(keys) for button, keys in base.items()}
    merged.update({button: tuple(keys) for button, keys in overrides.items()})
    problems = []
    for button, keys in merged.items():
        if button not in space.buttons:
            problems.append(f"{where}: {button!r} is not a button of this game "
                            f"(buttons: {', '.join(space.buttons)})")
        for key in keys:
            if (problem := check_key_name(key)) is not None:
                problems.append(f"{where}: {button}: {problem}")
            elif key.lower() in RESERVED_KEYS:
                problems.append(f"{where}: {button}: key {key!r} is reserved for the "
                                f"engine's controls ({', '.join(sorted(RESERVED_KEYS))})")
    if problems:
        raise EngineError("\n".join(problems))
    return merged


class ActionMapper:
    """Held keys and summed mouse motion → one Action per tick.

    Keys are pygame's codes by default; ``code_of`` names another key identity (the
    server keys them by the engine's key names, which its page sends).
    """

    def __init__(self, space: ActionSpace, bindings: Mapping[str, Sequence[str]],
                 mouse_sensitivity: float = 1.0,
                 code_of: Callable[[str], Hashable] = key_code):
        self.space = space
        self.sensitivity = mouse_sensitivity
        self._mask_of: dict[Hashable, int] = {}
        for button, keys in bindings.items():
            bit = space.bit(button)
            for key in keys:
                code = code_of(key)
                self._mask_of[code] = self._mask_of.get(code, 0) | bit
        self._held: set[Hashable] = set()
        self._mouse = [0.0, 0.0]

    def key_down(self, code: Hashable) -> None:
        if code in self._mask_of:
            self._held.add(code)

    def key_up(self, code: Hashable) -> None:
        self._held.discard(code)

    def mouse_motion(self, dx: float, dy: float) -> None:
        if not (math.isfinite(dx) and math.isfinite(dy)):
            return
        bound = MAX_MOUSE_PIXELS
        self._mouse[0] = max(-bound, min(bound, self._mouse[0] + dx))
        self._mouse[1] = max(-bound, min(bound, self._mouse[1] + dy))

    def release_all(self) -> None:
        self._held.clear()
        self._mouse = [0.0, 0.0]

    def handle(self, event) -> None:
        """Feed one pygame event (others are ignored)."""
        import pygame

        kind = event.type
        if kind == pygame.KEYDOWN:
            self.key_down(event.key)
        elif kind == pygame.KEYUP:
            self.key_up(event.key)
        elif kind == pygame.MOUSEMOTION:
            self.mouse_motion(*event.rel)
        elif kind == pygame.MOUSEBUTTONDOWN:
            self.key_down(MOUSE_CODE_BASE - event.button)
        elif kind == pygame.MOUSEBUTTONUP:
            self.key_up(MOUSE_CODE_BASE - event.button)
        elif kind == pygame.WINDOWFOCUSLOST:
            self.release_all()

    def tick(self, pace: float = 1.0) -> Action:
        """The action for the tick that just ended; clears the mouse motion. ``pace``
        (game time per wall-clock time, at most 1) scales the motion a player made in
        wall-clock time down to the tick's share of game time."""
        mask = 0
        for code in self._held:
            mask |= self._mask_of[code]
        dx, dy = self.space.mouse_units(*self._mouse, sensitivity=self.sensitivity * pace)
        self._mouse = [0.0, 0.0]
        return Action(mask, dx, dy)
