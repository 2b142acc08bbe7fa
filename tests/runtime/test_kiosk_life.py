"""A kiosk that never loops and leaves nothing behind (issue 17, items 4 and 5).

The game dies with its watchdog; a mistake only the game can find ends the kiosk with
one line instead of a restart loop; a headless kiosk runs until it is stopped and
says why it stopped; a child's endless line costs the watchdog a bounded buffer.
"""

import os
import signal
import subprocess
import sys
import time

from neural_engine.show.watchdog import EXIT_REFUSED, LOG_NAME, Watchdog

from ..hostile import ROOT, run_bounded

ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": str(ROOT)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:                                      # a zombie (dead, not yet reaped) is gone too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait(predicate, seconds: float = 120.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


GAME = """
import os, sys, time
from neural_engine.show.watchdog import tie_to_watchdog
tie_to_watchdog()
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(600)
"""


def test_the_game_dies_with_a_killed_watchdog(tmp_path):
    """Before: the game ran on as an orphan, and a restarted kiosk gave two games."""
    pid_file = tmp_path / "game.pid"
    script = ("import sys\nfrom neural_engine.show.watchdog import Watchdog\n"
              f"Watchdog([sys.executable, '-c', {GAME!r}, {str(pid_file)!r}], "
              f"{str(tmp_path / 'logs')!r}, echo=False).run()")
    dog = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=ENV)
    try:
        assert _wait(lambda: pid_file.exists() and pid_file.read_text())
        game = int(pid_file.read_text())
        assert _alive(game)
        dog.kill()                                        # SIGKILL: no handler runs
        dog.wait(timeout=60)
        assert _wait(lambda: not _alive(game)), "the game outlived its watchdog"
    finally:
        dog.kill()


def test_a_game_that_refuses_to_start_ends_the_kiosk(tmp_path):
    """Before: 'exceeds the 13 positions' and six restarts in 50 s. Now one line, exit 1."""
    logs = tmp_path / "logs"
    proc = subprocess.run([sys.executable, "run_game.py", "--kiosk", "--headless",
                           "--sampler", "rolling", "--engine", "neural", "--weights",
                           str(tmp_path / "missing.safetensors"), "--scale", "1",
                           "--log-dir", str(logs)],
                          cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=300)
    log = (logs / LOG_NAME).read_text()
    assert proc.returncode == 1, proc.stderr
    assert log.count("started the game") == 1 and "restart 1" not in log
    assert "game: error: " in log and "missing.safetensors: weights file not found" in log
    assert "the game refused to start (its last words: error: " in log


def test_exit_refused_is_not_restarted(tmp_path):
    dog = Watchdog([sys.executable, "-c", f"print('error: no'); raise SystemExit({EXIT_REFUSED})"],
                   tmp_path / "logs", restart_delay=0.1, echo=False)
    assert dog.run() == 1 and dog.restarts == 0


SHORT_DEMO = """game = "maze"
[timeline]
seconds = 0.5
loop = true
[[timeline.cue]]
t = 0.0
hold = ["turn_left"]
[kiosk]
attract_after = 1.0
"""


def test_a_headless_kiosk_runs_until_stopped(tmp_path):
    """Before: it stopped after one timeline and the log blamed the operator."""
    pack = tmp_path / "demo"
    pack.mkdir()
    (pack / "pack.toml").write_text(SHORT_DEMO)
    logs = tmp_path / "logs"
    proc = subprocess.Popen([sys.executable, "run_game.py", "--pack", str(pack), "--kiosk",
                             "--headless", "--engine", "sim", "--scale", "1",
                             "--log-dir", str(logs)], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        heartbeat = logs / "heartbeat"
        assert _wait(heartbeat.exists, 240)
        first = heartbeat.stat().st_mtime
        # a 0.5 s timeline: still beating seconds past its end (paced in real time)
        assert _wait(lambda: heartbeat.stat().st_mtime > first + 2.5, 240)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    log = (logs / LOG_NAME).read_text()
    assert "watchdog stopped" in log and "restart 1" not in log
    assert "operator" not in log


def test_a_kiosk_says_why_it_stopped(tmp_path):
    logs = tmp_path / "logs"
    proc = subprocess.run([sys.executable, "run_game.py", "--pack", "games/maze/packs/attract",
                           "--kiosk", "--headless", "--engine", "sim", "--seconds", "0.5",
                           "--scale", "1", "--log-dir", str(logs)],
                          cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr
    log = (logs / LOG_NAME).read_text()
    assert ("the game ended cleanly (its last words: kiosk: stopped: played the 10 ticks "
            "asked for); watchdog done") in log


def test_an_endless_line_of_output_costs_the_watchdog_a_bounded_buffer(tmp_path):
    """Before: one 300 MB line raised the watchdog to 714 MB."""
    result = run_bounded(f"""
        import sys
        from neural_engine.show.watchdog import Watchdog
        # (the child, under the same cap, writes its line a megabyte at a time)
        child = ("import sys\\nfor _ in range(300): sys.stdout.buffer.write(b'x' * (1 << 20))"
                 "\\nsys.stdout.buffer.write(b'\\\\nbye\\\\n')")
        dog = Watchdog([sys.executable, "-c", child], {str(tmp_path / 'logs')!r}, echo=False)
        sys.exit(dog.run())
        """, imports="import neural_engine.show.watchdog", memory_mb=200)
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "logs" / LOG_NAME).read_text()
    assert f"game: {'x' * 2000} … ({(300 << 20) - 2000} more bytes cut)" in log
    assert "game: bye" in log
