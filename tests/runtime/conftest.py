"""Loop test doubles: a frame source that records what it was asked, a display that
posts scripted pygame events between ticks, a presenter and HUD that remember lines.

pygame's event queue works under SDL's dummy video driver, so the real ``GameLoop``
reads real events without a window.
"""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import pygame
import pytest

from neural_engine.games import load_spec


@pytest.fixture(scope="session", autouse=True)
def event_queue():
    pygame.display.init()
    yield
    pygame.display.quit()


def key(kind, name):
    """A KEYDOWN/KEYUP event for a pygame key constant name (``"K_w"``)."""
    return pygame.event.Event(kind, key=getattr(pygame, name), mod=0, unicode="", scancode=0)


def down(name):
    return key(pygame.KEYDOWN, name)


def up(name):
    return key(pygame.KEYUP, name)


class RecordingSource:
    """A frame source whose frames say nothing; it records resets and actions by tick."""

    name = "recording"

    def __init__(self, spec=None):
        self.spec = spec or load_spec("maze")
        self.frame = np.zeros((self.spec.height, self.spec.width, 3), np.uint8)
        self.resets = []          # (ticks stepped so far, start state)
        self.actions = []

    def reset(self, start):
        self.resets.append((len(self.actions), start))
        return self.frame

    def step(self, action):
        self.actions.append(action)
        return self.frame


class ScriptedDisplay:
    """No pixels; after tick k (its k-th flip) it posts ``events[k]`` to pygame's queue."""

    has_events = True

    def __init__(self, events=None, size=(16, 16)):
        self.size = size
        self.target = None
        self.events = events or {}
        self.flips = 0
        self.fullscreen_toggles = 0
        pygame.event.clear()
        for event in self.events.get(0, ()):
            pygame.event.post(event)

    def flip(self):
        self.flips += 1
        for event in self.events.get(self.flips, ()):
            pygame.event.post(event)

    def read_pixels(self, out=None):
        return np.zeros((self.size[1], self.size[0], 3), np.uint8)

    def resize(self, size):
        self.size = size

    def toggle_fullscreen(self):
        self.fullscreen_toggles += 1

    def grab_input(self, grab):
        pass

    def close(self):
        pass


class LineHud:
    def __init__(self):
        self.lines = ()

    def set_lines(self, lines):
        self.lines = tuple(lines)


class LinePresenter:
    """Remembers the HUD lines drawn at each tick."""

    def __init__(self):
        self.lines = []

    def draw(self, target, frame, hud=None):
        self.lines.append(hud.lines if hud is not None else ())


@pytest.fixture
def loop_parts():
    """(source, presenter, hud) for a GameLoop under test."""
    return RecordingSource(), LinePresenter(), LineHud()


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


