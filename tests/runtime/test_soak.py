"""Soak: the neural engine in kiosk attract mode for 30,000 ticks keeps its memory flat.

A tiny random world model on the CPU (at 64×64, so that the run takes minutes, not
hours) streams frames through the whole runtime: the locked game loop, the kiosk
director looping the shipped attract timeline (a world reset every 656 ticks), the
off-screen presenter and the HUD. The process's resident memory is sampled every
1,000 ticks; after the first few thousand (allocator and caches warm) it must stay flat.
"""

import dataclasses
import os
import time

import pytest
import torch

from neural_engine.games import Game, load_game
from neural_engine.input.mapper import ActionMapper
from neural_engine.model.config import named_config
from neural_engine.model.world import WorldModel
from neural_engine.packs import load_pack
from neural_engine.runtime.drivers import KeyboardDriver
from neural_engine.runtime.image_start import ImageStartSource
from neural_engine.show.kiosk import KioskDirector
from neural_engine.runtime.loop import GameLoop
from neural_engine.sampler.stream import named_sampler

from .conftest import ROOT

TICKS = 30_000
EVERY = 1_000
WARM = 5_000
ALLOWED_GROWTH_MB = 8.0


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Sampled:
    """A frame source that notes the resident memory every ``EVERY`` steps."""

    def __init__(self, source):
        self.source, self.spec, self.name = source, source.spec, source.name
        self.steps = 0
        self.samples: list[tuple[int, float]] = []

    def reset(self, start):
        return self.source.reset(start)

    def step(self, action):
        self.steps += 1
        if self.steps % EVERY == 0:
            self.samples.append((self.steps, rss_mb()))
        return self.source.step(action)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_thirty_thousand_ticks_of_the_neural_kiosk_keep_memory_flat():
    from neural_engine.errors import EngineError
    from neural_engine.presenter.display import HeadlessDisplay
    from neural_engine.presenter.hud import Hud
    from neural_engine.presenter.presenter import Presenter

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        display = HeadlessDisplay((64, 64))
    except EngineError as error:
        pytest.skip(f"no OpenGL context: {error}")
    try:
        pack = load_pack(ROOT / "games" / "maze" / "packs" / "attract")
        maze = load_game("maze")
        small = Game(dataclasses.replace(maze.spec, width=64, height=64), maze.module_name)
        torch.manual_seed(0)
        model = WorldModel(named_config("tiny", "maze", 64, 64, small.spec.actions.dim)).eval()
        source = Sampled(ImageStartSource(small, model, named_sampler("rolling"), device="cpu"))
        keyboard = KeyboardDriver(ActionMapper(maze.spec.actions, pack.bindings()))
        director = KioskDirector(pack, keyboard)
        hud = Hud(display.ctx)
        loop = GameLoop(source, director.start, director.driver, display,
                        Presenter(display.ctx, (64, 64)), hud, realtime=False,
                        max_ticks=TICKS, director=director, locked=True, show_stats=True)
        began = time.perf_counter()
        stats = loop.run()
        seconds = time.perf_counter() - began
    finally:
        display.close()
        torch.set_num_threads(threads)
    samples = dict(source.samples)
    warm, end = samples[WARM], samples[TICKS]
    peak = max(mb for tick, mb in source.samples if tick >= WARM)
    print(f"soak: {stats.ticks} ticks in {seconds:.0f} s; resident memory "
          f"{samples[EVERY]:.1f} MB at tick {EVERY}, {warm:.1f} MB at {WARM}, "
          f"{end:.1f} MB at {TICKS} (peak after warm-up {peak:.1f} MB)")
    assert stats.ticks == TICKS and director.attracting
    assert end - warm < ALLOWED_GROWTH_MB and peak - warm < ALLOWED_GROWTH_MB
