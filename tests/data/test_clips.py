"""The world seeds of training clips: pinned, below the held-out line, and what the
on-the-fly clips actually play."""

import pytest

from neural_engine.data.clips import HELD_OUT_SEED_BASE, SimClips, episode_seed
from neural_engine.games import load_game


def test_episode_seeds_are_pinned_and_stay_below_the_held_out_line():
    # reference values: every training run's worlds hang on these
    assert [episode_seed(0, 0), episode_seed(0, 1), episode_seed(7, 3),
            episode_seed(2**40, 5)] == [269157861, 975901834, 928915294, 375926350]
    assert episode_seed(1007, 12, below=1000) == 90
    seeds = [episode_seed(3, i) for i in range(2000)]
    assert max(seeds) < HELD_OUT_SEED_BASE and len(set(seeds)) == len(seeds)
    assert all(episode_seed(5, i, below=64) < 64 for i in range(200))


@pytest.mark.parametrize("seed", [0, 11])
def test_sim_clips_play_the_worlds_of_their_episode_seeds(seed):
    game = load_game("maze")
    clips = SimClips(game, batch=2, clip_len=3, device="cpu", seed=seed, pool=2)
    clip = clips.next()
    below = game.spec.seeds.held_out
    sim = game.simulator(batch=2)
    first = sim.reset([episode_seed(seed, b, below) for b in range(2)])
    assert clip.anchor.equal(first)


def test_reading_only_the_first_frames_gives_the_same_clips():
    """``read_frames``: the first N frames, and their latents, as when every frame is
    drawn and encoded; the later ticks still played (actions and states whole).
    ``encode_anchor`` = False: the same, less the anchor's latents."""
    import torch

    game = load_game("maze")

    def encode(frames):                # a stand-in encoder: any function of each frame
        return frames.float().mean(-1, keepdim=True).movedim(-1, -3)[..., ::16, ::16]

    whole, first = (SimClips(game, batch=2, clip_len=5, device="cpu", seed=3, pool=4,
                             encode=encode, read_frames=n) for n in (None, 2))
    bare = SimClips(game, batch=2, clip_len=5, device="cpu", seed=3, pool=4, encode=encode,
                    read_frames=2, encode_anchor=False)
    for _ in range(3):                 # past a refill of the pool
        a, b, c = whole.next(), first.next(), bare.next()
        assert a.latents.shape[1] == a.frames.shape[1] == 5
        assert b.latents.shape[1] == b.frames.shape[1] == 2
        assert b.latents.equal(a.latents[:, :2]) and b.frames.equal(a.frames[:, :2])
        assert b.actions.equal(a.actions) and b.states.equal(a.states)
        assert b.anchor.equal(a.anchor) and b.anchor_latents.equal(a.anchor_latents)
        # without the anchor's latents, which a stage may not read
        assert c.anchor_latents is None and c.latents.equal(b.latents)
