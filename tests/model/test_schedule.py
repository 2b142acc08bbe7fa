"""The flow-matching schedule: its levels, its noising and its two steps, against the
formulas of its docstring and against the exact path of a known sample."""

import pytest
import torch

from neural_engine.model.schedule import FlowSchedule


def test_levels_run_from_exactly_0_to_exactly_1_and_increase():
    for shift in (1.0, 3.0):
        levels = FlowSchedule(shift).levels(4)
        assert levels.shape == (5,) and levels[0] == 0 and levels[-1] == 1
        assert (levels.diff() > 0).all()
    assert torch.allclose(FlowSchedule().levels(4), torch.tensor([0, 0.25, 0.5, 0.75, 1.0]))


def test_shift_moves_levels_towards_high_noise():
    plain, shifted = FlowSchedule(1.0), FlowSchedule(3.0)
    t = torch.tensor([0.25, 0.5, 0.75])
    assert torch.allclose(shifted.warp(t), 3 * t / (1 + 2 * t))
    assert torch.allclose(shifted.warp(torch.tensor(0.5)), torch.tensor(0.75))
    assert torch.equal(plain.warp(t), t)
    assert (shifted.warp(t) > t).all()


def test_training_levels_are_in_the_unit_interval_and_seeded():
    sched = FlowSchedule(2.0)
    a = sched.sample_t((1000,), generator=torch.Generator().manual_seed(0))
    b = sched.sample_t((1000,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and ((a > 0) & (a < 1)).all()
    assert a.median() > 0.5        # logit-normal around 0.5, shifted up


def test_noising_and_the_velocity_recover_sample_and_noise():
    sched = FlowSchedule()
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(2, 3, 4, 2, 2, generator=g), torch.randn(2, 3, 4, 2, 2, generator=g)
    t = torch.tensor([[0.0, 0.3, 1.0], [0.5, 0.9, 0.1]])          # per frame (B, F)
    x_t = sched.add_noise(x0, noise, t)
    assert torch.allclose(x_t[0, 0], x0[0, 0]) and torch.allclose(x_t[0, 2], noise[0, 2])
    assert torch.allclose(x_t[1, 0], 0.5 * x0[1, 0] + 0.5 * noise[1, 0])
    v = sched.velocity_target(x0, noise)
    assert torch.allclose(sched.x0_from_v(x_t, v, t), x0, atol=1e-6)
    assert torch.allclose(sched.noise_from_v(x_t, v, t), noise, atol=1e-6)


def test_steps_with_the_true_velocity_follow_the_straight_path():
    """With the exact velocity, Euler lands on the path at every level, and re-noising
    with the original noise gives the same point."""
    sched = FlowSchedule(3.0)
    g = torch.Generator().manual_seed(2)
    x0, noise = torch.randn(1, 1, 4, 2, 2, generator=g), torch.randn(1, 1, 4, 2, 2, generator=g)
    v = sched.velocity_target(x0, noise)
    levels = sched.levels(8).flip(0)                                # 1 → 0
    x = noise.clone()
    for t, s in zip(levels[:-1], levels[1:]):
        t, s = t.reshape(1, 1), s.reshape(1, 1)
        euler = sched.step(x, v, t, s)
        renoised = sched.step(x, v, t, s, noise=noise)
        assert torch.allclose(euler, sched.add_noise(x0, noise, s), atol=1e-5)
        assert torch.allclose(renoised, euler, atol=1e-5)
        x = euler
    assert torch.allclose(x, x0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_levels_broadcast_in_the_latents_dtype(dtype):
    sched = FlowSchedule()
    x = torch.ones(2, 3, 4, 2, 2, dtype=dtype)
    out = sched.step(x, torch.ones_like(x), torch.full((2, 3), 0.5), torch.full((2, 3), 0.25))
    assert out.dtype == dtype and torch.allclose(out.float(), torch.full(x.shape, 0.75))
