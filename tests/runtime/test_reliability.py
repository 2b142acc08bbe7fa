"""The runtime under abuse: key storms, a window closed or a process stopped while
recording, missing or corrupt weights, a GPU that runs out of memory, long runs."""

import os
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pygame
import pytest
import torch

from neural_engine.cli import play
from neural_engine.cli.play import main
from neural_engine.games import load_spec
from neural_engine.input.mapper import ActionMapper
from neural_engine.packs.start import StartState
from neural_engine.runtime import loop as loop_module
from neural_engine.runtime.drivers import KeyboardDriver
from neural_engine.runtime.loop import GameLoop
from neural_engine.runtime.recorder import Mp4Recorder

from .conftest import ROOT, ScriptedDisplay, down, up


def keyboard(sensitivity=1.0):
    spec = load_spec("maze")
    return KeyboardDriver(ActionMapper(spec.actions, spec.bindings, sensitivity))


def test_a_key_storm_of_hundreds_of_events_a_tick_loses_nothing(loop_parts):
    source, presenter, hud = loop_parts
    storm = {}
    for tick in range(1, 11):
        events = []
        for i in range(200):                      # w flickers 200 times, ends held
            events += [up("K_w"), down("K_w")] if i % 2 else [down("K_w"), up("K_w")]
        events.append(down("K_w"))
        events += [pygame.event.Event(pygame.MOUSEMOTION, rel=(1, 0), pos=(0, 0),
                                      buttons=(0, 0, 0))] * 300
        events += [down("K_a"), up("K_a")] * 50 + ([up("K_w")] if tick == 10 else [])
        storm[tick] = events                      # 1,201 events after each tick
    driver = keyboard(sensitivity=0.1)
    loop = GameLoop(source, StartState(), driver, ScriptedDisplay(storm), presenter, hud,
                    realtime=False, max_ticks=12)
    began = time.perf_counter()
    loop.run()
    per_tick = (time.perf_counter() - began) / 12
    space = load_spec("maze").actions
    held = [space.held(a) for a in source.actions]
    assert held[1:10] == [["forward"]] * 9 and held[10:] == [[], []]
    # every one of the 300 one-pixel motions counted: 300 px × 0.1 / 40 px per unit
    assert [a.dx for a in source.actions[1:11]] == [pytest.approx(0.75)] * 10
    assert per_tick < 0.5, f"{per_tick * 1e3:.0f} ms per tick under a storm"


def test_closing_the_window_mid_recording_leaves_a_playable_mp4(tmp_path, loop_parts):
    source, presenter, hud = loop_parts

    class Pictures(ScriptedDisplay):
        def read_pixels(self, out=None):
            return np.full((16, 16, 3), 8 * self.flips % 256, np.uint8)

    display = Pictures({30: [pygame.event.Event(pygame.QUIT)]})
    path = tmp_path / "closed.mp4"
    with Mp4Recorder(path, fps=20, size=(16, 16)) as recorder:
        GameLoop(source, StartState(), keyboard(), display, presenter, hud, recorder,
                 realtime=False, max_ticks=1000).run()
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 30
    assert abs(int(frames[29].mean()) - 8 * 29 % 256) <= 2


def test_sigterm_mid_recording_leaves_a_playable_mp4(tmp_path):
    out = tmp_path / "stopped.mp4"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "run_game.py", "--engine", "sim", "--headless",
                             "--seconds", "600", "--scale", "1", "--record", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(tmp_path.glob(".stopped.mp4.*.part")):
        time.sleep(0.2)
    time.sleep(2.0)                                      # some frames in
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    with av.open(str(out)) as container:
        count = sum(1 for _ in container.decode(video=0))
    assert count > 0
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("content,message", [
    (None, "weights file not found"),
    (b"\x00" * 100, "not a safetensors file"),
    (b"{}", "not a safetensors file"),
])
def test_missing_or_corrupt_weights_are_one_line(tmp_path, capsys, content, message):
    weights = tmp_path / "w.safetensors"
    if content is not None:
        weights.write_bytes(content)
    assert main(["--weights", str(weights), "--engine", "neural", "--device", "cpu",
                 "--headless", "--seconds", "0.1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(weights) in err[0]


def test_weights_with_nan_are_refused(tmp_path, capsys, tiny_weights):
    data = bytearray(tiny_weights.read_bytes())
    data[-64:] = b"\xff" * 64
    weights = tmp_path / "nan.safetensors"
    weights.write_bytes(bytes(data))
    assert main(["--weights", str(weights), "--device", "cpu", "--headless",
                 "--seconds", "0.1"]) == 1
    assert "weights hold NaN or infinite values" in capsys.readouterr().err


class _OutOfMemory:
    """Stand-in for building the world model: CUDA runs out of memory, the CPU does not."""

    def __init__(self):
        self.devices = []

    def __call__(self, game, args, weights, sampler, device):
        self.devices.append(device.type)
        if device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return "cpu source"


def test_out_of_gpu_memory_falls_back_to_the_cpu_or_says_what_to_do(monkeypatch, capsys):
    fake = _OutOfMemory()
    monkeypatch.setattr(play, "_neural_source", fake)
    monkeypatch.setattr(play, "resolve_device",
                        lambda name, warn=True: torch.device("cpu" if name == "cpu" else "cuda"))
    game = play.load_game("maze")
    args = play.argparse.Namespace(weights="w.safetensors", engine="neural", sampler=None,
                                   late_binding=False, device="auto")
    assert play._frame_source(game, args, None) == "cpu source"
    assert fake.devices == ["cuda", "cpu"]
    err = capsys.readouterr().err
    assert "the GPU ran out of memory" in err and "falling back to the CPU" in err
    args.device = "cuda"
    with pytest.raises(play.EngineError, match="the GPU ran out of memory while starting the "
                       "world model: close other programs using the GPU.*--device cpu"):
        play._frame_source(game, args, None)


def test_no_gpu_asked_for_explicitly_says_what_to_do(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["--engine", "neural", "--weights", "x.safetensors", "--device", "cuda",
                 "--headless", "--seconds", "0.1"]) == 1
    assert "no CUDA GPU is available; use --device cpu" in capsys.readouterr().err


def test_the_loop_keeps_constant_memory_for_its_statistics(monkeypatch, loop_parts):
    monkeypatch.setattr(loop_module, "STATS_WINDOW", 50)
    source, presenter, hud = loop_parts
    loop = GameLoop(source, StartState(), keyboard(), ScriptedDisplay(), presenter, hud,
                    realtime=False, max_ticks=120)
    stats = loop.run()
    assert stats.ticks == 120 and len(stats.step_ms) == len(stats.present_ms) == 50
    assert "120 ticks" in stats.summary()
