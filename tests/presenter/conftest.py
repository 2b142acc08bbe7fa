"""Shared fixtures for presenter tests: one off-screen GL display for the whole session.

pygame is told to use its dummy video driver before anything imports it, so these
tests never need a desktop.
"""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import pytest  # noqa: E402

from neural_engine.errors import EngineError  # noqa: E402
from neural_engine.presenter.display import HeadlessDisplay  # noqa: E402


@pytest.fixture(scope="session")
def display():
    """A HeadlessDisplay; tests resize it to the output they need."""
    try:
        headless = HeadlessDisplay((64, 64))
    except EngineError as error:
        pytest.skip(f"no OpenGL context can be created on this machine: {error}")
    yield headless
    headless.close()
