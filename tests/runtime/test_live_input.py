"""Live input at its edges (issue 17, items 6 and 8): a NaN mouse delta, a storm of
resets in one tick, control characters in names, and a machine too slow for the tick
rate (game time slows evenly, and the HUD says so)."""

import math

import pygame
import pytest

from neural_engine.cli.main import main
from neural_engine.games import load_spec
from neural_engine.input.actions import IDLE
from neural_engine.input.mapper import ActionMapper
from neural_engine.packs.start import StartState
from neural_engine.runtime.drivers import KeyboardDriver
from neural_engine.runtime.loop import GameLoop

from .conftest import ScriptedDisplay, down


def keyboard_loop(parts, events, ticks, realtime=False):
    source, presenter, hud = parts
    spec = load_spec("maze")
    driver = KeyboardDriver(ActionMapper(spec.actions, spec.bindings))
    loop = GameLoop(source, StartState(), driver, ScriptedDisplay(events), presenter, hud,
                    realtime=realtime, max_ticks=ticks)
    return loop, driver


def motion(dx, dy):
    return pygame.event.Event(pygame.MOUSEMOTION, pos=(0, 0), rel=(dx, dy), buttons=(0, 0, 0))


def test_a_nan_mouse_delta_is_ignored(loop_parts):
    """Before: NaN became dx = +1.0, a full-speed right turn."""
    events = {1: [motion(math.nan, 0.0)], 2: [motion(math.inf, -math.inf), motion(20, 0)]}
    loop, _ = keyboard_loop(loop_parts, events, 4)
    loop.run()
    actions = loop_parts[0].actions
    assert actions[1] == IDLE
    assert actions[2].dx == 0.5 and actions[2].dy == 0.0      # only the finite motion


def test_many_resets_in_one_tick_rebuild_the_world_once(loop_parts):
    """Before: 200 presses of R in one tick took 6.7 s, a world rebuilt for each."""
    loop, _ = keyboard_loop(loop_parts, {2: [down("K_r")] * 200, 4: [down("K_r")]}, 6)
    loop.run()
    assert [tick for tick, _ in loop_parts[0].resets] == [0, 2, 4]


def test_control_characters_in_names_are_escaped_in_messages(tmp_path, capsys):
    root = tmp_path / "pack"
    root.mkdir()
    (root / "pack.toml").write_text('game = "maze"\n[controls.bindings]\n'
                                    '"\\u001b]0;owned\\u0007" = ["w"]\nforward = ["\\u001b[2J"]\n')
    assert main(["validate", str(root)]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "controls.bindings.\\x1b]0;owned\\x07: not a button of maze" in err
    assert "unknown key name '\\x1b[2J'" in err


def test_a_slow_machine_slows_game_time_evenly_and_says_so(loop_parts):
    """CPU play below the tick rate: each tick is still one tick of game time; mouse
    motion made in wall-clock time is scaled to the tick's share of it."""
    loop, driver = keyboard_loop(loop_parts, {}, 1, realtime=True)
    for i in range(loop.meter.times.maxlen):          # 10 ticks/s against a rate of 20
        loop.meter.tick(i / 10)
    assert loop.pace == pytest.approx(0.5)
    lines = loop._hud_lines()
    assert "this machine keeps 10 of 20 ticks/s: game time at 50%" in lines
    driver.mapper.mouse_motion(20, 0)
    assert driver.next_action(loop.pace).dx == pytest.approx(0.25)   # 20 px at half pace
    for i in range(loop.meter.times.maxlen):          # keeping up: no slowing, no line
        loop.meter.tick(10 + i / 20)
    assert loop.pace == 1.0
    assert not any("game time at" in line for line in loop._hud_lines())
