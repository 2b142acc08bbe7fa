"""The flat action vector: where each button and mouse axis sits."""

import torch

from neural_engine.games import load_spec
from neural_engine.input.actions import IDLE, Action, pressed


def test_index_places_buttons_then_mouse_axes():
    space = load_spec("maze").actions
    vector = space.write(Action(space.bit("turn_left"), 0.5, 0.0), torch.zeros(space.dim))
    assert vector[space.index("turn_left")] == 1.0
    assert vector[space.index("dx")] == 0.5 and space.index("dx") == len(space.buttons)
    assert space.index("jump") is None


def test_only_the_no_op_is_not_pressed():
    """Nothing held and no motion is the zero vector; any one button, or the mouse
    alone, either way, is pressed (encoded as training and the sampler encode it)."""
    space = load_spec("maze").actions
    actions = [IDLE, Action(dx=0.25), Action(dx=-0.01), Action(buttons=space.mask(["run"]))]
    actions += [Action(buttons=space.bit(b)) for b in space.buttons]
    vectors = space.encode(actions)                                       # (N, A)
    assert pressed(vectors).tolist() == [False] + [True] * (len(actions) - 1)
    batch = vectors.view(1, -1, space.dim).expand(2, -1, -1)              # (B, F, A)
    assert pressed(batch).shape == (2, len(actions)) and not pressed(batch)[:, 0].any()
