"""Where a training step's time goes: named phases on the device's timeline.

A stage wraps each part of its step in ``self.phases("name")`` (data, encode, forward,
backward, optimizer, …). Off (the default), that is a bare context manager and costs
nothing measurable. The training benchmark turns it on: each phase is then bracketed by
CUDA events on the current stream (wall-clock marks on the CPU) and by a profiler range,
so the benchmark can say how long the device spent in each phase, step by step, and a
profile shows which kernels each phase ran.

It knows nothing about what the phases do.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

import torch


class PhaseClock:
    def __init__(self, enabled: bool = False, device: torch.device | str = "cpu"):
        self.enabled = enabled
        self.cuda = torch.device(device).type == "cuda"
        self._marks: list[tuple[str, object, object]] = []

    @contextlib.contextmanager
    def __call__(self, name: str):
        if not self.enabled:
            yield
            return
        with torch.profiler.record_function(name):
            start = self._mark()
            try:
                yield
            finally:
                self._marks.append((name, start, self._mark()))

    def _mark(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def collect(self) -> dict[str, float]:
        """Milliseconds per phase since the last call, summed over its occurrences."""
        if self.cuda:
            torch.cuda.synchronize()
        out: dict[str, float] = defaultdict(float)
        for name, start, end in self._marks:
            out[name] += (start.elapsed_time(end) if self.cuda else (end - start) * 1e3)
        self._marks.clear()
        return dict(out)
