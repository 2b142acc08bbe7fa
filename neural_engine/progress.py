"""A small progress bar for long commands (training, evaluation).

On a terminal it redraws one line in place; in a log (CI, a file) it writes a plain
line every few seconds, so logs stay readable. It knows nothing about what is counted.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes = f"{rest // 60:02d}:{rest % 60:02d}"
    return f"{hours}:{minutes}" if hours else minutes


class Progress:
    """``Progress(total, "train ae", unit="step")``; ``update(n, loss=...)``; ``close()``."""

    def __init__(self, total: int, desc: str, unit: str = "it", initial: int = 0,
                 stream: TextIO | None = None, log_every: float = 5.0):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.done = initial
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.log_every = log_every
        self.start = time.perf_counter()
        self.start_done = initial
        self.last_draw = 0.0
        self.postfix = ""

    def update(self, n: int = 1, **postfix: float | str) -> None:
        self.done += n
        if postfix:
            self.postfix = "  ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in postfix.items())
        now = time.perf_counter()
        if now - self.last_draw >= (0.1 if self.tty else self.log_every) or self.done >= self.total:
            self.last_draw = now
            self._draw(now)

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0

    def _draw(self, now: float) -> None:
        rate = self.rate()
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(frac * 24)
        line = (f"{self.desc} [{bar:<24}] {self.done}/{self.total} {self.unit} "
                f"{rate:.3g} {self.unit}/s  {_clock(now - self.start)}<{_clock(left)}")
        if self.postfix:
            line += f"  {self.postfix}"
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        self._draw(time.perf_counter())
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
