"""Host-side state of the streams in a sampler's batch, one ``StreamRows`` per stream.

A sampler's batch has B rows. Each row belongs to one ``StreamRows``: a contiguous range
of rows that step in lockstep (``reset`` starts all B rows as one such group; a pool
of players gives every row a group of its own). A group holds what the host knows of
its stream: the cache layout, which window slots hold frames, the noise level of each,
whether a clean frame waits to be committed, and whether the stream is live at all.

Its noise is drawn on the device, inside the pass, as a pure function of a per-row key,
a pass counter and the element (``neural_engine.sampler.noise``). The group keeps that
state in ``noise_state`` (rows, 3), which the sampler sends with the plan:

- key: row i of a group started with seed s has key ``row_keys(s, rows)[i]``, which
  depends on s and i only, so a stream alone in a group draws what it would draw in
  a sampler of batch 1, in whatever row;
- counter: the passes in which the group advanced, modulo 2^31;
- fresh: 1 from the moment a frame enters the back window slot until the pass that
  draws its noise.

Per pass a group either *advances* (it is planned, its noise state is sent, its window
steps, its counter moves on) or *holds* (its rows get the idle plan: every query
writes only to slots that are rewritten before they are read, no fresh frame is
drawn, and the step leaves its latents alone), so one stream can commit its context
while the others wait, and an empty row costs nothing but its share of the batch.

This module knows nothing about tensors on the device; the sampler writes what a
group plans into its packed per-row buffers.
"""

from __future__ import annotations

import numpy as np

from neural_engine.sampler.kv_cache import CacheShape, StreamLayout
from neural_engine.sampler.noise import row_keys

NOISE_COLUMNS = 3           # per row after the packed plan: key, pass counter, fresh


def idle_plan(shape: CacheShape) -> np.ndarray:
    """The packed plan of a row with no stream (or one that holds this pass)."""
    return StreamLayout(shape).plan(False, [False] * shape.window)


class StreamRows:
    """Rows ``lo`` … ``hi − 1`` of the batch, one stream (or several in lockstep)."""

    def __init__(self, lo: int, hi: int, shape: CacheShape, levels: list[float],
                 plans: dict | None = None):
        self.lo, self.hi = lo, hi
        self.shape, self.levels = shape, levels
        self.plans = {} if plans is None else plans   # packed plans by layout state
        self.layout = StreamLayout(shape)
        w = shape.window
        self.live = False
        self.window_valid = [False] * w
        self.level_index = [0] * w          # current level index of each window slot
        self.commit_pending = False         # the front frame left last tick: commit it
        self.commit_next = False            # the next planned pass may commit
        self.pass_commit = False            # the pass just planned commits
        self.advancing = False              # the pass just planned steps this group
        self.passes = 0                     # passes advanced, modulo 2^31
        self.noise_state = np.zeros((hi - lo, NOISE_COLUMNS), np.int32)   # key, counter, fresh

    @property
    def rows(self) -> slice:
        return slice(self.lo, self.hi)

    @property
    def size(self) -> int:
        return self.hi - self.lo

    def start(self, seed: int) -> None:
        """A fresh stream: empty layout and window, the keys of ``seed``."""
        self.layout.reset()
        w = self.shape.window
        self.window_valid = [False] * w
        self.level_index = [0] * w
        self.commit_pending = self.commit_next = self.pass_commit = False
        self.passes = 0
        self.noise_state[:] = 0
        self.noise_state[:, 0] = row_keys(seed, self.size)
        self.live = True

    def plan(self, commit: bool) -> tuple[np.ndarray, list[float]]:
        """The packed plan of the next pass and its levels: t of the Q queries, the W
        levels the window steps to, then 1 (advance)."""
        self.pass_commit = commit and self.commit_next
        layout = self.layout
        # A plan depends only on this state, and a running stream cycles through a few
        # of them: plan each once (the sampler shares the memo between its streams).
        state = (len(layout.sink_frames), tuple(layout.ring_order()), layout.ring_next,
                 self.pass_commit, tuple(self.window_valid))
        meta = self.plans.get(state)
        if meta is None:
            meta = self.plans[state] = layout.plan(self.pass_commit, self.window_valid)
        levels = self.levels
        t = ([0.0] + [levels[i] for i in self.level_index]
             + [levels[max(i - 1, 0)] for i in self.level_index] + [1.0])
        return meta, t

    def after_pass(self) -> None:
        self.layout.after_pass(self.pass_commit)
        self.level_index = [max(i - 1, 0) for i in self.level_index]
        if self.pass_commit:
            self.commit_next = False
        self.passes = (self.passes + 1) % 2**31
        self.noise_state[:, 1] = self.passes
        self.noise_state[:, 2] = 0          # the entering frame has had its noise

    def begin_tick(self, top_level: int) -> None:
        """The window moves up a slot and a fresh frame (at ``top_level``) enters; its
        noise is drawn by the next pass."""
        self.window_valid = self.window_valid[1:] + [True]
        self.level_index = self.level_index[1:] + [top_level]
        self.commit_next = self.commit_pending
        self.noise_state[:, 2] = 1

    def late_slots(self, threshold: float) -> list[int]:
        """Window slots (0 = front) still noisier than ``threshold``, before the back one."""
        return [k for k in range(self.shape.window - 1)
                if self.window_valid[k] and self.levels[self.level_index[k]] > threshold]

    def end_tick(self) -> bool:
        """Whether a clean frame left the window this tick."""
        self.commit_pending = self.window_valid[0]
        return self.commit_pending
