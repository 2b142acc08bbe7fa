import resource

import pytest
import torch

from neural_engine.errors import EngineError
from neural_engine.model.world import WorldModel
from neural_engine.sampler.kv_cache import unpack
from neural_engine.sampler.stream import SAMPLERS, SamplerConfig, StreamSampler

ACTIONS = 8


@pytest.fixture
def random_model(tiny_model):
    """``random_model(dtype, seed, previous_frame, refiner, patch)``: the shared tiny model
    with every weight random (adaLN-Zero would otherwise start as identity)."""
    def make(dtype=torch.float32, seed=0, previous_frame=False, refiner=0, patch=2
             ) -> WorldModel:
        return tiny_model(actions=ACTIONS, seed=seed, dtype=dtype,
                          previous_frame=previous_frame, refiner=refiner, patch=patch)
    return make


def context(model, frames=2, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    shape = model.config.latent_shape
    return (torch.randn(1, frames, *shape, generator=g, dtype=dtype),
            torch.zeros(1, frames, ACTIONS, dtype=dtype))


def action(i: int, dtype=torch.float32) -> torch.Tensor:
    a = torch.zeros(1, ACTIONS, dtype=dtype)
    a[0, i % ACTIONS] = 1.0
    return a


@pytest.mark.parametrize("previous_frame,refiner,patch",
                         [(False, 0, 2), (True, 0, 2), (True, 8, 2), (False, 8, 2), (True, 8, 1)])
def test_cached_passes_equal_uncached_attention_over_the_same_frames(previous_frame, refiner,
                                                                    patch, random_model):
    # with the predecessor path, the uncached reference shifts its own sequence: each
    # committed frame follows the one committed before it, the front window frame the
    # newest committed one, and every other window frame the (noisier) one ahead of it
    model = random_model(torch.float64, previous_frame=previous_frame, refiner=refiner,
                         patch=patch)
    denoiser = model.denoiser
    cfg = SamplerConfig(window=3, steps_per_tick=1, sink=1, ring=8, stochastic=False)
    sampler = StreamSampler(denoiser, model.schedule, cfg, dtype=torch.float64)
    calls = []
    forward = denoiser.forward

    def recording(x, t, actions, time_pos, frame_mask=None, cache=None, prev=None):
        v = forward(x, t, actions, time_pos, frame_mask, cache, prev)
        calls.append((x.clone(), t.clone(), actions.clone(), v.clone()))
        return v

    denoiser.forward = recording
    ctx, ctx_actions = context(model, dtype=torch.float64)
    sampler.reset(ctx, ctx_actions)
    metas = []
    for tick in range(6):          # 2 context + 3 committed frames: no eviction yet
        before = len(calls)
        sampler.step(action(tick, torch.float64))
        metas.append((before, unpack(sampler.last_plan[0].copy(), sampler.shape)))
    denoiser.forward = forward

    committed = []                 # (latent, action) of every clean frame, in stream order
    shape = sampler.shape
    for i, (x, t, a, v) in enumerate(calls):
        meta = next((m for b, m in metas if b == i), None)
        if meta is None:           # a context pass: plan is implied (commit, empty window)
            committed.append((x[:, 0], a[:, 0]))
            continue
        commit = int(meta["dest"][0]) != shape.scratch
        if commit:
            committed.append((x[:, 0], a[:, 0]))
        valid = [k for k in range(shape.window) if meta["window_valid"][k]]
        seq_x = torch.stack([c[0] for c in committed] + [x[:, 1 + k] for k in valid], 1)
        seq_a = torch.stack([c[1] for c in committed] + [a[:, 1 + k] for k in valid], 1)
        seq_t = torch.cat([torch.zeros(1, len(committed), dtype=torch.float64),
                           t[:, [1 + k for k in valid]]], 1)
        n_hist, n = len(committed), seq_x.shape[1]
        mask = torch.zeros(n, n, dtype=torch.bool)
        mask[:n_hist, :n_hist] = torch.ones(n_hist, n_hist).tril().bool()
        mask[n_hist:, :] = True
        ref = denoiser(seq_x, seq_t, seq_a, torch.arange(n), frame_mask=mask)
        got = [v[:, 1 + k] for k in valid]
        want = [ref[:, n_hist + j] for j in range(len(valid))]
        if commit:
            got.append(v[:, 0])
            want.append(ref[:, n_hist - 1])
        for g, w in zip(got, want):
            assert torch.allclose(g, w, atol=1e-10, rtol=1e-8), (g - w).abs().max()
    assert len(committed) == 5


def test_same_seed_same_stream_and_seed_matters(random_model):
    model = random_model()
    streams = []
    for seed in (3, 3, 4):
        sampler = StreamSampler(model.denoiser, model.schedule, SAMPLERS["rolling"])
        sampler.reset(*context(model), seed=seed)
        outs = [sampler.step(action(i)) for i in range(8)]
        streams.append(torch.stack([o.clone() for o in outs if o is not None]))
    assert torch.equal(streams[0], streams[1])
    assert not torch.allclose(streams[0], streams[2])


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_each_named_sampler_runs(name, random_model):
    model = random_model()
    cfg = SAMPLERS[name]
    if name == "teacher":
        cfg = SamplerConfig(window=1, steps_per_tick=6, sink=1, ring=11, stochastic=False)
    sampler = StreamSampler(model.denoiser, model.schedule, cfg)
    sampler.reset(*context(model))
    outs = [sampler.step(action(i)) for i in range(cfg.window + 3)]
    # the first frame leaves after W ticks, then one every tick
    assert [o is None for o in outs] == [True] * (cfg.window - 1) + [False] * 4
    assert torch.isfinite(outs[-1]).all()


@pytest.mark.parametrize("late", [False, True])
def test_late_binding_hands_the_new_action_to_noisy_window_frames(late, random_model):
    model = random_model()
    cfg = SamplerConfig(window=4, sink=1, ring=8, late_binding=late, late_binding_threshold=0.3)
    sampler = StreamSampler(model.denoiser, model.schedule, cfg)
    sampler.reset(*context(model), seed=5)
    for tick in range(6):
        sampler.step(action(0))
    sampler.step(action(1), input_changed=True)
    # window slots front to back were at levels 1/4, 2/4, 3/4 before this tick's step;
    # the entering frame (level 1) always carries the new action
    held = sampler.actions[0, 1:, 1].tolist()
    assert held == ([0.0, 1.0, 1.0, 1.0] if late else [0.0, 0.0, 0.0, 1.0])


@pytest.mark.slow
def test_memory_is_constant_over_2000_ticks(random_model):
    model = random_model()
    sampler = StreamSampler(model.denoiser, model.schedule, SAMPLERS["rolling"])
    sampler.reset(*context(model))
    buffers = [sampler.kv.k.data_ptr(), sampler.kv.v.data_ptr(), sampler.x.data_ptr()]
    for tick in range(200):
        sampler.step(action(tick))
    rss_early = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for tick in range(1800):
        sampler.step(action(tick))
    rss_late = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert [sampler.kv.k.data_ptr(), sampler.kv.v.data_ptr(), sampler.x.data_ptr()] == buffers
    assert rss_late - rss_early < 8 * 1024      # KiB: no growth with the stream's length
    assert len(sampler.layout.cached_frames()) == 1 + 8


def test_refuses_more_positions_than_trained(random_model):
    model = random_model()
    with pytest.raises(EngineError, match="more than the 13 positions"):
        StreamSampler(model.denoiser, model.schedule, SamplerConfig(window=4, sink=2, ring=8))


def test_named_samplers_fill_the_trained_positions_and_are_a_typed_choice():
    import typing

    from neural_engine.model.config import TRAINED_FRAMES
    from neural_engine.sampler.kv_cache import CacheShape
    from neural_engine.sampler.stream import SamplerName, fit_problem, named_sampler
    from neural_engine.schema import SchemaError, fill

    assert typing.get_args(SamplerName) == tuple(SAMPLERS)
    for name, cfg in SAMPLERS.items():
        assert CacheShape(cfg.sink, cfg.ring, cfg.window).positions == TRAINED_FRAMES, name
        assert fit_problem(cfg, TRAINED_FRAMES) is None
        assert fit_problem(named_sampler(name, max_frames=7), 7) is None
    assert SamplerConfig() == SAMPLERS["rolling"]

    from neural_engine.evaluation.settings import EvalSettings

    with pytest.raises(SchemaError, match="'rollin' is not one of .*did you mean 'rolling'"):
        fill(EvalSettings, {"samplers": ["rolling", "rollin"]})


@pytest.mark.parametrize("previous_frame", [False, True])
def test_next_pass_hands_out_what_the_ticks_first_pass_runs_on(previous_frame, random_model):
    """A forward of one's own on ``next_pass`` (as distillation runs the student) sees
    what the sampler's own pass would: same velocity, bit for bit."""
    model = random_model(previous_frame=previous_frame)
    seen = []

    def recording(*args, **kwargs):
        v = model.denoiser(*args, **kwargs)
        seen.append(v.clone())
        return v

    cfg = SamplerConfig(window=4, sink=1, ring=8)
    ran = StreamSampler(model.denoiser, model.schedule, cfg, forward=recording)
    planned = StreamSampler(model.denoiser, model.schedule, cfg)
    for sampler in (ran, planned):
        sampler.reset(*context(model), seed=3)
        for tick in range(5):
            sampler.step(action(tick))
    seen.clear()
    ran.step(action(5))
    p = planned.next_pass(action(5))
    q = cfg.window + 1
    assert p.x.shape == (1, q, *model.config.latent_shape) and p.t.shape == (1, q)
    assert p.x is planned.x and p.actions is planned.actions
    assert (p.prev is not None) == previous_frame
    assert p.t[0, 1:].tolist() == sorted(p.t[0, 1:].tolist())        # rising to the back
    with torch.no_grad():
        v = model.denoiser(p.x, p.t, p.actions, p.positions, cache=p.cache, prev=p.prev)
    assert len(seen) == 1 and torch.equal(v, seen[0])
