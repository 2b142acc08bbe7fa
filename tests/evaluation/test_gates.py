"""The playability measures on constructed answers, each shown able to fail.

The simulator's own frames pass every gate; a blurred copy fails sharpness but keeps
action following; frames frozen once a turn starts fail the held-turn gate; a view that
keeps walking while a wall blocks the player fails the wall gate; the same view after a
full turn scores the cap and a view of another place fails loop closure. Frames come
from the simulator and the shipped motion probe reads them, on the CPU.
"""

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from neural_engine.evaluation.features import RealFrameBank
from neural_engine.evaluation.gates import FAIL, GATES, PASS, UNMEASURED, judge
from neural_engine.evaluation.metrics import PSNR_CAP, frechet_distance, high_frequency
from neural_engine.evaluation.probe import load_probe
from neural_engine.evaluation.score import build_workload, score, truth_dreamer
from neural_engine.evaluation.settings import profile
from neural_engine.games import load_game
from neural_engine.model.weights import ASSETS_ROOT

PROBE = ASSETS_ROOT / "maze" / "probe.safetensors"


@pytest.fixture(scope="module")
def game():
    return load_game("maze")


@pytest.fixture(scope="module")
def work(game):
    settings = profile("cpu", cases=3, seconds=2.0, drift_seconds=3.0, control_worlds=2,
                       control_seconds=3.0, still_seconds=2.0, one_step_points=3)
    bank = RealFrameBank(game, worlds=6, ticks=30, every=3)
    return build_workload(game, settings, bank=bank)


@pytest.fixture(scope="module")
def probe():
    return load_probe(PROBE)


@pytest.fixture(scope="module")
def truth(work, probe):
    return score(work, truth_dreamer, probe)


def status(scores, everyone=None):
    return {row["gate"]: row["status"] for row in judge(scores, "rolling", everyone or {})}


def test_the_simulators_own_frames_pass_every_gate(truth):
    s = status(truth)
    assert s.pop("beats_causal") == UNMEASURED          # a comparison needs a second sampler
    assert all(v == PASS for v in s.values()), s
    assert truth["one_step"]["psnr"] == PSNR_CAP and truth["controls"]["loop_psnr"] > 40
    assert truth["controls"]["tests"]["walk-into-wall"]["blocked_ticks"] > 20


def test_rolling_must_beat_causal_on_delta_drift(truth):
    better = {"realism": {"delta_drift": 0.1}}
    worse = {"realism": {"delta_drift": 0.5}}
    assert status(better, {"causal": worse})["beats_causal"] == PASS
    assert status(worse, {"causal": better})["beats_causal"] == FAIL


def blur(frames, sigma=2.0):
    k = torch.arange(-6, 7).float()
    g = torch.exp(-k ** 2 / (2 * sigma ** 2))
    g = (g / g.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)
    x = frames.flatten(0, 1).permute(0, 3, 1, 2).float()
    x = F.conv2d(F.pad(x, (6, 6, 0, 0), mode="replicate"), g, groups=3)
    x = F.conv2d(F.pad(x, (0, 0, 6, 6), mode="replicate"), g.transpose(2, 3), groups=3)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).view(frames.shape)


def test_a_blurred_world_fails_sharpness_but_keeps_following_the_keys(work, probe):
    blurred = score(work, lambda replay, frames=None: blur(replay.truth[:, :frames]), probe)
    s = status(blurred)
    assert s["sharpness_2s"] == FAIL and s["sharpness_last_minute"] == FAIL
    assert blurred["fidelity"]["sharpness_first_2s"] < 0.6
    assert s["held_turn"] == PASS and s["turn"] == PASS and s["move"] == PASS


def frozen_at_first_turn(replay, frames=None):
    """The truth until the simulator first turns, then that frame for ever."""
    out = replay.truth[:, :frames].clone()
    turning = (replay.states[:, 1:, 2] - replay.states[:, :-1, 2]).abs() > 1e-4   # (B, T − 1)
    for b in range(out.shape[0]):
        if turning[b].any():
            start = int(turning[b].nonzero()[0])
            out[b, start + 1:] = out[b, start]
    return out


def test_a_world_that_stops_when_the_turn_starts_fails_action_following(work, probe):
    frozen = score(work, frozen_at_first_turn, probe)
    assert status(frozen)["held_turn"] == FAIL
    assert frozen["controls"]["held_turn"] < 0.1


def keeps_walking(replay, frames=None):
    """Wall tests: the steps before the wall, over and over (the view never stops)."""
    out = replay.truth[:, :frames].clone()
    if not replay.names[0].startswith("walk-into-wall"):
        return out
    for b in range(out.shape[0]):
        moved = (replay.states[b, 1:, :2] - replay.states[b, :-1, :2]).norm(dim=-1) > 1e-3
        free = int(moved.float().argmin()) if not moved.all() else out.shape[1]
        for t in range(free, out.shape[1]):
            out[b, t] = replay.truth[b, t % free]
    return out


def test_a_world_that_walks_through_walls_fails_the_wall_gate(work, probe, truth):
    walking = score(work, keeps_walking, probe)
    assert truth["controls"]["blocked_moving"] < 0.05
    assert status(walking)["blocked_forward"] == FAIL
    assert walking["controls"]["blocked_moving"] > 0.5


def test_loop_closure_is_the_cap_for_the_same_view_and_fails_for_another_place(work, probe):
    def closes(replay, frames=None):
        out = replay.truth[:, :frames].clone()
        if replay.names[0].startswith("loop-closure"):
            out[:, -1] = out[:, 9]                    # before = 0.45 s = tick 9
        return out

    def elsewhere(replay, frames=None):
        out = replay.truth[:, :frames].clone()
        if replay.names[0].startswith("loop-closure"):
            out[:, -1] = out.flip(0)[:, 9]            # another world's view
        return out

    same = score(work, closes, probe)["controls"]
    assert same["loop_psnr"] == PSNR_CAP
    other = score(work, elsewhere, probe)
    assert status(other)["loop_closure"] == FAIL and other["controls"]["loop_psnr"] < 20


def test_the_gate_table_is_the_issue_s_and_has_one_row_per_key():
    assert len({g.key for g in GATES}) == len(GATES) == 12
    thresholds = {g.key: (g.low, g.high) for g in GATES}
    assert thresholds["one_step_psnr"] == (28.0, None)
    assert thresholds["sharpness_2s"] == (0.85, 1.15)
    assert thresholds["blocked_forward"] == (None, 0.10)


def test_sharpness_and_frechet_distance_move_the_right_way():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(4, 32, 32, 3, generator=g) * 255).to(torch.uint8)
    flat = torch.full_like(x, 100)
    assert high_frequency(flat).max() == 0 and high_frequency(x).min() > 10
    a = torch.randn(500, 6, generator=g)
    assert frechet_distance(a, a) < 1e-9
    assert frechet_distance(a, a + 2) == pytest.approx(24, rel=0.05)   # |Δμ|² = 6 × 4


def test_stillness_reads_psnr_at_horizons(work, probe):
    still = score(work, truth_dreamer, probe)["controls"]["still_psnr"]
    assert list(still) == ["1s"] and still["1s"] == PSNR_CAP
    darker = score(work, lambda r, frames=None: (r.truth[:, :frames] // 2), probe)
    assert darker["controls"]["still_psnr"]["1s"] < 20


def test_a_missing_probe_leaves_action_gates_unmeasured(work):
    s = status(score(replace(work), truth_dreamer, None))
    for key in ("turn", "move", "strafe", "held_turn", "blocked_forward"):
        assert s[key] == UNMEASURED
    assert s["sharpness_2s"] == PASS
