"""Drivers: who is playing. Each produces one ``Action`` per tick.

- ``KeyboardDriver``: a person, through pygame events and the action mapper;
- ``ScriptDriver``: a precompiled action script (then idle once it ends, or still
  holding its last buttons);
- ``TimelineDriver``: a scenario pack's compiled timeline: the script's actions plus
  the events due at each tick (captions, resets), optionally looping;
- ``AgentDriver``: the game's exploring agent, which watches a private copy of the
  ground-truth simulator fed with its own actions (so it plays sensibly in front of
  any frame source, the neural one included).

Drivers know nothing about frames, the window or the frame source.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch

from neural_engine.games import Game
from neural_engine.input.actions import IDLE, Action, ActionSpace
from neural_engine.input.mapper import ActionMapper
from neural_engine.packs.start import StartState
from neural_engine.packs.timeline import CompiledTimeline, TimelineEvent


class Driver(Protocol):
    name: str

    def reset(self, start: StartState) -> None: ...

    def next_action(self, pace: float = 1.0) -> Action:
        """This tick's action; ``pace`` is game time per wall-clock time (below 1 when
        the machine cannot keep the tick rate), which only live input needs."""

    @property
    def finished(self) -> bool: ...


class KeyboardDriver:
    name = "keyboard"
    finished = False

    def __init__(self, mapper: ActionMapper):
        self.mapper = mapper

    def handle(self, event) -> None:
        self.mapper.handle(event)

    def reset(self, start: StartState) -> None:
        self.mapper.release_all()

    def next_action(self, pace: float = 1.0) -> Action:
        return self.mapper.tick(pace)


class ScriptDriver:
    name = "script"

    def __init__(self, actions: Sequence[Action], after: Action = IDLE):
        self.actions = list(actions)
        self.after = after
        self.index = 0

    @property
    def finished(self) -> bool:
        return self.index >= len(self.actions)

    def reset(self, start: StartState) -> None:
        self.index = 0

    def next_action(self, pace: float = 1.0) -> Action:
        if self.finished:
            return self.after
        self.index += 1
        return self.actions[self.index - 1]


class TimelineDriver(ScriptDriver):
    """A compiled timeline: ``due()`` gives the events of the tick about to be played.

    A looping timeline starts over after its last tick; ``due()`` then reports
    ``wrapped`` so the caller can put the world back at the timeline's start.
    """

    name = "timeline"

    def __init__(self, timeline: CompiledTimeline, loop: bool | None = None):
        super().__init__(timeline.actions)
        self.timeline = timeline
        self.loop = timeline.loop if loop is None else loop
        self.wrapped = False

    @property
    def finished(self) -> bool:
        return not self.loop and super().finished

    def reset(self, start: StartState) -> None:
        super().reset(start)
        self.wrapped = False

    def due(self) -> TimelineEvent | None:
        """The event at the coming tick (call before ``next_action``); sets ``wrapped``."""
        self.wrapped = self.loop and self.index >= len(self.actions) > 0
        if self.wrapped:
            self.index = 0
        return self.timeline.events.get(self.index)


class AgentDriver:
    name = "agent"
    finished = False

    def __init__(self, game: Game, seed: int = 0):
        self.space: ActionSpace = game.spec.actions
        self.sim = game.simulator(batch=1, device="cpu")
        self.agent = game.agent(batch=1, device="cpu", seed=seed)

    def reset(self, start: StartState) -> None:
        poses = None if start.pose is None else torch.tensor([start.pose], dtype=torch.float32)
        self.sim.reset([start.seed], poses)
        self.agent.reset(self.sim)

    def next_action(self, pace: float = 1.0) -> Action:
        vector = self.agent.act(self.sim)   # (1, A)
        self.sim.advance(vector)            # the agent reads the state, never a frame
        return self.space.decode(vector[0])


def timeline_start(pack, driver: TimelineDriver | None) -> StartState:
    """Where ``pack``'s world starts under its timeline ``driver`` (the start state the
    timeline names; the pack's default start without a timeline)."""
    return pack.start_state(driver.timeline.start if driver is not None else None)
