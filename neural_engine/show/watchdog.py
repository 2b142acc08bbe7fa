"""The kiosk's watchdog: a small parent process that keeps the game running.

``Watchdog.run()`` starts the game as a child process and watches it. When the game
exits with an error, is killed by a signal, or stops beating its heartbeat (a file
whose time it touches every second) for ``hang_seconds``, the watchdog logs why and
starts it again after ``restart_delay`` seconds (doubling, up to ``max_delay``, while
the game keeps failing within ``stable_seconds``). A clean exit (code 0: the
operator's key chord, or the end of ``--seconds``) ends the watchdog too, and so does
``EXIT_REFUSED``: the game found a mistake it cannot get past (a pack that cannot
start), which a restart would only repeat. SIGTERM and Ctrl-C stop the watchdog and
are passed on to the game.

The game's life is tied to the watchdog's: it holds the write end of the game's
standard input, and the game (``tie_to_watchdog``) ends itself when that closes or,
on Linux, the moment its parent dies. A killed watchdog leaves no orphan behind.

Everything the game prints goes through the watchdog into ``kiosk.log`` in the log
folder, a line at most ``MAX_LINE`` characters (a longer one is cut, read in pieces:
the watchdog's memory stays small whatever the game prints), rotated at
``LOG_BYTES`` keeping ``LOG_BACKUPS`` old files, so a kiosk that runs for months
never fills the disk. Control characters are escaped on the way.

The watchdog knows nothing about what the child does beyond its exit code, its
output lines and its heartbeat file.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from neural_engine.errors import EngineError, escape_controls

CHILD_ENV = "NEURAL_ENGINE_KIOSK_CHILD"
HEARTBEAT_ENV = "NEURAL_ENGINE_HEARTBEAT"
WATCHDOG_PID_ENV = "NEURAL_ENGINE_WATCHDOG_PID"
LOG_NAME = "kiosk.log"
LOG_BYTES = 1 << 20
LOG_BACKUPS = 4
MAX_LINE = 2000
READ_PIECE = 1 << 16
EXIT_REFUSED = 78            # sysexits' EX_CONFIG: a mistake in what the game was given

log = logging.getLogger("neural_engine.watchdog")


class Heartbeat:
    """Touches a file at most once per ``every`` seconds: the game's sign of life."""

    def __init__(self, path: str | os.PathLike, every: float = 1.0):
        self.path = Path(path)
        self.every = every
        self._last = float("-inf")

    @classmethod
    def from_env(cls) -> Heartbeat | None:
        path = os.environ.get(HEARTBEAT_ENV)
        return cls(path) if path else None

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        try:
            self.path.touch()
        except OSError:
            pass  # a missed beat is what the watchdog watches for; it will say so


def tie_to_watchdog() -> None:
    """In the game: end this process (SIGTERM) when the watchdog that started it goes.

    On Linux the kernel sends the signal the moment the parent dies; everywhere, the
    end of standard input (the watchdog's end of the pipe closing) does the same.
    """
    parent = os.environ.get(WATCHDOG_PID_ENV)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent is not None and os.getppid() != int(parent):   # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)

    def watch_stdin() -> None:
        try:                       # os.read: no buffer lock held at interpreter shutdown
            while os.read(0, READ_PIECE):
                pass
        except OSError:
            return
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_stdin, daemon=True, name="watchdog-lifeline").start()


class EscapingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


def rotating_logger(folder: Path, name: str = "neural_engine.watchdog",
                    max_bytes: int = LOG_BYTES, backups: int = LOG_BACKUPS) -> logging.Logger:
    """A logger writing to ``folder/kiosk.log``, rotated so it never exceeds the budget."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(folder / LOG_NAME, maxBytes=max_bytes,
                                                       backupCount=backups, encoding="utf-8")
    except OSError as exc:
        raise EngineError(f"cannot write kiosk logs: {exc.strerror}", where=str(folder)) from None
    handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger(name)
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Watchdog:
    """Runs ``command`` and restarts it when it crashes or hangs (module docstring)."""

    def __init__(self, command: list[str], log_dir: str | os.PathLike, *,
                 env: dict[str, str] | None = None, hang_seconds: float = 20.0,
                 startup_seconds: float = 300.0, restart_delay: float = 1.0,
                 max_delay: float = 30.0,
                 stable_seconds: float = 60.0, poll: float = 0.1, echo: bool = True,
                 max_bytes: int = LOG_BYTES, backups: int = LOG_BACKUPS):
        self.command = command
        self.env = env or {}
        self.log_dir = Path(log_dir)
        self.hang_seconds = hang_seconds
        self.startup_seconds = startup_seconds
        self.restart_delay = restart_delay
        self.max_delay = max_delay
        self.stable_seconds = stable_seconds
        self.poll = poll
        self.log = rotating_logger(self.log_dir, max_bytes=max_bytes, backups=backups)
        if echo:
            console = logging.StreamHandler(sys.stderr)
            console.setFormatter(EscapingFormatter("kiosk: %(message)s"))
            self.log.addHandler(console)
        self.heartbeat = self.log_dir / "heartbeat"
        self.restarts = 0
        self.last_line = ""          # the game's last words (why it stopped)
        self._stop = threading.Event()
        self._child: subprocess.Popen | None = None

    # -- one child ----------------------------------------------------------------
    def _start(self) -> subprocess.Popen:
        self.heartbeat.unlink(missing_ok=True)
        env = {**os.environ, **self.env, CHILD_ENV: "1", HEARTBEAT_ENV: str(self.heartbeat),
               WATCHDOG_PID_ENV: str(os.getpid()), "PYTHONUNBUFFERED": "1"}
        # stdin: a pipe nobody writes to; the game ends itself when it closes
        child = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, stdin=subprocess.PIPE, env=env)
        self._pump_thread = threading.Thread(target=self._pump, args=(child,), daemon=True)
        self._pump_thread.start()
        self.log.info("started the game (pid %d)", child.pid)
        return child

    def _pump(self, child: subprocess.Popen) -> None:
        """The child's output, line by line (each cut at MAX_LINE), into the rotating log."""
        while True:
            raw = child.stdout.readline(MAX_LINE)
            if not raw:
                return
            cut = 0
            while not raw.endswith(b"\n"):        # the rest of a long line, piece by piece
                more = child.stdout.readline(READ_PIECE)
                if not more:
                    break
                cut += len(more.rstrip(b"\n"))
                raw = raw[:MAX_LINE] + (b"\n" if more.endswith(b"\n") else b"")
            line = raw.decode("utf-8", "replace").rstrip()
            if cut:
                line += f" … ({cut} more bytes cut)"
            if line:
                self.last_line = line
                self.log.info("game: %s", line)

    def _hung(self, started: float) -> str | None:
        """Why the running child counts as hung, or None."""
        try:
            beat = self.heartbeat.stat().st_mtime
        except FileNotFoundError:
            if time.time() - started > self.startup_seconds:
                return f"sent no heartbeat within {self.startup_seconds:g} s of starting " \
                       "(hung): killed"
            return None
        if time.time() - beat > self.hang_seconds:
            return f"sent no heartbeat for {self.hang_seconds:g} s (hung): killed"
        return None

    def _watch(self, child: subprocess.Popen) -> tuple[int, str]:
        started = time.time()
        while True:
            code = child.poll()
            if code is not None:
                return code, describe_exit(code)
            if self._stop.is_set():
                return self._end(child), "stopped"
            reason = self._hung(started)
            if reason is not None:
                child.kill()
                child.wait()
                return child.returncode, reason
            time.sleep(self.poll)

    def _child_alive(self) -> bool:
        return self._child is not None and self._child.poll() is None

    def _end(self, child: subprocess.Popen) -> int:
        child.terminate()
        try:
            return child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait()

    # -- the watchdog -------------------------------------------------------------
    def stop(self, *_) -> None:
        self._stop.set()

    def run(self) -> int:
        """Keep the game running until it quits cleanly or the watchdog is stopped."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self.stop)
        delay = self.restart_delay
        self.log.info("watchdog started: %s", " ".join(self.command))
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    child = self._child = self._start()
                except OSError as exc:
                    raise EngineError(f"cannot start the game: {exc.strerror}") from None
                code, reason = self._watch(child)
                self._pump_thread.join(timeout=5)   # its last words before ours
                if self._stop.is_set():
                    self.log.info("watchdog stopped; the game %s", describe_exit(code))
                    return 0
                said = f" (its last words: {self.last_line})" if self.last_line else ""
                if code == 0:
                    self.log.info("the game ended cleanly%s; watchdog done", said)
                    return 0
                if code == EXIT_REFUSED:
                    self.log.error("the game refused to start%s: restarting would not "
                                   "help; fix it and start the kiosk again", said)
                    return 1
                lasted = time.monotonic() - began
                delay = self.restart_delay if lasted >= self.stable_seconds else delay
                self.restarts += 1
                self.log.warning("the game %s after %.1f s; restart %d in %.1f s",
                                 reason, lasted, self.restarts, delay)
                if self._stop.wait(delay):
                    return 0
                delay = min(delay * 2, self.max_delay)
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._child_alive():
                self._end(self._child)
