"""The per-tick host path allocates and uploads only on change: the HUD's text holds
between refreshes of its numbers (so its texture is not re-rendered), the recorder gets
the same array every tick, and the neural session copies the action to the device once."""

import dataclasses

import numpy as np
import torch

from neural_engine.games import Game, load_game, load_spec
from neural_engine.input.actions import Action
from neural_engine.input.mapper import ActionMapper
from neural_engine.packs.start import StartState
from neural_engine.runtime import loop as loop_module
from neural_engine.runtime.drivers import KeyboardDriver
from neural_engine.runtime.loop import GameLoop
from neural_engine.runtime.session import NeuralSource
from neural_engine.sampler.stream import named_sampler

from .conftest import ScriptedDisplay, down


class FilledDisplay(ScriptedDisplay):
    """Reads back into ``out`` as the real displays do."""

    def read_pixels(self, out=None):
        out = np.empty((self.size[1], self.size[0], 3), np.uint8) if out is None else out
        out[:] = 7
        return out


class ArrayRecorder:
    def __init__(self):
        self.frames = []

    def write(self, frame):
        self.frames.append(frame)


def run_loop(parts, events, ticks, recorder=None):
    source, presenter, hud = parts
    spec = load_spec("maze")
    driver = KeyboardDriver(ActionMapper(spec.actions, spec.bindings))
    loop = GameLoop(source, StartState(), driver, FilledDisplay(events), presenter, hud,
                    realtime=False, max_ticks=ticks, recorder=recorder)
    loop.run()
    return presenter.lines


def test_hud_text_changes_with_the_keys_not_with_every_tick(loop_parts, monkeypatch):
    monkeypatch.setattr(loop_module, "HUD_REFRESH_S", 1e9)      # numbers sampled once
    lines = run_loop(loop_parts, {5: [down("K_w")]}, 12)
    changes = [i for i in range(1, len(lines)) if lines[i] != lines[i - 1]]
    assert len(changes) == 1 and 5 <= changes[0] <= 7          # only when W went down
    assert lines[0][-1] == "keys: -" and lines[-1][-1] == "keys: forward"
    assert lines[0][:-1] == lines[-1][:-1]                     # the numbers held


def test_hud_numbers_refresh_every_tick_when_asked(loop_parts, monkeypatch):
    monkeypatch.setattr(loop_module, "HUD_REFRESH_S", 0.0)
    lines = run_loop(loop_parts, {}, 6)
    assert all(len(line) >= 3 for line in lines)


def test_the_recorder_gets_one_reused_array(loop_parts):
    recorder = ArrayRecorder()
    run_loop(loop_parts, {}, 5, recorder)
    assert len(recorder.frames) == 5 and all(f is recorder.frames[0] for f in recorder.frames)
    assert recorder.frames[0].shape == (16, 16, 3) and (recorder.frames[0] == 7).all()


def test_the_session_writes_the_action_on_the_host_and_copies_it_once(tiny_model):
    maze = load_game("maze")
    game = Game(dataclasses.replace(maze.spec, width=64, height=64), maze.module_name)
    source = NeuralSource(game, tiny_model(64, 64, game.spec.actions.dim),
                          named_sampler("rolling"))
    source.reset(StartState(seed=1))
    action = Action(buttons=0b101, dx=0.25, dy=-0.5)
    source.step(action)
    expected = game.spec.actions.encode([action])
    assert torch.equal(source._action_host, expected) and torch.equal(source._action, expected)
