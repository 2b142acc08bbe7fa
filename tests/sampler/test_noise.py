"""Counter-based noise: standard normal, a pure function of (key, counter, element), and
drawn by the sampler inside the pass for all rows at once."""

import math
import random

import numpy as np
import pytest
import torch

from neural_engine.model.world import WorldModel
from neural_engine.sampler.kv_cache import CacheShape
from neural_engine.sampler.noise import GOLDEN, CounterNoise, mix32, mul32, row_keys
from neural_engine.sampler.rows import StreamRows
from neural_engine.sampler.stream import SAMPLERS, SamplerConfig, StreamSampler

ACTIONS = 8
MASK = 0xFFFFFFFF


# -- a pure-Python reference of the whole construction ------------------------------
def fmix32_reference(x: int) -> int:
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & MASK
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & MASK
    return x ^ (x >> 16)


def normal_reference(key: int, counter: int, element: int) -> float:
    state = fmix32_reference((key + GOLDEN * counter) & MASK)
    pair, odd = divmod(element, 2)
    radius_in, angle_in = (fmix32_reference((GOLDEN * (2 * pair + i)) & MASK) for i in (1, 2))
    radius_bits = fmix32_reference(state ^ radius_in) >> 8
    angle_bits = fmix32_reference(state ^ angle_in) >> 8
    radius = math.sqrt(-2 * math.log((radius_bits + 1) / 2**24))
    angle = 2 * math.pi * angle_bits / 2**24
    return radius * (math.sin(angle) if odd else math.cos(angle))


def draw(keys, counters, count: int) -> torch.Tensor:
    """Normals (len(keys), count) of rows with these keys and counters."""
    noise = CounterNoise(len(keys), count)
    return noise(torch.as_tensor(keys, dtype=torch.int64),
                 torch.as_tensor(counters, dtype=torch.int64)).clone()


# -- the integer mix -----------------------------------------------------------------
def test_integer_mix_matches_uint32_arithmetic_without_int64_overflow():
    rng = random.Random(0)
    values = ([0, 1, 2**31 - 1, 2**31, MASK - 1, MASK]
              + [MASK - rng.randrange(1 << 16) for _ in range(500)]
              + [rng.randrange(1 << 32) for _ in range(2000)])
    x = torch.tensor(values, dtype=torch.int64)
    assert mix32(x).tolist() == [fmix32_reference(v) for v in values]
    for c in (0x85EBCA6B, 0xC2B2AE35, GOLDEN, MASK):
        assert mul32(x, c).tolist() == [(v * c) & MASK for v in values]
    assert x.tolist() == values                       # the out-of-place forms keep x


def test_draws_match_the_reference_for_keys_and_counters_near_two_to_the_32():
    keys = [0, 7, 2**31 - 1, MASK - 3, MASK]
    counters = [0, 2**31 - 1, 5, MASK, 123456789]
    got = draw(keys, counters, 9)
    want = torch.tensor([[normal_reference(k, c, e) for e in range(9)]
                         for k, c in zip(keys, counters)], dtype=torch.float64)
    torch.testing.assert_close(got.double(), want, rtol=0, atol=2e-5)


# -- the distribution ----------------------------------------------------------------
def test_draws_are_standard_normal():
    z = draw(torch.arange(256) * 7919 + 12345, torch.full((256,), 42), 4096).double().flatten()
    n = z.numel()
    assert abs(z.mean().item()) < 5 / math.sqrt(n)
    assert abs(z.std().item() - 1) < 0.004
    assert abs((z**3).mean().item()) < 0.015                 # skew 0
    assert abs((z**4).mean().item() - 3) < 0.05              # kurtosis 3
    tail = (z.abs() > 3).double().mean().item()
    assert abs(tail - 0.0027) < 0.0003
    # Kolmogorov–Smirnov distance to the normal CDF (a uniform of variance 1: 0.057)
    cdf = torch.special.ndtr(z.sort().values)
    rank = torch.arange(1, n + 1, dtype=torch.float64)
    ks = torch.maximum(rank / n - cdf, cdf - (rank - 1) / n).max().item()
    assert ks < 2 / math.sqrt(n), ks


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    return torch.corrcoef(torch.stack([a, b]))[0, 1].item()


@pytest.mark.parametrize("neighbours", ["keys", "counters"])
def test_neighbouring_keys_and_counters_draw_uncorrelated_noise(neighbours):
    rows = torch.arange(1024)
    fixed = torch.full((1024,), 99)
    z = draw(rows, fixed, 512) if neighbours == "keys" else draw(fixed, rows, 512)
    bound = 5 / math.sqrt(z[1:].numel())
    assert abs(correlation(z[1:], z[:-1])) < bound
    assert abs(correlation(z[2:], z[:-2])) < bound
    assert not (z[1:] == z[:-1]).any(dim=1).all()


def test_neighbouring_elements_are_uncorrelated():
    z = draw(torch.arange(64), torch.zeros(64), 8192)
    bound = 5 / math.sqrt(z[:, 1:].numel())
    for lag in (1, 2, 3):
        assert abs(correlation(z[:, lag:], z[:, :-lag])) < bound


# -- a pure function of (key, counter, element) --------------------------------------
def test_same_key_and_counter_draw_the_same_in_any_row_and_batch():
    alone = draw([1234], [17], 100)
    for keys, counters, row in (([5, 6, 7, 1234, 8], [17, 17, 17, 17, 17], 3),
                                ([1234, 1234], [16, 17], 1)):
        assert torch.equal(draw(keys, counters, 301)[row, :100], alone[0])
    assert torch.equal(draw([1234], [17], 7)[0], alone[0, :7])      # any count: a prefix
    assert not torch.isclose(draw([1234], [18], 100), alone).any()  # next counter: new noise


def test_a_seed_gives_rows_their_own_keys_independent_of_the_batch():
    keys = row_keys(42, 4)
    assert keys.dtype == np.int32 and (keys >= 0).all()
    assert len(set(keys.tolist())) == 4
    assert row_keys(42, 1)[0] == keys[0] and row_keys(43, 1)[0] != keys[0]
    assert row_keys(2**64 + 42, 2).tolist() == row_keys(42, 2).tolist()


def test_a_pass_counter_wraps_at_two_to_the_31():
    g = StreamRows(0, 1, CacheShape(1, 8, 4), [0.0] * 5)
    g.start(3)
    g.passes = 2**31 - 1
    g.after_pass()
    assert g.passes == 0 and g.noise_state[0, 1] == 0


# -- in the sampler ------------------------------------------------------------------
@pytest.fixture(scope="module")
def model(tiny_model) -> WorldModel:
    return tiny_model(actions=ACTIONS)


def start(model, seed):
    """Context latents (2, C, h, w) and actions (2, A) of one stream."""
    g = torch.Generator().manual_seed(100 + seed)
    return (torch.randn(2, *model.config.latent_shape, generator=g),
            torch.rand(2, ACTIONS, generator=g))


def action(stream: int, tick: int) -> torch.Tensor:
    a = torch.zeros(ACTIONS)
    a[(stream + tick // 2) % ACTIONS] = 1.0
    return a


def alone(model, seed, ticks):
    """Latents (or None) per tick of one stream in a sampler of batch 1."""
    sampler = StreamSampler(model.denoiser, model.schedule, SAMPLERS["rolling"])
    latents, actions = start(model, seed)
    sampler.reset(latents[None], actions[None], seed=seed)
    outs = []
    for tick in range(ticks):
        out = sampler.step(action(seed, tick)[None])
        outs.append(None if out is None else out[0].clone())
    return outs


def test_a_stream_joined_into_row_3_draws_what_it_draws_alone(model):
    sampler = StreamSampler(model.denoiser, model.schedule, SAMPLERS["rolling"], batch=5)
    tick_of = {}
    got = []
    for tick in range(10):
        if tick < 3:                                  # rows 0..2 start a tick apart
            sampler.join(tick, *start(model, 10 + tick), seed=10 + tick)
            tick_of[tick] = tick
        if tick == 3:
            sampler.join(3, *start(model, 7), seed=7)
        actions = torch.zeros(5, ACTIONS)
        for row, first in tick_of.items():
            actions[row] = action(10 + row, tick - first)
        if tick >= 3:
            actions[3] = action(7, tick - 3)
        out = sampler.step(actions)
        if tick >= 3:
            got.append(out[3].clone() if sampler.ready[3] else None)
    # each stream counts only the passes it advanced in: 2 of context, 1 per own tick
    assert sampler.group(3).passes == 2 + 7 and sampler.group(0).passes == 2 + 10
    want = alone(model, 7, len(got))
    assert [g is None for g in got] == [w is None for w in want]
    assert sum(g is not None for g in got) == 4
    for g, w in zip(got, want):
        if g is not None:
            torch.testing.assert_close(g, w, rtol=0, atol=1e-6)


def test_row_0_of_a_lockstep_batch_draws_what_the_seed_draws_alone(model):
    sampler = StreamSampler(model.denoiser, model.schedule, SAMPLERS["rolling"], batch=2)
    latents, actions = start(model, 7)
    sampler.reset(torch.stack([latents] * 2), torch.stack([actions] * 2), seed=7)
    want = alone(model, 7, 6)
    for tick in range(6):
        out = sampler.step(torch.stack([action(7, tick)] * 2))
        if want[tick] is not None:
            torch.testing.assert_close(out[0], want[tick], rtol=0, atol=1e-6)
            assert not torch.allclose(out[1], out[0])  # row 1: key 1 of the seed


def test_holding_rows_keep_their_latents_while_another_row_joins(model):
    sampler = StreamSampler(model.denoiser, model.schedule, SAMPLERS["rolling"], batch=3)
    sampler.join(0, *start(model, 0), seed=0)
    for tick in range(5):
        sampler.step(torch.stack([action(0, tick)] * 3))
    # a frame has just entered row 0's window: its noise is still to be drawn
    sampler.begin_tick(torch.stack([action(0, 5)] * 3))
    before = sampler.x[0].clone()
    sampler.join(2, *start(model, 2), seed=2)         # two passes in which row 0 holds
    assert torch.equal(sampler.x[0], before)
    assert sampler.group(0).noise_state[0, 2] == 1    # still fresh for its own next pass


@pytest.mark.parametrize("stochastic", [True, False])
def test_no_noise_is_drawn_outside_the_pass(model, monkeypatch, stochastic):
    cfg = SamplerConfig(window=4, sink=1, ring=8, stochastic=stochastic)
    sampler = StreamSampler(model.denoiser, model.schedule, cfg, batch=16)
    for row in range(16):
        sampler.join(row, *start(model, row), seed=row)
    calls = []

    def counting(name, original):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(torch.Tensor, "normal_", counting("normal_", torch.Tensor.normal_))
    for name in ("randn", "randn_like", "normal", "rand", "rand_like"):
        monkeypatch.setattr(torch, name, counting(name, getattr(torch, name)))
    draws = []
    sampler.noise = counting("pass", sampler.noise)
    for tick in range(3):
        sampler.step(torch.zeros(16, ACTIONS))
        draws.append(calls.count("pass"))
    assert [c for c in calls if c != "pass"] == []
    assert draws == [1, 2, 3]                         # one draw for all rows per pass
