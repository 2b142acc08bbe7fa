"""Kiosk mode: attract mode, idle reset, session limit, the lock and the operator chord,
the heartbeat, the watchdog that restarts a crashed or hung game, and rotated logs."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pygame

from neural_engine.input.mapper import ActionMapper
from neural_engine.packs import load_pack
from neural_engine.runtime.drivers import KeyboardDriver
from neural_engine.show.kiosk import KioskDirector
from neural_engine.runtime.loop import GameLoop
from neural_engine.show.watchdog import LOG_NAME, Heartbeat, Watchdog, rotating_logger

from .conftest import ScriptedDisplay, down, up

ROOT = Path(__file__).resolve().parents[2]

# 20 ticks/s: attract after 10 ticks, idle reset after 6, a session of at most 15 ticks.
KIOSK = '''game = "maze"
[[start]]
name = "attract-here"
seed = 5
[[start]]
name = "lobby"
seed = 7
[timeline]
seconds = 0.5
loop = true
[[timeline.cue]]
t = 0.0
hold = ["turn_left"]
caption = "demo"
[kiosk]
start = "lobby"
attract_after = {attract}
idle_reset = 0.3
session_limit = 0.75
reset_on_touch = true
operator_chord = ["left ctrl", "left alt", "q"]
caption = "Press any key"
session_over_caption = "Thanks!"
'''


def kiosk_pack(tmp_path, attract=0.5, timeline=True):
    folder = tmp_path / "kiosk"
    folder.mkdir(exist_ok=True)
    text = KIOSK.format(attract=attract)
    if not timeline:
        text = text[:text.index("[timeline]")] + text[text.index("[kiosk]"):]
    (folder / "pack.toml").write_text(text)
    return load_pack(folder)


def kiosk_loop(pack, parts, events, max_ticks, heartbeat=None):
    source, presenter, hud = parts
    keyboard = KeyboardDriver(ActionMapper(pack.game.actions, pack.bindings()))
    director = KioskDirector(pack, keyboard, heartbeat=heartbeat)
    loop = GameLoop(source, director.start, director.driver, ScriptedDisplay(events),
                    presenter, hud, realtime=False, max_ticks=max_ticks, director=director,
                    locked=True, show_stats=False)
    return loop, director, keyboard


def resets(source):
    return [(tick, start.seed) for tick, start in source.resets]


def test_attract_mode_plays_until_a_touch_hands_control_back(tmp_path, loop_parts):
    pack = kiosk_pack(tmp_path)
    loop, director, keyboard = kiosk_loop(pack, loop_parts, {23: [down("K_w")]}, 30)
    loop.run()
    source, presenter, _ = loop_parts
    space = pack.game.actions
    held = [space.held(a) for a in source.actions]
    assert held[:23] == [["turn_left"]] * 23              # the looping demo
    assert held[23:] == [["forward"]] * 7                 # the visitor
    # boot in attract (seed 5), loops at 10 and 20, the visitor starts in the lobby (7)
    assert resets(source) == [(0, 5), (10, 5), (20, 5), (23, 7)]
    assert presenter.lines[0] == ("Press any key", "demo")
    assert presenter.lines[23] == () and loop.driver is keyboard


def test_no_input_brings_attract_mode_back(tmp_path, loop_parts):
    pack = kiosk_pack(tmp_path)
    events = {1: [down("K_w")], 4: [up("K_w")]}
    loop, director, keyboard = kiosk_loop(pack, loop_parts, events, 40)
    loop.run()
    source = loop_parts[0]
    space = pack.game.actions
    held = [space.held(a) for a in source.actions]
    assert held[1:4] == [["forward"]] * 3
    # ticks 4..13 are idle: the idle reset (0.3 s) comes after 6 of them, attract mode
    # after exactly 10 (0.5 s at 20 ticks/s)
    first_demo = next(i for i in range(5, 40) if held[i] == ["turn_left"])
    assert resets(source)[:3] == [(0, 5), (1, 7), (10, 7)]
    assert first_demo == 14 and (14, 5) in resets(source)
    assert director.attracting


def test_idle_reset_without_a_timeline(tmp_path, loop_parts):
    pack = kiosk_pack(tmp_path, timeline=False)
    events = {2: [down("K_w")], 5: [up("K_w")]}
    loop, director, _ = kiosk_loop(pack, loop_parts, events, 40)
    loop.run()
    # no timeline, so no attract mode; ticks 5..10 are idle, then the world returns to
    # the lobby, once
    assert resets(loop_parts[0]) == [(0, 7), (2, 7), (11, 7)]


def test_the_session_limit_ends_a_long_turn(tmp_path, loop_parts):
    pack = kiosk_pack(tmp_path, attract=5.0)
    events = {2: [down("K_w")]}                           # then held for ever
    loop, director, keyboard = kiosk_loop(pack, loop_parts, events, 30)
    loop.run()
    source, presenter, _ = loop_parts
    held = [pack.game.actions.held(a) for a in source.actions]
    assert held[2:17] == [["forward"]] * 15               # 0.75 s of play
    assert held[17:] == [["turn_left"]] * 13              # thanked and back to the demo
    assert (17, 5) in resets(source)
    assert presenter.lines[17] == ("Press any key", "Thanks!", "demo")


def test_a_locked_loop_ignores_quit_keys_and_only_the_chord_ends_it(tmp_path, loop_parts):
    pack = kiosk_pack(tmp_path)
    events = {1: [pygame.event.Event(pygame.QUIT), down("K_ESCAPE"), down("K_F11"),
                  down("K_p"), down("K_r"), down("K_F5"), down("K_F12")],
              3: [down("K_LCTRL"), down("K_LALT")],
              4: [up("K_LALT"), down("K_q")],                  # not all three at once
              6: [down("K_LALT")]}                             # now all three
    loop, director, _ = kiosk_loop(pack, loop_parts, events, 100)
    stats = loop.run()
    assert stats.ticks == 6 and not loop.paused
    assert loop.display.fullscreen_toggles == 0 and not stats.screenshots


def test_the_heartbeat_touches_its_file_at_most_once_a_second(tmp_path, loop_parts):
    pack = kiosk_pack(tmp_path)
    beat = Heartbeat(tmp_path / "heartbeat")
    loop, _, _ = kiosk_loop(pack, loop_parts, {}, 5, heartbeat=beat)
    loop.run()
    first = (tmp_path / "heartbeat").stat().st_mtime_ns
    beat.beat()
    assert (tmp_path / "heartbeat").stat().st_mtime_ns == first


CHILD = '''
import os, sys, time
from pathlib import Path
runs = Path(sys.argv[1])
n = int(runs.read_text()) if runs.exists() else 0
runs.write_text(str(n + 1))
print(f"run {n} says hello", flush=True)
if n == 0:
    os.abort()                                  # a crash
if n == 1:
    sys.exit(3)                                 # an error
if n == 2:
    Path(os.environ["NEURAL_ENGINE_HEARTBEAT"]).touch()
    time.sleep(60)                              # beats once, then hangs
Path(os.environ["NEURAL_ENGINE_HEARTBEAT"]).touch()
sys.exit(0)                                     # the operator quits
'''


def test_the_watchdog_restarts_a_crashed_or_hung_game_and_logs_why(tmp_path):
    runs = tmp_path / "runs"
    dog = Watchdog([sys.executable, "-c", CHILD, str(runs)], tmp_path / "logs",
                   hang_seconds=1.0, restart_delay=0.2, max_delay=0.5, echo=False)
    began = time.monotonic()
    assert dog.run() == 0
    took = time.monotonic() - began
    assert runs.read_text() == "4" and dog.restarts == 3
    assert took < 20
    log = (tmp_path / "logs" / LOG_NAME).read_text()
    assert "game: run 0 says hello" in log and "game: run 3 says hello" in log
    assert "the game was killed by signal SIGABRT after" in log
    assert "the game exited with code 3 after" in log
    assert "the game sent no heartbeat for 1 s (hung): killed after" in log
    assert "restart 1 in 0.2 s" in log and "restart 2 in 0.4 s" in log
    assert "the game ended cleanly (its last words: run 3 says hello); watchdog done" in log


def test_the_watchdog_passes_sigterm_on_and_stops(tmp_path):
    script = ("import sys\nfrom neural_engine.show.watchdog import Watchdog\n"
              "sys.exit(Watchdog([sys.executable, '-c', 'import time; time.sleep(60)'], "
              f"{str(tmp_path / 'logs')!r}, echo=False).run())")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    log = tmp_path / "logs" / LOG_NAME
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log.exists() and "started the game"
                                                in log.read_text()):
        time.sleep(0.1)
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert "watchdog stopped" in log.read_text()


def test_logs_rotate_within_their_budget(tmp_path):
    logger = rotating_logger(tmp_path, name="test.rotation", max_bytes=2000, backups=2)
    for i in range(2000):
        logger.info("line %d %s", i, "x" * 50)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [LOG_NAME, LOG_NAME + ".1", LOG_NAME + ".2"]
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 3 * 2000
    assert "line 1999" in (tmp_path / LOG_NAME).read_text()


def test_kiosk_mode_end_to_end_under_the_watchdog(tmp_path):
    """The real command: watchdog, child, locked loop, kiosk director, logs."""
    logs = tmp_path / "logs"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "run_game.py", "--pack", "games/maze/packs/attract",
                           "--kiosk", "--headless", "--engine", "sim", "--seconds", "1",
                           "--scale", "1", "--log-dir", str(logs)],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    log = (logs / LOG_NAME).read_text()
    assert "started the game" in log
    assert "game: 20 ticks in" in log                  # the child's own summary line
    assert "the game ended cleanly" in log
    assert (logs / "heartbeat").exists()
