import json

import pytest
import torch

from neural_engine.data.datagen import generate
from neural_engine.data.shards import ClipReader, read_info, shard_path
from neural_engine.errors import EngineError
from neural_engine.games import load_game


@pytest.fixture(scope="module")
def game():
    return load_game("maze")


def test_write_read_round_trip(game, tmp_path):
    summary = generate(game, tmp_path, episodes=3, frames=6, seed=4, episodes_per_shard=2,
                       batch=2, quiet=True)
    info = read_info(tmp_path)
    assert info.shards == 2 and info.frames == 6 and info.buttons == game.spec.actions.buttons
    assert summary.episodes == 3 and summary.ticks == 18
    assert 0 < summary.coverage_mean <= 1
    reader = ClipReader(tmp_path, clip_len=4, seed=0)
    assert reader.episodes == 3
    clips = reader.sample(5)
    assert clips.frames.shape == (5, 4, 128, 128, 3) and clips.frames.dtype == torch.uint8
    assert clips.actions.shape == (5, 4, game.spec.actions.dim)
    # the stored frames are what the simulator renders under the stored actions
    with torch.no_grad():
        from safetensors.torch import load_file

        shard = load_file(str(shard_path(tmp_path, 0)))
        sim = game.simulator(batch=1)
        first = sim.reset([int(shard["seeds"][0])])
        assert torch.equal(first[0], shard["frames"][0, 0])
        assert torch.equal(shard["actions"][0, 0], torch.zeros(game.spec.actions.dim))
        for t in range(1, 6):
            assert torch.equal(sim.step(shard["actions"][0, t:t + 1])[0], shard["frames"][0, t])
    # two readers with the same seed draw the same clips; seek resumes exactly
    a, b = ClipReader(tmp_path, 4, seed=9), ClipReader(tmp_path, 4, seed=9)
    a.sample(3)
    b.seek(3)
    assert torch.equal(a.sample(2).frames, b.sample(2).frames)


def test_resume_skips_finished_shards_and_reproduces(game, tmp_path):
    generate(game, tmp_path / "a", episodes=4, frames=3, seed=1, episodes_per_shard=2,
             batch=2, quiet=True)
    generate(game, tmp_path / "b", episodes=4, frames=3, seed=1, episodes_per_shard=2,
             batch=2, quiet=True)
    shard_path(tmp_path / "b", 1).unlink()            # as if killed during shard 1
    (tmp_path / "b" / "shard-00001.safetensors.tmp").write_bytes(b"half")
    before = shard_path(tmp_path / "b", 0).stat().st_mtime_ns
    generate(game, tmp_path / "b", episodes=4, frames=3, seed=1, episodes_per_shard=2,
             batch=2, quiet=True)
    assert shard_path(tmp_path / "b", 0).stat().st_mtime_ns == before   # not redone
    from safetensors.torch import load_file

    for s in (0, 1):
        a, b = (load_file(str(shard_path(tmp_path / d, s))) for d in ("a", "b"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_refuses_a_folder_with_other_settings(game, tmp_path):
    generate(game, tmp_path, episodes=1, frames=2, quiet=True, batch=1)
    with pytest.raises(EngineError, match="made with other settings"):
        generate(game, tmp_path, episodes=2, frames=2, quiet=True, batch=1)
    info = json.loads((tmp_path / "dataset.json").read_text())
    assert info["episodes"] == 1


def test_corrupt_shard_is_named(game, tmp_path):
    generate(game, tmp_path, episodes=1, frames=2, quiet=True, batch=1)
    shard_path(tmp_path, 0).write_bytes(b"not a shard")
    with pytest.raises(EngineError, match="shard-00000.safetensors: missing or corrupt shard"):
        ClipReader(tmp_path, 2)
