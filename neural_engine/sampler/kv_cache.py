"""The streaming KV cache: attention sink + ring of recent frames + the window.

Buffers (preallocated once, written in place; memory is constant however long the
stream runs). Per layer, keys and values (unrotated) of M frame slots, P tokens each::

    slot:  0 … S−1 | S … S+L−1 | S+L … S+L+W−1 | S+L+W
           sink    | ring      | window        | scratch

- the sink holds the first S frames of the stream, forever;
- the ring holds the L most recent clean frames; a new one replaces the oldest;
- the window slots hold the keys of the frames being denoised in this pass;
- scratch absorbs writes that must go nowhere (a pass with no frame to commit).

Each pass has 1 + W query frames: slot 0 of the query is the "commit" frame (the clean
frame that just left the window, run once at noise 0 so its keys can be cached;
absent on most sub-steps), then the W window frames. ``StreamLayout`` is the
host-side bookkeeping: for every pass it says where each query frame's keys go, the
time position of every slot (sink first, then the ring oldest to newest, then the
window, so positions never exceed S + L + W − 1 however long the stream), and which
slots each query frame may attend to (window frames see the cache and the whole
window: bidirectional inside, causal towards history; the commit frame sees only the
cache it is part of). It is plain Python so it can be tested and reasoned about
without a GPU; ``plan()`` packs it into one small integer array for the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class CacheShape:
    sink: int
    ring: int
    window: int

    @property
    def slots(self) -> int:
        return self.sink + self.ring + self.window + 1

    @property
    def scratch(self) -> int:
        return self.slots - 1

    @property
    def queries(self) -> int:
        return 1 + self.window

    @property
    def positions(self) -> int:
        """Time positions a stream can use: sink + ring + window."""
        return self.sink + self.ring + self.window

    def meta_size(self) -> int:
        # key_time (M) + q_time (Q) + dest (Q) + mask (Q·M) + window_valid (W)
        m, q = self.slots, self.queries
        return m + 2 * q + q * m + self.window


class StreamLayout:
    """Which frame sits in which slot, and what each pass may see (host side)."""

    def __init__(self, shape: CacheShape):
        self.shape = shape
        self.reset()

    def reset(self) -> None:
        self.sink_frames: list[int] = []                  # stream index per filled sink slot
        self.ring_frames: list[int | None] = [None] * self.shape.ring
        self.ring_next = 0                                # ring slot to write next (the oldest)
        self.committed = 0                                # clean frames committed so far

    def ring_order(self) -> list[int]:
        """Filled ring slots (0-based within the ring), oldest first."""
        filled = [i for i, f in enumerate(self.ring_frames) if f is not None]
        return sorted(filled, key=lambda i: self.ring_frames[i])

    def commit_slot(self) -> int | None:
        """The buffer slot the next committed frame will take (None: it is dropped)."""
        s = self.shape
        if len(self.sink_frames) < s.sink:
            return len(self.sink_frames)
        if s.ring == 0:
            return None
        return s.sink + self.ring_next

    def plan(self, commit: bool, window_valid: list[bool]) -> np.ndarray:
        """The metadata of one pass, packed as int32; see ``unpack`` for the layout."""
        s = self.shape
        m, q = s.slots, s.queries
        key_time = np.zeros(m, np.int32)
        q_time = np.zeros(q, np.int32)
        dest = np.zeros(q, np.int32)
        mask = np.zeros((q, m), np.int32)

        commit_slot = self.commit_slot() if commit else None
        cache_slots = list(range(len(self.sink_frames)))          # sink, in stream order
        ring = [s.sink + i for i in self.ring_order()]
        if commit_slot is not None and commit_slot >= s.sink:     # evict the oldest
            ring = [slot for slot in ring if slot != commit_slot]
        cache_slots += ring
        if commit_slot is not None:
            cache_slots.append(commit_slot)
        for position, slot in enumerate(cache_slots):
            key_time[slot] = position
        position = len(cache_slots)
        window_slots = [s.sink + s.ring + k for k in range(s.window) if window_valid[k]]
        for slot in window_slots:
            key_time[slot] = position
            position += 1

        # query 0: the commit frame (or a no-op writing to scratch)
        if commit_slot is not None:
            dest[0] = commit_slot
            q_time[0] = key_time[commit_slot]
            mask[0, cache_slots] = 1
        else:
            dest[0] = s.scratch
            mask[0, s.scratch] = 1
        for k in range(s.window):
            slot = s.sink + s.ring + k
            dest[1 + k] = slot
            q_time[1 + k] = key_time[slot]
            if window_valid[k]:
                mask[1 + k, cache_slots] = 1
                mask[1 + k, window_slots] = 1
            else:
                mask[1 + k, slot] = 1                             # isolated, output unused
        valid = np.asarray(window_valid, np.int32)
        return np.concatenate([key_time, q_time, dest, mask.ravel(), valid])

    def after_pass(self, commit: bool) -> None:
        """Record the commit of the pass just planned."""
        if not commit:
            return
        slot = self.commit_slot()
        if slot is not None and slot < self.shape.sink:
            self.sink_frames.append(self.committed)
        elif slot is not None:
            self.ring_frames[slot - self.shape.sink] = self.committed
            self.ring_next = (self.ring_next + 1) % self.shape.ring
        self.committed += 1

    def cached_frames(self) -> list[int]:
        """Stream indices held in the cache, in attention (time-position) order."""
        ring = [self.ring_frames[i] for i in self.ring_order()]
        return self.sink_frames + ring


def unpack(meta: torch.Tensor, shape: CacheShape) -> dict[str, torch.Tensor]:
    """Views into packed metadata (..., meta_size), a tensor or an array on any device:
    one plan, or one per row of a batch (B, meta_size)."""
    m, q, w = shape.slots, shape.queries, shape.window
    out, at = {}, 0
    for name, size in (("key_time", m), ("q_time", q), ("dest", q), ("mask", q * m),
                       ("window_valid", w)):
        out[name] = meta[..., at:at + size]
        at += size
    out["mask"] = out["mask"].reshape(*meta.shape[:-1], q, m)
    return out


class KVBuffers:
    """Keys and values of every slot, every layer: (depth, B, H, M·P, hd) each."""

    def __init__(self, depth: int, batch: int, heads: int, slots: int, tokens: int,
                 head_dim: int, device, dtype):
        size = (depth, batch, heads, slots * tokens, head_dim)
        self.k = torch.zeros(size, device=device, dtype=dtype)
        self.v = torch.zeros(size, device=device, dtype=dtype)

    def clear(self) -> None:
        self.k.zero_()
        self.v.zero_()

    @property
    def nbytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()
