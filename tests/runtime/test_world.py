"""The world session: streams that share a batch give exactly the frames they give alone."""

import pytest
import torch

from neural_engine.errors import EngineError
from neural_engine.model.world import WorldModel
from neural_engine.runtime.world import WorldSession
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
    pool = WorldSession(model, CFG, capacity)
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
    pool = WorldSession(model, CFG, 1)
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
    pool = WorldSession(model, CFG, 2)
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


# -- the session's own faces: frames in, frames out, rows together or alone ------------
def context_frames(seed):
    """Two context frames (2, 64, 64, 3) uint8 of one stream."""
    g = torch.Generator().manual_seed(200 + seed)
    return torch.randint(0, 256, (2, 64, 64, 3), generator=g, dtype=torch.uint8)


def play(world, seeds, ticks):
    """Frames per tick (ticks, N, 64, 64, 3) and ready flags of a session whose rows hold
    the streams ``seeds`` (joined from frames), each under its own script."""
    frames, ready = [], []
    for tick in range(ticks):
        batch = torch.stack([action(s, tick) for s in seeds])
        changed = [tick > 0 and not torch.equal(action(s, tick), action(s, tick - 1))
                   for s in seeds]
        f, r = world.step(batch, changed)
        frames.append(f.clone())
        ready.append(r)
    return torch.stack(frames), ready


def test_batched_rows_give_the_frames_of_single_sessions_with_the_same_seeds(model):
    seeds = [4, 9, 2]
    world = WorldSession(model, CFG, len(seeds))
    rows = [world.join_frames(context_frames(s), seed=s) for s in seeds]
    assert rows == [0, 1, 2] and world.slots == rows and not world.free
    together, ready = play(world, seeds, 8)
    assert ready[:CFG.window - 1] == [[False] * 3] * (CFG.window - 1)
    assert all(r == [True] * 3 for r in ready[CFG.window - 1:])
    for row, seed in enumerate(seeds):
        single = WorldSession(model, CFG, 1)
        single.reset_frames(context_frames(seed)[None], seed=seed)
        alone, _ = play(single, [seed], 8)
        diff = (together[CFG.window - 1:, row].int() - alone[CFG.window - 1:, 0].int()).abs()
        assert diff.max() <= 1 and diff.float().mean() < 1e-3, (seed, diff.max())
    # the rows really are different worlds
    assert not torch.equal(together[-1, 0], together[-1, 1])


def test_reset_starts_every_row_in_lockstep_and_again_from_scratch(model):
    world = WorldSession(model, CFG, 2)
    context = torch.stack([context_frames(1), context_frames(2)])       # (2, Fc, H, W, 3)
    world.reset_frames(context, seed=5)
    assert world.slots == [0, 1] and not world.free
    first, ready = play(world, [1, 1], 6)
    assert ready[CFG.window - 1] == [True, True]
    with pytest.raises(EngineError, match="full"):
        world.join_frames(context_frames(3))
    with pytest.raises(EngineError, match="lockstep"):
        world.leave(0)
    with pytest.raises(EngineError, match="1 contexts for a session of 2 rows"):
        world.reset_frames(context[:1])
    new = slice(CFG.window - 1, None)               # the ticks with new frames
    world.reset_frames(context, seed=5)            # the caches start over: same frames
    again, _ = play(world, [1, 1], 6)
    assert torch.equal(first[new], again[new])
    world.reset_frames(context, seed=6)            # another seed: other noise
    assert not torch.equal(first[-1], play(world, [1, 1], 6)[0][-1])


def test_a_single_row_may_leave_and_join_after_its_reset(model):
    world = WorldSession(model, CFG, 1)
    world.reset_frames(context_frames(1)[None], seed=1)
    play(world, [1], 3)
    world.leave(0)
    assert world.free == [0] and world.ready == [False]
    assert world.join_frames(context_frames(2), seed=2) == 0
    joined, _ = play(world, [2], 6)
    fresh = WorldSession(model, CFG, 1)
    fresh.join_frames(context_frames(2), seed=2)
    new = slice(CFG.window - 1, None)
    assert torch.equal(joined[new], play(fresh, [2], 6)[0][new])


def test_step_decodes_what_advance_returns(model):
    stepped, advanced = WorldSession(model, CFG, 2), WorldSession(model, CFG, 2)
    for world in (stepped, advanced):
        for s in (1, 2):
            world.join_frames(context_frames(s), seed=s)
    for tick in range(6):
        batch = torch.stack([action(1, tick), action(2, tick)])
        frames, ready = stepped.step(batch)
        latents = advanced.advance(batch)
        assert (latents is None) == (not any(ready)) and advanced.ready == ready
        if latents is not None:
            assert torch.equal(frames, advanced.decode(latents))
            assert frames.dtype == torch.uint8 and frames.shape == (2, 64, 64, 3)


def test_encode_and_decode_keep_the_leading_dims_in_any_chunking(model):
    world = WorldSession(model, CFG, 1)
    frames = torch.stack([context_frames(s) for s in range(3)])         # (3, 2, H, W, 3)
    latents = world.encode(frames)
    assert latents.shape == (3, 2, *model.config.latent_shape)
    decoded = world.decode(latents)
    assert decoded.shape == frames.shape and decoded.dtype == torch.uint8
    # one clip alone encodes as it does among others
    torch.testing.assert_close(world.encode(frames[1]), latents[1], rtol=0, atol=1e-5)
    ae = model.autoencoder                              # 6 frames: calls of 4, then 2
    torch.testing.assert_close(ae.encode_frames(frames, chunk=4), latents, rtol=0, atol=1e-5)
    assert (ae.decode_frames(latents, chunk=4).int() - decoded.int()).abs().max() <= 1
    assert not torch.equal(decoded[0], decoded[1])      # other clips, other frames


def test_a_session_needs_a_row(model):
    with pytest.raises(EngineError, match="at least one row"):
        WorldSession(model, CFG, 0)


def test_a_patch_1_model_warm_started_from_patch_2_saves_loads_and_plays(tmp_path, tiny_model):
    """The finer patch end to end on the maze's frames: 256 tokens a frame through the
    warm start, the weights file, the session's encoder, sampler and decoder."""
    from neural_engine.model.weights import load_world_model, save_world_model
    from neural_engine.training.warm import warm_start

    coarse = tiny_model(128, 128, ACTIONS, previous_frame=True)
    fine = tiny_model(128, 128, ACTIONS, previous_frame=True, patch=1, std=None)
    warm_start(fine.denoiser, fine.config.denoiser, coarse.denoiser, coarse.config.denoiser,
               "coarse")
    fine.autoencoder.load_state_dict(coarse.autoencoder.state_dict())
    path = save_world_model(tmp_path / "p1.safetensors", fine, dtype=torch.float32)
    model = load_world_model(path)
    assert model.config.denoiser.patch == 1 and model.config.tokens_per_frame == 256
    start_frames = torch.randint(0, 256, (1, 2, 128, 128, 3), dtype=torch.uint8,
                                 generator=torch.Generator().manual_seed(0))
    cfg = SamplerConfig(window=2, sink=1, ring=4)
    session = WorldSession(model, cfg)
    session.reset_frames(start_frames, seed=3)
    frames = []
    for tick in range(3):
        out, ready = session.step(action(0, tick)[None])
        frames.append(out[0].clone() if ready[0] else None)
    assert frames[0] is None and frames[1].shape == (128, 128, 3)
    assert frames[2].dtype == torch.uint8 and not torch.equal(frames[1], frames[2])
