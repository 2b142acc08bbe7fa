"""Start frames: the simulator's context frames at a start state, or a start image as
every context frame, for the neural frame source and the server's rows alike."""

import dataclasses

import numpy as np
import pygame
import pytest
import torch

from neural_engine.games import Game, load_game
from neural_engine.input.actions import IDLE
from neural_engine.packs.start import ImageStart, StartState
from neural_engine.runtime.frame_source import SimulatorSource
from neural_engine.runtime.image_start import ImageStartSource
from neural_engine.runtime.session import NeuralSource
from neural_engine.runtime.start_frames import StartFrames
from neural_engine.runtime.world import WorldSession
from neural_engine.sampler.stream import named_sampler
from neural_engine.serve.rows import NeuralRows


@pytest.fixture(scope="module")
def game():
    maze = load_game("maze")
    return Game(dataclasses.replace(maze.spec, width=64, height=64), maze.module_name)


def picture(path, shift=0) -> np.ndarray:
    """A 64×64 PNG at ``path`` whose pixels no simulator draws; returns its pixels."""
    pixels = ((np.arange(64 * 64 * 3).reshape(64, 64, 3) * 7 + shift) % 256).astype(np.uint8)
    surface = pygame.image.frombuffer(pixels.tobytes(), (64, 64), "RGB")
    pygame.image.save(surface, str(path))
    return pixels


def test_a_state_start_is_the_simulator_at_that_state_then_idle(game):
    start = StartState(seed=3, pose=None)
    frames = StartFrames(game, 3)(start)
    assert frames.shape == (3, 64, 64, 3) and frames.dtype == torch.uint8
    sim = SimulatorSource(game)
    want = [sim.reset(start)] + [sim.step(IDLE) for _ in range(2)]
    assert np.array_equal(frames.numpy(), np.stack(want))


def test_an_image_start_repeats_its_picture_read_once_until_cleared(game, tmp_path):
    path = tmp_path / "start.png"
    pixels = picture(path)
    start = ImageStart(seed=3, image=str(path))
    frames = StartFrames(game, 2, images=True)
    got = frames(start)
    assert got.shape == (2, 64, 64, 3)
    assert all(np.array_equal(f.numpy(), pixels) for f in got)
    changed = picture(path, shift=1)
    assert np.array_equal(frames(start)[0].numpy(), pixels)        # read once
    frames.clear_images()
    assert np.array_equal(frames(start)[0].numpy(), changed)
    # without images the picture is ignored: the simulator at the seed
    plain = StartFrames(game, 2)(start)
    assert np.array_equal(plain.numpy(), StartFrames(game, 2)(StartState(seed=3)).numpy())


def test_the_image_source_starts_from_the_picture_and_the_plain_source_does_not(game,
                                                                             tiny_model,
                                                                             tmp_path):
    path = tmp_path / "start.png"
    pixels = picture(path)
    model = tiny_model(64, 64, game.spec.actions.dim)
    cfg = named_sampler("rolling", max_frames=model.config.denoiser.max_frames)
    start = ImageStart(seed=3, image=str(path))
    image_source = ImageStartSource(game, model, cfg)
    assert np.array_equal(image_source.reset(start), pixels)
    assert np.array_equal(NeuralSource(game, model, cfg).reset(start),
                          SimulatorSource(game).reset(start))
    # the world streams from the picture: as a session started from it directly
    shown = [image_source.step(IDLE) for _ in range(cfg.window)]
    world = WorldSession(model, cfg, 1)
    world.reset_frames(torch.from_numpy(pixels).expand(1, 2, -1, -1, -1), seed=3)
    idle = torch.zeros(1, game.spec.actions.dim)
    direct = [world.step(idle)[0][0].numpy().copy() for _ in range(cfg.window)]
    assert np.array_equal(shown[-1], direct[-1])
    from_sim = NeuralSource(game, model, cfg)
    from_sim.reset(StartState(seed=3))
    assert not np.array_equal(shown[-1], [from_sim.step(IDLE) for _ in range(cfg.window)][-1])


def test_the_servers_rows_start_a_row_from_a_picture(game, tiny_model, tmp_path):
    """Before: the rows imported ``read_png`` from a module without it, and an image
    start failed with an ImportError."""
    path = tmp_path / "start.png"
    pixels = picture(path)
    model = tiny_model(64, 64, game.spec.actions.dim)
    cfg = named_sampler("rolling", max_frames=model.config.denoiser.max_frames)
    rows = NeuralRows(game, WorldSession(model, cfg, 2))
    assert np.array_equal(rows.start(1, ImageStart(seed=3, image=str(path))), pixels)
    single = ImageStartSource(game, model, cfg)
    single.reset(ImageStart(seed=3, image=str(path)))
    actions = torch.zeros(2, game.spec.actions.dim)
    for tick in range(cfg.window):
        got, want = rows.step(actions), single.step(IDLE)
    assert sorted(got) == [1]
    assert np.abs(got[1].astype(int) - want.astype(int)).max() <= 1
