"""The flat action vector: where each button and mouse axis sits."""

import torch

from neural_engine.games import load_spec
from neural_engine.input.actions import Action


def test_index_places_buttons_then_mouse_axes():
    space = load_spec("maze").actions
    vector = space.write(Action(space.bit("turn_left"), 0.5, 0.0), torch.zeros(space.dim))
    assert vector[space.index("turn_left")] == 1.0
    assert vector[space.index("dx")] == 0.5 and space.index("dx") == len(space.buttons)
    assert space.index("jump") is None
