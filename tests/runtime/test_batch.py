"""The stream pool: streams that share a batch give exactly the frames they give alone."""

import pytest
import torch

from neural_engine.errors import EngineError
from neural_engine.model.world import WorldModel
from neural_engine.runtime.batch import StreamPool
from neural_engine.sampler.stream import SamplerConfig, StreamSampler

ACTIONS = 8
CFG = SamplerConfig(window=4, sink=1, ring=8, late_binding=True, late_binding_threshold=0.3)


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "previous-frame"])
def model(request, tiny_model) -> WorldModel:
    """Random weights; also a model with the predecessor path, whose newest clean frame
    per row must follow each stream through joins and leaves."""
    return tiny_model(actions=ACTIONS, previous_frame=request.param)


def start(model, seed):
    """Context latents (2, C, h, w) and actions (2, A) of one stream."""
    g = torch.Generator().manual_seed(100 + seed)
    latents = torch.randn(2, *model.config.latent_shape, generator=g)
    return latents, torch.rand(2, ACTIONS, generator=g)


def action(stream: int, tick: int) -> torch.Tensor:
    """Each stream its own script: a button that changes every few ticks."""
    a = torch.zeros(ACTIONS)
    a[(stream * 3 + tick // 3) % ACTIONS] = 1.0
    return a


def alone(model, seed, ticks):
    """Latents and frames of one stream run by itself (batch 1), tick by tick."""
    sampler = StreamSampler(model.denoiser, model.schedule, CFG)
    latents, actions = start(model, seed)
    sampler.reset(latents[None], actions[None], seed=seed)
    outs = []
    for tick in range(ticks):
        changed = tick > 0 and not torch.equal(action(seed, tick), action(seed, tick - 1))
        out = sampler.step(action(seed, tick)[None], input_changed=changed)
        if out is None:
            outs.append(None)
            continue
        with torch.no_grad():
            frame = model.autoencoder.decode(out)
        outs.append((out[0].clone(), frame[0]))
    return outs


def run_pool(model, capacity, events, ticks):
    """Drive a pool: ``events`` maps a tick to [("join", stream) or ("leave", stream)].

    Returns, per stream, its latents/frames per own tick (None while filling).
    """
    pool = StreamPool(model, CFG, capacity)
    slot_of, own_tick, got = {}, {}, {}
    for tick in range(ticks):
        for kind, stream in events.get(tick, []):
            if kind == "join":
                latents, actions = start(model, stream)
                slot_of[stream] = pool.join(latents, actions, seed=stream)
                own_tick[stream], got[stream] = 0, []
            else:
                pool.leave(slot_of.pop(stream))
        batch = torch.zeros(capacity, ACTIONS)
        changed = [False] * capacity
        for stream, slot in slot_of.items():
            t = own_tick[stream]
            batch[slot] = action(stream, t)
            changed[slot] = t > 0 and not torch.equal(action(stream, t), action(stream, t - 1))
        _, ready = pool.step(batch, changed)
        for stream, slot in slot_of.items():
            if ready[slot]:
                latent = pool.sampler.out[slot].clone()
                frame = model.autoencoder.decode(pool.sampler.out[slot:slot + 1])[0]
                got[stream].append((latent, frame, pool.frames[slot].clone()))
            else:
                got[stream].append(None)
            own_tick[stream] += 1
    return got, pool


def assert_same(pooled, single):
    assert len(pooled) <= len(single)
    assert [p is None for p in pooled] == [s is None for s in single[:len(pooled)]]
    for p, s in zip(pooled, single):
        if p is None:
            continue
        torch.testing.assert_close(p[0], s[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(p[1], s[1], rtol=0, atol=1e-5)
        assert p[2].dtype == torch.uint8 and p[2].shape == (64, 64, 3)


@pytest.mark.slow
def test_streams_started_at_different_ticks_match_each_stream_alone(model):
    got, pool = run_pool(model, 3, {0: [("join", 1)], 3: [("join", 2)]}, ticks=12)
    assert pool.slots == [0, 1]
    assert_same(got[1], alone(model, 1, 12))
    assert_same(got[2], alone(model, 2, 9))
    assert sum(p is not None for p in got[2]) == 9 - (CFG.window - 1)


def test_leave_and_join_reuse_a_slot_without_disturbing_the_others(model):
    events = {0: [("join", 1), ("join", 2)], 5: [("leave", 2)], 7: [("join", 3)]}
    got, pool = run_pool(model, 2, events, ticks=14)
    assert pool.slots == [0, 1] and not pool.free
    assert_same(got[1], alone(model, 1, 14))
    assert_same(got[2], alone(model, 2, 5))
    assert_same(got[3], alone(model, 3, 7))


def test_pool_refuses_a_full_pool_and_an_empty_slot(model):
    pool = StreamPool(model, CFG, 1)
    pool.join(*start(model, 0))
    with pytest.raises(EngineError, match="full"):
        pool.join(*start(model, 1))
    pool.leave(0)
    with pytest.raises(EngineError, match="no stream"):
        pool.leave(0)


def test_a_lockstep_row_cannot_join_alone(model):
    sampler = StreamSampler(model.denoiser, model.schedule, CFG, batch=2)
    latents, actions = start(model, 0)
    sampler.reset(torch.stack([latents] * 2), torch.stack([actions] * 2))
    with pytest.raises(EngineError, match="lockstep"):
        sampler.join(1, latents, actions)


def test_a_refused_join_leaves_no_stream_behind(model):
    pool = StreamPool(model, CFG, 2)
    latents, actions = start(model, 0)
    too_long = torch.randn(20, *model.config.latent_shape)
    with pytest.raises(EngineError, match="do not fit"):
        pool.join(too_long)
    with pytest.raises(EngineError, match="do not match"):
        pool.join(torch.randn(2, 3, 5, 5))
    assert sorted(pool.free) == [0, 1]
    slot = pool.join(latents, actions, seed=0)
    for tick in range(8):
        _, ready = pool.step(torch.stack([action(0, tick)] * 2))
    assert ready[slot] and not ready[1 - slot]        # no ghost stream in the other row
