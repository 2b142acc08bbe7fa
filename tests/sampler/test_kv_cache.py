import numpy as np
import pytest

from neural_engine.sampler.kv_cache import CacheShape, StreamLayout, unpack


def run_ticks(layout: StreamLayout, ticks: int, window: int):
    """Drive a layout like the rolling sampler does: one commit per tick once warm."""
    valid = [False] * window
    max_position = 0
    for tick in range(ticks):
        commit = valid[0]
        valid = valid[1:] + [True]
        meta = layout.plan(commit, valid)
        key_time = meta[:layout.shape.slots]
        max_position = max(max_position, int(key_time.max()))
        layout.after_pass(commit)
    return max_position


def test_ring_wraps_and_keeps_the_most_recent_frames():
    layout = StreamLayout(CacheShape(sink=2, ring=5, window=1))
    for _ in range(23):
        layout.plan(True, [True])
        layout.after_pass(True)
    # the sink keeps frames 0 and 1 forever; the ring holds the last five, oldest first
    assert layout.cached_frames() == [0, 1, 18, 19, 20, 21, 22]


def test_commit_evicts_the_oldest_and_positions_follow_age():
    shape = CacheShape(sink=1, ring=3, window=2)
    layout = StreamLayout(shape)
    for _ in range(6):             # frames 0..5: sink 0, ring 3,4,5
        layout.plan(True, [False, False])
        layout.after_pass(True)
    meta = unpack(np.asarray(layout.plan(True, [True, True])), shape)
    key_time = meta["key_time"]
    dest = int(meta["dest"][0])
    # the commit frame takes the slot of the oldest ring frame (frame 3)
    assert layout.ring_frames[dest - shape.sink] == 3
    # positions: sink 0, frames 4, 5 at 1, 2, the commit frame at 3, window at 4, 5
    ring_slots = {f: shape.sink + i for i, f in enumerate(layout.ring_frames)}
    assert key_time[0] == 0
    assert key_time[ring_slots[4]] == 1 and key_time[ring_slots[5]] == 2
    assert key_time[dest] == 3
    assert list(key_time[shape.sink + shape.ring:shape.sink + shape.ring + 2]) == [4, 5]


def test_masks_causal_to_history_bidirectional_in_window():
    shape = CacheShape(sink=1, ring=2, window=3)
    layout = StreamLayout(shape)
    layout.plan(True, [False] * 3)
    layout.after_pass(True)                       # frame 0 in the sink
    meta = unpack(np.asarray(layout.plan(True, [False, True, True])), shape)
    mask = meta["mask"].astype(bool)
    sink, ring0 = 0, 1
    win = [shape.sink + shape.ring + k for k in range(3)]
    # the commit frame sees the sink and itself, nothing of the window
    assert mask[0, sink] and mask[0, ring0] and not mask[0, win].any()
    # valid window frames see the cache, the commit frame and each other (not the empty slot)
    for q in (2, 3):
        assert mask[q, sink] and mask[q, ring0] and mask[q, win[1]] and mask[q, win[2]]
        assert not mask[q, win[0]] and not mask[q, shape.scratch]
    # the empty window slot only sees itself
    assert mask[1].sum() == 1 and mask[1, win[0]]


@pytest.mark.parametrize("sink,ring,window", [(1, 8, 4), (0, 9, 4), (2, 3, 1), (1, 0, 2)])
def test_positions_stay_in_range_after_10000_ticks(sink, ring, window):
    shape = CacheShape(sink, ring, window)
    layout = StreamLayout(shape)
    assert run_ticks(layout, 10_000, window) <= shape.positions - 1
    assert layout.committed == 10_000 - window
    assert len(layout.cached_frames()) == sink + ring
