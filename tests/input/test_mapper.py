import pygame
import pytest

from neural_engine.errors import EngineError
from neural_engine.games import load_spec
from neural_engine.input.actions import Action
from neural_engine.input.mapper import ActionMapper, merge_bindings


@pytest.fixture(scope="module")
def spec():
    return load_spec("maze")


@pytest.fixture
def queue():
    """pygame's real event queue on SDL's dummy video driver."""
    pygame.display.init()
    pygame.display.set_mode((8, 8))
    pygame.event.clear()
    yield
    pygame.display.quit()


def post(kind, **attrs):
    pygame.event.post(pygame.event.Event(kind, **attrs))


def drain(mapper):
    for event in pygame.event.get():
        mapper.handle(event)
    return mapper.tick()


def test_keys_and_mouse_through_the_event_queue(spec, queue):
    space = spec.actions
    mapper = ActionMapper(space, spec.bindings)
    post(pygame.KEYDOWN, key=pygame.K_w, mod=0, unicode="w", scancode=0)
    post(pygame.KEYDOWN, key=pygame.K_LSHIFT, mod=0, unicode="", scancode=0)
    post(pygame.MOUSEMOTION, pos=(0, 0), rel=(10, 3), buttons=(0, 0, 0))
    post(pygame.MOUSEMOTION, pos=(0, 0), rel=(10, -3), buttons=(0, 0, 0))
    action = drain(mapper)
    assert space.held(action) == ["forward", "run"]
    assert action.dx == pytest.approx(20 / space.mouse_pixels_per_unit)
    assert action.dy == 0.0  # the maze reads no vertical mouse axis
    # held keys persist, mouse motion does not
    again = drain(mapper)
    assert space.held(again) == ["forward", "run"] and again.dx == 0.0
    post(pygame.KEYUP, key=pygame.K_w, mod=0, unicode="w", scancode=0)
    assert space.held(drain(mapper)) == ["run"]


def test_two_keys_on_one_button_and_focus_loss(spec):
    space = spec.actions
    mapper = ActionMapper(space, spec.bindings)
    mapper.key_down(pygame.K_w)
    mapper.key_down(pygame.K_UP)
    mapper.key_up(pygame.K_w)
    assert space.held(mapper.tick()) == ["forward"]  # still held through the arrow key
    mapper.handle(pygame.event.Event(pygame.WINDOWFOCUSLOST))
    assert mapper.tick() == Action()


def test_mouse_is_clipped_and_scaled_by_sensitivity(spec):
    space = spec.actions
    mapper = ActionMapper(space, spec.bindings, mouse_sensitivity=2.0)
    mapper.mouse_motion(10, 0)
    assert mapper.tick().dx == pytest.approx(20 / space.mouse_pixels_per_unit)
    mapper.mouse_motion(-10_000, 0)
    assert mapper.tick().dx == -1.0


def test_key_storm_in_one_tick(spec):
    space = spec.actions
    mapper = ActionMapper(space, spec.bindings)
    for i in range(1000):
        mapper.handle(pygame.event.Event(pygame.KEYDOWN if i % 2 == 0 else pygame.KEYUP,
                                         key=pygame.K_d))
        mapper.handle(pygame.event.Event(pygame.MOUSEMOTION, rel=(1, 0)))
    action = mapper.tick()
    assert space.held(action) == []  # the last event released the key
    assert action.dx == 1.0


def test_unbound_keys_are_ignored(spec):
    mapper = ActionMapper(spec.actions, spec.bindings)
    mapper.key_down(pygame.K_z)
    assert mapper.tick() == Action()


def test_bindings_override_and_errors(spec):
    merged = merge_bindings(spec.bindings, {"forward": ("i",)}, spec.actions)
    assert merged["forward"] == ("i",) and merged["back"] == ("s", "down")
    with pytest.raises(EngineError) as err:
        merge_bindings(spec.bindings, {"forwrd": ("i",), "back": ("lft shift", "p")},
                       spec.actions, where="--bind")
    lines = sorted(str(err.value).splitlines())
    assert len(lines) == 3
    assert "--bind: 'forwrd' is not a button of this game" in lines[0]
    assert "--bind: back: key 'p' is reserved" in lines[1]
    assert "--bind: back: unknown key name 'lft shift' (did you mean 'left shift'?)" in lines[2]
