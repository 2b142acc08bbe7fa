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


def test_encoding_only_the_frames_a_stage_reads_gives_the_same_latents():
    """``encode_frames``: the first N frames' latents as when every frame is encoded;
    the frames, actions and states of the clip are whole either way."""
    import torch

    game = load_game("maze")

    def encode(frames):                # a stand-in encoder: any function of each frame
        return frames.float().mean(-1, keepdim=True).movedim(-1, -3)[..., ::16, ::16]

    whole, first = (SimClips(game, batch=2, clip_len=5, device="cpu", seed=3, pool=4,
                             encode=encode, encode_frames=n) for n in (None, 2))
    for _ in range(3):                 # past a refill of the pool
        a, b = whole.next(), first.next()
        assert a.latents.shape[1] == 5 and b.latents.shape[1] == 2
        assert b.latents.equal(a.latents[:, :2]) and b.frames.equal(a.frames)
        assert b.actions.equal(a.actions) and b.anchor_latents.equal(a.anchor_latents)
