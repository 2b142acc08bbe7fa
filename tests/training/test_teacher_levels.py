"""The teacher's training noise levels: the three patterns, and noise on the history."""

from dataclasses import replace

import torch

from neural_engine.model.schedule import FlowSchedule
from neural_engine.training.teacher import TeacherTraining, noise_levels


def _levels(cfg, seed=0, batch=512, frames=13):
    g = torch.Generator().manual_seed(seed)
    return noise_levels(cfg, batch, frames, FlowSchedule(), generator=g)


def test_clean_history_is_exactly_clean_by_default():
    cfg = TeacherTraining(clean_prefix_prob=0.5, window_prob=0.5)   # no independent clips
    t = _levels(cfg)
    assert t.shape == (512, 13)
    clean = t == 0
    assert clean[:, 0].all()                # every clip keeps at least its first frame
    # each clip: a clean prefix, then only noisy frames (never clean after noisy)
    first_noisy = (~clean).float().argmax(1)
    after = torch.arange(13)[None] >= first_noisy[:, None]
    assert not (clean & after).any()


def test_context_noise_touches_only_the_history():
    base = TeacherTraining(clean_prefix_prob=0.3, window_prob=0.3)
    plain, noisy = _levels(base), _levels(replace(base, context_noise=0.1))
    history = plain == 0
    assert history.any() and (~history).any()
    # the frames the plain draw keeps clean get small levels, the rest are the same draw
    assert torch.equal(noisy[~history], plain[~history])
    assert (noisy[history] >= 0).all() and (noisy[history] < 0.1).all()
    assert noisy[history].mean() > 0.03     # uniform below 0.1, not left at zero
