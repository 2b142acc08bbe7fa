"""The probe's training holds still at its end: the learning rate warms up and decays,
the gradient is clipped, the EMA is what gets exported and resumes exactly, and an
export whose accuracy collapsed from the run's best is caught, not written silently.

Before: a constant rate of 1e-3, no clipping and the raw weights; the dungeon's probe
read 0.985 / 0.935 at step 1,000 and a constant (0.58 / 0.42) in its exported file.
"""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from neural_engine.cli.train import stage_config
from neural_engine.evaluation.probe import load_probe
from neural_engine.games import load_game
from neural_engine.training import trainer
from neural_engine.training.lr import learning_rate
from neural_engine.training.probe_stage import ProbeStage, ProbeTraining

CPU = torch.device("cpu")
SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "maze" / "probe.safetensors"
TINY = {"width": 4, "batch": 2, "pool": 2, "clip_len": 3, "eval_worlds": 2}


@pytest.fixture(scope="module")
def maze():
    return load_game("maze")


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _file(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), framework="pt") as f:
        return _tensors(path), json.loads(f.metadata()["info"])


def _grad_norm(module: torch.nn.Module) -> float:
    return torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in module.parameters()])
                                    ).item()


def test_the_packaged_recipe_decays_clips_and_averages():
    cfg = stage_config("probe", None, [])
    assert cfg.decay_steps > cfg.warmup > 0 and cfg.min_lr < cfg.lr
    assert cfg.grad_clip > 0 and 0 < cfg.ema < 1 and cfg.collapse_margin == 0.1


def test_each_step_sets_the_warmed_up_then_decayed_learning_rate(maze):
    cfg = ProbeTraining(**TINY, lr=1e-3, warmup=2, decay_steps=6, min_lr=1e-5)
    stage = ProbeStage(maze, cfg, CPU)
    rates = []
    for step in range(8):
        stage.train_step(step)
        rates.append(stage.optim.param_groups[0]["lr"])
    assert rates == [learning_rate(cfg, s) for s in range(8)]
    assert rates[:3] == [5e-4, 1e-3, 1e-3]
    assert math.isclose(rates[4], (1e-3 + 1e-5) / 2)
    assert all(a > b for a, b in zip(rates[2:7], rates[3:7]))
    assert math.isclose(rates[6], 1e-5) and math.isclose(rates[7], 1e-5)


def test_the_gradient_is_clipped_to_its_norm_and_the_norm_before_is_logged(maze):
    torch.manual_seed(0)
    clipped = ProbeStage(maze, ProbeTraining(**TINY, grad_clip=1e-4), CPU)
    before = clipped.train_step(0)["grad"].item()
    assert before > 1e-3                               # the clip really acts here
    assert _grad_norm(clipped.probe) == pytest.approx(1e-4, rel=1e-4)
    free = ProbeStage(maze, ProbeTraining(**TINY, grad_clip=0.0), CPU)
    logged = free.train_step(0)["grad"].item()
    assert _grad_norm(free.probe) == pytest.approx(logged, rel=1e-5) and logged > 1e-3


def test_the_ema_follows_the_weights_and_is_what_the_file_holds(maze, tmp_path):
    stage = ProbeStage(maze, ProbeTraining(**TINY, ema=0.5), CPU)
    start = {k: v.clone() for k, v in stage.ema.state_dict().items()}
    stage.train_step(0)
    for k, v in stage.ema.state_dict().items():       # one step: halfway to the weights
        assert torch.allclose(v, torch.lerp(start[k], stage.probe.state_dict()[k], 0.5),
                              rtol=1e-6, atol=1e-7), k
    stage = ProbeStage(maze, ProbeTraining(**TINY, ema=0.5), CPU)
    trainer.run(stage, tmp_path, trainer.Schedule(steps=3, eval_every=10_000), quiet=True)
    tensors, info = _file(tmp_path / "probe.safetensors")
    ema, raw = stage.ema.state_dict(), stage.probe.state_dict()
    assert all(torch.equal(tensors[k], ema[k]) for k in tensors)
    assert not all(torch.equal(tensors[k], raw[k]) for k in tensors)
    assert "collapse" not in info and set(info) == {f"{a}_accuracy"
                                                    for a in maze.spec.control.scored}
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in rows if r["kind"] == "eval"]
    assert len(final) == 1 and final[0]["collapsed_axes"] == 0


def test_a_resumed_probe_run_matches_an_uninterrupted_one_ema_and_best_included(maze,
                                                                                tmp_path):
    def train(folder: Path, steps: int) -> ProbeStage:
        stage = ProbeStage(maze, ProbeTraining(**TINY, ema=0.9), CPU, seed=3)
        trainer.run(stage, folder, trainer.Schedule(steps=steps, eval_every=2, log_every=1),
                    quiet=True)
        return stage

    whole = train(tmp_path / "whole", 4)
    train(tmp_path / "cut", 2)
    resumed = train(tmp_path / "cut", 4)        # the checkpoint of step 2, evaluated there
    assert resumed.best_eval == whole.best_eval and resumed.peak == whole.peak
    assert resumed.best_eval["step"] in (2, 4)
    for name in ("probe", "ema", "best"):
        a, b = whole.modules[name].state_dict(), resumed.modules[name].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert not torch.equal(whole.ema.net[0].weight, whole.probe.net[0].weight)
    ckpt = [_tensors(folder / "checkpoint.safetensors") for folder in
            (tmp_path / "whole", tmp_path / "cut")]
    assert ckpt[0].keys() == ckpt[1].keys() and any(k.startswith("model.ema.") for k in ckpt[0])
    assert all(torch.equal(ckpt[0][k], ckpt[1][k]) for k in ckpt[0])
    files = [_file(folder / "probe.safetensors") for folder in
             (tmp_path / "whole", tmp_path / "cut")]
    assert files[0][1] == files[1][1]
    assert all(torch.equal(files[0][0][k], files[1][0][k]) for k in files[0][0])


def test_a_probe_blown_up_on_purpose_is_caught_and_the_best_weights_are_exported(
        maze, tmp_path, capsys):
    """The shipped probe's weights, evaluated (the run's best), then each layer's weights
    ten times larger (the gain runaway of the dungeon's probe): the evaluation counts the
    fallen axes, the export says so and writes the best evaluation's weights."""
    shipped = load_probe(SHIPPED, scales=tuple(m.scale for m in maze.spec.control.motion))
    stage = ProbeStage(maze, ProbeTraining(**(TINY | {"width": shipped.width})), CPU)
    stage.ema.load_state_dict(shipped.state_dict())
    good = stage.evaluate(tmp_path, 1000)
    assert good["collapsed_axes"] == 0
    with torch.no_grad():
        for layer in stage.ema.net:
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
                layer.weight.mul_(10)
    blown = stage.evaluate(tmp_path, 2000)
    assert blown["collapsed_axes"] >= 1
    path = stage.export(tmp_path)
    warning = capsys.readouterr().err
    assert "WARNING: the final weights collapsed" in warning
    assert "exported the weights of the evaluation at step 1000" in warning
    tensors, info = _file(path)
    assert all(torch.equal(tensors[k], v) for k, v in shipped.state_dict().items())
    scored = [f"{a}_accuracy" for a in maze.spec.control.scored]
    assert {k: info[k] for k in scored} == {k: good[k] for k in scored}
    assert info["collapse"]["exported"] == "step 1000"
    assert info["collapse"]["final"] == {k: blown[k] for k in scored}
    # without the check the file would have held the blown-up weights: they read worse
    assert any(good[k] - blown[k] > 0.1 for k in scored)
    assert load_probe(path).scales == shipped.scales
