"""Training resumes exactly: a run cut in two ends with the same weights as one run."""

import json

import torch

from neural_engine.data.clips import SimClips
from neural_engine.games import load_game
from neural_engine.training import trainer
from neural_engine.training.autoencoder import AutoencoderStage, AutoencoderTraining

CFG = AutoencoderTraining(size="tiny", batch=2, pool=4, episode_ticks=3, eval_worlds=1)


def train(folder, steps):
    stage = AutoencoderStage(load_game("maze"), CFG, torch.device("cpu"), seed=3)
    trainer.run(stage, folder, trainer.Schedule(steps=steps, eval_every=10_000), quiet=True)
    return stage


def test_a_resumed_run_matches_an_uninterrupted_one(tmp_path):
    whole = train(tmp_path / "whole", 5)
    train(tmp_path / "cut", 2)
    resumed = train(tmp_path / "cut", 5)      # finds the checkpoint, continues at step 2
    for (name, a), (_, b) in zip(whole.ae.state_dict().items(),
                                 resumed.ae.state_dict().items()):
        assert torch.equal(a, b), name
    assert (tmp_path / "cut" / "autoencoder.safetensors").is_file()
    assert '"step": 5' in (tmp_path / "cut" / "metrics.jsonl").read_text()


def test_clip_stream_resumes_mid_episode():
    game = load_game("maze")
    straight = SimClips(game, batch=2, clip_len=2, device="cpu", seed=1, episode_ticks=6, pool=4)
    clips = [straight.next() for _ in range(7)]
    resumed = SimClips(game, batch=2, clip_len=2, device="cpu", seed=1, episode_ticks=6, pool=4)
    resumed.load_state_dict({"drawn": 5})
    for want in clips[5:]:
        got = resumed.next()
        assert torch.equal(got.frames, want.frames) and torch.equal(got.actions, want.actions)
    # different clips really differ (the stream moves on)
    assert not torch.equal(clips[0].frames, clips[2].frames)


def test_two_trainers_in_one_run_folder_are_refused(tmp_path):
    """Before: both ran and interleaved their checkpoints."""
    import pytest

    from neural_engine.errors import EngineError

    held = trainer.lock_run_folder(tmp_path / "run")
    try:
        with pytest.raises(EngineError, match=r"another trainer \(pid \d+\) is using this run "
                                              "folder"):
            train(tmp_path / "run", 1)
    finally:
        held.close()
    train(tmp_path / "run", 1)                       # free again once the holder is done


def test_a_resumed_run_drops_the_rows_past_its_checkpoint(tmp_path):
    """Before: the steps a killed run had logged past its checkpoint appeared twice."""
    import json

    folder = tmp_path / "cut"
    stage = AutoencoderStage(load_game("maze"), CFG, torch.device("cpu"), seed=3)
    trainer.run(stage, folder, trainer.Schedule(steps=2, eval_every=10_000, log_every=1),
                quiet=True)
    with open(folder / "metrics.jsonl", "a") as f:   # what a killed run logged past step 2
        f.write(json.dumps({"kind": "train", "step": 3}) + "\n")
        f.write('{"kind": "train", "st')               # and a line torn by the kill
    stage = AutoencoderStage(load_game("maze"), CFG, torch.device("cpu"), seed=3)
    trainer.run(stage, folder, trainer.Schedule(steps=4, eval_every=10_000, log_every=1),
                quiet=True)
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4]


def test_eval_every_zero_exports_without_evaluating(tmp_path):
    """A time-boxed GPU run read afterwards skips the evaluation after its last step."""
    stage = AutoencoderStage(load_game("maze"), CFG, torch.device("cpu"), seed=3)
    trainer.run(stage, tmp_path, trainer.Schedule(steps=3, eval_every=0, log_every=1),
                quiet=True)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3]
    assert not [r for r in rows if r["kind"] == "eval"]
    assert (tmp_path / "autoencoder.safetensors").is_file()
